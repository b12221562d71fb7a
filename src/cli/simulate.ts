import { parseArgs } from 'node:util';
import { ExitCode, writeLine, type Command } from './io.ts';
import { createLogger, silentLogger } from '../shared/logger.ts';
import { systemClock } from '../shared/clock.ts';
import { errorMessage } from '../shared/errors.ts';
import { SimulatedFleet, type FleetProgress } from '../sim/fleet.ts';

const USAGE = `usage: sos-agent simulate --devices N --broker URL [options]

Simulates a fleet of devices against a broker and bridge: each device has its own client id
(PREFIX-0001 ...), a retained presence, a moving GPS track, and sends scripted presses through the
same relay code a real device runs. Every simulated alert is a TEST alert (test callflow): a simulator
can never start a real 9-1-1 flow. The bridge's device registry must list the simulated ids.

  --devices N         how many devices (required)
  --broker URL        mqtt:// or mqtts:// URL of the broker (required)
  --alerts M          scripted presses in total, round-robin over the devices (default 0: presence only,
                      until stopped)
  --rate R            presses per second (default 0: as fast as they are answered)
  --prefix P          client id prefix (default sim)
  --password S        per-device password (username = device id); default: $SOS_SIM_PASSWORD, else none
  --ack-timeout S     seconds to wait for "triggered" before a retry (default 15)
  --verbose           log JSON to stdout
  --help              this text

Prints a progress line on stderr. Exit codes: 0 every alert triggered, 3 some rejected, 4 some undelivered,
2 bad arguments.`;

function positiveInt(name: string, value: string | undefined, fallback: number | null, min = 1): number {
  if (value === undefined) {
    if (fallback === null) throw new Error(`--${name} is required`);
    return fallback;
  }
  if (!/^\d+$/.test(value) || Number(value) < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got "${value}"`);
  return Number(value);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function progressLine(p: FleetProgress, total: number): string {
  const sorted = [...p.latenciesMs].sort((a, b) => a - b);
  const pending = p.alerts - p.triggered - p.rejected - p.undelivered;
  const alerts = total > 0 ? ` · alerts ${p.alerts}/${total}: ${p.triggered} triggered, ${p.rejected} rejected, ${p.undelivered} undelivered, ${pending} pending` : '';
  const lat = sorted.length > 0 ? ` · p50 ${percentile(sorted, 50).toFixed(0)} ms · p99 ${percentile(sorted, 99).toFixed(0)} ms` : '';
  return `devices ${p.online}/${p.devices} online${alerts}${lat}`;
}

export const command: Command = async (argv, io) => {
  let devices: number;
  let alerts: number;
  let rate: number;
  let ackTimeoutS: number;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        devices: { type: 'string' },
        broker: { type: 'string' },
        alerts: { type: 'string' },
        rate: { type: 'string' },
        prefix: { type: 'string' },
        password: { type: 'string' },
        'ack-timeout': { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      writeLine(io.stdout, USAGE);
      return ExitCode.OK;
    }
    devices = positiveInt('devices', values.devices as string | undefined, null);
    alerts = positiveInt('alerts', values.alerts as string | undefined, 0, 0);
    rate = positiveInt('rate', values.rate as string | undefined, 0, 0);
    ackTimeoutS = positiveInt('ack-timeout', values['ack-timeout'] as string | undefined, 15);
    if (typeof values.broker !== 'string') throw new Error('--broker URL is required');
    const protocol = new URL(values.broker).protocol;
    if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(protocol)) throw new Error(`--broker must be an mqtt(s):// or ws(s):// URL, got ${protocol}`);
    if (typeof values.prefix === 'string' && !/^[A-Za-z0-9_-]{1,50}$/.test(values.prefix)) throw new Error('--prefix: letters, digits, "_" and "-" only');
  } catch (e) {
    writeLine(io.stderr, `simulate: ${errorMessage(e)}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }

  const logger = values.verbose ? createLogger({ level: 'info', destination: io.stdout === process.stdout ? 1 : io.stdout, name: 'sos-sim' }) : silentLogger();
  const fleet = new SimulatedFleet({
    devices,
    brokerUrl: values.broker as string,
    prefix: (values.prefix as string | undefined) ?? 'sim',
    password: (values.password as string | undefined) ?? io.env.SOS_SIM_PASSWORD,
    ackTimeoutMs: ackTimeoutS * 1000,
    clock: systemClock,
    logger,
  });
  const show = (): void => {
    io.stderr.write(`\r${progressLine(fleet.progress(), alerts)}\u001b[K`);
  };
  const ticker = setInterval(show, 500);
  let stopped = false;
  void io.stopSignal.then(() => (stopped = true));
  try {
    const connected = fleet.start();
    await Promise.race([connected, io.stopSignal]);
    if (!stopped && alerts > 0) {
      await Promise.race([fleet.sendAlerts(alerts, rate), io.stopSignal]);
    } else if (!stopped) {
      await io.stopSignal;
    }
  } finally {
    clearInterval(ticker);
    show();
    io.stderr.write('\n');
    await fleet.stop();
  }
  const p = fleet.progress();
  if (alerts === 0) return ExitCode.OK;
  if (p.rejected > 0) return ExitCode.REJECTED;
  if (p.triggered < alerts) return ExitCode.UNDELIVERED;
  return ExitCode.OK;
};
