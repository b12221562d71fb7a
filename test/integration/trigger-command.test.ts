import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { agentConfig, writeAgentConfig } from '../support/agent-config.ts';
import { runCli } from '../support/cli.ts';
import { startEmulator } from '../support/emulator.ts';
import { finished, spawnCli } from '../support/spawn-cli.ts';

describe('sos-agent trigger (installer test alert, end to end against the emulator)', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator.stop();
  });
  beforeEach(() => {
    emulator.clearTriggers();
    emulator.clearFaults();
  });

  it('delivers one alert with the seed shape, prints the API id, exits 0 and leaves it delivered in the outbox', async () => {
    const cfg = agentConfig(emulator.url);
    const r = await runCli(['trigger', '--config', writeAgentConfig(cfg)]);
    expect(r.stderr).toContain('delivered');
    expect(r.code).toBe(0);
    const [t] = emulator.triggers();
    expect(emulator.triggers()).toHaveLength(1);
    expect(r.stdout.trim()).toBe(t!.id);
    expect(t!.callflow).toBe('company_dataconnect_v1');
    expect(t!.variables).toEqual({
      caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
      location: { latitude: '39.285270', longitude: '-76.612470', uncertainty: '7' },
      vehicle_info: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
    });
    const store = new SqliteOutboxStore({ path: cfg.outbox.path, readOnly: true });
    store.open();
    const [rec] = store.list();
    store.close();
    expect(rec).toMatchObject({ state: 'delivered', apiId: t!.id });
  });

  it('--test uses the test callflow', async () => {
    const r = await runCli(['trigger', '--test', '--config', writeAgentConfig(agentConfig(emulator.url))]);
    expect(r.code).toBe(0);
    expect(emulator.triggers().map((t) => t.callflow)).toEqual(['company_test_v1']);
  });

  it('exits 3 when the API rejects the alert (code -2), after one attempt', async () => {
    emulator.addFault({ target: 'trigger', times: 5, status: 400, code: -2 });
    const r = await runCli(['trigger', '--config', writeAgentConfig(agentConfig(emulator.url))]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rejected by the API/);
    expect(emulator.stats().triggerRequests).toBeGreaterThanOrEqual(1);
  });

  it('exits 4 after a few short retries of a failing API, and the alert stays queued for the agent', async () => {
    emulator.addFault({ target: 'trigger', times: 100, status: 503 });
    const cfg = agentConfig(emulator.url);
    const r = await runCli(['trigger', '--attempts', '2', '--config', writeAgentConfig(cfg)]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/stays queued/);
    expect(emulator.triggers()).toHaveLength(0);
    const store = new SqliteOutboxStore({ path: cfg.outbox.path, readOnly: true });
    store.open();
    expect(store.list().map((rec) => rec.state)).toEqual(['queued']);
    store.close();
  });

  it('exits 2 on a bad config, sending nothing', async () => {
    const before = emulator.stats().triggerRequests;
    const r = await runCli(['trigger', '--config', writeAgentConfig({ ...agentConfig(emulator.url), caller: { full_name: 'J', phone_number: '1' } })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('caller.phone_number');
    expect(emulator.stats().triggerRequests).toBe(before);
  });

  it('as a real process, waits through its retries and exits 4 (never a silent 0) while the API fails', async () => {
    emulator.addFault({ target: 'trigger', times: 100, status: 503 });
    const r = await finished(spawnCli(['trigger', '--attempts', '2', '--config', writeAgentConfig(agentConfig(emulator.url))]));
    expect(r.stderr).toMatch(/attempt 2 failed/);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
  });

  it('as a real process, prints the API id and exits 0', async () => {
    const r = await finished(spawnCli(['trigger', '--test', '--config', writeAgentConfig(agentConfig(emulator.url))]));
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(emulator.triggers()[0]?.id);
  });
});
