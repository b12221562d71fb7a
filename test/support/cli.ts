import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import type { CommandIo } from '../../src/cli/io.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a sos-agent command in-process, with captured output and an optional stop trigger. */
export async function runCli(argv: string[], options: { env?: NodeJS.ProcessEnv; stop?: Promise<NodeJS.Signals> } = {}): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const io: CommandIo = { stdout, stderr, env: options.env ?? {}, stopSignal: options.stop ?? new Promise(() => {}) };
  const code = await main(argv, io);
  return { code, stdout: out, stderr: err };
}
