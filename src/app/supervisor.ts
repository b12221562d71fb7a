import type { Clock, TimerHandle } from '../shared/clock.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * What one check says. `ok: false` means a press would not get through right now: the agent is "degraded".
 * `warn` (with ok: true) is worth showing but does not degrade: e.g. no fix while a static fallback stands in.
 */
export interface CheckResult {
  ok: boolean;
  detail: string;
  warn?: boolean;
}

/** How a part pushes its news, so a failure shows at once instead of at the next poll. */
export interface CheckEvents {
  report(result: CheckResult): void;
  /** Something changed: run the check now. */
  recheck(): void;
}

export interface HealthCheck {
  readonly name: string;
  /** Polled every interval (and on `recheck`). A throw or a timeout counts as a failure. */
  run(): CheckResult | Promise<CheckResult>;
  /** Per-check timeout, ms; the supervisor's `checkTimeoutMs` otherwise. */
  timeoutMs?: number;
  /** Subscribes to the part's events; returns the unsubscribe. Called by start(), undone by stop(). */
  watch?(events: CheckEvents): () => void;
}

export type HealthStateName = 'healthy' | 'degraded';

export interface CheckFinding {
  name: string;
  detail: string;
}

export interface HealthState {
  state: HealthStateName;
  /** Checks failing now, in the order the checks were given (reported-only names after them). */
  failing: CheckFinding[];
  warnings: CheckFinding[];
}

export interface SupervisorOptions {
  clock: Clock;
  logger: Logger;
  /** How often every check is polled, ms. Events pushed in show at once regardless. */
  intervalMs: number;
  checks: readonly HealthCheck[];
  /** Default timeout of one check, ms (default 5000). */
  checkTimeoutMs?: number;
}

interface Entry {
  check: HealthCheck | null;
  result: CheckResult | null;
  /** Bumped by every result; a poll that started before a newer result arrived is discarded. */
  version: number;
  running: boolean;
}

const DEFAULT_CHECK_TIMEOUT_MS = 5000;

/**
 * Keeps asking whether a press would get through: polls its checks every `intervalMs` and takes events pushed
 * in by the parts (`report`, or a check's own `watch`), so a broken link shows the moment it breaks. It is
 * "degraded" while any check fails; `onChange` fires on healthy↔degraded and when the set of failing checks
 * changes (not when only a detail does), and the app maps that to the LED and to the MQTT presence.
 */
export class Supervisor {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(state: HealthState) => void>();
  #unwatch: Array<() => void> = [];
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;
  /** Rounds in progress: their results are announced together, so one round cannot flicker through half-states. */
  #rounds = 0;
  /** What listeners were last told, to fire only on a real change. */
  #announced: { state: HealthStateName; failing: string } = { state: 'healthy', failing: '' };

  constructor(options: SupervisorOptions) {
    this.#clock = options.clock;
    this.#log = options.logger;
    this.#intervalMs = options.intervalMs;
    this.#timeoutMs = options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    for (const check of options.checks) {
      if (this.#entries.has(check.name)) throw new Error(`two health checks named "${check.name}"`);
      this.#entries.set(check.name, { check, result: null, version: 0, running: false });
    }
  }

  /** Subscribes to the parts' events and runs every check once; resolves when the first round is in (a hung check: after its timeout). */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stopped = false;
    for (const entry of this.#entries.values()) {
      const check = entry.check;
      if (!check?.watch) continue;
      this.#unwatch.push(
        check.watch({
          report: (result) => this.#record(check.name, result),
          recheck: () => void this.#runOne(entry),
        }),
      );
    }
    await this.#runAll();
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const off of this.#unwatch.splice(0)) off();
  }

  /** A part's news, e.g. `report('broker', false, 'disconnected')`. A name with no check is tracked too. */
  report(name: string, ok: boolean, detail: string, warn = false): void {
    this.#record(name, warn ? { ok, detail, warn } : { ok, detail });
  }

  /** Runs every check now (e.g. after the app changed something); resolves when they have answered. */
  checkNow(): Promise<void> {
    return this.#runAll();
  }

  state(): HealthStateName {
    return this.snapshot().state;
  }

  failing(): CheckFinding[] {
    return this.snapshot().failing;
  }

  snapshot(): HealthState {
    const failing: CheckFinding[] = [];
    const warnings: CheckFinding[] = [];
    for (const [name, entry] of this.#entries) {
      const r = entry.result;
      if (!r) continue;
      if (!r.ok) failing.push({ name, detail: r.detail });
      else if (r.warn) warnings.push({ name, detail: r.detail });
    }
    return { state: failing.length > 0 ? 'degraded' : 'healthy', failing, warnings };
  }

  /** Fired on healthy↔degraded and when the set of failing checks changes. Returns the unsubscribe. */
  onChange(listener: (state: HealthState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      // The period does not wait for slow checks: a hung check must not stop the others from being polled.
      void this.#runAll();
      this.#schedule();
    }, this.#intervalMs);
  }

  async #runAll(): Promise<void> {
    this.#rounds++;
    try {
      await Promise.all([...this.#entries.values()].map((e) => this.#runOne(e)));
    } finally {
      this.#rounds--;
    }
    this.#announce();
  }

  async #runOne(entry: Entry): Promise<void> {
    const check = entry.check;
    // One poll at a time per check; a poll that hangs is answered by its timeout.
    if (!check || entry.running) return;
    entry.running = true;
    const startedAt = entry.version;
    let result: CheckResult;
    try {
      result = await this.#withTimeout(check);
    } catch (e) {
      result = { ok: false, detail: `check failed: ${errorMessage(e)}` };
    } finally {
      entry.running = false;
    }
    // A result pushed while this poll ran is newer news than the poll's.
    if (entry.version !== startedAt) return;
    this.#record(check.name, result, this.#rounds === 0);
  }

  #withTimeout(check: HealthCheck): Promise<CheckResult> {
    const ms = check.timeoutMs ?? this.#timeoutMs;
    return new Promise<CheckResult>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => resolve({ ok: false, detail: `no answer within ${ms} ms` }), ms);
      Promise.resolve()
        .then(() => check.run())
        .then(
          (r) => {
            this.#clock.clearTimeout(timer);
            resolve(r);
          },
          (e: unknown) => {
            this.#clock.clearTimeout(timer);
            reject(e);
          },
        );
    });
  }

  #record(name: string, result: CheckResult, announce = true): void {
    // Before start() news is kept (a link may drop before the supervisor starts); after stop() it is stale.
    if (this.#stopped) return;
    let entry = this.#entries.get(name);
    if (!entry) {
      entry = { check: null, result: null, version: 0, running: false };
      this.#entries.set(name, entry);
    }
    const before = entry.result;
    entry.result = result;
    entry.version++;
    if (before?.ok !== result.ok || before.detail !== result.detail) {
      if (!result.ok) this.#log.warn({ check: name, detail: result.detail }, 'health check failing');
      else if (before && !before.ok) this.#log.info({ check: name, detail: result.detail }, 'health check recovered');
    }
    if (announce) this.#announce();
  }

  #announce(): void {
    const snap = this.snapshot();
    const failing = snap.failing.map((f) => f.name).join('\n');
    if (snap.state === this.#announced.state && failing === this.#announced.failing) return;
    this.#announced = { state: snap.state, failing };
    if (snap.state === 'degraded') this.#log.warn({ failing: snap.failing }, 'degraded: a press may not get through');
    else this.#log.info('healthy: a press would get through');
    for (const l of this.#listeners) {
      try {
        l(snap);
      } catch (e) {
        this.#log.error({ err: errorMessage(e) }, 'health listener threw');
      }
    }
  }
}
