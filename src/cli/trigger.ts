import { parseArgs } from 'node:util';
import { buildWays } from '../app/routes.ts';
import { locateOnce } from '../app/locate.ts';
import { createAlert } from '../incident/alert.ts';
import { Outbox, type OutboxEvent } from '../outbox/outbox.ts';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { commandLineInitiation } from '../press/initiation.ts';
import { systemClock } from '../shared/clock.ts';
import { errorMessage, isSosError } from '../shared/errors.ts';
import { commandLogger, configPath, loadAgentConfig } from './common.ts';
import { ExitCode, writeLine, type Command } from './io.ts';

const HELP = `usage: sos-agent trigger [--config FILE] [--test] [--attempts N] [--timeout S] [--verbose]

Sends one alert now. You, at this terminal, are the person starting it: run it only to test an
installation, with --test (the test callflow) unless a real emergency call is meant.
The alert goes through the outbox like a button press: if it cannot be delivered in time it stays
queued there, and a running agent keeps trying.
Prints the API's id. Exit 0 delivered, 2 bad config, 3 rejected by the API, 4 not delivered yet.`;

export const command: Command = async (argv, io) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      test: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '20' },
      attempts: { type: 'string', default: '3' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    writeLine(io.stdout, HELP);
    return ExitCode.OK;
  }
  const timeoutMs = Number(values.timeout) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    writeLine(io.stderr, `trigger: --timeout must be a positive number of seconds, got "${values.timeout}"`);
    return ExitCode.USAGE;
  }
  const attempts = Number(values.attempts);
  if (!Number.isInteger(attempts) || attempts < 1) {
    writeLine(io.stderr, `trigger: --attempts must be a whole number ≥ 1, got "${values.attempts}"`);
    return ExitCode.USAGE;
  }
  const config = await loadAgentConfig(configPath(values.config, io), io);
  const clock = systemClock;
  const logger = commandLogger(io, values.verbose ? 'debug' : 'warn');
  // The command itself is the human initiation: made before anything else can fail or wait.
  const initiation = commandLineInitiation(clock.now(), values.test);
  if (values.test && config.callflow.test_name === null) {
    writeLine(io.stderr, 'trigger --test: no test callflow configured (callflow.test_name)');
    return ExitCode.USAGE;
  }

  const location = await locateOnce(config, { clock, logger }, Math.min(timeoutMs, 10_000));
  if (!location) {
    writeLine(io.stderr, 'trigger: no location (no GPS fix and no gps.fallback configured); nothing was sent');
    return ExitCode.UNDELIVERED;
  }
  const alert = createAlert(initiation, location, {
    deviceId: config.device.id,
    caller: config.caller,
    vehicle: config.vehicle,
    callflow: config.callflow,
  });

  let ways;
  try {
    ways = await buildWays(config, { clock, logger });
  } catch (e) {
    writeLine(io.stderr, `trigger: ${errorMessage(e)}`);
    return ExitCode.USAGE;
  }
  const store = new SqliteOutboxStore({ path: config.outbox.path, logger });
  // A few short retries: an installer is waiting at the terminal.
  const outbox = new Outbox({ store, route: ways.route, clock, logger, maxBackoffMs: 2000, baseBackoffMs: 250, alertMaxAgeMs: config.outbox.alert_max_age_s * 1000 });

  let failures = 0;
  const outcome = new Promise<OutboxEvent | 'timeout'>((resolve) => {
    outbox.onChange((e) => {
      if (e.alertId !== alert.alertId) return;
      if (e.state === 'delivered' || e.state === 'rejected') resolve(e);
      else if (e.state === 'retrying') {
        failures++;
        writeLine(io.stderr, `trigger: attempt ${failures} failed (${e.error?.code ?? 'error'}: ${e.error?.message ?? ''})${failures < attempts ? '; retrying' : ''}`);
        if (failures >= attempts) resolve('timeout');
      }
    });
  });
  const timeout = new Promise<'timeout'>((resolve) => clock.setTimeout(() => resolve('timeout'), timeoutMs));
  try {
    await ways.start();
    await outbox.start();
    const { durable } = await outbox.enqueue(alert);
    writeLine(io.stderr, `trigger: alert ${alert.alertId} ${durable ? 'committed to the outbox' : 'held in memory (outbox file unavailable)'}; sending ${alert.test ? 'a TEST alert' : 'an ALERT'} via ${ways.route.name} to ${alert.callflow}`);
    const result = await Promise.race([outcome, timeout, io.stopSignal.then(() => 'timeout' as const)]);
    if (result === 'timeout') {
      writeLine(io.stderr, `trigger: not delivered (${failures} failed attempts, ${values.timeout} s at most); alert ${alert.alertId} stays queued in ${config.outbox.path} and a running agent will keep trying`);
      return ExitCode.UNDELIVERED;
    }
    if (result.state === 'delivered') {
      writeLine(io.stdout, result.apiId ?? '');
      writeLine(io.stderr, `trigger: delivered; the API's id is ${result.apiId}`);
      return ExitCode.OK;
    }
    writeLine(io.stderr, `trigger: rejected by the API (${result.error?.code}): ${result.error?.message}`);
    return ExitCode.REJECTED;
  } catch (e) {
    writeLine(io.stderr, `trigger: ${isSosError(e) ? `${e.code}: ` : ''}${errorMessage(e)}`);
    return ExitCode.UNDELIVERED;
  } finally {
    await outbox.stop();
    await ways.stop();
  }
};
