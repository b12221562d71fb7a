import type { ButtonEvent, ButtonSource, ButtonSourceStatus } from './types.ts';
import { Listeners } from './listeners.ts';
import { StatusCell } from './status.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';

/** One step of a script: wait `afterMs` (from the previous step, or from start()), then this edge. */
export interface ScriptedStep {
  afterMs: number;
  kind: 'down' | 'up';
}

export interface ScriptedButtonOptions {
  clock: Clock;
  steps?: readonly ScriptedStep[];
  /** The `source` the events carry (the simulator says "sim"). */
  source?: string;
}

/** Steps for a press held `holdMs`, starting `afterMs` from the previous step. */
export function pressSteps(holdMs: number, afterMs = 0): ScriptedStep[] {
  return [
    { afterMs, kind: 'down' },
    { afterMs: holdMs, kind: 'up' },
  ];
}

/**
 * A button played from a script on the injected clock, or pushed by hand (down()/up()), for tests and the
 * simulator. Like a real button, it only ever reports edges; what they mean is the press policy's business.
 */
export class ScriptedButtonSource implements ButtonSource {
  readonly kind = 'scripted';
  readonly #clock: Clock;
  readonly #steps: readonly ScriptedStep[];
  readonly #source: string;
  readonly #listeners = new Listeners<ButtonEvent>((e) => queueMicrotask(() => { throw e; }));
  readonly #status = new StatusCell((e) => queueMicrotask(() => { throw e; }));
  #timer: TimerHandle | undefined;
  #events = 0;
  #finished: Promise<void> = Promise.resolve();

  constructor(options: ScriptedButtonOptions) {
    this.#clock = options.clock;
    this.#steps = options.steps ?? [];
    this.#source = options.source ?? 'scripted';
  }

  async start(): Promise<void> {
    this.#status.set('ready');
    let resolve!: () => void;
    this.#finished = new Promise<void>((r) => (resolve = r));
    const next = (i: number) => {
      const step = this.#steps[i];
      if (!step) {
        resolve();
        return;
      }
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#emit(step.kind);
        next(i + 1);
      }, step.afterMs);
    };
    next(0);
  }

  async stop(): Promise<void> {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#status.set('stopped');
  }

  /** Resolves when the last scripted step has been emitted. */
  finished(): Promise<void> {
    return this.#finished;
  }

  down(): void {
    this.#emit('down');
  }

  up(): void {
    this.#emit('up');
  }

  onEvent(listener: (event: ButtonEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  onStatus(listener: (status: ButtonSourceStatus) => void): () => void {
    return this.#status.onChange(listener);
  }

  status(): ButtonSourceStatus {
    return this.#status.get();
  }

  stats(): { events: number; dropped: number } {
    return { events: this.#events, dropped: 0 };
  }

  #emit(kind: 'down' | 'up'): void {
    this.#events++;
    this.#listeners.emit({ kind, at: this.#clock.monotonic(), source: this.#source });
  }
}
