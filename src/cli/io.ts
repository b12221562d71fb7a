/** What a command may touch of the process, so commands can be run in-process by tests. */
export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  stopSignal: Promise<NodeJS.Signals>;
}

export type Command = (argv: string[], io: CommandIo) => Promise<number>;

/** Exit codes, stable for scripts and installers. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  /** Bad configuration or bad command-line arguments. */
  USAGE: 2,
  /** The API rejected the alert for good. */
  REJECTED: 3,
  /** The alert could not be delivered after retries (transient failures). */
  UNDELIVERED: 4,
} as const;

export function writeLine(stream: NodeJS.WritableStream, line: string): void {
  stream.write(`${line}\n`);
}
