import { ExitCode, type Command, type CommandIo } from './io.ts';
import { VERSION } from '../shared/version.ts';
import { ConfigError } from '../shared/errors.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  run: { summary: 'run the agent: button + GPS → alert → API (direct or relay)', load: () => import('./run.ts') },
  demo: { summary: 'a complete local demo: emulator + agent, no setup, no network', load: () => import('./demo.ts') },
  trigger: { summary: 'send one alert now, started by you at this terminal (installer test; --test for the test callflow)', load: () => import('./trigger.ts') },
  emulator: { summary: 'run the Emergency WorkFlow API emulator', load: () => import('./emulator.ts') },
  config: { summary: 'config check FILE | config schema [agent|bridge]', load: () => import('./config.ts') },
  outbox: { summary: 'outbox list | show ID | retry ID | purge --delivered', load: () => import('./outbox.ts') },
  bridge: { summary: 'run the cloud bridge: MQTT alerts → API, status back', load: () => import('./bridge.ts') },
  simulate: { summary: 'simulate a fleet of devices against a broker', load: () => import('./simulate.ts') },
  doctor: { summary: 'check that a press would get through, part by part', load: () => import('./doctor.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    `sos-agent ${VERSION}: turns a human press of an SOS button into an emergency callflow`,
    '',
    'usage: sos-agent <command> [options]',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Every command takes --help. Exit codes: 0 ok, 1 failure, 2 bad config or usage, 3 rejected by the API, 4 undelivered.',
  ].join('\n');
}

export async function main(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${usage()}\n`);
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    io.stdout.write(`${VERSION}\n`);
    return ExitCode.OK;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    io.stderr.write(`unknown command "${name}"\n\n${usage()}\n`);
    return ExitCode.USAGE;
  }
  try {
    const { command } = await entry.load();
    return await command(rest, io);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr.write(`${e.message}\n`);
      return ExitCode.USAGE;
    }
    throw e;
  }
}

function processIo(): CommandIo {
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig));
  });
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, stopSignal };
}

/** The process entry: bin/sos-agent.js and the single-executable bundle call this. */
export function runCli(): void {
  // Every part's timers are unref'd so that stop() never waits on them; this one handle keeps the process
  // alive until the command itself is done (a retry waiting on its backoff must not end in a silent exit 0).
  const keepAlive = setInterval(() => {}, 1 << 30);
  main(process.argv.slice(2), processIo()).then(
    (code) => {
      clearInterval(keepAlive);
      process.exitCode = code;
      // Long-running commands resolve only after an orderly stop; exit so a stray handle cannot hang shutdown.
      setImmediate(() => process.exit(code));
    },
    (e: unknown) => {
      process.stderr.write(`sos-agent: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(ExitCode.FAILURE);
    },
  );
}
