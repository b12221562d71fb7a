import { parseArgs } from 'node:util';
import { agentConfigSchema } from '../config/agent-schema.ts';
import { AGENT_ENV_SECRETS, loadConfig } from '../config/load.ts';
import type { OutboxRecord } from '../outbox/record.ts';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { OutboxStoreError } from '../outbox/store.ts';
import { ExitCode, writeLine, type Command, type CommandIo } from './io.ts';

const HELP = `usage: sos-agent outbox <list | show ID | retry ID | purge --delivered> (--config FILE | --db FILE) [--json]

  list              every alert in the outbox, oldest press first
  show ID           one alert in full (an unambiguous prefix of its id is enough)
  retry ID          make a rejected or waiting alert due now; the running agent sends it within seconds
  purge --delivered delete the alerts the API has answered for

  --config FILE     the agent's configuration (its outbox.path is read)
  --db FILE         the outbox file itself (overrides --config)
  --json            machine-readable output

States: held (a confirmed press not to be sent yet: its cancel window is open, or it waits for a first
location), queued, sending, delivered, rejected, cancelled (the person cancelled it within the window).

Safe while the agent runs: it reads the same file (SQLite WAL) and never moves or repairs it.`;

const SUBCOMMANDS = ['list', 'show', 'retry', 'purge'];

function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

/** When a record will be tried next, in words for the ones the scheduler does not pick up by time. */
function nextAttempt(r: OutboxRecord): string {
  if (r.state === 'queued') return iso(r.nextAttemptAt);
  if (r.state === 'held') return r.heldFor === 'location' ? 'at-first-fix' : 'after-cancel-window';
  if (r.state === 'cancelled') return 'never';
  return '-';
}

const HELD_FOR = { cancel_window: 'its cancel window (the person may still cancel it)', location: 'a first location (no GPS fix and no fallback yet)' } as const;
const CANCELLED_BY = { person: 'the person, within the cancel window', superseded: 'a longer hold that made it a test alert' } as const;

function summary(r: OutboxRecord): string[] {
  return [
    r.alertId,
    r.state,
    iso(r.createdAt),
    String(r.attempts),
    nextAttempt(r),
    r.apiId ?? '-',
    r.lastError ? `${r.lastError.code}: ${r.lastError.message}` : '-',
  ];
}

function table(rows: string[][]): string {
  const header = ['ALERT ID', 'STATE', 'PRESSED', 'ATTEMPTS', 'NEXT ATTEMPT', 'API ID', 'LAST ERROR'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  // The last column is free text: not padded, so a long reason does not widen every line.
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function details(r: OutboxRecord): string {
  const lines = [
    `alert id:          ${r.alertId}`,
    `state:             ${r.state}`,
    `pressed:           ${iso(r.createdAt)}`,
    `committed:         ${iso(r.enqueuedAt)}`,
    ...(r.heldFor ? [`held for:          ${HELD_FOR[r.heldFor]}${r.state === 'held' ? '' : ' (no longer held)'}`] : []),
    ...(r.cancelReason ? [`cancelled by:      ${CANCELLED_BY[r.cancelReason]}`] : []),
    `attempts:          ${r.attempts}`,
    `next attempt:      ${nextAttempt(r)}`,
    `ambiguous resends: ${r.ambiguousRetries}`,
    `route:             ${r.route ?? '-'}`,
    `api id:            ${r.apiId ?? '-'}`,
    `delivered:         ${iso(r.deliveredAt)}`,
    `last error:        ${r.lastError ? `${r.lastError.code}: ${r.lastError.message}` : '-'}`,
    `callflow:          ${r.alert.callflow}${r.alert.test ? ' (test)' : ''}`,
    `initiation:        ${r.alert.initiation.gesture} via ${r.alert.initiation.source}`,
    ...(r.alert.location === null ? ['location:          none yet: it goes out with the first fix'] : []),
    'snapshot:',
    JSON.stringify(r.alert, null, 2),
  ];
  return lines.join('\n');
}

/** The one record an id or unambiguous id prefix names, or a message saying why not. */
function find(store: SqliteOutboxStore, id: string): OutboxRecord | string {
  const exact = store.get(id);
  if (exact) return exact;
  const matches = id.length >= 4 ? store.list().filter((r) => r.alertId.startsWith(id)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) return `"${id}" matches ${matches.length} alerts; give more of the id`;
  return `no alert ${id} in ${store.path}`;
}

async function dbPath(values: { config?: string | undefined; db?: string | undefined }, io: CommandIo): Promise<string | undefined> {
  if (values.db) return values.db;
  if (!values.config) return undefined;
  const config = await loadConfig(agentConfigSchema, values.config, io.env, AGENT_ENV_SECRETS);
  return config.outbox.path;
}

export const command: Command = async (argv, io) => {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        db: { type: 'string' },
        json: { type: 'boolean' },
        delivered: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    writeLine(io.stderr, `outbox: ${e instanceof Error ? e.message : String(e)}\n${HELP}`);
    return ExitCode.USAGE;
  }
  const { values, positionals } = parsed;
  const [sub, id, ...extra] = positionals;
  if (values.help) {
    writeLine(io.stdout, HELP);
    return ExitCode.OK;
  }
  if (sub === undefined || !SUBCOMMANDS.includes(sub)) {
    writeLine(io.stderr, sub === undefined ? HELP : `outbox: unknown subcommand "${sub}"\n${HELP}`);
    return ExitCode.USAGE;
  }
  const needsId = sub === 'show' || sub === 'retry';
  if ((needsId ? id === undefined : id !== undefined) || extra.length > 0) {
    writeLine(io.stderr, `outbox ${sub}: ${needsId ? 'takes one alert id' : 'takes no alert id'}\n${HELP}`);
    return ExitCode.USAGE;
  }
  if (sub === 'purge' && !values.delivered) {
    writeLine(io.stderr, 'outbox purge: only delivered alerts may be purged; say --delivered');
    return ExitCode.USAGE;
  }
  const path = await dbPath(values, io);
  if (path === undefined) {
    writeLine(io.stderr, `outbox: which outbox? give --config FILE or --db FILE\n${HELP}`);
    return ExitCode.USAGE;
  }

  const writes = sub === 'retry' || sub === 'purge';
  // Never create, repair or move the agent's file from here: that is the agent's job at its start.
  const store = new SqliteOutboxStore({ path, readOnly: !writes, create: false, moveAsideCorrupt: false });
  try {
    store.open();
  } catch (e) {
    writeLine(io.stderr, `outbox: ${e instanceof Error ? e.message : String(e)}`);
    return ExitCode.FAILURE;
  }
  try {
    return run(sub, id, store, values.json === true, io);
  } catch (e) {
    if (!(e instanceof OutboxStoreError)) throw e;
    writeLine(io.stderr, `outbox: ${e.message}`);
    return ExitCode.FAILURE;
  } finally {
    store.close();
  }
};

function run(sub: string, id: string | undefined, store: SqliteOutboxStore, json: boolean, io: CommandIo): number {
  if (sub === 'list') {
    const records = store.list();
    if (json) writeLine(io.stdout, JSON.stringify(records));
    else if (records.length === 0) writeLine(io.stdout, `the outbox ${store.path} is empty`);
    else writeLine(io.stdout, table(records.map(summary)));
    return ExitCode.OK;
  }
  if (sub === 'purge') {
    const purged = store.purgeDelivered();
    writeLine(io.stdout, json ? JSON.stringify({ purged }) : `purged ${purged} delivered alert${purged === 1 ? '' : 's'}`);
    return ExitCode.OK;
  }
  const found = find(store, id!);
  if (typeof found === 'string') {
    writeLine(io.stderr, `outbox: ${found}`);
    return ExitCode.FAILURE;
  }
  if (sub === 'show') {
    writeLine(io.stdout, json ? JSON.stringify(found) : details(found));
    return ExitCode.OK;
  }
  // retry
  if (found.state === 'delivered') {
    writeLine(io.stderr, `outbox: ${found.alertId} was delivered (API id ${found.apiId ?? '-'}); nothing to retry`);
    return ExitCode.FAILURE;
  }
  if (found.state === 'held' || found.state === 'cancelled') {
    const why = found.state === 'held' ? `is held until ${HELD_FOR[found.heldFor ?? 'cancel_window']}; the agent sends it then` : 'was cancelled; it is never sent';
    writeLine(io.stderr, `outbox: ${found.alertId} ${why}`);
    return ExitCode.FAILURE;
  }
  if (found.state === 'sending' || !store.retryNow(found.alertId, Date.now())) {
    writeLine(io.stderr, `outbox: ${found.alertId} is being sent right now; nothing to do`);
    return ExitCode.FAILURE;
  }
  const after = store.get(found.alertId);
  writeLine(
    io.stdout,
    json ? JSON.stringify(after) : `${found.alertId} is due now (was ${found.state}); a running agent sends it within a few seconds, or at its next start`,
  );
  return ExitCode.OK;
}
