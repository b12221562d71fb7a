import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutboxStoreError } from '../../../src/outbox/store.ts';
import { OUTBOX_SCHEMA_VERSION, SqliteOutboxStore } from '../../../src/outbox/sqlite-store.ts';
import { makeAlert } from '../../support/outbox-alerts.ts';

const T0 = Date.UTC(2026, 0, 1, 12);

function storeErrorOf(fn: () => unknown): OutboxStoreError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OutboxStoreError) return e;
    throw e;
  }
  throw new Error('expected an OutboxStoreError');
}

describe('SqliteOutboxStore', () => {
  let dir: string;
  let path: string;
  const open: SqliteOutboxStore[] = [];
  const make = (opts: Partial<ConstructorParameters<typeof SqliteOutboxStore>[0]> = {}): SqliteOutboxStore => {
    const s = new SqliteOutboxStore({ path, now: () => T0, ...opts });
    open.push(s);
    return s;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sos-outbox-'));
    path = join(dir, 'state', 'outbox.db');
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates its directory and a WAL file with a versioned schema; the constructor touches nothing', () => {
    const store = make();
    expect(existsSync(path)).toBe(false);
    expect(store.open()).toEqual({ created: true, movedAside: undefined });
    const raw = new DatabaseSync(path, { readOnly: true });
    expect(raw.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(raw.prepare('PRAGMA user_version').get()).toEqual({ user_version: OUTBOX_SCHEMA_VERSION });
    raw.close();
  });

  it('has an enqueued alert on disk the moment insert returns, visible to another connection', () => {
    const agent = make();
    agent.open();
    const a = makeAlert(T0);
    agent.insert(a, T0);
    // A second process (the CLI) reads the same file while the agent still holds it open.
    const cli = make({ readOnly: true });
    cli.open();
    expect(cli.get(a.alertId)?.alert).toEqual(a);
    expect(cli.list().map((r) => r.state)).toEqual(['queued']);
    expect(storeErrorOf(() => cli.insert(makeAlert(T0 + 1), T0)).reason).toBe('readonly');
    // And the CLI's write (retry/purge) goes through while the agent holds its connection.
    const cliRw = make({ create: false, moveAsideCorrupt: false });
    cliRw.open();
    agent.markSending(a.alertId, 'direct', T0);
    agent.markRejected(a.alertId, { code: 'ERR_SOS_API_REJECTED', message: 'code -2' }, T0);
    expect(cliRw.retryNow(a.alertId, T0 + 5)).toBe(true);
    expect(agent.due(T0 + 5, 10).map((r) => r.alertId)).toEqual([a.alertId]);
  });

  it('moves a corrupt file aside with a timestamp (never deletes it) and starts a new, working store', () => {
    const garbage = 'not an outbox, a damaged card '.repeat(200);
    make().open();
    open.splice(0).forEach((s) => s.close());
    writeFileSync(path, garbage);
    const store = make();
    const report = store.open();
    expect(report.created).toBe(true);
    expect(report.movedAside).toMatch(/outbox\.db\.corrupt-2026-01-01T12-00-00-000Z$/);
    expect(readFileSync(report.movedAside!, 'utf8')).toBe(garbage);
    const a = makeAlert(T0);
    store.insert(a, T0);
    expect(store.get(a.alertId)?.state).toBe('queued');
    expect(readdirSync(join(dir, 'state')).filter((f) => f.includes('corrupt')).length).toBeGreaterThanOrEqual(1);
  });

  it('leaves a corrupt file alone when told not to move it (the CLI), with a typed error', () => {
    make().open();
    open.splice(0).forEach((s) => s.close());
    writeFileSync(path, 'garbage '.repeat(500));
    const err = storeErrorOf(() => make({ moveAsideCorrupt: false }).open());
    expect(err).toMatchObject({ code: 'ERR_SOS_OUTBOX_STORE', reason: 'corrupt' });
    expect(readFileSync(path, 'utf8')).toBe('garbage '.repeat(500));
  });

  it('refuses a file from a newer sos-agent without changing it', () => {
    const raw = (() => {
      make().open();
      open.splice(0).forEach((s) => s.close());
      return new DatabaseSync(path);
    })();
    raw.exec(`PRAGMA user_version = ${OUTBOX_SCHEMA_VERSION + 5}`);
    raw.close();
    expect(storeErrorOf(() => make().open()).reason).toBe('schema');
    expect(existsSync(path)).toBe(true);
    expect(readdirSync(join(dir, 'state')).some((f) => f.includes('corrupt'))).toBe(false);
  });

  it('says "missing" instead of creating a file when the CLI points at nothing', () => {
    expect(storeErrorOf(() => make({ create: false }).open()).reason).toBe('missing');
    expect(storeErrorOf(() => make({ readOnly: true }).open()).reason).toBe('missing');
    expect(existsSync(path)).toBe(false);
  });

  it('reports a full disk as a typed error and keeps what was already committed', () => {
    const store = make({ maxPages: 6 });
    store.open();
    const committed: string[] = [];
    let err: OutboxStoreError | undefined;
    for (let i = 0; i < 200 && !err; i++) {
      const a = makeAlert(T0 + i);
      try {
        store.insert(a, T0);
        committed.push(a.alertId);
      } catch (e) {
        err = e as OutboxStoreError;
      }
    }
    expect(err).toBeInstanceOf(OutboxStoreError);
    expect(err).toMatchObject({ code: 'ERR_SOS_OUTBOX_STORE', reason: 'full' });
    expect(committed.length).toBeGreaterThan(0);
    expect(store.list().map((r) => r.alertId)).toEqual(committed);
  });

  it('rejects (and logs) a damaged row instead of failing every scan', () => {
    const store = make();
    store.open();
    const good = makeAlert(T0 + 1);
    const bad = makeAlert(T0);
    store.insert(good, T0);
    store.insert(bad, T0);
    const raw = new DatabaseSync(path);
    raw.prepare('UPDATE alerts SET snapshot = ? WHERE alert_id = ?').run('{"alertId": 42}', bad.alertId);
    raw.close();
    expect(store.due(T0, 10).map((r) => r.alertId)).toEqual([good.alertId]);
    const row = new DatabaseSync(path, { readOnly: true }).prepare('SELECT state, last_error_code FROM alerts WHERE alert_id = ?').get(bad.alertId);
    expect(row).toEqual({ state: 'rejected', last_error_code: 'ERR_SOS_OUTBOX_STORE' });
  });

  it('upgrades a schema-1 file (from before held alerts) in place: every row kept, held alerts possible after', () => {
    // The schema as sos-agent shipped it before `held` existed, written by hand as an old agent would have.
    mkdirSync(join(dir, 'state'), { recursive: true });
    const raw = new DatabaseSync(path);
    raw.exec(`CREATE TABLE alerts (
       alert_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, initiation TEXT NOT NULL,
       snapshot TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'delivered', 'rejected')),
       attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, last_error_code TEXT, last_error_message TEXT,
       ambiguous_retries INTEGER NOT NULL DEFAULT 0, api_id TEXT, route TEXT, updated_at INTEGER NOT NULL, delivered_at INTEGER
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX alerts_in_order ON alerts (state, created_at, alert_id, next_attempt_at);
     PRAGMA user_version = 1;`);
    const old = makeAlert(T0);
    raw
      .prepare(`INSERT INTO alerts (alert_id, created_at, enqueued_at, initiation, snapshot, state, attempts, next_attempt_at, last_error_code, last_error_message, ambiguous_retries, updated_at)
                VALUES (?, ?, ?, ?, ?, 'queued', 2, ?, 'ERR_SOS_API_TRANSIENT', 'HTTP 503', 1, ?)`)
      .run(old.alertId, T0, T0, JSON.stringify(old.initiation), JSON.stringify(old), T0 + 4000, T0 + 10);
    raw.close();
    // The CLI (read-only) never migrates: it says the agent will.
    expect(storeErrorOf(() => make({ readOnly: true }).open()).message).toContain('upgrades it to');
    const store = make();
    store.open();
    expect(new DatabaseSync(path, { readOnly: true }).prepare('PRAGMA user_version').get()).toEqual({ user_version: OUTBOX_SCHEMA_VERSION });
    expect(store.get(old.alertId)).toMatchObject({ state: 'queued', attempts: 2, nextAttemptAt: T0 + 4000, ambiguousRetries: 1, lastError: { code: 'ERR_SOS_API_TRANSIENT' }, heldFor: null, cancelReason: null, alert: old });
    expect(store.due(T0 + 4000, 10).map((r) => r.alertId)).toEqual([old.alertId]);
    const held = { ...makeAlert(T0 + 1), location: null };
    store.hold(held, 'location', T0 + 20);
    expect(store.depth()).toBe(2);
    store.close();
    const again = make();
    again.open();
    expect(again.list().map((r) => r.state)).toEqual(['queued', 'held']);
  });

  it('never hands out to be sent a queued row whose location is missing: it is rejected as damaged', () => {
    const store = make();
    store.open();
    const a = makeAlert(T0);
    store.insert(a, T0);
    const raw = new DatabaseSync(path);
    raw.prepare('UPDATE alerts SET snapshot = ? WHERE alert_id = ?').run(JSON.stringify({ ...a, location: null }), a.alertId);
    raw.close();
    expect(store.due(T0, 10)).toEqual([]);
    expect(store.list({ states: ['rejected'] })).toEqual([]); // unreadable as a sendable alert: skipped, and logged
    const row = new DatabaseSync(path, { readOnly: true }).prepare('SELECT state FROM alerts WHERE alert_id = ?').get(a.alertId);
    expect(row).toEqual({ state: 'rejected' });
  });

  it('throws a typed error when used closed', () => {
    const store = make();
    expect(storeErrorOf(() => store.depth()).reason).toBe('closed');
  });
});
