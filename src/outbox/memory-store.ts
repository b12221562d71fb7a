import type { LocationSnapshot } from '../gps/types.ts';
import { completeAlert } from '../incident/alert.ts';
import type { AlertDraft, AlertSnapshot } from '../incident/types.ts';
import { WAITING_STATES, type CancelReason, type HoldReason, type LastError, type OutboxRecord, type OutboxState, type SendableRecord } from './record.ts';
import { OutboxStoreError, type OutboxStore, type StoreOpenReport } from './store.ts';

const waiting: readonly OutboxState[] = WAITING_STATES;

function byPressTime(a: OutboxRecord, b: OutboxRecord): number {
  return a.createdAt - b.createdAt || (a.alertId < b.alertId ? -1 : a.alertId > b.alertId ? 1 : 0);
}

/**
 * The outbox in memory: what alerts fall back to when the file cannot be written (they are still attempted,
 * but a crash loses them, so the person is shown "degraded"). Records are copied in and out, as a file would.
 */
export class MemoryOutboxStore implements OutboxStore {
  readonly kind = 'memory';
  #records = new Map<string, OutboxRecord>();
  #open = false;

  open(): StoreOpenReport {
    this.#open = true;
    return { created: this.#records.size === 0 };
  }

  close(): void {
    this.#open = false;
  }

  insert(alert: AlertSnapshot, now: number): { record: OutboxRecord; inserted: boolean } {
    return this.#add({ ...fresh(alert.alertId, alert.createdAt, now), state: 'queued', alert: structuredClone(alert) });
  }

  hold(alert: AlertDraft, reason: HoldReason, now: number): { record: OutboxRecord; inserted: boolean } {
    return this.#add({ ...fresh(alert.alertId, alert.createdAt, now), state: 'held', alert: structuredClone(alert), heldFor: reason });
  }

  holdFor(alertId: string, reason: HoldReason, now: number): boolean {
    return this.#transition(alertId, ['held'], (r) => {
      r.heldFor = reason;
      r.updatedAt = now;
    });
  }

  release(alertId: string, location: LocationSnapshot | undefined, now: number): boolean {
    const r = this.#get(alertId);
    if (!r || r.state !== 'held') return false;
    const alert = completeAlert(r.alert, location);
    if (alert === null) return false;
    this.#records.set(alertId, { ...r, state: 'queued', alert: structuredClone(alert), nextAttemptAt: now, updatedAt: now });
    return true;
  }

  cancel(alertId: string, reason: CancelReason, now: number): boolean {
    return this.#transition(alertId, ['held'], (r) => {
      r.state = 'cancelled';
      r.cancelReason = reason;
      r.updatedAt = now;
    });
  }

  /** Takes over a record as it stands in another store (the file failed mid-flight). */
  adopt(record: OutboxRecord): void {
    this.#check();
    this.#records.set(record.alertId, structuredClone(record));
  }

  get(alertId: string): OutboxRecord | undefined {
    const r = this.#get(alertId);
    return r && structuredClone(r);
  }

  list(filter: { states?: readonly OutboxState[]; limit?: number } = {}): OutboxRecord[] {
    this.#check();
    const states = filter.states;
    const all = [...this.#records.values()].filter((r) => !states || states.includes(r.state)).sort(byPressTime);
    return all.slice(0, filter.limit ?? all.length).map((r) => structuredClone(r));
  }

  due(now: number, limit: number): SendableRecord[] {
    this.#check();
    return [...this.#records.values()]
      .filter((r): r is SendableRecord => r.state === 'queued' && r.nextAttemptAt <= now)
      .sort(byPressTime)
      .slice(0, Math.max(0, limit))
      .map((r) => structuredClone(r));
  }

  nextDueAt(): number | undefined {
    this.#check();
    let min: number | undefined;
    for (const r of this.#records.values()) if (r.state === 'queued' && (min === undefined || r.nextAttemptAt < min)) min = r.nextAttemptAt;
    return min;
  }

  markSending(alertId: string, route: string, now: number): boolean {
    return this.#transition(alertId, ['queued'], (r) => {
      r.state = 'sending';
      r.attempts += 1;
      r.route = route;
      r.updatedAt = now;
    });
  }

  markDelivered(alertId: string, apiId: string, now: number): boolean {
    return this.#transition(alertId, ['sending'], (r) => {
      r.state = 'delivered';
      r.apiId = apiId;
      r.deliveredAt = now;
      r.updatedAt = now;
    });
  }

  markRejected(alertId: string, error: LastError, now: number): boolean {
    return this.#transition(alertId, ['sending'], (r) => {
      r.state = 'rejected';
      r.lastError = { ...error };
      r.updatedAt = now;
    });
  }

  markRetry(alertId: string, nextAt: number, error: LastError, ambiguous: boolean, now: number): boolean {
    return this.#transition(alertId, ['sending'], (r) => {
      r.state = 'queued';
      r.nextAttemptAt = nextAt;
      r.lastError = { ...error };
      if (ambiguous) r.ambiguousRetries += 1;
      r.updatedAt = now;
    });
  }

  requeueSending(now: number): SendableRecord[] {
    this.#check();
    const out: SendableRecord[] = [];
    for (const r of [...this.#records.values()].sort(byPressTime)) {
      if (r.state !== 'sending') continue;
      r.state = 'queued';
      r.nextAttemptAt = now;
      r.ambiguousRetries += 1;
      r.updatedAt = now;
      out.push(structuredClone(r));
    }
    return out;
  }

  retryNow(alertId: string, now: number): boolean {
    return this.#transition(alertId, ['queued', 'rejected'], (r) => {
      r.state = 'queued';
      r.nextAttemptAt = now;
      r.updatedAt = now;
    });
  }

  makeAllDue(now: number): number {
    this.#check();
    let n = 0;
    for (const r of this.#records.values()) {
      if (r.state === 'queued' && r.nextAttemptAt > now) {
        r.nextAttemptAt = now;
        n++;
      }
    }
    return n;
  }

  purgeDelivered(): number {
    this.#check();
    let n = 0;
    for (const [id, r] of this.#records) {
      if (r.state === 'delivered') {
        this.#records.delete(id);
        n++;
      }
    }
    return n;
  }

  transaction<T>(fn: () => T): T {
    this.#check();
    // All or none, as a file store would: a throw puts every record back as it was.
    const saved = new Map([...this.#records].map(([id, r]) => [id, structuredClone(r)]));
    try {
      return fn();
    } catch (e) {
      this.#records = saved;
      throw e;
    }
  }

  depth(): number {
    this.#check();
    let n = 0;
    for (const r of this.#records.values()) if (waiting.includes(r.state)) n++;
    return n;
  }

  oldestPendingAt(): number | undefined {
    this.#check();
    let min: number | undefined;
    for (const r of this.#records.values()) {
      if (waiting.includes(r.state) && (min === undefined || r.createdAt < min)) min = r.createdAt;
    }
    return min;
  }

  #check(): void {
    if (!this.#open) throw new OutboxStoreError('closed', 'memory outbox store is not open');
  }

  #add(record: OutboxRecord): { record: OutboxRecord; inserted: boolean } {
    const existing = this.#get(record.alertId);
    if (existing) return { record: structuredClone(existing), inserted: false };
    this.#records.set(record.alertId, record);
    return { record: structuredClone(record), inserted: true };
  }

  #get(alertId: string): OutboxRecord | undefined {
    this.#check();
    return this.#records.get(alertId);
  }

  #transition(alertId: string, from: readonly OutboxState[], change: (r: OutboxRecord) => void): boolean {
    const r = this.#get(alertId);
    if (!r || !from.includes(r.state)) return false;
    change(r);
    return true;
  }
}

/** The fields of a record just committed, before its state and alert are set. */
function fresh(alertId: string, createdAt: number, now: number) {
  return {
    alertId,
    createdAt,
    enqueuedAt: now,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    ambiguousRetries: 0,
    apiId: null,
    route: null,
    updatedAt: now,
    deliveredAt: null,
    heldFor: null as HoldReason | null,
    cancelReason: null as CancelReason | null,
  };
}
