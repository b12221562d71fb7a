import { ExitCode, type Command } from './io.ts';

export const command: Command = async (_argv, io) => {
  io.stderr.write('sos-agent outbox: not implemented yet\n');
  return ExitCode.FAILURE;
};
