import { agentConfigSchema, type AgentConfig } from '../config/agent-schema.ts';
import { AGENT_ENV_SECRETS, loadConfig } from '../config/load.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import type { CommandIo } from './io.ts';

/** --config FILE, else SOS_AGENT_CONFIG, else the installed default. */
export function configPath(flag: string | undefined, io: CommandIo): string {
  return flag ?? io.env.SOS_AGENT_CONFIG ?? '/etc/sos-agent/agent.yaml';
}

export async function loadAgentConfig(file: string, io: CommandIo): Promise<AgentConfig> {
  return loadConfig(agentConfigSchema, file, io.env, AGENT_ENV_SECRETS);
}

/**
 * Logs for one-shot commands go to stderr (stdout carries the result, e.g. the API's id); the long-running
 * agent logs JSON to stdout for journald.
 */
export function commandLogger(io: CommandIo, level: AgentConfig['log']['level'], toStdout = false): Logger {
  if (io.stdout === process.stdout && io.stderr === process.stderr) return createLogger({ level, destination: toStdout ? 1 : 2 });
  return createLogger({ level, destination: toStdout ? io.stdout : io.stderr });
}
