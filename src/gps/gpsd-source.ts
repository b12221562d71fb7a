import { createConnection, type Socket } from 'node:net';
import { fullJitterDelay, type BackoffPolicy } from '../shared/backoff.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { parseGpsdLine, tpvToFix, WATCH_COMMAND, type Gst } from './gpsd-protocol.ts';
import { LineSplitter } from './line-splitter.ts';
import { SourceEvents } from './source-events.ts';
import type { Fix, GpsSource, GpsSourceState } from './types.ts';
import { hdopUncertainty } from './uncertainty.ts';

export interface GpsdSourceOptions {
  host: string;
  port: number;
  clock: Clock;
  logger: Logger;
  /** Reconnect backoff (full jitter); default 250 ms doubling to 10 s: a location source must come back fast. */
  backoff?: BackoffPolicy;
  connectTimeoutMs?: number;
  random?: () => number;
}

export const GPSD_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 10_000 };

/**
 * gpsd over TCP: `?WATCH` for JSON, whole lines across TCP chunks, TPV (+ GST of the same epoch) to fixes.
 * When gpsd goes away (restart, crash, not yet started at boot) it reconnects with jittered backoff until
 * `stop()`. `start()` resolves after the first attempt, whether or not it connected.
 */
export class GpsdSource implements GpsSource {
  readonly kind = 'gpsd';
  readonly #host: string;
  readonly #port: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #backoff: BackoffPolicy;
  readonly #connectTimeoutMs: number;
  readonly #random: () => number;
  readonly #events: SourceEvents;
  readonly #lines: LineSplitter;
  #running = false;
  #socket: Socket | undefined;
  #retryTimer: TimerHandle | undefined;
  #attempt = 0;
  #gst: Gst | undefined;
  #satellites: number | undefined;
  #received = 0;
  #dropped = 0;
  #fixes = 0;

  constructor(options: GpsdSourceOptions) {
    this.#host = options.host;
    this.#port = options.port;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#backoff = options.backoff ?? GPSD_BACKOFF;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#random = options.random ?? Math.random;
    this.#events = new SourceEvents(options.logger);
    this.#lines = new LineSplitter(
      (line) => this.#line(line),
      () => this.#dropped++,
    );
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#events.setState('starting');
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const socket = this.#socket;
    if (socket !== undefined && !socket.destroyed) {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.destroy();
      await closed;
    }
    this.#socket = undefined;
    this.#events.setState('stopped');
  }

  onFix(listener: (fix: Fix) => void): () => void {
    return this.#events.onFix(listener);
  }

  onState(listener: (state: GpsSourceState) => void): () => void {
    return this.#events.onState(listener);
  }

  stats(): { received: number; dropped: number; fixes: number } {
    return { received: this.#received, dropped: this.#dropped, fixes: this.#fixes };
  }

  #connect(): Promise<void> {
    return new Promise<void>((resolve) => {
      const socket = createConnection({ host: this.#host, port: this.#port });
      this.#socket = socket;
      socket.setEncoding('utf8');
      socket.setKeepAlive(true, 10_000);
      const timeout = this.#clock.setTimeout(() => socket.destroy(new Error(`connect timeout after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
      socket.once('connect', () => {
        this.#clock.clearTimeout(timeout);
        socket.write(WATCH_COMMAND);
        this.#logger.info({ host: this.#host, port: this.#port }, 'connected to gpsd');
        this.#events.setState('connected');
        resolve();
      });
      socket.on('data', (chunk: string) => this.#lines.push(chunk));
      socket.on('error', (e) => this.#logger.warn({ host: this.#host, port: this.#port, err: errorMessage(e) }, 'gpsd connection error'));
      socket.once('close', () => {
        this.#clock.clearTimeout(timeout);
        this.#lines.reset();
        if (this.#socket === socket) this.#socket = undefined;
        if (this.#running) {
          this.#events.setState('disconnected');
          this.#scheduleReconnect();
        }
        resolve();
      });
    });
  }

  #scheduleReconnect(): void {
    const delay = fullJitterDelay(this.#attempt++, this.#backoff, this.#random);
    this.#logger.debug({ delayMs: delay, attempt: this.#attempt }, 'reconnecting to gpsd');
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#running) void this.#connect();
    }, delay);
  }

  #line(line: string): void {
    if (line.trim() === '') return;
    const report = parseGpsdLine(line);
    if (report.kind === 'bad') {
      this.#dropped++;
      return;
    }
    this.#received++;
    // gpsd is talking: the next outage starts its backoff from the beginning.
    this.#attempt = 0;
    if (report.kind === 'gst') this.#gst = report.gst;
    else if (report.kind === 'sky') this.#satellites = report.used;
    else if (report.kind === 'tpv') {
      const fix = tpvToFix(report.tpv, this.#gst, this.#satellites, hdopUncertainty(undefined));
      if (fix !== null) {
        this.#fixes++;
        this.#events.fix(fix);
      }
    }
  }
}
