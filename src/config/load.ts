import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../shared/errors.ts';

/** Turns zod issues into "path: message" lines; unknown keys are named one by one. */
export function zodIssues(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: base ? `${base}.${key}` : key, message: 'unknown key (a typo would silently drop a setting)' });
    } else if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
      out.push({ path: base, message: `required (${issue.expected}) but missing` });
    } else if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator !== undefined) {
      const key = String(issue.discriminator);
      const path = issue.path[issue.path.length - 1] === key || !base ? base || key : `${base}.${key}`;
      out.push({ path, message: issue.message });
    } else {
      out.push({ path: base, message: issue.message });
    }
  }
  return out;
}

/** Validates an already-parsed object; throws ConfigError listing every wrong field. */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, file?: string): z.output<S> {
  const result = schema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(zodIssues(result.error), file);
  return result.data;
}

export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError([{ path: '', message: `cannot read ${file} (${code})` }], file);
  }
  try {
    return parseYaml(text, { prettyErrors: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      // Only the position and kind: the parser's own message quotes the source line, which may hold a secret.
      const at = e.linePos?.[0];
      const where = at ? ` at line ${at.line}, column ${at.col}` : '';
      throw new ConfigError([{ path: '', message: `not valid YAML${where} (${e.code})` }], file);
    }
    throw e;
  }
}

/**
 * Reads, validates and fills defaults. Secrets may come from the environment instead of the file, so the
 * file can be world-readable-safe; environment wins only where the file leaves the field out.
 */
export async function loadConfig<S extends z.ZodType>(schema: S, file: string, env: NodeJS.ProcessEnv = process.env, envSecrets: Record<string, string[]> = {}): Promise<z.output<S>> {
  const raw = await readConfigFile(file);
  return parseConfig(schema, applyEnvSecrets(raw, env, envSecrets), file);
}

/** envSecrets maps an env variable to a path, e.g. { SOS_API_CLIENT_SECRET: ['api', 'client_secret'] }. */
export function applyEnvSecrets(raw: unknown, env: NodeJS.ProcessEnv, envSecrets: Record<string, string[]>): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const copy = structuredClone(raw) as Record<string, unknown>;
  for (const [name, path] of Object.entries(envSecrets)) {
    const value = env[name];
    if (!value) continue;
    let node: unknown = copy;
    for (const key of path.slice(0, -1)) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
    if (node === null || typeof node !== 'object') continue;
    const leaf = path[path.length - 1]!;
    const parent = node as Record<string, unknown>;
    if (parent[leaf] === undefined) parent[leaf] = value;
  }
  return copy;
}

export const AGENT_ENV_SECRETS: Record<string, string[]> = {
  SOS_API_CLIENT_SECRET: ['api', 'client_secret'],
  SOS_RELAY_PASSWORD: ['relay', 'password'],
};
