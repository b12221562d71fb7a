import { parseArgs } from 'node:util';
import { z } from 'zod';
import { agentConfigSchema } from '../config/agent-schema.ts';
import { BRIDGE_ENV_SECRETS, bridgeConfigSchema } from '../config/bridge-schema.ts';
import { AGENT_ENV_SECRETS, applyEnvSecrets, parseConfig, readConfigFile } from '../config/load.ts';
import { ConfigError } from '../shared/errors.ts';
import { ExitCode, writeLine, type Command } from './io.ts';

const HELP = `usage:
  sos-agent config check FILE [--bridge]   exit 0 if valid, else 2 listing every wrong field with its path
  sos-agent config schema [agent|bridge]   print the JSON Schema (for editors)`;

async function schemaFor(kind: 'agent' | 'bridge'): Promise<z.ZodType> {
  if (kind === 'agent') return agentConfigSchema;
  return bridgeConfigSchema;
}

/** A bridge file is recognised by its `broker` or `devices` section; `--bridge` forces it. */
function looksLikeBridge(raw: unknown): boolean {
  return raw !== null && typeof raw === 'object' && ('broker' in raw || 'devices' in raw || 'dedupe' in raw);
}

export const command: Command = async (argv, io) => {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { bridge: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [sub, arg] = positionals;
  if (values.help || sub === undefined) {
    writeLine(values.help ? io.stdout : io.stderr, HELP);
    return values.help ? ExitCode.OK : ExitCode.USAGE;
  }
  if (sub === 'schema') {
    const kind = arg ?? 'agent';
    if (kind !== 'agent' && kind !== 'bridge') {
      writeLine(io.stderr, `config schema: expected "agent" or "bridge", got "${kind}"`);
      return ExitCode.USAGE;
    }
    const schema = z.toJSONSchema(await schemaFor(kind), { io: 'input', unrepresentable: 'any' });
    writeLine(io.stdout, JSON.stringify(schema, null, 2));
    return ExitCode.OK;
  }
  if (sub === 'check') {
    const file = arg ?? values.config;
    if (!file) {
      writeLine(io.stderr, 'config check: which file? usage: sos-agent config check FILE');
      return ExitCode.USAGE;
    }
    try {
      const raw = await readConfigFile(file);
      const bridge = values.bridge === true || looksLikeBridge(raw);
      const schema = await schemaFor(bridge ? 'bridge' : 'agent');
      parseConfig(schema, applyEnvSecrets(raw, io.env, bridge ? BRIDGE_ENV_SECRETS : AGENT_ENV_SECRETS), file);
      writeLine(io.stdout, `${file}: valid ${bridge ? 'bridge' : 'agent'} configuration`);
      return ExitCode.OK;
    } catch (e) {
      if (e instanceof ConfigError) {
        writeLine(io.stderr, e.message);
        return ExitCode.USAGE;
      }
      throw e;
    }
  }
  writeLine(io.stderr, `config: unknown subcommand "${sub}"\n${HELP}`);
  return ExitCode.USAGE;
};
