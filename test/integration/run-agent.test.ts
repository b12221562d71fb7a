import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EV_KEY, EV_SYN, KEY_SOS, SYN_REPORT, packInputEvent } from '../../src/button/input-event.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import { agentConfig, writeAgentConfig } from '../support/agent-config.ts';
import { startEmulator } from '../support/emulator.ts';
import { finished, spawnCli, waitForOutput } from '../support/spawn-cli.ts';

/**
 * `sos-agent run` as a real process, with the real evdev button source reading `input_event` records from a
 * FIFO, the LED class files in a temporary folder, and the emulator as the API: a hold is an alert, exactly one.
 */
describe('sos-agent run: a press on the evdev button becomes one callflow', () => {
  let emulator: Emulator;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator.stop();
  });
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
    emulator.clearTriggers();
  });

  function setup(press: object, outbox: { max_backoff_s?: number } = {}, testAlerts = true) {
    const dir = mkdtempSync(join(tmpdir(), 'sos-run-'));
    const fifo = join(dir, 'button-event');
    execFileSync('mkfifo', [fifo]);
    const leds = join(dir, 'leds');
    mkdirSync(join(leds, 'sos'), { recursive: true });
    for (const f of ['brightness', 'trigger', 'delay_on', 'delay_off']) writeFileSync(join(leds, 'sos', f), '');
    writeFileSync(join(leds, 'sos', 'max_brightness'), '1\n');
    const cfg = agentConfig(emulator.url, {
      button: { source: 'evdev', device: fifo, key_code: KEY_SOS, layout: '64' },
      press: { hold_ms: 300, ...press },
      feedback: { leds_root: leds, led: 'sos', terminal: true },
      log: { level: 'info' },
      outbox: { path: join(dir, 'outbox.db'), ...outbox },
      // Without a test callflow a hold is sent at hold_ms even while still held (no test-hold to wait for).
      ...(testAlerts ? {} : { callflow: { name: 'company_dataconnect_v1', test_name: null } }),
    });
    return { fifo, leds, cfg, file: writeAgentConfig(cfg) };
  }

  function key(fd: number, value: 0 | 1): void {
    const t = Date.now();
    writeSync(fd, Buffer.concat([packInputEvent({ timeMs: t, type: EV_KEY, code: KEY_SOS, value }, 24), packInputEvent({ timeMs: t, type: EV_SYN, code: SYN_REPORT, value: 0 }, 24)]));
  }

  it('hold → cancel window → sent → confirmed on the LED; a second press is recorded, not a second call; SIGTERM exits 0', async () => {
    const { fifo, leds, cfg, file } = setup({ cancel_window_s: 1 });
    child = spawnCli(['run', '--config', file]);
    const exit = finished(child);
    await waitForOutput(child, /armed: a press will be sent/);
    const fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /ALERT CONFIRMED/);
    key(fd, 0);
    await waitForOutput(child, /ALERT RECEIVED/);
    expect(emulator.triggers()).toHaveLength(1);
    expect(readFileSync(join(leds, 'sos', 'trigger'), 'utf8').trim()).toBe('none');
    expect(readFileSync(join(leds, 'sos', 'brightness'), 'utf8').trim()).not.toBe('0');

    key(fd, 1);
    await waitForOutput(child, /recorded against it, no second call started/);
    key(fd, 0);
    closeSync(fd);
    child.kill('SIGTERM');
    const r = await exit;
    expect(r.code).toBe(0);
    expect(emulator.triggers()).toHaveLength(1);
    const store = new SqliteOutboxStore({ path: cfg.outbox.path, readOnly: true });
    store.open();
    expect(store.list().map((rec) => [rec.state, rec.apiId])).toEqual([['delivered', emulator.triggers()[0]!.id]]);
    store.close();
  });

  it('one more press within the cancel window cancels: nothing is sent', async () => {
    // No debounce: the release and the cancelling press arrive in the same instant here.
    const { fifo, file } = setup({ cancel_window_s: 30, debounce_ms: 0 });
    child = spawnCli(['run', '--config', file]);
    const exit = finished(child);
    await waitForOutput(child, /armed: a press will be sent/);
    const fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /ALERT CONFIRMED/);
    key(fd, 0);
    key(fd, 1);
    await waitForOutput(child, /CANCELLED/);
    key(fd, 0);
    closeSync(fd);
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
    expect(emulator.triggers()).toHaveLength(0);
  });

  it('SIGTERM during the cancel window sends the confirmed alert rather than losing it', async () => {
    const { fifo, cfg, file } = setup({ cancel_window_s: 30 });
    child = spawnCli(['run', '--config', file]);
    const exit = finished(child);
    await waitForOutput(child, /armed: a press will be sent/);
    const fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /ALERT CONFIRMED/);
    key(fd, 0);
    closeSync(fd);
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
    // Committed before the stop finished: delivered, or left queued for the next start; never dropped.
    const store = new SqliteOutboxStore({ path: cfg.outbox.path, readOnly: true });
    store.open();
    const records = store.list();
    store.close();
    expect(records).toHaveLength(1);
    expect(records[0]!.state === 'delivered' ? 1 : 0).toBe(emulator.triggers().length);
    expect(['delivered', 'queued']).toContain(records[0]!.state);
  });

  it('after a crash, a press while the earlier alert is still being sent is recorded against it, not a second call', async () => {
    emulator.addFault({ target: 'trigger', times: 1000, status: 503 });
    const { fifo, cfg, file } = setup({ cancel_window_s: 0 }, { max_backoff_s: 1 }, false);
    child = spawnCli(['run', '--config', file]);
    await waitForOutput(child, /armed: a press will be sent/);
    let fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /"msg":"alert queued"/);
    key(fd, 0);
    closeSync(fd);
    await waitForOutput(child, /will retry/);
    child.kill('SIGKILL');
    await finished(child);

    child = spawnCli(['run', '--config', file]);
    const exit = finished(child);
    await waitForOutput(child, /armed: a press will be sent/);
    fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /recorded against it, no second call started/);
    key(fd, 0);
    closeSync(fd);
    emulator.clearFaults();
    await waitForOutput(child, /ALERT RECEIVED/);
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
    expect(emulator.triggers()).toHaveLength(1);
    const store = new SqliteOutboxStore({ path: cfg.outbox.path, readOnly: true });
    store.open();
    expect(store.list().map((r) => r.state)).toEqual(['delivered']);
    store.close();
  });

  it('a bad config at start: exit 2, every wrong field named with its path, nothing started', async () => {
    const file = writeAgentConfig({ ...agentConfig(emulator.url), caller: { full_name: '', phone_number: '12' }, gps: { source: 'gpsd', port: 0 }, buton: {} });
    const r = await finished(spawnCli(['run', '--config', file]));
    expect(r.code).toBe(2);
    for (const path of ['caller.full_name:', 'caller.phone_number:', 'gps.port:', 'buton: unknown key']) expect(r.stderr).toContain(path);
    expect(r.stdout).toBe('');
  });
});
