import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Paths pino replaces with "[redacted]" wherever they appear in a log object. Secrets are also kept out
 * of log calls by construction; this is the second line of defence.
 */
export const REDACT_PATHS = [
  'client_secret',
  '*.client_secret',
  '*.*.client_secret',
  'password',
  '*.password',
  '*.*.password',
  'access_token',
  '*.access_token',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  'secret',
  '*.secret',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where to write; defaults to stdout (fd 1), synchronously so the last lines before a crash survive. */
  destination?: NodeJS.WritableStream | number;
  name?: string;
}

/** One pino root per process; parts take `logger.child({ part: 'outbox' })`. JSON to stdout, no worker transports. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const dest = options.destination ?? 1;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name ?? 'sos-agent',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
