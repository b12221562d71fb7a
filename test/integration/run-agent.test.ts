import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EV_KEY, EV_SYN, KEY_SOS, SYN_REPORT, packInputEvent } from '../../src/button/input-event.ts';
import type { AgentConfigInput } from '../../src/config/agent-schema.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import type { OutboxRecord } from '../../src/outbox/record.ts';
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

  function setup(press: object, outbox: { max_backoff_s?: number } = {}, testAlerts = true, more: Partial<AgentConfigInput> = {}) {
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
      ...more,
    });
    return { fifo, leds, cfg, file: writeAgentConfig(cfg) };
  }

  /** What a second process (the installer's `outbox list`) reads from the agent's file. */
  function outboxRecords(path: string): OutboxRecord[] {
    const store = new SqliteOutboxStore({ path, readOnly: true });
    store.open();
    try {
      return store.list();
    } finally {
      store.close();
    }
  }

  /** Resolves once `sos-agent run` says it is armed, with the promise of its exit (wrapped: not awaited here). */
  async function armed(proc: ChildProcess): Promise<{ exit: ReturnType<typeof finished> }> {
    const exit = finished(proc);
    await waitForOutput(proc, /armed: a press will be sent/);
    return { exit };
  }

  function key(fd: number, value: 0 | 1): void {
    const t = Date.now();
    writeSync(fd, Buffer.concat([packInputEvent({ timeMs: t, type: EV_KEY, code: KEY_SOS, value }, 24), packInputEvent({ timeMs: t, type: EV_SYN, code: SYN_REPORT, value: 0 }, 24)]));
  }

  it('hold → cancel window → sent → confirmed on the LED; a second press is recorded, not a second call; SIGTERM exits 0', async () => {
    const { fifo, leds, cfg, file } = setup({ cancel_window_s: 1 });
    const { exit } = await armed((child = spawnCli(['run', '--config', file])));
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
    const { fifo, cfg, file } = setup({ cancel_window_s: 30, debounce_ms: 0 });
    const { exit } = await armed((child = spawnCli(['run', '--config', file])));
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
    // The press was committed (held) before "ALERT CONFIRMED", and the cancel is kept for the record.
    expect(outboxRecords(cfg.outbox.path).map((r) => [r.state, r.heldFor, r.cancelReason])).toEqual([['cancelled', 'cancel_window', 'person']]);
    // A restart does not bring a cancelled press back.
    const { exit: again } = await armed((child = spawnCli(['run', '--config', file])));
    child.kill('SIGTERM');
    expect((await again).code).toBe(0);
    expect(emulator.triggers()).toHaveLength(0);
    expect(outboxRecords(cfg.outbox.path).map((r) => r.state)).toEqual(['cancelled']);
  });

  it('SIGKILL during the cancel window: the press was committed, and the restart sends it exactly once', async () => {
    const { fifo, cfg, file } = setup({ cancel_window_s: 30 });
    await armed((child = spawnCli(['run', '--config', file])));
    const fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /ALERT CONFIRMED/);
    key(fd, 0);
    // The person saw "confirmed": it is on disk already, held (not to be sent before the window ends).
    const [held] = outboxRecords(cfg.outbox.path);
    expect(held).toMatchObject({ state: 'held', heldFor: 'cancel_window', alert: { test: false } });
    child.kill('SIGKILL');
    await finished(child);
    closeSync(fd);
    expect(emulator.triggers()).toHaveLength(0);

    child = spawnCli(['run', '--config', file]);
    const exit = finished(child);
    // Not cancelled before the power went: sent at the next start, with the location of the press.
    await waitForOutput(child, /ALERT RECEIVED/);
    child.kill('SIGTERM');
    const r = await exit;
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toContain('was in its cancel window, not cancelled: sending it now');
    expect(emulator.triggers()).toHaveLength(1);
    expect(outboxRecords(cfg.outbox.path).map((rec) => [rec.alertId, rec.state, rec.apiId, rec.alert.location])).toEqual([
      [held!.alertId, 'delivered', emulator.triggers()[0]!.id, held!.alert.location],
    ]);
  });

  it('SIGTERM during the cancel window sends the confirmed alert rather than losing it', async () => {
    const { fifo, cfg, file } = setup({ cancel_window_s: 30 });
    const { exit } = await armed((child = spawnCli(['run', '--config', file])));
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

  // A gpsd that accepts and says nothing (no fix yet) until told to send one TPV to every client, now and later.
  async function silentGpsd(): Promise<{ port: number; sendFix: () => void; close: () => Promise<void> }> {
    const tpv = `${JSON.stringify({ class: 'TPV', mode: 3, time: new Date().toISOString(), lat: 44.97997, lon: -93.26384, alt: 250, eph: 8 })}\n`;
    const sockets = new Set<Socket>();
    let fixing = false;
    const server: Server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
      if (fixing) sock.write(tpv);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as AddressInfo).port,
      sendFix: () => {
        fixing = true;
        for (const sock of sockets) sock.write(tpv);
      },
      close: () =>
        new Promise<void>((r) => {
          for (const sock of sockets) sock.destroy();
          server.close(() => r());
        }),
    };
  }

  it.each(['SIGKILL', 'SIGTERM'] as const)('no location yet: the press is held, survives a %s, and goes out once with the first fix after the restart', async (signal) => {
    const gpsd = await silentGpsd();
    try {
      const { fifo, cfg, file } = setup({ cancel_window_s: 1 }, {}, true, { gps: { source: 'gpsd', host: '127.0.0.1', port: gpsd.port } });
      await armed((child = spawnCli(['run', '--config', file])));
      const fd = openSync(fifo, 'w');
      key(fd, 1);
      await waitForOutput(child, /ALERT CONFIRMED/);
      key(fd, 0);
      await waitForOutput(child, /WAITING FOR LOCATION/);
      const [held] = outboxRecords(cfg.outbox.path);
      expect(held).toMatchObject({ state: 'held', heldFor: 'location', alert: { location: null } });
      const first = finished(child);
      child.kill(signal);
      const end = await first;
      closeSync(fd);
      if (signal === 'SIGTERM') {
        expect(end.code).toBe(0);
        expect(end.stdout + end.stderr).toContain('the alert stays committed in the outbox and goes out with the first fix after the next start');
      }
      expect(emulator.triggers()).toHaveLength(0);
      expect(outboxRecords(cfg.outbox.path).map((r) => [r.state, r.heldFor])).toEqual([['held', 'location']]);

      const { exit } = await armed((child = spawnCli(['run', '--config', file])));
      expect(emulator.triggers()).toHaveLength(0);
      gpsd.sendFix();
      await waitForOutput(child, /ALERT RECEIVED/);
      child.kill('SIGTERM');
      expect((await exit).code).toBe(0);
      const triggers = emulator.triggers();
      expect(triggers).toHaveLength(1);
      expect(triggers[0]!.variables).toMatchObject({ location: { latitude: '44.979970', longitude: '-93.263840' } });
      const [sent] = outboxRecords(cfg.outbox.path);
      expect(sent).toMatchObject({ alertId: held!.alertId, createdAt: held!.createdAt, state: 'delivered', apiId: triggers[0]!.id, heldFor: 'location' });
      expect(sent!.alert.location).toMatchObject({ latitude: 44.97997, longitude: -93.26384, source: 'gpsd', stale: false });
    } finally {
      await gpsd.close();
    }
  });

  it('after a crash, a press while the earlier alert is still being sent (however old) is recorded against it, not a second call', async () => {
    emulator.addFault({ target: 'trigger', times: 1000, status: 503 });
    const { fifo, cfg, file } = setup({ cancel_window_s: 0, incident_active_s: 0 }, { max_backoff_s: 1 }, false);
    await armed((child = spawnCli(['run', '--config', file])));
    let fd = openSync(fifo, 'w');
    key(fd, 1);
    await waitForOutput(child, /"msg":"alert queued"/);
    key(fd, 0);
    closeSync(fd);
    await waitForOutput(child, /will retry/);
    child.kill('SIGKILL');
    await finished(child);

    const { exit } = await armed((child = spawnCli(['run', '--config', file])));
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
