import type { LocationSnapshot } from '../gps/types.ts';
import type { AlertDraft, AlertSnapshot } from '../incident/types.ts';
import { ErrorCodes, SosError } from '../shared/errors.ts';
import type { CancelReason, HoldReason, LastError, OutboxRecord, OutboxState, SendableRecord } from './record.ts';

export type { CancelReason, HeldRecord, HoldReason, LastError, OutboxRecord, OutboxState, SendableRecord } from './record.ts';

/**
 * Where the outbox keeps its alerts. Synchronous on purpose: `node:sqlite` is, and an enqueue must be committed
 * (fsync'd) before the person is told "queued". Every write is its own transaction unless grouped by
 * `transaction`; a transition names the state it
 * comes from, so a record changed by someone else (the CLI, a second process) is left alone and `false` returned.
 * One contract suite (test/unit/outbox/store-contract.ts) checks every implementation.
 */
export interface OutboxStore {
  /** sqlite, memory: for logs and health. */
  readonly kind: string;
  /** Does the I/O the constructor must not: opens or creates the file, checks it, migrates the schema. */
  open(): StoreOpenReport;
  close(): void;
  /** Adds a `queued` record due now; a second insert of the same alertId keeps the first (inserted=false). */
  insert(alert: AlertSnapshot, now: number): { record: OutboxRecord; inserted: boolean };
  /**
   * Adds a `held` record: committed, never due, never sent (a press in its cancel window, or one without a
   * location yet). A second hold or insert of the same alertId keeps the first (inserted=false).
   */
  hold(alert: AlertDraft, reason: HoldReason, now: number): { record: OutboxRecord; inserted: boolean };
  /** held → held for another reason (the window ran out before the first fix: now it waits for one). */
  holdFor(alertId: string, reason: HoldReason, now: number): boolean;
  /**
   * held → queued, due now. `location` replaces the held one (the newer snapshot); without it the held one is
   * kept. False, changing nothing, when the record is not held or would still have no location.
   */
  release(alertId: string, location: LocationSnapshot | undefined, now: number): boolean;
  /** held → cancelled: never sent, kept for the audit trail. */
  cancel(alertId: string, reason: CancelReason, now: number): boolean;
  get(alertId: string): OutboxRecord | undefined;
  /** Oldest press first. */
  list(filter?: { states?: readonly OutboxState[]; limit?: number }): OutboxRecord[];
  /** `queued` records due at `now`, oldest press first. Never a held one: only these reach a route. */
  due(now: number, limit: number): SendableRecord[];
  /** The earliest `nextAttemptAt` of any `queued` record, to sleep until then. */
  nextDueAt(): number | undefined;
  /** queued → sending, attempts + 1. */
  markSending(alertId: string, route: string, now: number): boolean;
  /** sending → delivered. */
  markDelivered(alertId: string, apiId: string, now: number): boolean;
  /** sending → rejected: never retried unless someone asks (`retryNow`). */
  markRejected(alertId: string, error: LastError, now: number): boolean;
  /** sending → queued, due at `nextAt`; `ambiguous` counts a resend of a request that may have arrived. */
  markRetry(alertId: string, nextAt: number, error: LastError, ambiguous: boolean, now: number): boolean;
  /** Crash recovery: every `sending` record back to `queued`, due now, counted as an ambiguous repeat. */
  requeueSending(now: number): SendableRecord[];
  /** queued|rejected → queued, due now (installer's `outbox retry ID`). */
  retryNow(alertId: string, now: number): boolean;
  /** Every waiting `queued` record due now (the way is back); returns how many moved. */
  makeAllDue(now: number): number;
  /** Deletes delivered records; returns how many. */
  purgeDelivered(): number;
  /**
   * Runs several writes as one transaction (one fsync): all or none. Used to claim or settle a few alerts at
   * once after an outage, so recovery costs a commit per batch, not two per alert. Not reentrant.
   */
  transaction<T>(fn: () => T): T;
  /** Records not yet answered for: held + queued + sending. */
  depth(): number;
  /** Press time of the oldest record not yet answered for. */
  oldestPendingAt(): number | undefined;
}

export interface StoreOpenReport {
  /** True when a new, empty store was made. */
  created: boolean;
  /** Where an unreadable file was moved (it is never deleted). */
  movedAside?: string | undefined;
}

export type StoreFailure = 'full' | 'readonly' | 'corrupt' | 'busy' | 'io' | 'missing' | 'schema' | 'closed' | 'other';

/** The store could not do what was asked: disk full, read-only, corrupt, locked. The outbox falls back to memory. */
export class OutboxStoreError extends SosError {
  readonly reason: StoreFailure;
  constructor(reason: StoreFailure, message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.OUTBOX_STORE, message, { cause: options.cause, retryable: reason === 'busy' });
    this.name = 'OutboxStoreError';
    this.reason = reason;
  }
}
