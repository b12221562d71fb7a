import { execFile } from 'node:child_process';
import type { ButtonEvent, ButtonSource, ButtonSourceStatus } from './types.ts';
import { LineSplitter, detectDialect, gpiomonCommand, parseGpiomonLine, type GpioBias, type GpiomonDialect, type GpiomonEvent } from './gpiomon-lines.ts';
import { Listeners } from './listeners.ts';
import { StatusCell } from './status.ts';
import { SupervisedChild, type ChildCommand } from './supervised-child.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { BackoffPolicy } from '../shared/backoff.ts';
import { errorMessage } from '../shared/errors.ts';

/**
 * The SOS button on a GPIO line through libgpiod's `gpiomon` (see gpiomon-lines.ts for both generations).
 * gpiomon is restarted with capped, jittered backoff when it ends (line busy, chip gone); a key that was down
 * when it died is reported up (safe: the person presses again, no alert is invented). It never keeps the
 * process alive nor outlives it (see SupervisedChild).
 */
export interface GpiomonButtonOptions {
  chip: string;
  line: number;
  activeLow: boolean;
  bias: GpioBias;
  command: string;
  clock: Clock;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  backoff?: BackoffPolicy;
  random?: () => number;
}

const HELP_TIMEOUT_MS = 5000;
const MAX_BACKDATE_MS = 1000;

export class GpiomonButtonSource implements ButtonSource {
  readonly kind = 'gpiomon';
  readonly #opts: GpiomonButtonOptions;
  readonly #listeners: Listeners<ButtonEvent>;
  readonly #status: StatusCell;
  readonly #reader: SupervisedChild;
  #lines = new LineSplitter();
  #dialect: GpiomonDialect | null = null;
  #stdbuf = true;
  #running = false;
  #down = false;
  #lastAt = Number.NEGATIVE_INFINITY;
  #events = 0;
  #dropped = 0;
  #lastFault: string | undefined;

  constructor(options: GpiomonButtonOptions) {
    this.#opts = options;
    const log = (e: unknown) => options.logger.error({ err: errorMessage(e) }, 'button listener failed');
    this.#listeners = new Listeners(log);
    this.#status = new StatusCell(log);
    this.#reader = new SupervisedChild({
      prepare: () => this.#prepare(),
      onRunning: () => {
        // A line half-written by a gpiomon that died is not the start of the next one's first line.
        this.#lines = new LineSplitter();
        this.#lastFault = undefined;
        this.#status.set('ready');
      },
      onStdout: (chunk) => this.#data(chunk.toString('utf8')),
      onGone: (why, command) => this.#gone(why, command),
      clock: options.clock,
      env: options.env,
      backoff: options.backoff ?? { baseMs: 500, capMs: 10_000 },
      ...(options.random ? { random: options.random } : {}),
    });
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#status.set('starting');
    await this.#reader.start();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#reader.stop();
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

  async #prepare(): Promise<ChildCommand | Error> {
    if (!this.#dialect) {
      const help = await this.#help();
      if (help instanceof Error) return help;
      this.#dialect = detectDialect(help);
      this.#opts.logger.info({ libgpiod: `v${this.#dialect.version}`, line_buffered: this.#dialect.lineBuffered }, 'gpiomon found');
    }
    return gpiomonCommand(this.#dialect, { ...this.#opts, stdbuf: this.#stdbuf });
  }

  #help(): Promise<string | Error> {
    return new Promise((resolve) => {
      execFile(this.#opts.command, ['--help'], { timeout: HELP_TIMEOUT_MS, env: this.#opts.env }, (e, stdout, stderr) => {
        const text = `${stdout}${stderr}`;
        // Some builds exit non-zero after printing help; only "could not run it at all" is a failure.
        if (e && text.trim() === '') resolve(Object.assign(new Error(`cannot run "${this.#opts.command}" (Debian package gpiod): ${e.message}`), { code: (e as NodeJS.ErrnoException).code }));
        else resolve(text);
      });
    });
  }

  #data(chunk: string): void {
    const events: GpiomonEvent[] = [];
    for (const line of this.#lines.push(chunk)) {
      const event = parseGpiomonLine(line);
      if (event) events.push(event);
      else if (line.trim() !== '') this.#dropped++;
    }
    this.#dropped += this.#lines.dropped;
    this.#lines.dropped = 0;
    if (events.length > 0) this.#reader.healthy();
    const now = this.#opts.clock.monotonic();
    const newest = events[events.length - 1]?.timeS;
    for (const event of events) {
      if (event.offset !== undefined && event.offset !== this.#opts.line) continue;
      const down = this.#opts.activeLow ? event.edge === 'falling' : event.edge === 'rising';
      if (down === this.#down) continue;
      this.#down = down;
      // Lines that arrive together keep their own spacing (gpiomon's timestamps), the newest at "now".
      const back = newest !== undefined && event.timeS !== undefined ? Math.min(MAX_BACKDATE_MS, Math.max(0, (newest - event.timeS) * 1000)) : 0;
      this.#emit(down ? 'down' : 'up', now - back);
    }
  }

  #gone(why: Error, command: ChildCommand | null): void {
    if (this.#down) {
      this.#down = false;
      this.#emit('up', this.#opts.clock.monotonic());
    }
    if ((why as NodeJS.ErrnoException).code === 'ENOENT' && command?.command === 'stdbuf') {
      this.#stdbuf = false;
      this.#opts.logger.warn('stdbuf not found: gpiomon v1 without --line-buffered may deliver presses late');
    }
    if (!this.#running) return;
    this.#status.set('unavailable');
    const message = errorMessage(why);
    if (message !== this.#lastFault) {
      this.#opts.logger.warn({ err: message }, 'gpiomon is not running; retrying');
      this.#lastFault = message;
    }
  }

  #emit(kind: 'down' | 'up', at: number): void {
    this.#lastAt = Math.max(this.#lastAt, at);
    this.#events++;
    this.#listeners.emit({ kind, at: this.#lastAt, source: this.kind });
  }
}
