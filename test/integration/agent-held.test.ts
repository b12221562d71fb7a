import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/app/agent.ts';
import { ScriptedButtonSource } from '../../src/button/scripted.ts';
import { agentConfigSchema } from '../../src/config/agent-schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import type { OutboxEvent } from '../../src/outbox/outbox.ts';
import type { OutboxRecord } from '../../src/outbox/record.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { agentConfig } from '../support/agent-config.ts';
import { startEmulator } from '../support/emulator.ts';

/**
 * With test alerts enabled, one long hold is first a real alert (at hold_ms) and then, still held at
 * test_hold_ms, a test alert. Both moments are committed: a crash between them sends the real one; once it
 * became a test, the real one is cancelled in the same write, so exactly one of the two can ever go out.
 */
describe('agent: a hold that becomes a test alert, committed at every step', () => {
  let emulator: Emulator;
  let agent: Agent | undefined;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator.stop();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    emulator.clearTriggers();
  });

  function start(cancelWindowS: number): { agent: Agent; button: ScriptedButtonSource; path: string; events: OutboxEvent[]; next: (p: (e: OutboxEvent) => boolean) => Promise<OutboxEvent> } {
    const raw = agentConfig(emulator.url, { press: { hold_ms: 200, test_hold_ms: 1000, cancel_window_s: cancelWindowS, debounce_ms: 0 } });
    const config = parseConfig(agentConfigSchema, raw);
    const button = new ScriptedButtonSource({ clock: systemClock });
    const a = new Agent({ config, logger: silentLogger(), clock: systemClock, button });
    const events: OutboxEvent[] = [];
    const waiters: { p: (e: OutboxEvent) => boolean; resolve: (e: OutboxEvent) => void }[] = [];
    a.onAlert((e) => {
      events.push(e);
      for (const w of [...waiters]) {
        if (!w.p(e)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    });
    const next = (p: (e: OutboxEvent) => boolean) => new Promise<OutboxEvent>((resolve) => waiters.push({ p, resolve }));
    return { agent: a, button, path: raw.outbox.path, events, next };
  }

  function records(path: string): OutboxRecord[] {
    const store = new SqliteOutboxStore({ path, readOnly: true });
    store.open();
    try {
      return store.list();
    } finally {
      store.close();
    }
  }

  for (const windowS of [1, 0]) {
    it(`cancel window ${windowS} s: the real alert is held from hold_ms, replaced by the test alert at test_hold_ms, and only the test is sent`, async () => {
      const s = start(windowS);
      agent = s.agent;
      await agent.start();
      const realHeld = s.next((e) => e.state === 'held');
      s.button.down();
      const real = await realHeld;
      expect(records(s.path).map((r) => [r.alertId, r.state, r.alert.test])).toEqual([[real.alertId, 'held', false]]);
      const realCancelled = s.next((e) => e.alertId === real.alertId && e.state === 'cancelled');
      const testHeld = s.next((e) => e.alertId !== real.alertId && e.state === 'held');
      await Promise.all([realCancelled, testHeld]);
      const delivered = s.next((e) => e.state === 'delivered');
      s.button.up();
      const done = await delivered;
      expect(done.alertId).toBe((await testHeld).alertId);
      expect(emulator.triggers().map((t) => t.callflow)).toEqual(['company_test_v1']);
      expect(records(s.path).map((r) => [r.alertId, r.state, r.cancelReason, r.alert.test])).toEqual([
        [real.alertId, 'cancelled', 'superseded', false],
        [done.alertId, 'delivered', null, true],
      ]);
    });
  }

  it('cancel window 0 s: a hold released before test_hold_ms is held meanwhile, then sent as the real alert once', async () => {
    const s = start(0);
    agent = s.agent;
    await agent.start();
    const held = s.next((e) => e.state === 'held');
    s.button.down();
    const real = await held;
    expect(records(s.path).map((r) => [r.state, r.heldFor])).toEqual([['held', 'cancel_window']]);
    const delivered = s.next((e) => e.state === 'delivered');
    s.button.up();
    expect((await delivered).alertId).toBe(real.alertId);
    expect(emulator.triggers().map((t) => t.callflow)).toEqual(['company_dataconnect_v1']);
    expect(records(s.path).map((r) => [r.alertId, r.state])).toEqual([[real.alertId, 'delivered']]);
  });
});
