import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Clock } from '../shared/clock.ts';

/**
 * The bridge's memory of every alertId it has seen, so one press starts one 9-1-1 flow however often the
 * device resends it (invariant 3). SQLite in WAL mode: several bridge processes on one host may share the file.
 *
 * An alert row is `in_flight` (one bridge instance owns it and is calling the API), `triggered` or `rejected`
 * (final: repeats get the same answer), or `failed` (gave up for now: the next copy from the device claims it
 * again). Each running bridge instance keeps a heartbeat row; an `in_flight` alert whose owner has not been
 * heard from for `leaseMs` belongs to a dead bridge (SIGKILL, crash) and is taken over, so no alert is stuck.
 * A takeover re-triggers: the dead owner may or may not have reached the API, and a lost SOS is the worse error.
 *
 * Group commit: writes share one transaction, committed (fsync, synchronous=FULL) at the end of the event-loop
 * turn, but no sooner than `commitGapMs` after the previous commit. Callers `await committed()` before any side
 * effect (calling the API, answering a device), so nothing leaves the bridge that the file would not remember after
 * a power cut. Under load every alert arrives, and is answered, in a turn of its own: committing every turn took a
 * quarter of the bridge's time at 1,000 alerts/s (a commit blocks the event loop ~0.2–0.5 ms here). With the gap,
 * a commit carries every alert that came meanwhile and their statuses leave in one write; an alert waits at most
 * the gap per commit it needs (two: claim, then outcome). A bridge that was idle for the gap still commits at the
 * end of the turn; one that shares the file with another live bridge commits every turn, as the transaction
 * holds the file's write lock.
 */
export type ClaimResult =
  | { kind: 'claimed'; takeover: boolean }
  | { kind: 'triggered'; apiId: string; message: string }
  | { kind: 'rejected'; reason: string; message: string }
  | { kind: 'in_flight'; owner: string }
  /** The alertId is already known from another device: never answered with that device's outcome. */
  | { kind: 'foreign' };

export interface DedupeStoreOptions {
  path: string;
  /** This process's id, unique per start. */
  instance: string;
  leaseMs: number;
  clock: Clock;
  /** Least time between two commits, ms (default 0: every turn's writes are committed at the end of the turn). */
  commitGapMs?: number | undefined;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'triggered', 'rejected', 'failed')),
    owner TEXT,
    api_id TEXT,
    message TEXT,
    reason TEXT,
    claims INTEGER NOT NULL DEFAULT 1,
    claimed_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  -- On claimed_at, which a trigger's answer does not change: the hot UPDATE touches no index.
  CREATE INDEX IF NOT EXISTS alerts_by_claim ON alerts (claimed_at);
  CREATE TABLE IF NOT EXISTS bridges (
    instance TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
  ) STRICT;
`;

interface AlertRow {
  device_id: string;
  state: 'in_flight' | 'triggered' | 'rejected' | 'failed';
  owner: string | null;
  api_id: string | null;
  message: string | null;
  reason: string | null;
}

interface Statements {
  insert: StatementSync;
  select: StatementSync;
  reclaimFailed: StatementSync;
  takeOver: StatementSync;
  ownerSeen: StatementSync;
  othersAlive: StatementSync;
  finish: StatementSync;
  release: StatementSync;
  heartbeat: StatementSync;
}

export class DedupeStore {
  readonly #opts: DedupeStoreOptions;
  #db: DatabaseSync | null = null;
  #st: Statements | null = null;
  #batch: { done: Promise<void>; resolve: () => void; reject: (e: unknown) => void; cancel: () => void } | null = null;
  /** When the next commit may start (performance.now(): batching is about real I/O time, not the injected clock). */
  #nextCommitAt = -Infinity;
  /** Another live bridge uses the file (as of the last heartbeat): no commit gap then. */
  #shared = false;

  constructor(options: DedupeStoreOptions) {
    this.#opts = options;
  }

  open(): void {
    if (this.#db) return;
    if (this.#opts.path !== ':memory:') mkdirSync(dirname(this.#opts.path), { recursive: true });
    const db = new DatabaseSync(this.#opts.path);
    db.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
    db.exec(SCHEMA);
    this.#db = db;
    this.#st = {
      insert: db.prepare(
        `INSERT INTO alerts (alert_id, device_id, state, owner, claimed_at, updated_at) VALUES (?, ?, 'in_flight', ?, ?, ?)
         ON CONFLICT (alert_id) DO NOTHING`,
      ),
      select: db.prepare('SELECT device_id, state, owner, api_id, message, reason FROM alerts WHERE alert_id = ?'),
      reclaimFailed: db.prepare(
        `UPDATE alerts SET state = 'in_flight', owner = ?, claims = claims + 1, claimed_at = ?, updated_at = ?
         WHERE alert_id = ? AND state = 'failed'`,
      ),
      takeOver: db.prepare(
        `UPDATE alerts SET owner = ?, claims = claims + 1, claimed_at = ?, updated_at = ?
         WHERE alert_id = ? AND state = 'in_flight' AND owner = ?`,
      ),
      ownerSeen: db.prepare('SELECT seen_at FROM bridges WHERE instance = ?'),
      othersAlive: db.prepare('SELECT 1 FROM bridges WHERE instance != ? AND seen_at > ? LIMIT 1'),
      finish: db.prepare(
        `UPDATE alerts SET state = ?, api_id = ?, message = ?, reason = ?, owner = NULL, updated_at = ?
         WHERE alert_id = ? AND state = 'in_flight' AND owner = ?`,
      ),
      release: db.prepare(
        `UPDATE alerts SET state = 'failed', reason = ?, owner = NULL, updated_at = ?
         WHERE alert_id = ? AND state = 'in_flight' AND owner = ?`,
      ),
      heartbeat: db.prepare(
        'INSERT INTO bridges (instance, seen_at) VALUES (?, ?) ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at',
      ),
    };
    this.heartbeat();
  }

  close(): void {
    const db = this.#db;
    if (!db) return;
    this.flush();
    db.prepare('DELETE FROM bridges WHERE instance = ?').run(this.#opts.instance);
    this.#db = null;
    this.#st = null;
    db.close();
  }

  #statements(): Statements {
    if (!this.#st) throw new Error('dedupe store is not open');
    return this.#st;
  }

  /** Statements inside the open transaction (opened on the first write, committed as the class comment says). */
  #write(): Statements {
    const st = this.#statements();
    if (!this.#batch) {
      // IMMEDIATE: take the write lock now, so another bridge on the file cannot interleave a claim.
      this.#db!.exec('BEGIN IMMEDIATE');
      let resolve: () => void = () => undefined;
      let reject: (e: unknown) => void = () => undefined;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Callers that ignore the outcome must not turn a failed commit into an unhandled rejection.
      done.catch(() => undefined);
      const wait = this.#nextCommitAt - performance.now();
      // Real timers: they pace disk writes, not logic under test.
      let cancel: () => void;
      if (wait > 0) {
        const timer = setTimeout(() => this.flush(), wait);
        cancel = () => clearTimeout(timer);
      } else {
        const immediate = setImmediate(() => this.flush());
        cancel = () => clearImmediate(immediate);
      }
      this.#batch = { done, resolve, reject, cancel };
    }
    return st;
  }

  /** Commits the open transaction now (normally done by the timer set when it was opened). */
  flush(): void {
    const batch = this.#batch;
    if (!batch || !this.#db) return;
    this.#batch = null;
    batch.cancel();
    try {
      this.#db.exec('COMMIT');
      this.#nextCommitAt = this.#shared ? -Infinity : performance.now() + (this.#opts.commitGapMs ?? 0);
      batch.resolve();
    } catch (e) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // Already rolled back by SQLite.
      }
      batch.reject(e);
    }
  }

  /** Resolves once every write made so far is committed and on disk; rejects if that commit failed. */
  committed(): Promise<void> {
    return this.#batch?.done ?? Promise.resolve();
  }

  /** "This bridge is alive": call well within leaseMs. */
  heartbeat(): void {
    const now = this.#opts.clock.now();
    const st = this.#write();
    st.heartbeat.run(this.#opts.instance, now);
    // An open transaction holds the file's write lock, and another bridge on the file would wait for it with its
    // event loop blocked: while one is alive, commit every turn (it learns of us at its own next heartbeat).
    this.#shared = st.othersAlive.get(this.#opts.instance, now - this.#opts.leaseMs) !== undefined;
  }

  /** Decides what to do with an alertId: trigger it (claimed), answer from memory, or leave it to its owner. */
  claim(alertId: string, deviceId: string): ClaimResult {
    const st = this.#write();
    const me = this.#opts.instance;
    const now = this.#opts.clock.now();
    if (st.insert.run(alertId, deviceId, me, now, now).changes === 1) return { kind: 'claimed', takeover: false };
    // Compare-and-swap updates, so two bridges racing for one row cannot both win; a lost race reads again.
    for (let i = 0; i < 3; i++) {
      const row = st.select.get(alertId) as AlertRow | undefined;
      if (!row) {
        if (st.insert.run(alertId, deviceId, me, now, now).changes === 1) return { kind: 'claimed', takeover: false };
        continue;
      }
      if (row.device_id !== deviceId) return { kind: 'foreign' };
      switch (row.state) {
        case 'triggered':
          return { kind: 'triggered', apiId: row.api_id ?? '', message: row.message ?? '' };
        case 'rejected':
          return { kind: 'rejected', reason: row.reason ?? 'api_rejected', message: row.message ?? '' };
        case 'failed':
          if (st.reclaimFailed.run(me, now, now, alertId).changes === 1) return { kind: 'claimed', takeover: false };
          continue;
        case 'in_flight': {
          const owner = row.owner ?? '';
          if (owner === me || this.#ownerAlive(owner, now)) return { kind: 'in_flight', owner };
          if (st.takeOver.run(me, now, now, alertId, owner).changes === 1) return { kind: 'claimed', takeover: true };
          continue;
        }
      }
    }
    return { kind: 'in_flight', owner: 'unknown' };
  }

  #ownerAlive(owner: string, now: number): boolean {
    const seen = this.#statements().ownerSeen.get(owner) as { seen_at: number } | undefined;
    return seen !== undefined && now - seen.seen_at < this.#opts.leaseMs;
  }

  /** Final: every repeat of this alertId is answered `triggered` with this id. False if no longer ours. */
  markTriggered(alertId: string, apiId: string, message: string): boolean {
    const now = this.#opts.clock.now();
    return this.#write().finish.run('triggered', apiId, message, null, now, alertId, this.#opts.instance).changes === 1;
  }

  /** Final: the API refused the alert itself. */
  markRejected(alertId: string, reason: string, message: string): boolean {
    const now = this.#opts.clock.now();
    return this.#write().finish.run('rejected', null, message, reason, now, alertId, this.#opts.instance).changes === 1;
  }

  /** Not final: gave up for now; the device's next copy claims it again (here or on another bridge). */
  release(alertId: string, reason: string): boolean {
    return this.#write().release.run(reason, this.#opts.clock.now(), alertId, this.#opts.instance).changes === 1;
  }

  /** Deletes final rows claimed more than `olderThanMs` ago; returns how many. */
  prune(olderThanMs: number): number {
    const db = this.#db;
    if (!db) return 0;
    this.#write();
    const cutoff = this.#opts.clock.now() - olderThanMs;
    const r = db.prepare(`DELETE FROM alerts WHERE claimed_at < ? AND state != 'in_flight'`).run(cutoff);
    db.prepare('DELETE FROM bridges WHERE seen_at < ?').run(cutoff);
    return Number(r.changes);
  }

  /** For tests and `doctor`: the stored state of one alert. */
  stateOf(alertId: string): { state: string; owner: string | null; apiId: string | null; reason: string | null } | null {
    const row = this.#statements().select.get(alertId) as AlertRow | undefined;
    return row ? { state: row.state, owner: row.owner, apiId: row.api_id, reason: row.reason } : null;
  }
}
