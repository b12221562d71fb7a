import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator, FaultSpec } from '../../src/emulator/server.ts';
import type { OutboxEvent } from '../../src/outbox/outbox.ts';
import type { OutboxRecord } from '../../src/outbox/record.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import { startEmulator } from '../support/emulator.ts';
import { makeAlert } from '../support/outbox-alerts.ts';
import { directOutbox, triggersPerAlert, type DirectOutbox } from '../support/outbox-direct.ts';

/**
 * The real emulator, the real API client and DirectRoute, the real SQLite outbox: each fault class of the API
 * ends with the alert delivered once (or, where the request may have arrived, at most once per ambiguity)
 * and the record in the right state.
 */
describe('outbox → DirectRoute → emulator, under faults', () => {
  let dir: string;
  let emulator: Emulator;
  let direct: DirectOutbox;
  let events: OutboxEvent[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-outbox-it-'));
    emulator = await startEmulator();
    direct = directOutbox({ apiUrl: emulator.url, dbPath: join(dir, 'outbox.db'), responseTimeoutMs: 400 });
    events = [];
    direct.outbox.onChange((e) => events.push(e));
  });
  afterEach(async () => {
    await direct.stop();
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function settled(alertId: string): Promise<OutboxEvent> {
    return new Promise((resolve) => {
      const done = events.find((e) => e.alertId === alertId && (e.state === 'delivered' || e.state === 'rejected'));
      if (done) return resolve(done);
      const off = direct.outbox.onChange((e) => {
        if (e.alertId === alertId && (e.state === 'delivered' || e.state === 'rejected')) {
          off();
          resolve(e);
        }
      });
    });
  }

  function record(alertId: string): OutboxRecord | undefined {
    const s = new SqliteOutboxStore({ path: join(dir, 'outbox.db'), readOnly: true });
    s.open();
    try {
      return s.get(alertId);
    } finally {
      s.close();
    }
  }

  async function deliverThrough(faults: FaultSpec[]): Promise<{ alertId: string; final: OutboxEvent; triggers: number }> {
    for (const f of faults) emulator.addFault(f);
    await direct.start();
    const alert = makeAlert(Date.now());
    expect(await direct.outbox.enqueue(alert)).toEqual({ durable: true });
    const final = await settled(alert.alertId);
    return { alertId: alert.alertId, final, triggers: triggersPerAlert(emulator).get(alert.alertId) ?? 0 };
  }

  const cases: [string, FaultSpec[]][] = [
    ['code -1 in a 200 answer', [{ target: 'trigger', status: 200, code: -1, times: 2 }]],
    ['HTTP 500', [{ target: 'trigger', status: 500, times: 3 }]],
    ['HTTP 429', [{ target: 'trigger', status: 429, times: 2 }]],
    ['the token endpoint failing', [{ target: 'token', status: 503, times: 3 }, { target: 'token', drop: true, times: 1 }]],
  ];
  for (const [name, faults] of cases) {
    it(`delivers exactly once through ${name}`, async () => {
      const { alertId, final, triggers } = await deliverThrough(faults);
      expect(final.state).toBe('delivered');
      expect(triggers).toBe(1);
      const accepted = emulator.triggers().find((t) => (t.variables as { event_info: { alert_id: string } }).event_info.alert_id === alertId);
      expect(record(alertId)).toMatchObject({ state: 'delivered', apiId: accepted!.id });
      expect(record(alertId)!.attempts).toBeGreaterThan(1);
    });
  }

  it('waits at least Retry-After on a 503, then delivers exactly once', async () => {
    const sendingAt: number[] = [];
    direct.outbox.onChange((e) => e.state === 'sending' && sendingAt.push(Date.now()));
    const { alertId, final, triggers } = await deliverThrough([{ target: 'trigger', status: 503, retryAfter: 1 }]);
    expect(final.state).toBe('delivered');
    expect(triggers).toBe(1);
    expect(sendingAt).toHaveLength(2);
    expect(sendingAt[1]! - sendingAt[0]!).toBeGreaterThanOrEqual(1000);
    expect(record(alertId)).toMatchObject({ state: 'delivered', attempts: 2, ambiguousRetries: 0, lastError: { code: 'ERR_SOS_API_TRANSIENT' } });
  });

  it('delivers once through dropped connections, counting each drop as an ambiguous repeat', async () => {
    const { alertId, final, triggers } = await deliverThrough([{ target: 'trigger', drop: true, times: 2 }]);
    expect(final.state).toBe('delivered');
    // A dropped trigger may have reached the API: at most one extra flow per drop. This emulator drops before accepting.
    expect(triggers).toBeGreaterThanOrEqual(1);
    expect(triggers).toBeLessThanOrEqual(1 + 2);
    expect(record(alertId)).toMatchObject({ state: 'delivered', attempts: 3, ambiguousRetries: 2 });
    expect(direct.outbox.stats().ambiguousRepeats).toBe(2);
  });

  it('resends a slow answer past the response timeout, at most once more than the timeouts', async () => {
    const { alertId, final, triggers } = await deliverThrough([{ target: 'trigger', delayMs: 1500 }]);
    expect(final.state).toBe('delivered');
    // The slow request was accepted on arrival (a real slow server would have started the flow): the repeat is visible.
    expect(triggers).toBe(2);
    expect(record(alertId)).toMatchObject({ state: 'delivered', attempts: 2, ambiguousRetries: 1 });
    expect(direct.outbox.stats().ambiguousRepeats).toBe(1);
  });

  it('delivers every alert once when the tokens expire mid-stream', async () => {
    await direct.start();
    const alerts = Array.from({ length: 6 }, (_, i) => makeAlert(Date.now() + i));
    for (const [i, a] of alerts.entries()) {
      if (i === 3) emulator.expireTokens();
      await direct.outbox.enqueue(a);
      if (i === 1) await settled(a.alertId);
    }
    const finals = await Promise.all(alerts.map((a) => settled(a.alertId)));
    expect(finals.map((f) => f.state)).toEqual(Array(6).fill('delivered'));
    const counts = triggersPerAlert(emulator);
    expect(alerts.map((a) => counts.get(a.alertId))).toEqual(Array(6).fill(1));
    expect(emulator.stats().tokenRequests).toBeGreaterThanOrEqual(2);
  });

  it('rejects a code -2 (workflow validation) without retrying, and tells the listener why', async () => {
    await direct.start();
    const alert = makeAlert(Date.now(), { callflow: 'no_such_callflow' });
    await direct.outbox.enqueue(alert);
    const final = await settled(alert.alertId);
    expect(final).toMatchObject({ state: 'rejected', error: { code: 'ERR_SOS_API_REJECTED' } });
    expect(final.error!.message).toContain('code -2');
    await new Promise((r) => setTimeout(r, 300)); // several backoff periods (50 ms base): a retry would show
    expect(emulator.stats().triggerRequests).toBe(1);
    expect(emulator.triggers()).toHaveLength(0);
    expect(record(alert.alertId)).toMatchObject({ state: 'rejected', attempts: 1, lastError: { code: 'ERR_SOS_API_REJECTED' } });
  });
});
