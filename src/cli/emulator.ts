import { parseArgs } from 'node:util';
import { ExitCode, writeLine, type Command } from './io.ts';
import { Emulator } from '../emulator/server.ts';
import { DEFAULT_CALLFLOWS } from '../emulator/callflows.ts';
import { isLoopbackHost } from '../config/api-base-url.ts';
import { createLogger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';

export const DEFAULT_EMULATOR_PORT = 8080;
export const DEFAULT_EMULATOR_CLIENT_ID = 'demo-client';
export const DEFAULT_EMULATOR_CLIENT_SECRET = 'demo-secret';
export const EMULATOR_SECRET_ENV = 'SOS_EMULATOR_CLIENT_SECRET';

const USAGE = `usage: sos-agent emulator [options]

Runs an emulator of the Emergency WorkFlow API (POST /oauth/token, POST /v1/rem/trigger) with
inspection and fault injection under /__emulator/. Prints "emulator listening on URL" once ready.

  --host HOST              address to bind (default 127.0.0.1; loopback only unless --allow-remote)
  --port N                 port (default ${DEFAULT_EMULATOR_PORT}; 0 picks a free one)
  --client-id ID           accepted client id (default ${DEFAULT_EMULATOR_CLIENT_ID})
  --client-secret S        accepted client secret (default: $${EMULATOR_SECRET_ENV}, else ${DEFAULT_EMULATOR_CLIENT_SECRET})
  --token-ttl SECONDS      token lifetime (default 3600)
  --callflow NAME:p,p      register (or replace) a callflow requiring these dotted variable paths;
                           repeatable; company_dataconnect_v1 and company_test_v1 are always known
  --issued-at-ms           issued_at in milliseconds (Apigee style) instead of seconds
  --numbers-as-strings     issued_at and expires_in as strings (Apigee style)
  --allow-remote           allow binding a non-loopback address (anyone who reaches it can inject faults)
  --help                   this text`;

class UsageError extends Error {}

function parsePort(value: string | undefined): number {
  if (value === undefined) return DEFAULT_EMULATOR_PORT;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new UsageError(`--port must be a whole number 0..65535, got "${value}"`);
  return n;
}

function parseTtl(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n <= 0) throw new UsageError(`--token-ttl must be a positive whole number of seconds, got "${value}"`);
  return n;
}

/** `NAME:a.b,c` → [NAME, ['a.b', 'c']]; `NAME` alone requires nothing. */
export function parseCallflowArg(value: string): [string, string[]] {
  const colon = value.indexOf(':');
  const name = (colon === -1 ? value : value.slice(0, colon)).trim();
  const list = colon === -1 ? '' : value.slice(colon + 1).trim();
  if (name === '') throw new UsageError(`--callflow needs a name before the colon, got "${value}"`);
  const paths = list === '' ? [] : list.split(',').map((p) => p.trim());
  for (const p of paths) {
    if (p === '' || p.split('.').some((segment) => segment === '')) {
      throw new UsageError(`--callflow ${name}: "${p}" is not a dotted variable path like caller_info.full_name`);
    }
  }
  return [name, paths];
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'token-ttl': { type: 'string' },
      callflow: { type: 'string', multiple: true },
      'issued-at-ms': { type: 'boolean' },
      'numbers-as-strings': { type: 'boolean' },
      'allow-remote': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  return values;
}

export const command: Command = async (argv, io) => {
  let emulator: Emulator;
  try {
    const values = parse(argv);
    if (values.help) {
      writeLine(io.stdout, USAGE);
      return ExitCode.OK;
    }
    const host = values.host ?? '127.0.0.1';
    if (!isLoopbackHost(host) && !values['allow-remote']) {
      throw new UsageError(`refusing to listen on ${host}: not a loopback address; pass --allow-remote if you mean it`);
    }
    const callflows: Record<string, string[]> = Object.fromEntries(Object.entries(DEFAULT_CALLFLOWS).map(([k, v]) => [k, [...v]]));
    for (const arg of values.callflow ?? []) {
      const [name, paths] = parseCallflowArg(arg);
      callflows[name] = paths;
    }
    const clientId = values['client-id'] ?? DEFAULT_EMULATOR_CLIENT_ID;
    if (clientId === '') throw new UsageError('--client-id must not be empty');
    const clientSecret = values['client-secret'] ?? io.env[EMULATOR_SECRET_ENV] ?? DEFAULT_EMULATOR_CLIENT_SECRET;
    if (clientSecret === '') throw new UsageError('--client-secret must not be empty');
    const tokenTtlS = parseTtl(values['token-ttl']);
    emulator = new Emulator({
      host,
      port: parsePort(values.port),
      clientId,
      clientSecret,
      ...(tokenTtlS === undefined ? {} : { tokenTtlS }),
      callflows,
      issuedAtUnit: values['issued-at-ms'] ? 'ms' : 's',
      numbersAsStrings: values['numbers-as-strings'] ?? false,
      logger: createLogger({ destination: io.stdout, name: 'sos-agent-emulator' }),
    });
    if (!isLoopbackHost(host) && clientSecret === DEFAULT_EMULATOR_CLIENT_SECRET) {
      writeLine(io.stderr, 'warning: reachable from other hosts with the default client secret');
    }
    writeLine(io.stderr, `emulator: client id ${clientId}; callflows ${Object.keys(callflows).join(', ')}; token ttl ${tokenTtlS ?? 3600} s`);
  } catch (e) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown options and missing values.
    if (e instanceof UsageError || (e instanceof TypeError && String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'))) {
      writeLine(io.stderr, `sos-agent emulator: ${e.message}\n\n${USAGE}`);
      return ExitCode.USAGE;
    }
    throw e;
  }

  try {
    await emulator.start();
  } catch (e) {
    writeLine(io.stderr, `sos-agent emulator: cannot listen: ${errorMessage(e)}`);
    return ExitCode.FAILURE;
  }
  writeLine(io.stdout, `emulator listening on ${emulator.url}`);
  await io.stopSignal;
  await emulator.stop();
  return ExitCode.OK;
};
