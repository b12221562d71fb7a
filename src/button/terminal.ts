import type { ButtonEvent, ButtonSource, ButtonSourceStatus } from './types.ts';
import { Listeners } from './listeners.ts';
import { StatusCell } from './status.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';

/**
 * The keyboard as the SOS button, for the demo and for development. A terminal reports key presses, never key
 * releases, so the gesture is:
 *
 *   hold SPACE  = hold the button. The first SPACE is "down"; the keyboard's auto-repeat keeps it down; "up" is
 *                 when the repeats stop (150 ms after the last one, or 750 ms after a single tap: longer than
 *                 any usual auto-repeat delay, 250–660 ms). Holding SPACE for 2 s is the hold gesture.
 *   tap ENTER   = one short press (down, up 80 ms later): for multi-press gestures and for cancelling.
 *   Ctrl-C      = quit (raw mode swallows the signal, so it is raised here).
 *
 * Only when stdin is a terminal: otherwise the source reads nothing (piped input is left alone), reports
 * `unavailable`, and says so once. The terminal's mode is restored on stop() and on any process exit.
 */
export interface TerminalInput {
  readonly isTTY?: boolean;
  readonly isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface TerminalButtonOptions {
  clock: Clock;
  logger: Logger;
  input?: TerminalInput;
  /** Where the instructions go (stderr by default: stdout carries the JSON logs). */
  output?: NodeJS.WritableStream;
  /** The configured gestures in words (see describeGestures in src/press). */
  hint?: string;
  onInterrupt?: () => void;
  firstReleaseMs?: number;
  repeatReleaseMs?: number;
  tapMs?: number;
}

const SPACE = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const CTRL_C = 0x03;

export const TERMINAL_KEYS = 'Keyboard SOS button: hold SPACE = hold the button · tap ENTER = one short press · Ctrl-C = quit';

export class TerminalButtonSource implements ButtonSource {
  readonly kind = 'terminal';
  readonly #opts: Required<Omit<TerminalButtonOptions, 'hint'>> & { hint: string | undefined };
  readonly #listeners: Listeners<ButtonEvent>;
  readonly #status: StatusCell;
  #running = false;
  #wasRaw = false;
  #held: 'space' | 'tap' | null = null;
  #lastKeyAt = 0;
  #repeatGap: number | null = null;
  #timer: TimerHandle | undefined;
  #events = 0;
  #dropped = 0;
  readonly #onData = (chunk: Buffer | string) => this.#keys(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  readonly #restoreOnExit = () => this.#restore();

  constructor(options: TerminalButtonOptions) {
    this.#opts = {
      input: process.stdin,
      output: process.stderr,
      onInterrupt: () => process.kill(process.pid, 'SIGINT'),
      firstReleaseMs: 750,
      repeatReleaseMs: 150,
      tapMs: 80,
      ...options,
      hint: options.hint,
    };
    const log = (e: unknown) => this.#opts.logger.error({ err: errorMessage(e) }, 'button listener failed');
    this.#listeners = new Listeners(log);
    this.#status = new StatusCell(log);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    const input = this.#opts.input;
    if (!input.isTTY || typeof input.setRawMode !== 'function') {
      this.#status.set('unavailable');
      this.#opts.logger.warn('stdin is not a terminal: the keyboard button is off');
      return;
    }
    this.#running = true;
    this.#wasRaw = input.isRaw ?? false;
    input.setRawMode(true);
    process.on('exit', this.#restoreOnExit);
    input.on('data', this.#onData);
    // Reading stdin keeps the process alive while the button runs (as a terminal program should); stop()
    // pauses it, which lets go. process.exit() is never held up: a TTY read never blocks a thread.
    input.resume();
    this.#opts.output.write(`${TERMINAL_KEYS}\n${this.#opts.hint ? `${this.#opts.hint}\n` : ''}`);
    this.#status.set('ready');
  }

  async stop(): Promise<void> {
    this.#opts.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held = null;
    if (this.#running) {
      this.#running = false;
      this.#opts.input.off('data', this.#onData);
      this.#restore();
      this.#opts.input.pause();
      process.off('exit', this.#restoreOnExit);
    }
    this.#status.set('stopped');
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
    return { events: this.#events, dropped: this.#dropped };
  }

  #restore(): void {
    try {
      this.#opts.input.setRawMode?.(this.#wasRaw);
    } catch {
      // The terminal is already gone (hang-up); there is no mode left to restore.
    }
  }

  #keys(bytes: Buffer): void {
    if (!this.#running) return;
    const now = this.#opts.clock.monotonic();
    for (const b of bytes) {
      if (b === SPACE) this.#space(now);
      else if (b === CR || b === LF) this.#enter(now);
      else if (b === CTRL_C) this.#opts.onInterrupt();
      else this.#dropped++;
    }
  }

  #space(now: number): void {
    if (this.#held === 'space') {
      this.#repeatGap = now - this.#lastKeyAt;
      this.#lastKeyAt = now;
      this.#releaseIn(this.#opts.repeatReleaseMs);
      return;
    }
    if (this.#held === null) this.#emit('down', now);
    // A SPACE during an ENTER tap turns the tap into a hold.
    this.#held = 'space';
    this.#lastKeyAt = now;
    this.#repeatGap = null;
    this.#releaseIn(this.#opts.firstReleaseMs);
  }

  #enter(now: number): void {
    if (this.#held !== null) return;
    this.#held = 'tap';
    this.#lastKeyAt = now;
    this.#repeatGap = null;
    this.#emit('down', now);
    this.#releaseIn(this.#opts.tapMs);
  }

  #releaseIn(ms: number): void {
    this.#opts.clock.clearTimeout(this.#timer);
    this.#timer = this.#opts.clock.setTimeout(() => {
      this.#timer = undefined;
      const now = this.#opts.clock.monotonic();
      // The key went up about one repeat interval after the last repeat (or a tap's length after a single key).
      const at = this.#held === 'tap' ? now : Math.min(now, this.#lastKeyAt + (this.#repeatGap ?? this.#opts.tapMs));
      this.#held = null;
      this.#emit('up', at);
    }, ms);
  }

  #emit(kind: 'down' | 'up', at: number): void {
    this.#events++;
    this.#listeners.emit({ kind, at, source: this.kind });
  }
}
