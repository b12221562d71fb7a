/**
 * Time is injected so that hold times, cancel windows, backoff and token expiry are tested with a fake clock.
 * `now()` is wall-clock milliseconds since the epoch (what goes into records and payloads);
 * `monotonic()` is for measuring durations and never jumps when NTP corrects the wall clock.
 */
export interface TimerHandle {
  readonly __timer: unique symbol;
}

export interface Clock {
  now(): number;
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, ms));
    // A pending retry or refresh must never keep a stopping process alive on its own.
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout: (handle) => {
    if (handle !== undefined) clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A manual clock for tests: timers fire only inside `advance()`, in time order. */
export class FakeClock implements Clock {
  #now: number;
  #mono = 0;
  #timers: FakeTimer[] = [];
  #nextId = 1;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.#nextId++, at: this.#mono + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    const id = handle as unknown as number;
    this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  /** Pending timer count, for asserting that nothing was left scheduled. */
  pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order (timers set by fired timers fire too if due). */
  advance(ms: number): void {
    const end = this.#mono + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now += due.at - this.#mono;
      this.#mono = due.at;
      due.fn();
    }
    this.#now += end - this.#mono;
    this.#mono = end;
  }

  /** Like advance, but lets promise callbacks run between timers (for async code under test). */
  async advanceAsync(ms: number): Promise<void> {
    const end = this.#mono + ms;
    for (;;) {
      await flushMicrotasks();
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.advance(due.at - this.#mono);
    }
    this.advance(end - this.#mono);
    await flushMicrotasks();
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}
