import { parseArgs } from 'node:util';
import { Agent } from '../app/agent.ts';
import { SdNotifier, WatchdogPinger, watchdogIntervalMs } from '../app/sd-notify.ts';
import { systemClock } from '../shared/clock.ts';
import { createLogger } from '../shared/logger.ts';
import { PrettyLogStream } from '../shared/pretty-log.ts';
import { configPath, loadAgentConfig } from './common.ts';
import { ExitCode, writeLine, type Command } from './io.ts';

const HELP = `usage: sos-agent run [--config FILE]

Runs the agent until SIGINT/SIGTERM: button + GPS → alert → outbox → API (direct or relay).
Logs JSON to stdout (journald); human-readable lines when stdout is a terminal.
Tells systemd READY=1 once armed and sends watchdog pings while the outbox is alive.`;

export const command: Command = async (argv, io) => {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    writeLine(io.stdout, HELP);
    return ExitCode.OK;
  }
  const config = await loadAgentConfig(configPath(values.config, io), io);
  const tty = (io.stdout as NodeJS.WriteStream).isTTY === true;
  const logger = createLogger({ level: config.log.level, destination: tty ? new PrettyLogStream(io.stdout) : io.stdout === process.stdout ? 1 : io.stdout });
  const agent = new Agent({ config, logger, clock: systemClock, terminal: io.stderr, env: io.env });
  const notifier = new SdNotifier({ logger: logger.child({ part: 'systemd' }), env: io.env });
  const interval = watchdogIntervalMs(io.env);
  const pinger =
    interval === null
      ? null
      : new WatchdogPinger({
          notifier,
          intervalMs: interval,
          logger: logger.child({ part: 'watchdog' }),
          // Alive = the event loop turns (this runs at all) and the outbox's scheduler is turning. A degraded
          // store is not a reason to be restarted: the agent keeps taking presses and shows "degraded".
          isAlive: () => agent.outbox.alive(),
        });
  try {
    await agent.start();
  } catch (e) {
    logger.fatal({ err: e instanceof Error ? e.message : String(e) }, 'could not start');
    await agent.stop().catch(() => {});
    return ExitCode.FAILURE;
  }
  void notifier.ready(`armed: ${agent.ways.route.name} route`);
  pinger?.start();
  const signal = await io.stopSignal;
  logger.info({ signal }, 'stopping');
  void notifier.stopping();
  pinger?.stop();
  await agent.stop();
  await notifier.drain();
  return ExitCode.OK;
};
