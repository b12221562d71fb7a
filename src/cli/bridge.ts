import { parseArgs } from 'node:util';
import { ExitCode, writeLine, type Command } from './io.ts';
import { bridgeConfigSchema, BRIDGE_ENV_SECRETS } from '../config/bridge-schema.ts';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../shared/logger.ts';
import { ConfigError, errorMessage } from '../shared/errors.ts';
import { Bridge } from '../bridge/bridge.ts';

const USAGE = `usage: sos-agent bridge --config FILE

Runs the cloud bridge: takes alerts from devices over MQTT (sos/v1/{deviceId}/alert), triggers each one
once on the Emergency WorkFlow API, and answers on sos/v1/{deviceId}/status. With no broker.url in the
file it runs its own MQTT broker. Prints "bridge ready: ..." on stderr once subscribed; logs JSON to stdout.
Secrets may come from SOS_API_CLIENT_SECRET and SOS_BRIDGE_MQTT_PASSWORD instead of the file.

  --config FILE   the bridge configuration (see config/bridge.example.yaml)
  --help          this text

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start, 2 bad configuration or arguments.`;

export const command: Command = async (argv, io) => {
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    writeLine(io.stderr, `bridge: ${errorMessage(e)}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }
  if (values.help) {
    writeLine(io.stdout, USAGE);
    return ExitCode.OK;
  }
  if (!values.config) {
    writeLine(io.stderr, `bridge: --config FILE is required\n\n${USAGE}`);
    return ExitCode.USAGE;
  }
  let config;
  try {
    config = await loadConfig(bridgeConfigSchema, values.config, io.env, BRIDGE_ENV_SECRETS);
  } catch (e) {
    if (e instanceof ConfigError) {
      writeLine(io.stderr, e.message);
      return ExitCode.USAGE;
    }
    throw e;
  }
  const logger = createLogger({ level: config.log.level, destination: io.stdout === process.stdout ? 1 : io.stdout, name: 'sos-bridge' });
  const bridge = new Bridge({ config, logger });
  try {
    await bridge.start();
  } catch (e) {
    // A bad device registry file is a configuration error too.
    if (e instanceof ConfigError) {
      writeLine(io.stderr, e.message);
      return ExitCode.USAGE;
    }
    writeLine(io.stderr, `bridge: could not start: ${errorMessage(e)}`);
    return ExitCode.FAILURE;
  }
  // A broker that is down at start is waited for (and retried) rather than fatal: say "ready" once subscribed.
  void bridge.whenUp().then(
    () => writeLine(io.stderr, `bridge ready: broker ${bridge.brokerUrl}${bridge.httpUrl ? `, health ${bridge.httpUrl}/healthz` : ''}`),
    () => undefined,
  );
  const signal = await io.stopSignal;
  logger.info({ signal }, 'stopping');
  await bridge.stop();
  return ExitCode.OK;
};
