import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertDraft } from '../../../src/incident/types.ts';
import type { OutboxStore } from '../../../src/outbox/store.ts';
import { makeAlert } from '../../support/outbox-alerts.ts';

/** A fresh, opened store; `reopen` (persistent stores only) closes it and opens the same data again. */
export interface StoreHarness {
  store: OutboxStore;
  reopen?: () => OutboxStore;
  cleanup?: () => void;
}

const T0 = Date.UTC(2026, 0, 1, 12);
const ERR = { code: 'ERR_SOS_API_TRANSIENT', message: 'HTTP 503' };
const FIX = { latitude: 44.97997, longitude: -93.26384, uncertainty_m: 12, fix_time: T0 + 60_000, age_ms: 400, stale: false, source: 'gpsd' };

/** A press confirmed before the device had any location (no fix, no fallback). */
function noLocation(pressedAt: number): AlertDraft {
  return { ...makeAlert(pressedAt), location: null };
}

/** The one contract every OutboxStore keeps (run against each implementation, as MQTT.js does with abstract_store). */
export function outboxStoreContract(name: string, make: () => StoreHarness): void {
  describe(`OutboxStore contract: ${name}`, () => {
    let h: StoreHarness;
    let store: OutboxStore;
    beforeEach(() => {
      h = make();
      store = h.store;
    });
    afterEach(() => {
      store.close();
      h.cleanup?.();
    });

    it('keeps the whole snapshot of a queued alert, due at once, with nothing tried yet', () => {
      const alert = makeAlert(T0);
      const { record, inserted } = store.insert(alert, T0 + 5);
      expect(inserted).toBe(true);
      expect(record).toMatchObject({ alertId: alert.alertId, createdAt: T0, enqueuedAt: T0 + 5, state: 'queued', attempts: 0, nextAttemptAt: T0 + 5, lastError: null, ambiguousRetries: 0, apiId: null, deliveredAt: null });
      expect(store.get(alert.alertId)?.alert).toEqual(alert);
      expect(store.due(T0 + 5, 10).map((r) => r.alertId)).toEqual([alert.alertId]);
      expect(store.depth()).toBe(1);
    });

    it('keeps the first record when the same alertId is enqueued again (a retry never makes a second alert)', () => {
      const alert = makeAlert(T0);
      store.insert(alert, T0);
      store.markSending(alert.alertId, 'direct', T0 + 1);
      const again = store.insert({ ...alert, callflow: 'other' }, T0 + 2);
      expect(again.inserted).toBe(false);
      expect(again.record.state).toBe('sending');
      expect(store.get(alert.alertId)?.alert.callflow).toBe(alert.callflow);
      expect(store.depth()).toBe(1);
    });

    it('gives due alerts oldest press first, whatever order they were enqueued in, up to the limit', () => {
      const c = makeAlert(T0 + 3000);
      const a = makeAlert(T0 + 1000);
      const b = makeAlert(T0 + 2000);
      for (const x of [c, a, b]) store.insert(x, T0 + 5000);
      expect(store.due(T0 + 5000, 10).map((r) => r.alertId)).toEqual([a.alertId, b.alertId, c.alertId]);
      expect(store.due(T0 + 5000, 2).map((r) => r.alertId)).toEqual([a.alertId, b.alertId]);
      expect(store.due(T0 + 4999, 10)).toEqual([]);
      expect(store.list().map((r) => r.alertId)).toEqual([a.alertId, b.alertId, c.alertId]);
    });

    it('lets only one attempt claim an alert, and counts attempts', () => {
      const a = makeAlert(T0);
      store.insert(a, T0);
      expect(store.markSending(a.alertId, 'direct', T0 + 1)).toBe(true);
      expect(store.markSending(a.alertId, 'direct', T0 + 1)).toBe(false);
      expect(store.due(T0 + 10, 10)).toEqual([]);
      expect(store.get(a.alertId)).toMatchObject({ state: 'sending', attempts: 1, route: 'direct' });
      expect(store.depth()).toBe(1);
    });

    it('records delivery with the API id; a delivered alert is never due again', () => {
      const a = makeAlert(T0);
      store.insert(a, T0);
      store.markSending(a.alertId, 'direct', T0 + 1);
      expect(store.markDelivered(a.alertId, 'exec-1', T0 + 2)).toBe(true);
      expect(store.get(a.alertId)).toMatchObject({ state: 'delivered', apiId: 'exec-1', deliveredAt: T0 + 2 });
      expect(store.due(T0 + 1e9, 10)).toEqual([]);
      expect(store.depth()).toBe(0);
      expect(store.markDelivered(a.alertId, 'exec-2', T0 + 3)).toBe(false);
      expect(store.retryNow(a.alertId, T0 + 4)).toBe(false);
    });

    it('records a rejection with its reason and never offers it again unless asked', () => {
      const a = makeAlert(T0);
      store.insert(a, T0);
      store.markSending(a.alertId, 'direct', T0 + 1);
      expect(store.markRejected(a.alertId, { code: 'ERR_SOS_API_REJECTED', message: 'code -2: bad variables' }, T0 + 2)).toBe(true);
      expect(store.get(a.alertId)).toMatchObject({ state: 'rejected', lastError: { code: 'ERR_SOS_API_REJECTED', message: 'code -2: bad variables' } });
      expect(store.due(T0 + 1e9, 10)).toEqual([]);
      expect(store.makeAllDue(T0 + 3)).toBe(0);
      expect(store.depth()).toBe(0);
      expect(store.retryNow(a.alertId, T0 + 5)).toBe(true);
      expect(store.due(T0 + 5, 10).map((r) => r.alertId)).toEqual([a.alertId]);
    });

    it('puts a failed attempt back in the queue for later and counts ambiguous resends', () => {
      const a = makeAlert(T0);
      store.insert(a, T0);
      store.markSending(a.alertId, 'direct', T0 + 1);
      expect(store.markRetry(a.alertId, T0 + 1000, ERR, false, T0 + 2)).toBe(true);
      expect(store.get(a.alertId)).toMatchObject({ state: 'queued', nextAttemptAt: T0 + 1000, lastError: ERR, ambiguousRetries: 0, attempts: 1 });
      expect(store.due(T0 + 999, 10)).toEqual([]);
      expect(store.nextDueAt()).toBe(T0 + 1000);
      store.markSending(a.alertId, 'direct', T0 + 1000);
      store.markRetry(a.alertId, T0 + 3000, { code: 'ERR_SOS_API_TRANSIENT', message: 'socket hang up' }, true, T0 + 1001);
      expect(store.get(a.alertId)).toMatchObject({ attempts: 2, ambiguousRetries: 1 });
    });

    it('after a crash, returns alerts left sending to the queue, due now, counted as ambiguous', () => {
      const a = makeAlert(T0);
      const b = makeAlert(T0 + 1);
      const c = makeAlert(T0 + 2);
      for (const x of [a, b, c]) store.insert(x, T0 + 10);
      store.markSending(a.alertId, 'direct', T0 + 11);
      store.markSending(b.alertId, 'direct', T0 + 11);
      store.markDelivered(b.alertId, 'exec-b', T0 + 12);
      store.markSending(c.alertId, 'relay', T0 + 11);
      const requeued = store.requeueSending(T0 + 100);
      expect(requeued.map((r) => r.alertId)).toEqual([a.alertId, c.alertId]);
      expect(requeued[0]).toMatchObject({ state: 'queued', nextAttemptAt: T0 + 100, ambiguousRetries: 1, attempts: 1 });
      expect(store.get(b.alertId)?.state).toBe('delivered');
      expect(store.requeueSending(T0 + 200)).toEqual([]);
    });

    it('makes every waiting alert due at once when the way is back', () => {
      const a = makeAlert(T0);
      const b = makeAlert(T0 + 1);
      for (const x of [a, b]) {
        store.insert(x, T0);
        store.markSending(x.alertId, 'direct', T0);
        store.markRetry(x.alertId, T0 + 30_000, ERR, false, T0);
      }
      expect(store.due(T0 + 10, 10)).toEqual([]);
      expect(store.makeAllDue(T0 + 10)).toBe(2);
      expect(store.due(T0 + 10, 10).map((r) => r.alertId)).toEqual([a.alertId, b.alertId]);
      expect(store.nextDueAt()).toBe(T0 + 10);
    });

    it('purges delivered alerts only', () => {
      const a = makeAlert(T0);
      const b = makeAlert(T0 + 1);
      const c = makeAlert(T0 + 2);
      for (const x of [a, b, c]) store.insert(x, T0);
      store.markSending(a.alertId, 'direct', T0);
      store.markDelivered(a.alertId, 'exec-a', T0);
      store.markSending(b.alertId, 'direct', T0);
      store.markRejected(b.alertId, ERR, T0);
      expect(store.purgeDelivered()).toBe(1);
      expect(store.get(a.alertId)).toBeUndefined();
      expect(store.list().map((r) => r.state)).toEqual(['rejected', 'queued']);
      expect(store.list({ states: ['rejected'] }).map((r) => r.alertId)).toEqual([b.alertId]);
    });

    it('reports depth, the oldest pending press and the next due time', () => {
      expect(store.depth()).toBe(0);
      expect(store.oldestPendingAt()).toBeUndefined();
      expect(store.nextDueAt()).toBeUndefined();
      const a = makeAlert(T0);
      const b = makeAlert(T0 + 500);
      store.insert(b, T0 + 600);
      store.insert(a, T0 + 700);
      store.markSending(a.alertId, 'direct', T0 + 800);
      expect(store.depth()).toBe(2);
      expect(store.oldestPendingAt()).toBe(T0);
      expect(store.nextDueAt()).toBe(T0 + 600);
    });

    it('hands out copies: changing a returned record changes nothing stored', () => {
      const a = makeAlert(T0);
      const { record } = store.insert(a, T0);
      record.state = 'delivered';
      record.alert.caller.full_name = 'Someone Else';
      const got = store.get(a.alertId)!;
      expect(got.state).toBe('queued');
      expect(got.alert.caller.full_name).toBe('Joe User');
    });

    it('commits grouped writes all together, or none of them', () => {
      const a = makeAlert(T0);
      const b = makeAlert(T0 + 1);
      for (const x of [a, b]) store.insert(x, T0);
      expect(store.transaction(() => [store.markSending(a.alertId, 'direct', T0), store.markSending(b.alertId, 'direct', T0)])).toEqual([true, true]);
      expect(() =>
        store.transaction(() => {
          store.markDelivered(a.alertId, 'exec-a', T0 + 1);
          throw new Error('the process failed half-way');
        }),
      ).toThrow();
      expect(store.get(a.alertId)).toMatchObject({ state: 'sending', apiId: null });
      expect(store.transaction(() => store.markDelivered(a.alertId, 'exec-a', T0 + 2))).toBe(true);
      expect(store.get(a.alertId)?.state).toBe('delivered');
    });

    it('answers for an unknown alert without throwing', () => {
      expect(store.get('0190b5c0-0000-7000-8000-000000000000')).toBeUndefined();
      expect(store.markSending('nope', 'direct', T0)).toBe(false);
      expect(store.retryNow('nope', T0)).toBe(false);
    });

    it('holds a confirmed press without sending it: never due, yet counted as waiting', () => {
      const a = noLocation(T0);
      const { record, inserted } = store.hold(a, 'location', T0 + 5);
      expect(inserted).toBe(true);
      expect(record).toMatchObject({ alertId: a.alertId, createdAt: T0, enqueuedAt: T0 + 5, state: 'held', heldFor: 'location', cancelReason: null, attempts: 0 });
      expect(store.get(a.alertId)?.alert).toEqual(a);
      expect(store.due(T0 + 1e9, 10)).toEqual([]);
      expect(store.nextDueAt()).toBeUndefined();
      expect(store.makeAllDue(T0 + 1e9)).toBe(0);
      expect(store.requeueSending(T0 + 10)).toEqual([]);
      expect(store.markSending(a.alertId, 'direct', T0 + 10)).toBe(false);
      expect(store.retryNow(a.alertId, T0 + 10)).toBe(false);
      expect(store.depth()).toBe(1);
      expect(store.oldestPendingAt()).toBe(T0);
      expect(store.list({ states: ['held'] }).map((r) => r.alertId)).toEqual([a.alertId]);
      // A second commit of the same press (a retry of the write) keeps the first, held or queued.
      expect(store.hold({ ...a, callflow: 'other' }, 'cancel_window', T0 + 6)).toMatchObject({ inserted: false, record: { state: 'held', heldFor: 'location' } });
      expect(store.insert({ ...a, location: FIX }, T0 + 7).inserted).toBe(false);
      expect(store.get(a.alertId)?.state).toBe('held');
    });

    it('releases a held press with its first location: queued, due now, the location filled in', () => {
      const a = noLocation(T0);
      store.hold(a, 'cancel_window', T0);
      expect(store.release(a.alertId, undefined, T0 + 1)).toBe(false);
      expect(store.get(a.alertId)).toMatchObject({ state: 'held', heldFor: 'cancel_window' });
      expect(store.holdFor(a.alertId, 'location', T0 + 2)).toBe(true);
      expect(store.get(a.alertId)).toMatchObject({ state: 'held', heldFor: 'location', updatedAt: T0 + 2 });
      expect(store.release(a.alertId, FIX, T0 + 60_000)).toBe(true);
      const r = store.get(a.alertId)!;
      expect(r).toMatchObject({ state: 'queued', nextAttemptAt: T0 + 60_000, heldFor: 'location', createdAt: T0 });
      expect(r.alert).toEqual({ ...a, location: FIX });
      expect(store.due(T0 + 60_000, 10).map((x) => x.alert.location)).toEqual([FIX]);
      expect(store.nextDueAt()).toBe(T0 + 60_000);
      expect(store.depth()).toBe(1);
      // Released once: a second release (or a late cancel) changes nothing.
      expect(store.release(a.alertId, { ...FIX, latitude: 1 }, T0 + 60_001)).toBe(false);
      expect(store.cancel(a.alertId, 'person', T0 + 60_002)).toBe(false);
      expect(store.holdFor(a.alertId, 'location', T0 + 60_003)).toBe(false);
      expect(store.get(a.alertId)?.alert.location).toEqual(FIX);
    });

    it('releases a press held for its cancel window with the location it was held with, or a newer one', () => {
      const a = makeAlert(T0);
      const b = makeAlert(T0 + 1);
      store.hold(a, 'cancel_window', T0);
      store.hold(b, 'cancel_window', T0);
      expect(store.release(a.alertId, undefined, T0 + 5000)).toBe(true);
      expect(store.get(a.alertId)?.alert).toEqual(a);
      expect(store.release(b.alertId, FIX, T0 + 5000)).toBe(true);
      expect(store.get(b.alertId)?.alert.location).toEqual(FIX);
      expect(store.due(T0 + 5000, 10).map((r) => r.alertId)).toEqual([a.alertId, b.alertId]);
    });

    it('cancels a held press: kept for the record, never due, no longer waiting', () => {
      const a = makeAlert(T0);
      store.hold(a, 'cancel_window', T0);
      expect(store.cancel(a.alertId, 'person', T0 + 2000)).toBe(true);
      expect(store.get(a.alertId)).toMatchObject({ state: 'cancelled', cancelReason: 'person', heldFor: 'cancel_window', updatedAt: T0 + 2000 });
      expect(store.release(a.alertId, FIX, T0 + 3000)).toBe(false);
      expect(store.retryNow(a.alertId, T0 + 3000)).toBe(false);
      expect(store.due(T0 + 1e9, 10)).toEqual([]);
      expect(store.depth()).toBe(0);
      expect(store.purgeDelivered()).toBe(0);
      expect(store.list().map((r) => r.state)).toEqual(['cancelled']);
      const q = makeAlert(T0 + 1);
      store.insert(q, T0);
      expect(store.cancel(q.alertId, 'person', T0)).toBe(false);
      expect(store.cancel('nope', 'person', T0)).toBe(false);
      expect(store.release('nope', FIX, T0)).toBe(false);
    });

    it('replaces a held press by another in one transaction (a hold that became a test alert), or not at all', () => {
      const real = makeAlert(T0);
      const test = makeAlert(T0 + 3000, { test: true });
      store.hold(real, 'cancel_window', T0);
      expect(() =>
        store.transaction(() => {
          store.cancel(real.alertId, 'superseded', T0 + 3000);
          store.hold(test, 'cancel_window', T0 + 3000);
          throw new Error('power cut half-way');
        }),
      ).toThrow();
      expect(store.list().map((r) => [r.alertId, r.state])).toEqual([[real.alertId, 'held']]);
      store.transaction(() => {
        store.cancel(real.alertId, 'superseded', T0 + 3000);
        store.hold(test, 'cancel_window', T0 + 3000);
      });
      expect(store.list().map((r) => [r.state, r.cancelReason])).toEqual([
        ['cancelled', 'superseded'],
        ['held', null],
      ]);
      expect(store.depth()).toBe(1);
    });

    it('keeps a held press without a location across a close and reopen when it is persistent', () => {
      if (!h.reopen) return;
      const a = noLocation(T0);
      const c = makeAlert(T0 + 1);
      store.hold(a, 'location', T0);
      store.hold(c, 'cancel_window', T0);
      store.cancel(c.alertId, 'person', T0 + 1);
      const before = store.list();
      store = h.reopen();
      expect(store.list()).toEqual(before);
      expect(store.get(a.alertId)?.alert.location).toBeNull();
      expect(store.release(a.alertId, FIX, T0 + 9)).toBe(true);
      expect(store.due(T0 + 9, 10).map((r) => r.alert)).toEqual([{ ...a, location: FIX }]);
    });

    it('keeps everything across a close and reopen when it is persistent', () => {
      if (!h.reopen) return;
      const a = makeAlert(T0);
      store.insert(a, T0);
      store.markSending(a.alertId, 'direct', T0 + 1);
      store.markRetry(a.alertId, T0 + 2000, ERR, true, T0 + 2);
      const before = store.get(a.alertId);
      store = h.reopen();
      expect(store.get(a.alertId)).toEqual(before);
    });
  });
}
