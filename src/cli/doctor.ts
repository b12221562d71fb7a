import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AgentConfig } from '../config/agent-schema.ts';
import { createButtonSource } from '../button/create.ts';
import { createGpsSource } from '../gps/create.ts';
import { FixTracker } from '../gps/fix-tracker.ts';
import { probeLedWritable, probeOutboxWritable, probeReadable, probeTcp } from '../app/health-probes.ts';
import { probeApiToken, probeBroker } from '../app/health-remote.ts';
import type { CheckResult } from '../app/supervisor.ts';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { systemClock } from '../shared/clock.ts';
import { ConfigError, errorMessage } from '../shared/errors.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { configPath, loadAgentConfig } from './common.ts';
import { ExitCode, writeLine, type Command, type CommandIo } from './io.ts';

const HELP = `usage: sos-agent doctor [--config FILE] [--json] [--press-timeout S] [--gps-timeout S] [--no-press] [--verbose]

Checks, part by part, that a press of the SOS button would get through, and prints a table:
config, GPS source and fix, button device and a real press, API token and clock skew, broker (relay
routes), outbox, LED and buzzer. Exit 0 when nothing failed (warnings allowed), 1 on any failure,
2 on a bad configuration. Nothing is sent: a token request is not an alert.

  --config FILE       agent configuration (default: SOS_AGENT_CONFIG or /etc/sos-agent/agent.yaml)
  --json              one JSON object on stdout instead of the table
  --press-timeout S   how long to wait for the button press (default 30)
  --gps-timeout S     how long to wait for a fix (default 8)
  --no-press          do not ask for a press (the device is still checked)
  --verbose           the parts' own log lines on stderr`;

export type DoctorStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface DoctorRow {
  name: string;
  status: DoctorStatus;
  detail: string;
  /** How long the check took. */
  ms: number;
}

interface Options {
  pressTimeoutMs: number | null;
  gpsTimeoutMs: number;
  prompt: NodeJS.WritableStream;
  logger: Logger;
  env: NodeJS.ProcessEnv;
}

/** Longest a part may take to stop once its check is done; a hung stop must not hang the doctor. */
const STOP_MS = 2000;
const BROKER_TIMEOUT_MS = 10_000;
const GPS_CONNECT_TIMEOUT_MS = 3000;

const row = (name: string, r: CheckResult, ms: number): DoctorRow => ({ name, status: !r.ok ? 'fail' : r.warn ? 'warn' : 'ok', detail: r.detail, ms });
const skip = (name: string, detail: string): DoctorRow => ({ name, status: 'skip', detail, ms: 0 });

/**
 * A deadline on a real, ref'd timer, on purpose: the doctor is a short command, and some parts (evdev, the
 * clock's timers) hold nothing that keeps the process alive while we wait for them.
 */
function within<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => resolve(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

async function stopQuietly(stop: () => Promise<void>): Promise<void> {
  await within(stop().catch(() => undefined), STOP_MS, () => undefined);
}

/** Runs one named check with its own deadline; a throw or a timeout is that check's failure, never the doctor's. */
async function timed(name: string, ms: number, fn: () => Promise<CheckResult> | CheckResult): Promise<DoctorRow> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const r = await within(Promise.resolve().then(fn), ms, () => ({ ok: false, detail: `no answer within ${Math.round(ms / 1000)} s` }));
    return row(name, r, elapsed());
  } catch (e) {
    return row(name, { ok: false, detail: `check failed: ${errorMessage(e)}` }, elapsed());
  }
}

// --- GPS -----------------------------------------------------------------------------------------------------

function gpsSourceProbe(gps: AgentConfig['gps']): Promise<CheckResult> | CheckResult {
  switch (gps.source) {
    case 'static':
      return { ok: true, detail: `static location ${gps.latitude}, ${gps.longitude} ±${gps.uncertainty_m} m (no receiver)` };
    case 'gpsd':
      return probeTcp(gps.host, gps.port, GPS_CONNECT_TIMEOUT_MS, 'gpsd');
    case 'nmea':
      return probeReadable(gps.device, 'serial device');
    case 'replay':
      return probeReadable(gps.file, 'replay log');
  }
}

async function gpsFix(config: AgentConfig, o: Options): Promise<CheckResult> {
  const gps = config.gps;
  const maxAgeMs = gps.max_age_s * 1000;
  const tracker = new FixTracker({ maxAgeMs, fallback: gps.fallback, clock: systemClock });
  const source = createGpsSource(gps, { clock: systemClock, logger: o.logger });
  let fixes = 0;
  // Only a fix from the receiver ends the wait: the fallback is not what is being checked.
  const first = new Promise<void>((resolve) =>
    source.onFix((fix) => {
      tracker.update(fix);
      fixes++;
      resolve();
    }),
  );
  try {
    await source.start();
    await within(first, o.gpsTimeoutMs, () => undefined);
  } finally {
    await stopQuietly(() => source.stop());
  }
  const snap = tracker.snapshot();
  const fallback = gps.fallback ? `; alerts would carry the static fallback (±${gps.fallback.uncertainty_m} m)` : '';
  if (fixes === 0 || snap === null || snap.source === 'fallback') {
    const none = `no fix within ${Math.round(o.gpsTimeoutMs / 1000)} s (${source.stats().received} reports received)`;
    return gps.fallback ? { ok: true, warn: true, detail: none + fallback } : { ok: false, detail: none };
  }
  const where = `${snap.latitude.toFixed(6)}, ${snap.longitude.toFixed(6)} ±${Math.round(snap.uncertainty_m)} m, ${Math.round(snap.age_ms / 1000)} s old (${snap.source})`;
  if (snap.stale) {
    const detail = `fix is stale: ${where}; stale after ${gps.max_age_s} s`;
    return gps.fallback ? { ok: true, warn: true, detail: detail + fallback } : { ok: false, detail };
  }
  return { ok: true, detail: `fix ${where}` };
}

async function checkGps(config: AgentConfig, o: Options): Promise<DoctorRow[]> {
  const source = await timed('gps_source', GPS_CONNECT_TIMEOUT_MS + 1000, () => gpsSourceProbe(config.gps));
  if (source.status === 'fail') {
    const detail = config.gps.fallback ? 'no fix: the source is unreachable; alerts would carry the static fallback' : 'no fix: the source is unreachable';
    return [source, { name: 'gps_fix', status: config.gps.fallback ? 'warn' : 'fail', detail, ms: 0 }];
  }
  return [source, await timed('gps_fix', o.gpsTimeoutMs + STOP_MS + 1000, () => gpsFix(config, o))];
}

// --- button --------------------------------------------------------------------------------------------------

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  const dirs = command.includes('/') ? [''] : (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter);
  return dirs.some((d) => {
    try {
      accessSync(d ? join(d, command) : command, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function buttonDeviceProbe(config: AgentConfig, env: NodeJS.ProcessEnv): CheckResult | null {
  const b = config.button;
  switch (b.source) {
    case 'terminal':
      return null;
    case 'evdev':
      return probeReadable(b.device, 'input device');
    case 'gpiomon': {
      if (!onPath(b.command, env)) return { ok: false, detail: `${b.command} not found: install gpiod (apt install gpiod)` };
      const chip = /^gpiochip\d+$/.test(b.chip) ? `/dev/${b.chip}` : b.chip.startsWith('/') ? b.chip : null;
      if (chip) {
        const r = probeReadable(chip, 'GPIO chip');
        if (!r.ok) return r;
      }
      return { ok: true, detail: `${b.command} found; ${b.chip} line ${b.line} (${b.active_low ? 'active low' : 'active high'})` };
    }
  }
}

async function buttonPress(config: AgentConfig, o: Options, timeoutMs: number): Promise<CheckResult> {
  const source = createButtonSource(config.button, { clock: systemClock, logger: o.logger, env: o.env });
  const started = performance.now();
  const pressed = new Promise<number>((resolve) =>
    source.onEvent((e) => {
      if (e.kind === 'down') resolve(performance.now() - started);
    }),
  );
  const s = Math.round(timeoutMs / 1000);
  writeLine(o.prompt, `doctor: press the SOS button once, briefly, within ${s} s (a running agent sees this press too: do not hold it)`);
  try {
    await source.start();
    const after = await within(pressed, timeoutMs, () => null);
    if (after === null) {
      const status = source.status?.();
      const why = status === 'unavailable' ? `; the ${source.kind} source is unavailable (device gone, busy, or unreadable)` : '';
      return { ok: false, detail: `no press seen within ${s} s${why}` };
    }
    return { ok: true, detail: `press seen after ${(after / 1000).toFixed(1)} s (${source.kind})` };
  } finally {
    await stopQuietly(() => source.stop());
  }
}

async function checkButton(config: AgentConfig, o: Options): Promise<DoctorRow[]> {
  const device = buttonDeviceProbe(config, o.env);
  if (device === null) {
    const why = 'terminal button (keyboard, for the demo): no device to check; a real installation uses evdev or gpiomon';
    return [{ name: 'button_device', status: 'warn', detail: why, ms: 0 }, skip('button_press', 'terminal button')];
  }
  const deviceRow = row('button_device', device, 0);
  if (o.pressTimeoutMs === null) return [deviceRow, skip('button_press', 'skipped (--no-press)')];
  if (!device.ok) return [deviceRow, skip('button_press', 'the device cannot be read')];
  const timeout = o.pressTimeoutMs;
  return [deviceRow, await timed('button_press', timeout + STOP_MS + 1000, () => buttonPress(config, o, timeout))];
}

// --- API, broker ---------------------------------------------------------------------------------------------

const DIRECT_ROUTES = new Set(['direct', 'relay_then_direct', 'direct_then_relay']);

async function checkApi(config: AgentConfig, o: Options): Promise<DoctorRow[]> {
  const { client_id: clientId, client_secret: clientSecret } = config.api;
  if (!clientId || !clientSecret) {
    if (DIRECT_ROUTES.has(config.route)) {
      const r = { ok: false, detail: `route ${config.route} sends to the API directly, but api.client_id or the client secret (SOS_API_CLIENT_SECRET) is not set` };
      return [row('api_token', r, 0), skip('clock_skew', 'no token')];
    }
    return [skip('api_token', `route ${config.route}: the bridge holds the API credentials`), skip('clock_skew', 'no token')];
  }
  const budget = config.api.connect_timeout_ms + config.api.response_timeout_ms + 2000;
  const found: { skew: CheckResult | null } = { skew: null };
  const token = await timed('api_token', budget, async () => {
    const probe = await probeApiToken(config.api, { clientId, clientSecret }, systemClock, o.logger.child({ part: 'api' }));
    found.skew = probe.skew;
    return probe.token;
  });
  const skew = token.status === 'fail' ? null : found.skew;
  const skewRow = skew === null ? skip('clock_skew', token.status === 'ok' ? 'the token has no issued_at' : 'no token') : row('clock_skew', skew, 0);
  return [token, skewRow];
}

async function checkRelay(config: AgentConfig): Promise<DoctorRow[]> {
  const relay = config.relay;
  if (config.route === 'direct' || relay === null) {
    return [skip('broker', `route ${config.route}: no broker`), skip('bridge', `route ${config.route}: no bridge`)];
  }
  const broker = await timed('broker', BROKER_TIMEOUT_MS + 1000, () => probeBroker(relay, config.device.id, BROKER_TIMEOUT_MS, systemClock));
  // The bridge says nothing about itself on the broker, and the device may only publish alerts: the one way to
  // reach it end to end is an alert, which only a person may start.
  const bridge = skip('bridge', 'the bridge publishes no presence, and only an alert reaches it: test end to end with `sos-agent trigger --test`');
  return [broker, bridge];
}

// --- outbox, LEDs --------------------------------------------------------------------------------------------

function outboxDepth(path: string): string {
  const store = new SqliteOutboxStore({ path, readOnly: true, create: false, moveAsideCorrupt: false, busyTimeoutMs: 2000 });
  try {
    store.open();
    const depth = store.depth();
    const oldest = store.oldestPendingAt();
    if (depth === 0) return 'no alerts waiting';
    const age = oldest === undefined ? '' : `, oldest pressed ${Math.round((Date.now() - oldest) / 60_000)} min ago`;
    return `${depth} alert(s) waiting${age} (sos-agent outbox list)`;
  } finally {
    store.close();
  }
}

function checkOutbox(config: AgentConfig): CheckResult {
  const path = config.outbox.path;
  const writable = probeOutboxWritable(path);
  if (!writable.ok) return writable;
  let depth: string;
  try {
    depth = outboxDepth(path);
  } catch (e) {
    // No file yet is normal before the first start; anything else is worth a look.
    if ((e as { reason?: string }).reason === 'missing') return writable;
    return { ok: false, detail: `${path}: ${errorMessage(e)}` };
  }
  const waiting = !depth.startsWith('no alerts');
  return { ok: true, warn: writable.warn === true || waiting, detail: `${writable.detail}; ${depth}` };
}

function checkLeds(config: AgentConfig): DoctorRow[] {
  const f = config.feedback;
  return (['led', 'buzzer'] as const).map((role) => {
    const name = f[role];
    if (name === null) return skip(role, `feedback.${role} not configured`);
    return row(role, probeLedWritable(f.leds_root, name), 0);
  });
}

// --- the command ---------------------------------------------------------------------------------------------

/** Every check but config; rows come back in a fixed order whatever order they finish in. */
export async function runChecks(config: AgentConfig, o: Options): Promise<DoctorRow[]> {
  const groups = await Promise.all([
    checkGps(config, o),
    checkButton(config, o),
    checkApi(config, o),
    checkRelay(config),
    timed('outbox', 5000, () => checkOutbox(config)).then((r) => [r]),
    Promise.resolve(checkLeds(config)),
  ]);
  return groups.flat();
}

/** Seconds from an option, as ms; null when the value is not a sane number of seconds. */
function seconds(value: string | undefined, fallbackS: number): number | null {
  if (value === undefined) return fallbackS * 1000;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 && n <= 3600 ? n * 1000 : null;
}

function table(rows: DoctorRow[]): string {
  const label: Record<DoctorStatus, string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' };
  const w = Math.max(5, ...rows.map((r) => r.name.length));
  const lines = [`${'CHECK'.padEnd(w)}  RESULT  DETAIL`];
  for (const r of rows) lines.push(`${r.name.padEnd(w)}  ${label[r.status].padEnd(6)}  ${r.detail}`);
  return lines.join('\n');
}

function summary(rows: DoctorRow[]): string {
  const fails = rows.filter((r) => r.status === 'fail').length;
  const warns = rows.filter((r) => r.status === 'warn').length;
  const w = warns > 0 ? `, ${warns} warning(s)` : '';
  return fails > 0 ? `${fails} check(s) FAILED${w}: a press may not get through` : `no failures${w}: a press would get through`;
}

function report(io: CommandIo, json: boolean, file: string, rows: DoctorRow[]): number {
  const ok = rows.every((r) => r.status !== 'fail');
  if (json) writeLine(io.stdout, JSON.stringify({ ok, config: file, checks: rows }));
  else writeLine(io.stdout, `${table(rows)}\n\n${summary(rows)}`);
  return ok ? ExitCode.OK : ExitCode.FAILURE;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean' },
      'press-timeout': { type: 'string' },
      'gps-timeout': { type: 'string' },
      'no-press': { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

export const command: Command = async (argv, io) => {
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (e) {
    writeLine(io.stderr, `doctor: ${errorMessage(e)}\n${HELP}`);
    return ExitCode.USAGE;
  }
  if (values.help) {
    writeLine(io.stdout, HELP);
    return ExitCode.OK;
  }
  const json = values.json === true;
  const pressTimeoutMs = seconds(values['press-timeout'], 30);
  const gpsTimeoutMs = seconds(values['gps-timeout'], 8);
  if (pressTimeoutMs === null || gpsTimeoutMs === null) {
    const flag = pressTimeoutMs === null ? '--press-timeout' : '--gps-timeout';
    writeLine(io.stderr, `doctor: ${flag} expects seconds, more than 0 and at most 3600\n${HELP}`);
    return ExitCode.USAGE;
  }
  const file = configPath(values.config, io);
  let config: AgentConfig;
  try {
    config = await loadAgentConfig(file, io);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (json) writeLine(io.stdout, JSON.stringify({ ok: false, config: file, checks: [{ name: 'config', status: 'fail', detail: e.message, ms: 0 }] }));
    writeLine(io.stderr, e.message);
    return ExitCode.USAGE;
  }
  const logger = values.verbose ? createLogger({ level: config.log.level, destination: io.stderr }) : createLogger({ level: 'silent', destination: io.stderr });
  const rows: DoctorRow[] = [{ name: 'config', status: 'ok', detail: `${file}: valid (device ${config.device.id}, route ${config.route})`, ms: 0 }];
  rows.push(...(await runChecks(config, { pressTimeoutMs: values['no-press'] ? null : pressTimeoutMs, gpsTimeoutMs, prompt: io.stderr, logger, env: io.env })));
  return report(io, json, file, rows);
};
