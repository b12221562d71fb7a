import { closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DoctorRow } from '../../src/cli/doctor.ts';
import type { AgentConfigInput } from '../../src/config/agent-schema.ts';
import { EmbeddedBroker } from '../../src/bridge/embedded-broker.ts';
import { EV_KEY, EV_SYN, KEY_SOS, SYN_REPORT, packInputEvent } from '../../src/button/input-event.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { systemClock, type Clock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { runCli, type CliRun } from '../support/cli.ts';
import { sharedFixtures } from '../support/fixtures.ts';
import { haveTool } from '../support/tools.ts';
import { startEmulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/emulator.ts';

const ALL_CHECKS = ['config', 'gps_source', 'gps_fix', 'button_device', 'button_press', 'api_token', 'clock_skew', 'broker', 'bridge', 'outbox', 'led', 'buzzer'];

let emulator: Emulator;
let dir: string;

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator.stop();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sos-doctor-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** An LED class device as the kernel shows it, in a temp folder. */
function ledFolder(name: string): string {
  const root = join(dir, 'leds');
  mkdirSync(join(root, name), { recursive: true });
  writeFileSync(join(root, name, 'brightness'), '0\n');
  writeFileSync(join(root, name, 'max_brightness'), '255\n');
  writeFileSync(join(root, name, 'trigger'), '[none] timer heartbeat default-on\n');
  return root;
}

/** A healthy installation: emulator API, static GPS, an evdev button (a FIFO), a temp outbox, an LED and a buzzer. */
function healthyConfig(overrides: Partial<AgentConfigInput> = {}): AgentConfigInput {
  const button = join(dir, 'event0');
  execFileSync('mkfifo', [button]);
  return {
    device: { id: 'truck-042' },
    caller: { full_name: 'Joe User', phone_number: '6615555555' },
    api: { base_url: emulator.url, client_id: TEST_CLIENT_ID },
    gps: { source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 },
    button: { source: 'evdev', device: button, layout: '64' },
    feedback: { leds_root: ledFolder('sos'), led: 'sos', buzzer: 'sos', terminal: false },
    outbox: { path: join(dir, 'state', 'outbox.db') },
    ...overrides,
  };
}

function writeConfig(config: AgentConfigInput | Record<string, unknown>): string {
  const file = join(dir, 'agent.yaml');
  // JSON is YAML.
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const ENV = { SOS_API_CLIENT_SECRET: TEST_CLIENT_SECRET };

async function doctorJson(config: AgentConfigInput, args: string[] = ['--no-press'], env: NodeJS.ProcessEnv = ENV): Promise<CliRun & { rows: Record<string, DoctorRow>; json: { ok: boolean; checks: DoctorRow[] } }> {
  const run = await runCli(['doctor', '--config', writeConfig(config), '--json', ...args], { env });
  const json = JSON.parse(run.stdout) as { ok: boolean; checks: DoctorRow[] };
  return { ...run, json, rows: Object.fromEntries(json.checks.map((c) => [c.name, c])) };
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Resolves once something accepts connections on the port (gpsfake starts gpsd in the background). */
async function listening(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(true));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    // Readiness poll of an external daemon that announces nothing when it is ready.
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sos-agent doctor', () => {
  it('passes a healthy installation: every check ok or skipped, exit 0, a readable table', async () => {
    const run = await runCli(['doctor', '--config', writeConfig(healthyConfig()), '--no-press'], { env: ENV });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^CHECK\s+RESULT\s+DETAIL$/);
    const status = (name: string) => lines.find((l) => l.startsWith(`${name} `))?.split(/\s+/)[1];
    for (const name of ['config', 'gps_source', 'gps_fix', 'button_device', 'api_token', 'clock_skew', 'outbox', 'led', 'buzzer']) expect(status(name), name).toBe('ok');
    for (const name of ['button_press', 'broker', 'bridge']) expect(status(name), name).toBe('skip');
    expect(run.stdout).toMatch(/no failures: a press would get through/);
    expect(run.stdout).toMatch(/gps_fix\s+ok\s+fix 39\.285270, -76\.612470 ±7 m/);
    expect(run.stdout).toMatch(/api_token\s+ok\s+token from http:\/\/127\.0\.0\.1:\d+ in \d+ ms/);
    expect(run.stdout).toMatch(/outbox\s+ok\s+no outbox yet; .* is writable/);
    // Nothing was triggered: a token request is not an alert.
    expect(emulator.triggers()).toHaveLength(0);
  });

  it('--json prints one object listing every check, in a fixed order', async () => {
    const { code, json } = await doctorJson(healthyConfig());
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.checks.map((c) => c.name)).toEqual(ALL_CHECKS);
    for (const c of json.checks) {
      expect(['ok', 'warn', 'fail', 'skip']).toContain(c.status);
      expect(typeof c.detail).toBe('string');
      expect(typeof c.ms).toBe('number');
    }
  });

  it('fails the token check on a wrong client secret, says what to fix, never prints the secret, exit 1', async () => {
    const secret = 'wrong-secret-do-not-print';
    const { code, rows, stdout, stderr } = await doctorJson(healthyConfig(), ['--no-press'], { SOS_API_CLIENT_SECRET: secret });
    expect(code).toBe(1);
    expect(rows.api_token).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ERR_SOS_TOKEN_REJECTED.*check api\.client_id and the client secret/) as string });
    expect(rows.clock_skew?.status).toBe('skip');
    expect(stdout + stderr).not.toContain(secret);
  });

  it('warns when the device clock is far from the API\'s (token issued_at), without failing', async () => {
    const ahead: Clock = { ...systemClock, now: () => Date.now() - 120_000 };
    const skewed = await startEmulator({ clock: ahead });
    try {
      const { code, rows } = await doctorJson(healthyConfig({ api: { base_url: skewed.url, client_id: TEST_CLIENT_ID } }));
      expect(code).toBe(0);
      expect(rows.clock_skew).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^device clock 12\d s ahead of the API/) as string });
    } finally {
      await skewed.stop();
    }
  });

  it('fails the outbox check when the outbox directory cannot be written', async () => {
    writeFileSync(join(dir, 'not-a-dir'), '');
    const { code, rows } = await doctorJson(healthyConfig({ outbox: { path: join(dir, 'not-a-dir', 'outbox.db') } }));
    expect(code).toBe(1);
    expect(rows.outbox).toMatchObject({ status: 'fail', detail: expect.stringContaining('not-a-dir is not a directory') as string });
  });

  it('fails the outbox check where the state directory cannot be written (sysfs refuses even root)', async () => {
    const { code, rows } = await doctorJson(healthyConfig({ outbox: { path: '/sys/sos-agent-test/outbox.db' } }));
    expect(code).toBe(1);
    expect(rows.outbox).toMatchObject({ status: 'fail', detail: expect.stringMatching(/EACCES|EROFS|EPERM|ENOENT|0 KiB free/) as string });
  });

  it('checks an existing outbox with a rolled-back write, and warns about alerts still waiting', async () => {
    const { SqliteOutboxStore } = await import('../../src/outbox/sqlite-store.ts');
    const { makeAlert } = await import('../support/outbox-alerts.ts');
    const path = join(dir, 'outbox.db');
    const store = new SqliteOutboxStore({ path });
    store.open();
    store.insert(makeAlert(Date.now() - 120_000), Date.now());
    store.close();
    const { code, rows } = await doctorJson(healthyConfig({ outbox: { path } }));
    expect(code).toBe(0);
    expect(rows.outbox).toMatchObject({ status: 'warn', detail: expect.stringMatching(/outbox\.db writable; 1 alert\(s\) waiting, oldest pressed 2 min ago/) as string });
    const after = new SqliteOutboxStore({ path, readOnly: true });
    after.open();
    expect(after.depth()).toBe(1);
    after.close();
  });

  it('fails the GPS checks with a clear detail when gpsd is not listening', async () => {
    const port = await closedPort();
    const { code, rows } = await doctorJson(healthyConfig({ gps: { source: 'gpsd', host: '127.0.0.1', port } }));
    expect(code).toBe(1);
    expect(rows.gps_source).toMatchObject({ status: 'fail', detail: `gpsd at 127.0.0.1:${port}: ECONNREFUSED (is it running? systemctl status gpsd)` });
    expect(rows.gps_fix).toMatchObject({ status: 'fail', detail: 'no fix: the source is unreachable' });
  });

  it('only warns about a missing fix when a static fallback is configured', async () => {
    const port = await closedPort();
    const { code, rows } = await doctorJson(
      healthyConfig({ gps: { source: 'gpsd', host: '127.0.0.1', port, fallback: { latitude: 39.28, longitude: -76.61, uncertainty_m: 50 } } }),
    );
    expect(rows.gps_source?.status).toBe('fail');
    expect(rows.gps_fix).toMatchObject({ status: 'warn', detail: expect.stringContaining('static fallback') as string });
    expect(code).toBe(1);
  });

  it('fails the LED check when the LED class device is missing', async () => {
    const config = healthyConfig();
    const { code, rows } = await doctorJson({ ...config, feedback: { ...config.feedback, buzzer: 'buzzer' } });
    expect(code).toBe(1);
    expect(rows.led?.status).toBe('ok');
    expect(rows.buzzer).toMatchObject({ status: 'fail', detail: expect.stringContaining('buzzer does not exist') as string });
  });

  it('fails the button device check when the input device is missing', async () => {
    const { code, rows } = await doctorJson(healthyConfig({ button: { source: 'evdev', device: join(dir, 'no-such-event') } }));
    expect(code).toBe(1);
    expect(rows.button_device).toMatchObject({ status: 'fail', detail: expect.stringContaining('(ENOENT)') as string });
    expect(rows.button_press?.status).toBe('skip');
  });

  it('passes the press check when the button sends a press (evdev records through a FIFO)', async () => {
    const config = healthyConfig();
    const device = (config.button as { device: string }).device;
    // O_RDWR keeps the FIFO's buffer alive until the doctor opens it: the press is waiting there for it.
    const fd = openSync(device, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      const t = Date.now();
      const records = [
        packInputEvent({ timeMs: t, type: EV_KEY, code: KEY_SOS, value: 1 }, 24),
        packInputEvent({ timeMs: t, type: EV_SYN, code: SYN_REPORT, value: 0 }, 24),
        packInputEvent({ timeMs: t + 150, type: EV_KEY, code: KEY_SOS, value: 0 }, 24),
        packInputEvent({ timeMs: t + 150, type: EV_SYN, code: SYN_REPORT, value: 0 }, 24),
      ];
      writeSync(fd, Buffer.concat(records));
      const { code, rows, stderr } = await doctorJson(config, ['--press-timeout', '10']);
      expect(stderr).toMatch(/press the SOS button once, briefly, within 10 s/);
      expect(rows.button_press).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^press seen after \d+\.\d s \(evdev\)$/) as string });
      expect(code).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(emulator.triggers()).toHaveLength(0);
  });

  it('fails the press check when no press comes within --press-timeout', async () => {
    const { code, rows } = await doctorJson(healthyConfig(), ['--press-timeout', '1']);
    expect(code).toBe(1);
    expect(rows.button_press).toMatchObject({ status: 'fail', detail: 'no press seen within 1 s' });
  });

  it('checks the broker on a relay route, under its own client id', async () => {
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: silentLogger() });
    await broker.start();
    try {
      const { code, rows } = await doctorJson(healthyConfig({ route: 'relay', relay: { broker_url: broker.url }, api: {} }));
      expect(rows.broker).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^connected to mqtt:\/\/127\.0\.0\.1:\d+ as truck-042-doctor in \d+ ms$/) as string });
      expect(rows.bridge?.status).toBe('skip');
      expect(rows.api_token).toMatchObject({ status: 'skip', detail: 'route relay: the bridge holds the API credentials' });
      expect(code).toBe(0);
    } finally {
      await broker.stop();
    }
  });

  it('fails the broker check when the broker is not there', async () => {
    const port = await closedPort();
    const { code, rows } = await doctorJson(healthyConfig({ route: 'relay_then_direct', relay: { broker_url: `mqtt://127.0.0.1:${port}` } }));
    expect(code).toBe(1);
    expect(rows.broker).toMatchObject({ status: 'fail', detail: expect.stringContaining('ECONNREFUSED') as string });
    expect(rows.api_token?.status).toBe('ok');
  });

  it('fails a direct route with no API credentials', async () => {
    const { code, rows } = await doctorJson(healthyConfig(), ['--no-press'], {});
    expect(code).toBe(1);
    expect(rows.api_token).toMatchObject({ status: 'fail', detail: expect.stringContaining('SOS_API_CLIENT_SECRET') as string });
  });

  it('exits 2 on a bad configuration, naming the wrong field, like every command', async () => {
    const run = await runCli(['doctor', '--config', writeConfig({ device: { id: 'truck 42' }, gps: { source: 'static' } })], { env: ENV });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/device\.id/);
    expect(run.stderr).toMatch(/caller/);
  });

  it('exits 2 on a bad option', async () => {
    const run = await runCli(['doctor', '--press-timeout', 'soon', '--config', writeConfig(healthyConfig())], { env: ENV });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--press-timeout/);
  });

  const fixtures = sharedFixtures();
  it.runIf(fixtures !== null && haveTool('gpsfake'))('reports a real gpsd fix with its age and uncertainty (gpsfake)', async () => {
    const port = await closedPort();
    const log = join(fixtures!, 'gpsd', 'mt3339.log');
    const gpsfake: ChildProcess = spawn('gpsfake', ['-q', '-n', '-c', '0.05', '-P', String(port), log], { detached: true, stdio: 'ignore' });
    try {
      await listening(port, 10_000);
      const { code, rows } = await doctorJson(healthyConfig({ gps: { source: 'gpsd', host: '127.0.0.1', port } }), ['--no-press', '--gps-timeout', '10']);
      expect(rows.gps_source).toMatchObject({ status: 'ok', detail: `gpsd at 127.0.0.1:${port} accepts connections` });
      expect(rows.gps_fix).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^fix 44\.06\d+, -121\.31\d+ ±\d+ m, \d+ s old \(gpsd\)$/) as string });
      expect(code).toBe(0);
    } finally {
      if (gpsfake.pid) process.kill(-gpsfake.pid, 'SIGTERM');
    }
  });
});
