import type { ButtonEvent } from '../button/types.ts';
import type { PressConfig } from '../config/agent-schema.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';
import { Listeners } from '../button/listeners.ts';
import { issueInitiation, type Gesture, type Initiation } from './initiation.ts';

/**
 * What the press policy tells the app. Only `pending`, `dispatch` and `repeat` carry an Initiation, and the
 * policy makes one only from a completed gesture of button events; timers can complete a gesture that a
 * button started (a hold "fires while still held", a cancel window runs out), never start one.
 */
export type PressEffect =
  /** The button went down; a gesture may be on its way. `presses` counts a multi-press sequence so far. */
  | { type: 'holding'; since: number; presses: number; during_incident: boolean }
  /** A short press of a multi-press sequence ended; `needed` presses complete it. */
  | { type: 'counting'; presses: number; needed: number; during_incident: boolean }
  /** A gesture was abandoned; nothing will be sent. */
  | { type: 'idle'; reason: 'released' | 'window_expired' }
  /** An alert is confirmed and waits `window_ms` (until monotonic `deadline`); one more press cancels it. */
  | { type: 'pending'; initiation: Initiation; deadline: number; window_ms: number }
  | { type: 'cancelled'; initiation: Initiation }
  /** Start the flow now. */
  | { type: 'dispatch'; initiation: Initiation }
  /** A gesture during an active incident: record it against that incident, do not start a second flow. */
  | { type: 'repeat'; initiation: Initiation; incident: Initiation };

export type PressPhase = 'idle' | 'pending' | 'active';

export interface PressPolicyOptions {
  config: PressConfig;
  clock: Clock;
  /** True when a test callflow is configured (callflow.test_name). When false no hold ever becomes a test. */
  testAlerts: boolean;
  logger?: Logger;
}

interface Pending {
  initiation: Initiation;
  deadline: number;
  /** The press that confirmed it is still down. */
  held: boolean;
  /** The cancel window ran out while a testable hold was still held: dispatch on release. */
  due: boolean;
  /** Still held, it may yet become a test alert at test_hold_ms. */
  testable: boolean;
}

/**
 * The press policy: a state machine over button edges and the injected clock, with no I/O.
 *
 * Debounce: an edge counts only once the raw level has stayed put for `debounce_ms`, judged on the events' own
 * times (so a late-delivered batch is judged as it happened); a glitch shorter than that is nothing. The edge
 * keeps the time of the raw transition, so hold times are measured from the real press.
 *
 * Gestures (from idle):
 *   hold        down for `hold_ms` → confirmed while still held.
 *   multi-press `multi_press.count` downs within `multi_press.window_ms` → confirmed at the last down.
 *   test        with test alerts enabled only: the hold is confirmed at `hold_ms` as a real alert; if the same
 *               press is still held at `test_hold_ms`, the pending alert turns into a test alert and its cancel
 *               window starts again. The person sees it: the cancel-window pattern starts again and the
 *               terminal says "TEST". While such a hold lasts, a real alert is not dispatched before the
 *               release or `test_hold_ms` (at most test_hold_ms − hold_ms later).
 *               Safety: a panicked person gripping the button, or a stuck button, would get a test alert
 *               here, which is why test alerts exist only while `callflow.test_name` is set (installation and
 *               maintenance). Without it, no hold of any length is anything but a real alert.
 * Confirmed: `pending` for `cancel_window_s`; a new press (after the confirming press is released) cancels
 * it; when the window runs out it is dispatched (0 = at once). The confirming press is used up: holding it
 * longer (a stuck button) makes nothing more, before or after the incident ends, until it is released.
 * Active incident (after dispatch, until incidentEnded()): a completed gesture yields `repeat` instead of a
 * second flow. stop() dispatches a pending alert at once: a shutdown must not lose a confirmed press.
 */
export class PressPolicy {
  readonly #cfg: PressConfig;
  readonly #clock: Clock;
  readonly #testAlerts: boolean;
  readonly #listeners: Listeners<PressEffect>;
  #running = false;
  #dropped = 0;

  #raw: 'up' | 'down' = 'up';
  #rawAt = 0;
  #stable: 'up' | 'down' = 'up';
  #lastAt = Number.NEGATIVE_INFINITY;
  #source = 'unknown';

  #pressStart = 0;
  /** The current press already confirmed a gesture or cancelled one. */
  #consumed = false;
  #presses: number[] = [];

  #phase: PressPhase = 'idle';
  #pending: Pending | null = null;
  #active: Initiation | null = null;

  #settleTimer: TimerHandle | undefined;
  #holdTimer: TimerHandle | undefined;
  #windowTimer: TimerHandle | undefined;
  #cancelTimer: TimerHandle | undefined;
  #testTimer: TimerHandle | undefined;

  constructor(options: PressPolicyOptions) {
    this.#cfg = options.config;
    this.#clock = options.clock;
    this.#testAlerts = options.testAlerts && options.config.test_hold_ms > options.config.hold_ms;
    const logger = options.logger;
    this.#listeners = new Listeners((e) => {
      if (logger) logger.error({ err: errorMessage(e) }, 'press effect listener failed');
      else queueMicrotask(() => {
        throw e;
      });
    });
  }

  async start(): Promise<void> {
    this.#running = true;
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    if (this.#pending) this.#dispatchPending();
    this.#running = false;
    for (const t of [this.#settleTimer, this.#holdTimer, this.#windowTimer, this.#cancelTimer, this.#testTimer]) this.#clock.clearTimeout(t);
    this.#settleTimer = this.#holdTimer = this.#windowTimer = this.#cancelTimer = this.#testTimer = undefined;
  }

  onEffect(listener: (effect: PressEffect) => void): () => void {
    return this.#listeners.add(listener);
  }

  phase(): PressPhase {
    return this.#phase;
  }

  /** Inputs that were not button events (wrong shape, or before start()): dropped. */
  stats(): { dropped: number } {
    return { dropped: this.#dropped };
  }

  /** A button edge from a ButtonSource. */
  button(event: ButtonEvent): void {
    if (!this.#running || !isButtonEvent(event)) {
      this.#dropped++;
      return;
    }
    const now = this.#clock.monotonic();
    // Edges are taken in order and never from the future, whatever a source's timestamps say.
    const at = Math.min(now, Math.max(event.at, this.#lastAt));
    this.#lastAt = at;
    if (event.kind === this.#raw) return;
    if (this.#settleTimer !== undefined && at - this.#rawAt >= this.#cfg.debounce_ms) {
      // The previous level was stable long enough before this edge came: it counts, even if its timer has
      // not run yet (both edges arrived in one batch).
      this.#clock.clearTimeout(this.#settleTimer);
      this.#settleTimer = undefined;
      this.#settle(this.#raw, this.#rawAt);
    }
    this.#clock.clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
    this.#raw = event.kind;
    this.#rawAt = at;
    this.#source = event.source;
    if (this.#cfg.debounce_ms === 0) {
      this.#settle(event.kind, at);
      return;
    }
    if (this.#raw === this.#stable) return;
    const kind = this.#raw;
    this.#settleTimer = this.#clock.setTimeout(() => {
      this.#settleTimer = undefined;
      this.#settle(kind, at);
    }, Math.max(0, at + this.#cfg.debounce_ms - now));
  }

  /** The app says the active incident is over: the next gesture starts a new flow. */
  incidentEnded(): void {
    if (this.#phase !== 'active') return;
    this.#phase = 'idle';
    this.#active = null;
  }

  #settle(kind: 'up' | 'down', at: number): void {
    if (!this.#running || kind === this.#stable) return;
    this.#stable = kind;
    if (kind === 'down') this.#down(at);
    else this.#up(at);
  }

  #down(at: number): void {
    this.#pressStart = at;
    this.#consumed = false;
    if (this.#pending) {
      this.#consumed = true;
      this.#cancel();
      return;
    }
    const multi = this.#cfg.multi_press;
    if (multi) {
      this.#presses = this.#presses.filter((t) => at - t <= multi.window_ms);
      this.#presses.push(at);
      if (this.#presses.length >= multi.count) {
        const times = this.#presses;
        this.#presses = [];
        this.#clock.clearTimeout(this.#windowTimer);
        this.#windowTimer = undefined;
        this.#consumed = true;
        this.#confirm('multi_press', times, 0);
        return;
      }
      this.#scheduleWindow();
    }
    const now = this.#clock.monotonic();
    this.#holdTimer = this.#clock.setTimeout(() => this.#holdReached(), Math.max(0, at + this.#cfg.hold_ms - now));
    this.#emit({ type: 'holding', since: at, presses: multi ? this.#presses.length : 1, during_incident: this.#phase === 'active' });
  }

  #up(at: number): void {
    const heldLongEnough = this.#holdTimer !== undefined && !this.#consumed && at - this.#pressStart >= this.#cfg.hold_ms;
    this.#clock.clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    if (heldLongEnough) {
      // The press lasted hold_ms but its timer had not run yet (down and up read in one batch after a stall):
      // it is judged as it happened, so it confirms, already released.
      this.#presses = [];
      this.#clock.clearTimeout(this.#windowTimer);
      this.#windowTimer = undefined;
      this.#confirm('hold', [this.#pressStart], at - this.#pressStart);
      return;
    }
    if (this.#consumed) {
      this.#consumed = false;
      const pending = this.#pending;
      if (pending?.held) {
        pending.held = false;
        this.#clock.clearTimeout(this.#testTimer);
        this.#testTimer = undefined;
        if (pending.due) this.#dispatchPending();
      }
      return;
    }
    const multi = this.#cfg.multi_press;
    if (multi && this.#presses.length > 0) {
      this.#emit({ type: 'counting', presses: this.#presses.length, needed: multi.count, during_incident: this.#phase === 'active' });
    } else {
      this.#emit({ type: 'idle', reason: 'released' });
    }
  }

  #holdReached(): void {
    this.#holdTimer = undefined;
    if (this.#stable !== 'down' || this.#consumed) return;
    this.#consumed = true;
    this.#presses = [];
    this.#clock.clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    this.#confirm('hold', [this.#pressStart], this.#clock.monotonic() - this.#pressStart);
  }

  #confirm(gesture: Gesture, pressTimes: number[], heldMs: number): void {
    const initiation = this.#initiation(gesture, pressTimes, heldMs, false);
    if (this.#phase === 'active' && this.#active) {
      this.#emit({ type: 'repeat', initiation, incident: this.#active });
      return;
    }
    const held = this.#stable === 'down';
    const testable = this.#testAlerts && gesture === 'hold' && held;
    this.#phase = 'pending';
    this.#openWindow({ initiation, deadline: 0, held, due: false, testable });
    if (testable) {
      const delay = Math.max(0, this.#pressStart + this.#cfg.test_hold_ms - this.#clock.monotonic());
      this.#testTimer = this.#clock.setTimeout(() => this.#testHoldReached(), delay);
    }
  }

  #openWindow(pending: Pending): void {
    const windowMs = Math.round(this.#cfg.cancel_window_s * 1000);
    pending.deadline = this.#clock.monotonic() + windowMs;
    this.#pending = pending;
    this.#emit({ type: 'pending', initiation: pending.initiation, deadline: pending.deadline, window_ms: windowMs });
    if (this.#pending !== pending) return; // a listener stopped the policy
    if (windowMs === 0) this.#deadlineReached();
    else this.#cancelTimer = this.#clock.setTimeout(() => this.#deadlineReached(), windowMs);
  }

  #deadlineReached(): void {
    this.#cancelTimer = undefined;
    const pending = this.#pending;
    if (!pending) return;
    if (pending.testable && pending.held) {
      pending.due = true;
      return;
    }
    this.#dispatchPending();
  }

  #testHoldReached(): void {
    this.#testTimer = undefined;
    const pending = this.#pending;
    if (!pending || !pending.testable || !pending.held || this.#stable !== 'down') return;
    this.#clock.clearTimeout(this.#cancelTimer);
    this.#cancelTimer = undefined;
    const initiation = this.#initiation('test_hold', [this.#pressStart], this.#clock.monotonic() - this.#pressStart, true);
    this.#openWindow({ initiation, deadline: 0, held: true, due: false, testable: false });
  }

  #dispatchPending(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#clock.clearTimeout(this.#cancelTimer);
    this.#clock.clearTimeout(this.#testTimer);
    this.#cancelTimer = this.#testTimer = undefined;
    this.#pending = null;
    this.#phase = 'active';
    this.#active = pending.initiation;
    this.#emit({ type: 'dispatch', initiation: pending.initiation });
  }

  #cancel(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#clock.clearTimeout(this.#cancelTimer);
    this.#clock.clearTimeout(this.#testTimer);
    this.#cancelTimer = this.#testTimer = undefined;
    this.#pending = null;
    this.#phase = 'idle';
    this.#presses = [];
    this.#emit({ type: 'cancelled', initiation: pending.initiation });
  }

  #scheduleWindow(): void {
    const multi = this.#cfg.multi_press;
    this.#clock.clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    const first = this.#presses[0];
    if (!multi || first === undefined) return;
    this.#windowTimer = this.#clock.setTimeout(() => {
      this.#windowTimer = undefined;
      const now = this.#clock.monotonic();
      this.#presses = this.#presses.filter((t) => now - t < multi.window_ms);
      if (this.#presses.length > 0) this.#scheduleWindow();
      else if (this.#stable === 'up') this.#emit({ type: 'idle', reason: 'window_expired' });
    }, Math.max(0, first + multi.window_ms - this.#clock.monotonic()));
  }

  #initiation(gesture: Gesture, pressTimes: number[], heldMs: number, test: boolean): Initiation {
    return issueInitiation({
      gesture,
      source: this.#source,
      press_times: pressTimes,
      hold_ms: Math.max(0, Math.round(heldMs)),
      confirmed_at: this.#clock.now(),
      test,
    });
  }

  #emit(effect: PressEffect): void {
    this.#listeners.emit(effect);
  }
}

function isButtonEvent(value: unknown): value is ButtonEvent {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return (e.kind === 'down' || e.kind === 'up') && typeof e.at === 'number' && Number.isFinite(e.at) && typeof e.source === 'string' && e.source !== '';
}
