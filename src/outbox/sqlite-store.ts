import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { LocationSnapshot } from '../gps/types.ts';
import { completeAlert } from '../incident/alert.ts';
import type { AlertDraft, AlertSnapshot } from '../incident/types.ts';
import { ErrorCodes } from '../shared/errors.ts';
import { silentLogger, type Logger } from '../shared/logger.ts';
import {
  WAITING_STATES,
  lastErrorOf,
  parseDraft,
  parseSnapshot,
  type CancelReason,
  type HoldReason,
  type LastError,
  type OutboxRecord,
  type OutboxState,
  type SendableRecord,
} from './record.ts';
import { OutboxStoreError, type OutboxStore, type StoreFailure, type StoreOpenReport } from './store.ts';

export interface SqliteOutboxStoreOptions {
  path: string;
  /** For `outbox list|show` beside a running agent: never writes, never creates, never moves a file. */
  readOnly?: boolean;
  /** Make the file (and its directory) when missing. Default true; the CLI says false. */
  create?: boolean;
  /** Move an unreadable file aside and start a new one. Default true; the CLI says false (the agent decides). */
  moveAsideCorrupt?: boolean;
  /** How long to wait for the other process's write lock (agent vs CLI), ms. */
  busyTimeoutMs?: number;
  /** Caps the file at this many pages: a full disk on demand, for tests. */
  maxPages?: number;
  /** Wall clock for the moved-aside file's name. */
  now?: () => number;
  logger?: Logger;
}

/** The schema, one entry per version; `user_version` says how many have been applied. */
const MIGRATIONS: readonly string[] = [
  // WITHOUT ROWID and one index: an enqueue's commit touches two b-trees, so it costs little more than the fsync.
  `CREATE TABLE alerts (
     alert_id TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     enqueued_at INTEGER NOT NULL,
     initiation TEXT NOT NULL,
     snapshot TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'delivered', 'rejected')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     last_error_code TEXT,
     last_error_message TEXT,
     ambiguous_retries INTEGER NOT NULL DEFAULT 0,
     api_id TEXT,
     route TEXT,
     updated_at INTEGER NOT NULL,
     delivered_at INTEGER
   ) STRICT, WITHOUT ROWID;
   -- Due alerts in press order without sorting rows (a scan runs after every delivery); covers the due time too.
   CREATE INDEX alerts_in_order ON alerts (state, created_at, alert_id, next_attempt_at);`,
  // 2: `held` (committed, not to be sent yet: cancel window open, or no location) and `cancelled`. SQLite cannot
  // change a CHECK in place: the table is rebuilt, rows copied as they are (https://sqlite.org/lang_altertable.html).
  `CREATE TABLE alerts_v2 (
     alert_id TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     enqueued_at INTEGER NOT NULL,
     initiation TEXT NOT NULL,
     snapshot TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('held', 'queued', 'sending', 'delivered', 'rejected', 'cancelled')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     last_error_code TEXT,
     last_error_message TEXT,
     ambiguous_retries INTEGER NOT NULL DEFAULT 0,
     api_id TEXT,
     route TEXT,
     updated_at INTEGER NOT NULL,
     delivered_at INTEGER,
     held_for TEXT CHECK (held_for IN ('cancel_window', 'location')),
     cancel_reason TEXT CHECK (cancel_reason IN ('person', 'superseded'))
   ) STRICT, WITHOUT ROWID;
   INSERT INTO alerts_v2 (alert_id, created_at, enqueued_at, initiation, snapshot, state, attempts, next_attempt_at, last_error_code,
                          last_error_message, ambiguous_retries, api_id, route, updated_at, delivered_at)
     SELECT alert_id, created_at, enqueued_at, initiation, snapshot, state, attempts, next_attempt_at, last_error_code,
            last_error_message, ambiguous_retries, api_id, route, updated_at, delivered_at FROM alerts;
   DROP TABLE alerts;
   ALTER TABLE alerts_v2 RENAME TO alerts;
   CREATE INDEX alerts_in_order ON alerts (state, created_at, alert_id, next_attempt_at);`,
];
export const OUTBOX_SCHEMA_VERSION = MIGRATIONS.length;

const PENDING = `state IN (${WAITING_STATES.map((st) => `'${st}'`).join(', ')})`;

interface Row {
  alert_id: string;
  created_at: number;
  enqueued_at: number;
  initiation: string;
  snapshot: string;
  state: string;
  attempts: number;
  next_attempt_at: number;
  last_error_code: string | null;
  last_error_message: string | null;
  ambiguous_retries: number;
  api_id: string | null;
  route: string | null;
  updated_at: number;
  delivered_at: number | null;
  held_for: string | null;
  cancel_reason: string | null;
}

// SQLite primary result codes (https://sqlite.org/rescode.html); extended codes keep them in the low byte.
const SQLITE_REASONS: Record<number, StoreFailure> = { 5: 'busy', 6: 'busy', 8: 'readonly', 10: 'io', 11: 'corrupt', 13: 'full', 14: 'io', 26: 'corrupt' };
const ERRNO_REASONS: Record<string, StoreFailure> = { ENOSPC: 'full', EDQUOT: 'full', EROFS: 'readonly', EACCES: 'readonly', EPERM: 'readonly', EIO: 'io' };

function failureOf(e: unknown): StoreFailure {
  if (e instanceof OutboxStoreError) return e.reason;
  const err = e as { errcode?: unknown; code?: unknown };
  if (typeof err.errcode === 'number') return SQLITE_REASONS[err.errcode & 0xff] ?? 'other';
  if (typeof err.code === 'string') return ERRNO_REASONS[err.code] ?? 'other';
  return 'other';
}

function storeError(op: string, path: string, e: unknown): OutboxStoreError {
  if (e instanceof OutboxStoreError) return e;
  const reason = failureOf(e);
  return new OutboxStoreError(reason, `outbox ${path}: ${op} failed (${reason}): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * The durable outbox: one SQLite file through `node:sqlite` (no native addon). WAL so the CLI can read while the
 * agent writes; synchronous=FULL so a commit is on the disk (fsync) before `insert` returns.
 */
export class SqliteOutboxStore implements OutboxStore {
  readonly kind = 'sqlite';
  readonly path: string;
  readonly #opts: Required<Omit<SqliteOutboxStoreOptions, 'maxPages' | 'path'>> & { maxPages: number | undefined };
  #db: DatabaseSync | undefined;
  #st: Record<string, StatementSync> = {};

  constructor(options: SqliteOutboxStoreOptions) {
    this.path = options.path;
    this.#opts = {
      readOnly: options.readOnly ?? false,
      create: options.create ?? true,
      moveAsideCorrupt: options.moveAsideCorrupt ?? true,
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      maxPages: options.maxPages,
      now: options.now ?? Date.now,
      logger: options.logger ?? silentLogger(),
    };
  }

  open(): StoreOpenReport {
    if (this.#db) return { created: false };
    const { readOnly, create, moveAsideCorrupt } = this.#opts;
    const existed = existsSync(this.path);
    if (!existed && (readOnly || !create)) throw new OutboxStoreError('missing', `no outbox at ${this.path}`);
    let movedAside: string | undefined;
    try {
      if (!existed) mkdirSync(dirname(this.path), { recursive: true });
      this.#db = this.#connect();
    } catch (e) {
      const err = storeError('open', this.path, e);
      if (err.reason !== 'corrupt' || !moveAsideCorrupt || readOnly) throw err;
      movedAside = this.#moveAside();
      this.#opts.logger.error({ path: this.path, movedAside, err: err.message }, 'outbox file unreadable: moved aside, starting a new one');
      try {
        this.#db = this.#connect();
      } catch (e2) {
        throw storeError('open', this.path, e2);
      }
    }
    this.#prepare();
    return { created: !existed || movedAside !== undefined, movedAside };
  }

  close(): void {
    const db = this.#db;
    this.#db = undefined;
    this.#st = {};
    if (!db) return;
    try {
      db.close();
    } catch (e) {
      this.#opts.logger.warn({ err: String(e) }, 'closing the outbox file failed');
    }
  }

  insert(alert: AlertSnapshot, now: number): { record: OutboxRecord; inserted: boolean } {
    return this.#run('insert', () => {
      const changes = this.#stmt('insert').run(
        alert.alertId,
        alert.createdAt,
        now,
        JSON.stringify(alert.initiation),
        JSON.stringify(alert),
        now,
        now,
      ).changes;
      if (Number(changes) === 1) {
        // What was just written, without reading it back: an enqueue is on the press's critical path.
        const record: OutboxRecord = {
          alertId: alert.alertId,
          createdAt: alert.createdAt,
          enqueuedAt: now,
          // The caller's own snapshot (frozen at the press), not a copy: what is stored is the JSON above.
          alert,
          state: 'queued',
          attempts: 0,
          nextAttemptAt: now,
          lastError: null,
          ambiguousRetries: 0,
          apiId: null,
          route: null,
          updatedAt: now,
          deliveredAt: null,
          heldFor: null,
          cancelReason: null,
        };
        return { record, inserted: true };
      }
      const record = this.get(alert.alertId);
      if (!record) throw new OutboxStoreError('other', `outbox ${this.path}: ${alert.alertId} neither inserted nor found`);
      return { record, inserted: false };
    });
  }

  hold(alert: AlertDraft, reason: HoldReason, now: number): { record: OutboxRecord; inserted: boolean } {
    return this.#run('hold', () => {
      const changes = this.#stmt('hold').run(alert.alertId, alert.createdAt, now, JSON.stringify(alert.initiation), JSON.stringify(alert), now, now, reason).changes;
      const record = this.get(alert.alertId);
      if (!record) throw new OutboxStoreError('other', `outbox ${this.path}: ${alert.alertId} neither held nor found`);
      return { record, inserted: Number(changes) === 1 };
    });
  }

  holdFor(alertId: string, reason: HoldReason, now: number): boolean {
    return this.#change('holdFor', 'holdFor', reason, now, alertId);
  }

  release(alertId: string, location: LocationSnapshot | undefined, now: number): boolean {
    return this.#run('release', () => {
      const r = this.get(alertId);
      if (!r || r.state !== 'held') return false;
      const alert = completeAlert(r.alert, location);
      if (alert === null) return false;
      // Conditional on still being held: a second writer (another process) that got there first wins.
      return Number(this.#stmt('release').run(JSON.stringify(alert), now, now, alertId).changes) === 1;
    });
  }

  cancel(alertId: string, reason: CancelReason, now: number): boolean {
    return this.#change('cancel', 'cancel', reason, now, alertId);
  }

  get(alertId: string): OutboxRecord | undefined {
    return this.#run('get', () => {
      const row = this.#stmt('get').get(alertId) as Row | undefined;
      return row && this.#toRecord(row);
    });
  }

  list(filter: { states?: readonly OutboxState[]; limit?: number } = {}): OutboxRecord[] {
    return this.#run('list', () => {
      const states = filter.states;
      const where = states ? `WHERE state IN (${states.map(() => '?').join(', ')})` : '';
      const sql = `SELECT * FROM alerts ${where} ORDER BY created_at, alert_id LIMIT ?`;
      const rows = this.#db!.prepare(sql).all(...(states ?? []), filter.limit ?? -1) as unknown as Row[];
      return rows.flatMap((row) => this.#readable(row));
    });
  }

  due(now: number, limit: number): SendableRecord[] {
    return this.#run('due', () => {
      const rows = this.#stmt('due').all(now, Math.max(0, limit)) as unknown as Row[];
      return rows.flatMap((row) => {
        const r = this.#readable(row).filter(isSendable);
        // A row that cannot be read cannot be sent; rejecting it (logged) keeps it from blocking every scan.
        if (r.length === 0) this.#stmt('damaged').run(ErrorCodes.OUTBOX_STORE, 'stored alert is damaged and cannot be sent', now, row.alert_id);
        return r;
      });
    });
  }

  nextDueAt(): number | undefined {
    return this.#run('nextDueAt', () => {
      const row = this.#stmt('nextDue').get() as { at: number | null } | undefined;
      return row?.at ?? undefined;
    });
  }

  markSending(alertId: string, route: string, now: number): boolean {
    return this.#change('markSending', 'sending', route, now, alertId);
  }

  markDelivered(alertId: string, apiId: string, now: number): boolean {
    return this.#change('markDelivered', 'delivered', apiId, now, now, alertId);
  }

  markRejected(alertId: string, error: LastError, now: number): boolean {
    const e = lastErrorOf(error.code, error.message);
    return this.#change('markRejected', 'rejected', e.code, e.message, now, alertId);
  }

  markRetry(alertId: string, nextAt: number, error: LastError, ambiguous: boolean, now: number): boolean {
    const e = lastErrorOf(error.code, error.message);
    return this.#change('markRetry', 'retry', nextAt, e.code, e.message, ambiguous ? 1 : 0, now, alertId);
  }

  requeueSending(now: number): SendableRecord[] {
    return this.#run('requeueSending', () => {
      const rows = this.#stmt('requeue').all(now, now) as unknown as Row[];
      return rows.flatMap((row) => this.#readable(row).filter(isSendable)).sort((a, b) => a.createdAt - b.createdAt || (a.alertId < b.alertId ? -1 : 1));
    });
  }

  retryNow(alertId: string, now: number): boolean {
    return this.#change('retryNow', 'retryNow', now, now, alertId);
  }

  makeAllDue(now: number): number {
    return this.#run('makeAllDue', () => Number(this.#stmt('allDue').run(now, now, now).changes));
  }

  purgeDelivered(): number {
    return this.#run('purgeDelivered', () => Number(this.#stmt('purge').run().changes));
  }

  transaction<T>(fn: () => T): T {
    const db = this.#db;
    if (!db) throw new OutboxStoreError('closed', `outbox ${this.path}: not open`);
    this.#run('begin', () => db.exec('BEGIN IMMEDIATE'));
    try {
      const out = fn();
      this.#run('commit', () => db.exec('COMMIT'));
      return out;
    } catch (e) {
      // SQLite may have rolled back already (a full disk does); a second rollback must not hide the first error.
      if (db.isTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // the original error says what went wrong
        }
      }
      throw storeError('transaction', this.path, e);
    }
  }

  depth(): number {
    return this.#run('depth', () => Number((this.#stmt('depth').get() as { n: number }).n));
  }

  oldestPendingAt(): number | undefined {
    return this.#run('oldestPendingAt', () => (this.#stmt('oldest').get() as { at: number | null }).at ?? undefined);
  }

  #connect(): DatabaseSync {
    const { readOnly, busyTimeoutMs, maxPages } = this.#opts;
    const db = new DatabaseSync(this.path, { readOnly, timeout: busyTimeoutMs });
    try {
      if (!readOnly) db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      if (maxPages !== undefined) db.exec(`PRAGMA max_page_count = ${Math.floor(maxPages)}`);
      const check = db.prepare('PRAGMA quick_check').get() as { quick_check?: string } | undefined;
      if (check?.quick_check !== 'ok') throw new OutboxStoreError('corrupt', `outbox ${this.path}: integrity check failed: ${check?.quick_check ?? 'no answer'}`);
      this.#migrate(db);
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  #migrate(db: DatabaseSync): void {
    const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    if (version > MIGRATIONS.length) {
      throw new OutboxStoreError('schema', `outbox ${this.path} has schema ${version}, newer than this sos-agent knows (${MIGRATIONS.length}); left untouched`);
    }
    if (version === MIGRATIONS.length) return;
    if (this.#opts.readOnly) throw new OutboxStoreError('schema', `outbox ${this.path} has schema ${version}; the agent upgrades it to ${MIGRATIONS.length} at its next start`);
    db.exec('BEGIN IMMEDIATE');
    try {
      for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Renames the file (and its WAL and shared-memory files) with a timestamp; never deletes anything. */
  #moveAside(): string {
    const stamp = new Date(this.#opts.now()).toISOString().replace(/[:.]/g, '-');
    let target = `${this.path}.corrupt-${stamp}`;
    for (let i = 1; existsSync(target); i++) target = `${this.path}.corrupt-${stamp}-${i}`;
    try {
      renameSync(this.path, target);
      for (const suffix of ['-wal', '-shm']) if (existsSync(this.path + suffix)) renameSync(this.path + suffix, target + suffix);
    } catch (e) {
      throw storeError('move aside', this.path, e);
    }
    return target;
  }

  #prepare(): void {
    const db = this.#db!;
    const sql: Record<string, string> = {
      insert: `INSERT INTO alerts (alert_id, created_at, enqueued_at, initiation, snapshot, state, next_attempt_at, updated_at)
               VALUES (?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT (alert_id) DO NOTHING`,
      hold: `INSERT INTO alerts (alert_id, created_at, enqueued_at, initiation, snapshot, state, next_attempt_at, updated_at, held_for)
             VALUES (?, ?, ?, ?, ?, 'held', ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING`,
      holdFor: `UPDATE alerts SET held_for = ?, updated_at = ? WHERE alert_id = ? AND state = 'held'`,
      release: `UPDATE alerts SET state = 'queued', snapshot = ?, next_attempt_at = ?, updated_at = ? WHERE alert_id = ? AND state = 'held'`,
      cancel: `UPDATE alerts SET state = 'cancelled', cancel_reason = ?, updated_at = ? WHERE alert_id = ? AND state = 'held'`,
      get: 'SELECT * FROM alerts WHERE alert_id = ?',
      due: `SELECT * FROM alerts INDEXED BY alerts_in_order WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY created_at, alert_id LIMIT ?`,
      nextDue: `SELECT MIN(next_attempt_at) AS at FROM alerts WHERE state = 'queued'`,
      sending: `UPDATE alerts SET state = 'sending', attempts = attempts + 1, route = ?, updated_at = ? WHERE alert_id = ? AND state = 'queued'`,
      delivered: `UPDATE alerts SET state = 'delivered', api_id = ?, delivered_at = ?, updated_at = ? WHERE alert_id = ? AND state = 'sending'`,
      rejected: `UPDATE alerts SET state = 'rejected', last_error_code = ?, last_error_message = ?, updated_at = ? WHERE alert_id = ? AND state = 'sending'`,
      retry: `UPDATE alerts SET state = 'queued', next_attempt_at = ?, last_error_code = ?, last_error_message = ?,
              ambiguous_retries = ambiguous_retries + ?, updated_at = ? WHERE alert_id = ? AND state = 'sending'`,
      requeue: `UPDATE alerts SET state = 'queued', next_attempt_at = ?, ambiguous_retries = ambiguous_retries + 1, updated_at = ?
                WHERE state = 'sending' RETURNING *`,
      retryNow: `UPDATE alerts SET state = 'queued', next_attempt_at = ?, updated_at = ? WHERE alert_id = ? AND state IN ('queued', 'rejected')`,
      allDue: `UPDATE alerts SET next_attempt_at = ?, updated_at = ? WHERE state = 'queued' AND next_attempt_at > ?`,
      damaged: `UPDATE alerts SET state = 'rejected', last_error_code = ?, last_error_message = ?, updated_at = ? WHERE alert_id = ? AND state = 'queued'`,
      purge: `DELETE FROM alerts WHERE state = 'delivered'`,
      depth: `SELECT COUNT(*) AS n FROM alerts WHERE ${PENDING}`,
      oldest: `SELECT MIN(created_at) AS at FROM alerts WHERE ${PENDING}`,
    };
    for (const [name, text] of Object.entries(sql)) {
      // A read-only connection cannot prepare writes against some SQLite builds; it only needs the reads.
      if (this.#opts.readOnly && /^\s*(INSERT|UPDATE|DELETE)/.test(text)) continue;
      this.#st[name] = db.prepare(text);
    }
  }

  #stmt(name: string): StatementSync {
    const st = this.#st[name];
    if (!st) throw new OutboxStoreError(this.#db ? 'readonly' : 'closed', `outbox ${this.path}: ${this.#db ? 'opened read-only' : 'not open'}`);
    return st;
  }

  #change(op: string, stmt: string, ...args: (string | number)[]): boolean {
    return this.#run(op, () => Number(this.#stmt(stmt).run(...args).changes) === 1);
  }

  #run<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw storeError(op, this.path, e);
    }
  }

  #readable(row: Row): OutboxRecord[] {
    try {
      return [this.#toRecord(row)];
    } catch (e) {
      this.#opts.logger.error({ alertId: row.alert_id, err: e instanceof Error ? e.message : String(e) }, 'outbox record damaged; skipped');
      return [];
    }
  }

  #toRecord(row: Row): OutboxRecord {
    const state = row.state as OutboxState;
    const held = state === 'held' || state === 'cancelled';
    let alert: AlertSnapshot | AlertDraft;
    try {
      // A held record may lack its location; any other must be complete, or it is damaged (and never sent).
      alert = held ? parseDraft(row.snapshot) : parseSnapshot(row.snapshot);
    } catch (e) {
      throw new OutboxStoreError('corrupt', `outbox ${this.path}: record ${row.alert_id} is damaged`, { cause: e });
    }
    const fields = {
      alertId: row.alert_id,
      createdAt: Number(row.created_at),
      enqueuedAt: Number(row.enqueued_at),
      attempts: Number(row.attempts),
      nextAttemptAt: Number(row.next_attempt_at),
      lastError: row.last_error_code === null ? null : { code: row.last_error_code, message: row.last_error_message ?? '' },
      ambiguousRetries: Number(row.ambiguous_retries),
      apiId: row.api_id,
      route: row.route,
      updatedAt: Number(row.updated_at),
      deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
      heldFor: row.held_for as HoldReason | null,
      cancelReason: row.cancel_reason as CancelReason | null,
    };
    return held ? { ...fields, state, alert } : { ...fields, state, alert: alert as AlertSnapshot };
  }
}

function isSendable(r: OutboxRecord): r is SendableRecord {
  return r.state !== 'held' && r.state !== 'cancelled';
}
