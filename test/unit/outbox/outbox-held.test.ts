import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertDraft } from '../../../src/incident/types.ts';
import { Outbox, type OutboxEvent, type OutboxOptions } from '../../../src/outbox/outbox.ts';
import { SqliteOutboxStore } from '../../../src/outbox/sqlite-store.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import { makeAlert } from '../../support/outbox-alerts.ts';
import { ScriptedRoute } from './fake-route.ts';

const HOUR = 3_600_000;

/**
 * A confirmed press that may not be sent yet (cancel window open, no location) is committed as `held`: on disk
 * before the person is told, never sent while held, sent once released, never sent once cancelled.
 */
describe('Outbox: held alerts', () => {
  let dir: string;
  let path: string;
  let clock: FakeClock;
  let route: ScriptedRoute;
  const outboxes: Outbox[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sos-outbox-held-'));
    path = join(dir, 'outbox.db');
    clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
    route = new ScriptedRoute(clock);
  });
  afterEach(async () => {
    for (const o of outboxes.splice(0)) await o.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function onDisk(alertId: string) {
    const s = new SqliteOutboxStore({ path, readOnly: true });
    s.open();
    try {
      return s.get(alertId);
    } finally {
      s.close();
    }
  }
  function make(opts: Partial<OutboxOptions> = {}): { outbox: Outbox; events: OutboxEvent[] } {
    const outbox = new Outbox({ store: new SqliteOutboxStore({ path }), route, clock, logger: silentLogger(), maxBackoffMs: 30_000, alertMaxAgeMs: HOUR, ...opts });
    const events: OutboxEvent[] = [];
    outbox.onChange((e) => events.push(e));
    outboxes.push(outbox);
    return { outbox, events };
  }
  const fix = () => ({ latitude: 44.97997, longitude: -93.26384, uncertainty_m: 9, fix_time: clock.now() - 300, age_ms: 300, stale: false, source: 'gpsd' });
  const noLocation = (): AlertDraft => ({ ...makeAlert(clock.now()), location: null });

  it('commits a held press before hold resolves and never sends it while held, however long', async () => {
    const { outbox, events } = make();
    await outbox.start();
    const alert = makeAlert(clock.now());
    let seen: unknown;
    const held = outbox.hold(alert, 'cancel_window').then((r) => {
      seen = onDisk(alert.alertId);
      return r;
    });
    expect(await held).toEqual({ durable: true });
    expect(seen).toMatchObject({ state: 'held', heldFor: 'cancel_window', alert });
    await clock.advanceAsync(HOUR);
    outbox.wayIsBack();
    await clock.advanceAsync(HOUR);
    expect(route.calls).toEqual([]);
    expect(outbox.stats()).toMatchObject({ depth: 1, inFlight: 0 });
    expect(outbox.stats().oldestAgeMs).toBe(2 * HOUR);
    expect(events.map((e) => [e.state, e.heldFor])).toEqual([['held', 'cancel_window']]);
  });

  it('releases a press when its window ends: sent once, with the location at release', async () => {
    const { outbox, events } = make();
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.hold(alert, 'cancel_window');
    await clock.advanceAsync(5000);
    const now = fix();
    expect(await outbox.release(alert.alertId, now)).toEqual({ outcome: 'released', durable: true });
    await clock.advanceAsync(0);
    expect(route.calls.map((c) => c.alert)).toEqual([{ ...alert, location: now }]);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'delivered', heldFor: 'cancel_window', createdAt: alert.createdAt });
    expect(events.map((e) => e.state)).toEqual(['held', 'queued', 'sending', 'delivered']);
    expect(await outbox.release(alert.alertId, now)).toMatchObject({ outcome: 'not_held' });
    await clock.advanceAsync(HOUR);
    expect(route.calls).toHaveLength(1);
  });

  it('keeps a press without a location held for one, and sends it with the first fix', async () => {
    const { outbox, events } = make();
    await outbox.start();
    const draft = noLocation();
    await outbox.hold(draft, 'cancel_window');
    await clock.advanceAsync(5000);
    expect(await outbox.release(draft.alertId)).toEqual({ outcome: 'waiting_location', durable: true });
    expect(onDisk(draft.alertId)).toMatchObject({ state: 'held', heldFor: 'location', alert: { location: null } });
    await clock.advanceAsync(HOUR);
    expect(route.calls).toEqual([]);
    const first = fix();
    expect(await outbox.release(draft.alertId, first)).toMatchObject({ outcome: 'released' });
    await clock.advanceAsync(0);
    expect(route.calls.map((c) => c.alert.location)).toEqual([first]);
    expect(events.map((e) => [e.state, e.heldFor])).toEqual([
      ['held', 'cancel_window'],
      ['held', 'location'],
      ['queued', undefined],
      ['sending', undefined],
      ['delivered', undefined],
    ]);
  });

  it('cancels a held press: kept as cancelled, never sent, not waiting', async () => {
    const { outbox, events } = make();
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.hold(alert, 'cancel_window');
    expect(await outbox.cancel(alert.alertId)).toBe(true);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'cancelled', cancelReason: 'person' });
    expect(await outbox.release(alert.alertId, fix())).toMatchObject({ outcome: 'not_held' });
    expect(await outbox.cancel(alert.alertId)).toBe(false);
    await clock.advanceAsync(HOUR);
    expect(route.calls).toEqual([]);
    expect(outbox.stats().depth).toBe(0);
    expect(events.map((e) => e.state)).toEqual(['held', 'cancelled']);
  });

  it('a hold that became a test alert replaces the real one in the same commit', async () => {
    const { outbox, events } = make();
    await outbox.start();
    const real = makeAlert(clock.now());
    await outbox.hold(real, 'cancel_window');
    await clock.advanceAsync(3000);
    const test = makeAlert(clock.now(), { test: true });
    await outbox.hold(test, 'cancel_window', { replaces: real.alertId });
    expect(onDisk(real.alertId)).toMatchObject({ state: 'cancelled', cancelReason: 'superseded' });
    expect(outbox.held().map((r) => r.alertId)).toEqual([test.alertId]);
    await outbox.release(test.alertId);
    await clock.advanceAsync(0);
    expect(route.calls.map((c) => c.alert.callflow)).toEqual(['company_test_v1']);
    expect(events.filter((e) => e.alertId === real.alertId).map((e) => e.state)).toEqual(['held', 'cancelled']);
  });

  it('held presses survive a restart: listed for the app, still never sent until released', async () => {
    const first = make();
    await first.outbox.start();
    const inWindow = makeAlert(clock.now());
    await clock.advanceAsync(1000);
    const waiting = noLocation();
    await first.outbox.hold(inWindow, 'cancel_window');
    await first.outbox.hold(waiting, 'location');
    await first.outbox.stop();

    const { outbox } = make();
    await outbox.start();
    expect(outbox.held().map((r) => [r.alertId, r.heldFor, r.alert.location === null])).toEqual([
      [inWindow.alertId, 'cancel_window', false],
      [waiting.alertId, 'location', true],
    ]);
    expect(outbox.stats().depth).toBe(2);
    await clock.advanceAsync(HOUR);
    expect(route.calls).toEqual([]);
    await outbox.release(inWindow.alertId);
    await outbox.release(waiting.alertId, fix());
    await clock.advanceAsync(0);
    expect(route.calls.map((c) => c.alertId).sort()).toEqual([inWindow.alertId, waiting.alertId].sort());
    expect(outbox.stats()).toMatchObject({ depth: 0, delivered: 2 });
  });

  it('holds in memory when the file is read-only (degraded, not durable), and still sends once released', async () => {
    const setup = new SqliteOutboxStore({ path });
    setup.open();
    setup.close();
    const { outbox } = make({ store: new SqliteOutboxStore({ path, readOnly: true }) });
    await outbox.start();
    const draft = noLocation();
    expect(await outbox.hold(draft, 'location')).toEqual({ durable: false });
    expect(outbox.stats()).toMatchObject({ degraded: true, memoryOnly: 1, depth: 1 });
    expect(outbox.held().map((r) => r.alertId)).toEqual([draft.alertId]);
    expect(await outbox.release(draft.alertId, fix())).toEqual({ outcome: 'released', durable: false });
    await clock.advanceAsync(0);
    expect(route.calls).toHaveLength(1);
    expect(outbox.stats()).toMatchObject({ memoryOnly: 0, depth: 0, delivered: 1 });
  });

  it('refuses to hold before start, as it refuses to enqueue', async () => {
    const { outbox } = make();
    await expect(outbox.hold(makeAlert(clock.now()), 'cancel_window')).rejects.toMatchObject({ reason: 'closed' });
  });
});
