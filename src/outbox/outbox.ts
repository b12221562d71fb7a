import { retryHints } from '../api/errors.ts';
import type { LocationSnapshot } from '../gps/types.ts';
import { completeAlert } from '../incident/alert.ts';
import type { AlertDraft, AlertRoute, AlertSnapshot, TriggerResult } from '../incident/types.ts';
import { retryDelay, type BackoffPolicy } from '../shared/backoff.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { errorMessage, isSosError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { MemoryOutboxStore } from './memory-store.ts';
import {
  WAITING_STATES,
  isHeldRecord,
  lastErrorOf,
  type CancelReason,
  type HeldRecord,
  type HoldReason,
  type LastError,
  type OutboxRecord,
  type OutboxState,
  type SendableRecord,
} from './record.ts';
import { OutboxStoreError, type OutboxStore } from './store.ts';

export type OutboxEventState = 'held' | 'queued' | 'sending' | 'delivered' | 'rejected' | 'retrying' | 'cancelled';

/** What `release` did: sent on its way, still held for want of a location, or nothing (it was not held). */
export type ReleaseOutcome = 'released' | 'waiting_location' | 'not_held';

/** What the app and the feedback see of one alert's progress. */
export interface OutboxEvent {
  alertId: string;
  state: OutboxEventState;
  /** False while the alert lives only in memory (the file could not be written): show "degraded". */
  durable: boolean;
  /** The API's execution id, once delivered. */
  apiId?: string;
  /** Why it failed (retrying, rejected). */
  error?: LastError;
  /** Attempts started so far. */
  attempts?: number;
  /** When the next attempt is due (retrying). */
  nextAttemptAt?: number;
  /** Older than alertMaxAgeMs: still sent, with its original press time. */
  late?: boolean;
  /** Why it is held (held). */
  heldFor?: HoldReason;
}

export interface OutboxStats {
  /** Alerts not yet answered for (held + queued + sending). */
  depth: number;
  /** Age of the oldest of them, ms; null when none. */
  oldestAgeMs: number | null;
  inFlight: number;
  /** Since start. */
  delivered: number;
  rejected: number;
  /** Resends of a request that may have reached the API: the only way the direct path can start a second flow. */
  ambiguousRepeats: number;
  /** The file store answered its last operation. */
  storeOk: boolean;
  storeError: string | null;
  /** Alerts that a crash would lose (kept in memory because the file failed). */
  memoryOnly: number;
  /** !storeOk or memoryOnly > 0: what the person is shown. */
  degraded: boolean;
}

export interface OutboxOptions {
  store: OutboxStore;
  route: AlertRoute;
  clock: Clock;
  logger: Logger;
  /** Cap of the jittered backoff (outbox.max_backoff_s). */
  maxBackoffMs: number;
  /** Older alerts are still sent, and logged as late (outbox.alert_max_age_s). */
  alertMaxAgeMs: number;
  /** Where alerts go when the store fails; a new one by default. */
  fallbackStore?: MemoryOutboxStore;
  /** First backoff ceiling; doubles each attempt up to maxBackoffMs. */
  baseBackoffMs?: number;
  /** Alerts attempted at once, so a slow one does not hold back newer ones. */
  concurrency?: number;
  /** How often the store is scanned for due records even when nothing woke us (`outbox retry ID`). */
  pollIntervalMs?: number;
  /** Retry-After is honoured up to this: a broken gateway must not hold an SOS back for hours. */
  maxRetryAfterMs?: number;
  /** Safety net over the route's own timeouts: an attempt still unanswered after this is abandoned and retried. */
  attemptTimeoutMs?: number;
  random?: () => number;
}

interface InFlight {
  controller: AbortController;
  /** Resolves once the attempt's outcome is written. */
  done: Promise<void>;
}

/** A transition to write, and what to say and count once it is written. */
interface Plan {
  record: OutboxRecord;
  op: (s: OutboxStore) => boolean;
  after: () => void;
}

interface Settling {
  record: SendableRecord;
  outcome: Outcome;
  done: () => void;
}

type Outcome = { ok: true; result: TriggerResult } | { ok: false; error: unknown };

const STOPPED = 'outbox stopped';
const waiting: readonly OutboxState[] = WAITING_STATES;

function toLastError(e: unknown): LastError {
  const raw = (e as { code?: unknown } | null)?.code;
  const code = isSosError(e) ? e.code : typeof raw === 'string' ? raw : 'ERR_UNKNOWN';
  return lastErrorOf(code, errorMessage(e));
}

/**
 * The delivery state machine over a store: commits each alert before saying "queued" (or, for a press that may
 * not go yet, before saying "confirmed": `hold`, later `release` or `cancel`), then delivers oldest first, a few
 * at a time, one attempt per alert in flight, retrying transient failures with capped full-jitter backoff (never
 * sooner than Retry-After) for as long as it runs. Permanent failures are `rejected` and never retried. Held
 * alerts are never sent. When the file store fails, alerts carry on from memory and the outbox reports itself
 * degraded.
 */
export class Outbox {
  readonly #store: OutboxStore;
  readonly #fallback: MemoryOutboxStore;
  readonly #route: AlertRoute;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #policy: BackoffPolicy;
  readonly #alertMaxAgeMs: number;
  readonly #concurrency: number;
  readonly #pollIntervalMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #random: () => number;

  #running = false;
  #stopping = false;
  #primaryOpen = false;
  #storeOk = true;
  #storeError: string | null = null;
  /** Alerts whose home is the memory store (their file record, if any, is stale). */
  readonly #inMemory = new Set<string>();
  readonly #inFlight = new Map<string, InFlight>();
  readonly #lateLogged = new Set<string>();
  readonly #listeners = new Set<(e: OutboxEvent) => void>();
  #timer: TimerHandle | undefined;
  #scanQueued = false;
  #settling: Settling[] = [];
  #flushQueued = false;
  /** Some alert is waiting in backoff: the next success means the way is back for all of them. */
  #waiting = false;
  #delivered = 0;
  #rejected = 0;
  /** Monotonic time of the last scheduler turn: the watchdog's proof that delivery is not stuck. */
  #lastScanAt = 0;
  #ambiguous = 0;

  constructor(options: OutboxOptions) {
    this.#store = options.store;
    this.#fallback = options.fallbackStore ?? new MemoryOutboxStore();
    this.#route = options.route;
    this.#clock = options.clock;
    this.#log = options.logger;
    this.#policy = { baseMs: options.baseBackoffMs ?? 1000, capMs: options.maxBackoffMs };
    this.#alertMaxAgeMs = options.alertMaxAgeMs;
    this.#concurrency = Math.max(1, options.concurrency ?? 8);
    this.#pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 600_000;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? 60_000;
    this.#random = options.random ?? Math.random;
  }

  /** Opens the store, returns records a crash left `sending` to `queued` (at-least-once), starts delivering. */
  async start(): Promise<void> {
    if (this.#running) return;
    const now = this.#clock.now();
    this.#fallback.open();
    try {
      const report = this.#store.open();
      this.#primaryOpen = true;
      this.#storeOk = true;
      this.#storeError = null;
      if (report.movedAside) {
        this.#log.error({ movedAside: report.movedAside }, 'outbox file was unreadable: moved aside (not deleted), started a new one');
      }
    } catch (e) {
      this.#degrade(e, 'cannot open the outbox file: alerts will be kept in memory only');
    }
    for (const store of this.#stores()) {
      const requeued = this.#primaryOp(store, () => store.requeueSending(now), 'recover in-flight alerts') ?? [];
      for (const r of requeued) {
        this.#ambiguous++;
        this.#log.warn(
          { alertId: r.alertId, attempts: r.attempts, ambiguousRetries: r.ambiguousRetries },
          'alert was being sent when the agent stopped: resending with the same alertId (the API may see it twice)',
        );
        this.#emit({ alertId: r.alertId, state: 'queued', durable: store === this.#store, attempts: r.attempts });
      }
    }
    this.#running = true;
    const s = this.stats();
    this.#log.info({ store: this.#store.kind, depth: s.depth, route: this.#route.name, degraded: s.degraded }, 'outbox started');
    this.#scan();
  }

  /**
   * Cancels timers and, after up to `graceMs` for answers already on their way, aborts in-flight sends;
   * unfinished records stay `queued` for the next start.
   */
  async stop(graceMs = 0): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#stopping = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = [...this.#inFlight.values()];
    if (graceMs > 0 && pending.length > 0) {
      // Sends already at the API get a moment to be answered: cutting one off makes it ambiguous, and its
      // resend at the next start is the one way the direct path can start a second flow.
      let timer: TimerHandle | undefined;
      const grace = new Promise<void>((resolve) => (timer = this.#clock.setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled(pending.map((p) => p.done)), grace]);
      this.#clock.clearTimeout(timer);
    }
    for (const p of pending) p.controller.abort(new Error(STOPPED));
    await Promise.allSettled(pending.map((p) => p.done));
    const memoryOnly = this.#fallback.depth();
    if (memoryOnly > 0) this.#log.error({ memoryOnly }, 'outbox stopped with alerts kept only in memory: they are lost unless the agent keeps running');
    if (this.#primaryOpen) this.#store.close();
    this.#primaryOpen = false;
    this.#fallback.close();
    this.#stopping = false;
    this.#log.info('outbox stopped');
  }

  /**
   * Commits the alert, then resolves: only then may the person be told "queued". `durable: false` means the
   * file could not take it; the alert is still attempted from memory and the person should see "degraded".
   */
  async enqueue(alert: AlertSnapshot): Promise<{ durable: boolean }> {
    if (!this.#running) throw new OutboxStoreError('closed', 'outbox is not running: start() it before enqueueing');
    const now = this.#clock.now();
    const id = alert.alertId;
    let durable = false;
    if (this.#primaryOpen && !this.#inMemory.has(id)) {
      const res = this.#primaryOp(this.#store, () => this.#store.insert(alert, now), `commit alert ${id}; keeping it in memory`, true);
      if (res) {
        durable = true;
        if (!res.inserted) {
          this.#log.info({ alertId: id, state: res.record.state }, 'alert already in the outbox');
          return { durable };
        }
      }
    }
    if (!durable) {
      this.#fallback.insert(alert, now);
      this.#inMemory.add(id);
    }
    this.#log.info({ alertId: id, durable, test: alert.test, callflow: alert.callflow }, 'alert queued');
    this.#emit({ alertId: id, state: 'queued', durable, attempts: 0 });
    this.#queueScan();
    return { durable };
  }

  /**
   * Commits a confirmed press that may not be sent yet (its cancel window is open, or there is no location)
   * as `held`, then resolves: only then may the person be told "confirmed". The scheduler never sends it; a
   * crash keeps it for the next start. `replaces` names a held alert this one supersedes (a hold that became
   * a test alert): it is cancelled in the same commit, so a crash leaves exactly one of the two.
   */
  async hold(alert: AlertDraft, reason: HoldReason, options: { replaces?: string | undefined } = {}): Promise<{ durable: boolean }> {
    if (!this.#running) throw new OutboxStoreError('closed', 'outbox is not running: start() it before holding an alert');
    const now = this.#clock.now();
    const id = alert.alertId;
    const old = options.replaces;
    const oldOnFile = old !== undefined && !this.#inMemory.has(old);
    let durable = false;
    let inserted = true;
    let oldCancelled = false;
    if (this.#primaryOpen && !this.#inMemory.has(id)) {
      const res = this.#primaryOp(
        this.#store,
        () =>
          this.#store.transaction(() => {
            const cancelled = oldOnFile && this.#store.cancel(old, 'superseded', now);
            return { ...this.#store.hold(alert, reason, now), cancelled };
          }),
        `commit held alert ${id}; keeping it in memory`,
        true,
      );
      if (res) {
        durable = true;
        inserted = res.inserted;
        oldCancelled = res.cancelled;
        if (!inserted) this.#log.info({ alertId: id, state: res.record.state }, 'alert already in the outbox');
      }
    }
    if (!durable) {
      this.#fallback.hold(alert, reason, now);
      this.#inMemory.add(id);
    }
    if (old !== undefined && !oldCancelled) oldCancelled = this.#cancelHeld(old, 'superseded', now);
    if (oldCancelled) {
      this.#log.info({ alertId: old, by: id }, 'held alert superseded (the hold became a test alert): cancelled, never sent');
      this.#emit({ alertId: old!, state: 'cancelled', durable: !this.#inMemory.has(old!) });
    }
    if (!inserted) return { durable };
    this.#log.info({ alertId: id, durable, heldFor: reason, test: alert.test, hasLocation: alert.location !== null }, 'alert held');
    this.#emit({ alertId: id, state: 'held', durable, heldFor: reason, attempts: 0 });
    return { durable };
  }

  /**
   * A held alert may go: with `location` (replacing the held one) or the one it was held with, it becomes
   * `queued`, due now. With neither, it stays held, now for `location` (call again with the first fix).
   */
  async release(alertId: string, location?: LocationSnapshot): Promise<{ outcome: ReleaseOutcome; durable: boolean }> {
    if (!this.#running) throw new OutboxStoreError('closed', 'outbox is not running: start() it before releasing an alert');
    const now = this.#clock.now();
    const record = this.#find(alertId);
    if (!record || record.state !== 'held') {
      this.#log.warn({ alertId, state: record?.state }, 'release of an alert that is not held: nothing to do');
      return { outcome: 'not_held', durable: !this.#inMemory.has(alertId) };
    }
    if (completeAlert(record.alert, location) === null) {
      if (record.heldFor !== 'location') this.#apply(record, (s) => s.holdFor(alertId, 'location', now));
      const durable = !this.#inMemory.has(alertId);
      this.#log.warn({ alertId, durable }, 'alert held until the first location: it goes out with the first fix');
      this.#emit({ alertId, state: 'held', durable, heldFor: 'location', attempts: 0 });
      return { outcome: 'waiting_location', durable };
    }
    const released = this.#apply(record, (s) => s.release(alertId, location, now));
    const durable = !this.#inMemory.has(alertId);
    if (!released) return { outcome: 'not_held', durable };
    this.#log.info({ alertId, durable, heldFor: record.heldFor, heldMs: now - record.enqueuedAt }, 'alert released: queued');
    this.#emit({ alertId, state: 'queued', durable, attempts: 0 });
    this.#queueScan();
    return { outcome: 'released', durable };
  }

  /** The person cancelled a held alert within its cancel window: `cancelled`, kept for the record, never sent. */
  async cancel(alertId: string, reason: CancelReason = 'person'): Promise<boolean> {
    if (!this.#running) throw new OutboxStoreError('closed', 'outbox is not running: start() it before cancelling an alert');
    const cancelled = this.#cancelHeld(alertId, reason, this.#clock.now());
    if (cancelled) {
      this.#log.info({ alertId, reason }, 'held alert cancelled: never sent');
      this.#emit({ alertId, state: 'cancelled', durable: !this.#inMemory.has(alertId) });
    } else {
      this.#log.warn({ alertId }, 'cancel of an alert that is not held: nothing to do');
    }
    return cancelled;
  }

  /** Every alert held now, oldest press first: after a restart, the app decides what becomes of them. */
  held(): HeldRecord[] {
    const out: HeldRecord[] = [];
    for (const store of this.#stores()) {
      const records = this.#primaryOp(store, () => store.list({ states: ['held'] }), 'list held alerts') ?? [];
      for (const r of records) {
        if (store === this.#store && this.#inMemory.has(r.alertId)) continue;
        if (isHeldRecord(r)) out.push(r);
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.alertId < b.alertId ? -1 : 1));
  }

  /** The way is open again (a token fetch or probe succeeded, the MQTT link came back): every waiting alert is due now. */
  wayIsBack(): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    let moved = 0;
    for (const store of this.#stores()) moved += this.#primaryOp(store, () => store.makeAllDue(now), 'reschedule waiting alerts') ?? 0;
    this.#waiting = false;
    if (moved > 0) this.#log.info({ alerts: moved }, 'the way is back: retrying every waiting alert now');
    this.#queueScan();
  }

  onChange(listener: (e: OutboxEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The scheduler is turning: it scanned within a few poll intervals. A store that fails still counts as alive
   * (the outbox carries on from memory and reports degraded); a stuck scheduler does not.
   */
  alive(): boolean {
    return this.#running && this.#clock.monotonic() - this.#lastScanAt <= 5 * this.#pollIntervalMs;
  }

  stats(): OutboxStats {
    const now = this.#clock.now();
    let depth = 0;
    let oldest: number | undefined;
    for (const store of this.#stores()) {
      const d = this.#primaryOp(store, () => store.depth(), 'count alerts');
      const o = this.#primaryOp(store, () => store.oldestPendingAt(), 'count alerts');
      depth += d ?? 0;
      if (o !== undefined && (oldest === undefined || o < oldest)) oldest = o;
    }
    // A record moved to memory mid-flight still looks pending in the file; count it once.
    if (this.#primaryOpen) {
      for (const id of this.#inMemory) {
        const r = this.#primaryOp(this.#store, () => this.#store.get(id), 'count alerts');
        if (r && waiting.includes(r.state)) depth--;
      }
    }
    const memoryOnly = this.#fallback.depth();
    return {
      depth,
      oldestAgeMs: oldest === undefined ? null : Math.max(0, now - oldest),
      inFlight: this.#inFlight.size,
      delivered: this.#delivered,
      rejected: this.#rejected,
      ambiguousRepeats: this.#ambiguous,
      storeOk: this.#storeOk,
      storeError: this.#storeError,
      memoryOnly,
      degraded: !this.#storeOk || memoryOnly > 0,
    };
  }

  /** The file store (when open) then memory. */
  #stores(): OutboxStore[] {
    return this.#primaryOpen ? [this.#store, this.#fallback] : [this.#fallback];
  }

  /** Soon, but after the caller's continuation: "queued" reaches the person before the first attempt's write. */
  #queueScan(): void {
    if (this.#scanQueued || !this.#running) return;
    this.#scanQueued = true;
    setImmediate(() => {
      this.#scanQueued = false;
      this.#scan();
    });
  }

  /**
   * Starts due alerts into free slots, then sleeps until the next one is due (or the poll interval). Outcomes
   * just settled are written in the same commit as the claims they make room for: one fsync per turn, and
   * under a slow disk the batches grow by themselves (group commit).
   */
  #scan(settled: readonly Plan[] = []): void {
    if (!this.#running && settled.length === 0) return;
    this.#lastScanAt = this.#clock.monotonic();
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.#clock.now();
    const slots = this.#running ? this.#concurrency - this.#inFlight.size : 0;
    let chosen: SendableRecord[] = [];
    if (slots > 0) {
      const candidates: SendableRecord[] = [];
      if (this.#primaryOpen) {
        const due = this.#primaryOp(this.#store, () => this.#store.due(now, slots + this.#inMemory.size), 'scan for due alerts') ?? [];
        candidates.push(...due.filter((r) => !this.#inMemory.has(r.alertId)));
      }
      candidates.push(...this.#fallback.due(now, slots));
      candidates.sort((a, b) => a.createdAt - b.createdAt || (a.alertId < b.alertId ? -1 : 1));
      chosen = candidates.filter((r) => !this.#inFlight.has(r.alertId)).slice(0, slots);
    }
    const route = this.#route.name;
    const claims = chosen.map((r) => ({ record: r, op: (st: OutboxStore) => st.markSending(r.alertId, route, now) }));
    const results = this.#applyAll([...settled, ...claims]);
    for (const plan of settled) plan.after();
    chosen.forEach((r, i) => {
      if (results[settled.length + i]) this.#launch(r, now);
    });
    if (!this.#running) return;
    let next: number | undefined;
    let dueNow = false;
    for (const store of this.#stores()) {
      const at = this.#primaryOp(store, () => store.nextDueAt(), 'scan for due alerts');
      if (at === undefined) continue;
      if (at <= now) dueNow = true;
      else if (next === undefined || at < next) next = at;
    }
    // A retry just written as due at once (zero jitter) is picked up now, not at the next poll.
    if (dueNow && settled.length > 0 && this.#inFlight.size < this.#concurrency) {
      this.#queueScan();
      return;
    }
    const delay = next === undefined ? this.#pollIntervalMs : Math.min(this.#pollIntervalMs, next - now);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#scan();
    }, delay);
  }

  /** Starts one attempt of an alert just claimed (`sending`); it settles through #flush. */
  #launch(record: SendableRecord, now: number): void {
    const id = record.alertId;
    const sending: SendableRecord = { ...record, state: 'sending', attempts: record.attempts + 1, route: this.#route.name, updatedAt: now };
    const late = now - record.createdAt > this.#alertMaxAgeMs;
    if (late && !this.#lateLogged.has(id)) {
      this.#lateLogged.add(id);
      this.#log.warn({ alertId: id, ageS: Math.round((now - record.createdAt) / 1000), createdAt: new Date(record.createdAt).toISOString() }, 'alert is late: sending it with its original press time');
    }
    this.#emit({ alertId: id, state: 'sending', durable: !this.#inMemory.has(id), attempts: sending.attempts, ...(late ? { late } : {}) });
    const controller = new AbortController();
    const done = new Promise<void>((resolve) => {
      this.#send(sending, controller).then(
        (outcome) => this.#queueSettle({ record: sending, outcome, done: resolve }),
        (e: unknown) => {
          this.#log.error({ alertId: id, err: errorMessage(e) }, 'outbox bug while settling an attempt');
          resolve();
        },
      );
    });
    this.#inFlight.set(id, { controller, done });
  }

  /** The route's answer, or its failure; abandoned when aborted even if the route ignores the signal. */
  #send(record: SendableRecord, controller: AbortController): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const deadline = this.#clock.setTimeout(
        () => controller.abort(new Error(`no answer within ${this.#attemptTimeoutMs} ms; abandoned`)),
        this.#attemptTimeoutMs,
      );
      const finish = (o: Outcome): void => {
        this.#clock.clearTimeout(deadline);
        controller.signal.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const onAbort = (): void => finish({ ok: false, error: controller.signal.reason });
      controller.signal.addEventListener('abort', onAbort, { once: true });
      Promise.resolve()
        .then(() => this.#route.send(record.alert, controller.signal))
        .then(
          (result) => finish({ ok: true, result }),
          (error: unknown) => finish({ ok: false, error }),
        );
    });
  }

  /** Outcomes that arrive together are written together (one commit), on the next turn of the loop. */
  #queueSettle(item: Settling): void {
    this.#settling.push(item);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const batch = this.#settling.splice(0);
    if (batch.length === 0) return;
    const now = this.#clock.now();
    const plans = batch.map((b) => this.#plan(b.record, b.outcome, now));
    for (const b of batch) this.#inFlight.delete(b.record.alertId);
    this.#scan(plans);
    for (const b of batch) b.done();
  }

  /** What an outcome writes, and what is said and counted once it is written. */
  #plan(record: OutboxRecord, outcome: Outcome, now: number): Plan {
    const id = record.alertId;
    const durable = (): boolean => !this.#inMemory.has(id);
    if (outcome.ok) {
      const apiId = outcome.result.id;
      return {
        record,
        op: (s) => s.markDelivered(id, apiId, now),
        after: () => {
          this.#delivered++;
          this.#log.info({ alertId: id, apiId, attempts: record.attempts, route: record.route, delayMs: now - record.createdAt }, 'alert delivered');
          this.#emit({ alertId: id, state: 'delivered', durable: durable(), apiId, attempts: record.attempts });
          if (this.#waiting) this.wayIsBack();
        },
      };
    }
    const error = toLastError(outcome.error);
    const hints = retryHints(outcome.error);
    if (this.#stopping) {
      // Stopped mid-send: due at once for the next start. The request may have gone out.
      return {
        record,
        op: (s) => s.markRetry(id, now, error, hints.ambiguous, now),
        after: () => {
          if (hints.ambiguous) this.#ambiguous++;
          this.#emit({ alertId: id, state: 'queued', durable: durable(), attempts: record.attempts });
        },
      };
    }
    if (!hints.retryable) {
      return {
        record,
        op: (s) => s.markRejected(id, error, now),
        after: () => {
          this.#rejected++;
          this.#log.error({ alertId: id, code: error.code, reason: error.message, attempts: record.attempts }, 'alert rejected: not retried');
          this.#emit({ alertId: id, state: 'rejected', durable: durable(), error, attempts: record.attempts });
        },
      };
    }
    const retryAfter = hints.retryAfterMs === undefined ? undefined : Math.min(hints.retryAfterMs, this.#maxRetryAfterMs);
    const delay = retryDelay(record.attempts - 1, this.#policy, retryAfter, this.#random);
    const nextAttemptAt = now + delay;
    return {
      record,
      op: (s) => s.markRetry(id, nextAttemptAt, error, hints.ambiguous, now),
      after: () => {
        this.#waiting = true;
        const fields = { alertId: id, code: error.code, reason: error.message, attempts: record.attempts, retryInMs: delay };
        if (hints.ambiguous) {
          this.#ambiguous++;
          this.#log.warn(fields, 'no answer after sending: resending with the same alertId (the API may see it twice)');
        } else {
          this.#log.warn(fields, 'delivery failed: will retry');
        }
        this.#emit({ alertId: id, state: 'retrying', durable: durable(), error, attempts: record.attempts, nextAttemptAt });
      },
    };
  }

  /**
   * Several transitions in one file transaction (one fsync). If that fails, each is tried on its own, so one
   * bad write moves only its own alert to memory.
   */
  #applyAll(items: readonly { record: OutboxRecord; op: (s: OutboxStore) => boolean }[]): boolean[] {
    const onFile = this.#primaryOpen ? items.filter((i) => !this.#inMemory.has(i.record.alertId)) : [];
    if (onFile.length > 1) {
      const res = this.#primaryOp(this.#store, () => this.#store.transaction(() => onFile.map((i) => i.op(this.#store))), 'record progress of a batch', true);
      if (res) {
        const byItem = new Map(onFile.map((item, k) => [item, res[k]!]));
        return items.map((i) => byItem.get(i) ?? this.#apply(i.record, i.op));
      }
    }
    return items.map((i) => this.#apply(i.record, i.op));
  }

  /**
   * Runs a transition where the record lives. When the file fails mid-way, the record (as it stood before
   * the transition) moves to memory and the transition is done there: the alert carries on, degraded.
   */
  #apply(record: OutboxRecord, op: (s: OutboxStore) => boolean): boolean {
    const id = record.alertId;
    if (this.#primaryOpen && !this.#inMemory.has(id)) {
      const res = this.#primaryOp(this.#store, () => op(this.#store), `record progress of ${id}; carrying on in memory`, true);
      if (res !== undefined) return res;
      this.#fallback.adopt(record);
      this.#inMemory.add(id);
    }
    return op(this.#fallback);
  }

  /** The record where it lives now: memory once it moved there, else the file. */
  #find(alertId: string): OutboxRecord | undefined {
    if (this.#primaryOpen && !this.#inMemory.has(alertId)) {
      const r = this.#primaryOp(this.#store, () => this.#store.get(alertId), `read alert ${alertId}`);
      if (r) return r;
    }
    return this.#fallback.get(alertId);
  }

  #cancelHeld(alertId: string, reason: CancelReason, now: number): boolean {
    const record = this.#find(alertId);
    return record?.state === 'held' && this.#apply(record, (s) => s.cancel(alertId, reason, now));
  }

  /**
   * One call on a store; a file-store failure is logged, marks the outbox degraded, and gives undefined.
   * Only a write that worked clears the degraded state (a read-only file still answers reads).
   */
  #primaryOp<T>(store: OutboxStore, fn: () => T, what: string, write = false): T | undefined {
    if (store !== this.#store) return fn();
    try {
      const out = fn();
      if (write && !this.#storeOk) {
        this.#storeOk = true;
        this.#storeError = null;
        this.#log.info('outbox file answers again');
      }
      return out;
    } catch (e) {
      this.#degrade(e, `could not ${what}`);
      return undefined;
    }
  }

  #degrade(e: unknown, why: string): void {
    const message = errorMessage(e);
    // Logged once per distinct failure: a dead disk must not flood the log on every scan.
    if (this.#storeOk || this.#storeError !== message) {
      this.#log.error({ err: message, code: isSosError(e) ? e.code : undefined, reason: e instanceof OutboxStoreError ? e.reason : undefined }, `outbox degraded: ${why}`);
    }
    this.#storeOk = false;
    this.#storeError = message;
  }

  #emit(event: OutboxEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (e) {
        this.#log.error({ err: errorMessage(e) }, 'outbox listener threw');
      }
    }
  }
}
