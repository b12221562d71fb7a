import type { Readable } from 'node:stream';
import { fullJitterDelay, type BackoffPolicy } from '../shared/backoff.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { EpochAssembler } from './epoch.ts';
import { NmeaDecoder } from './nmea.ts';
import { configureSerial, openSerialStream } from './serial-port.ts';
import { SourceEvents } from './source-events.ts';
import type { Fix, GpsSource, GpsSourceState } from './types.ts';

export interface NmeaSerialSourceOptions {
  device: string;
  baud: number;
  clock: Clock;
  logger: Logger;
  backoff?: BackoffPolicy;
  /** No byte for this long: the receiver (or its USB adapter) is wedged; reopen. Default 10 s. */
  silenceMs?: number;
  /** The stty command (tests may point it elsewhere). */
  stty?: string;
  random?: () => number;
}

export const SERIAL_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 5000 };

/**
 * NMEA 0183 from a serial receiver (a GPS HAT on /dev/serial0, a USB puck on /dev/ttyACM0). Survives unplug
 * and replug: a read error, end of stream, missing device or a silent receiver closes the port, and it is
 * reopened with jittered backoff until `stop()`; each opening starts a fresh decoder and epoch assembler (a
 * replugged receiver restarts its cycle). `start()` resolves after the first attempt.
 */
export class NmeaSerialSource implements GpsSource {
  readonly kind = 'nmea';
  readonly #device: string;
  readonly #baud: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #backoff: BackoffPolicy;
  readonly #silenceMs: number;
  readonly #stty: string | undefined;
  readonly #random: () => number;
  readonly #events: SourceEvents;
  #running = false;
  #stream: Readable | undefined;
  #retryTimer: TimerHandle | undefined;
  #watchdog: TimerHandle | undefined;
  #lastData = 0;
  #attempt = 0;
  #decoder: NmeaDecoder | undefined;
  // Totals over all openings.
  #received = 0;
  #dropped = 0;
  #fixes = 0;

  constructor(options: NmeaSerialSourceOptions) {
    this.#device = options.device;
    this.#baud = options.baud;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#backoff = options.backoff ?? SERIAL_BACKOFF;
    this.#silenceMs = options.silenceMs ?? 10_000;
    this.#stty = options.stty;
    this.#random = options.random ?? Math.random;
    this.#events = new SourceEvents(options.logger);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#events.setState('starting');
    await this.#open();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await this.#close();
    this.#events.setState('stopped');
  }

  onFix(listener: (fix: Fix) => void): () => void {
    return this.#events.onFix(listener);
  }

  onState(listener: (state: GpsSourceState) => void): () => void {
    return this.#events.onState(listener);
  }

  stats(): { received: number; dropped: number; fixes: number } {
    const current = this.#decoder?.stats();
    return { received: this.#received + (current?.received ?? 0), dropped: this.#dropped + (current?.dropped ?? 0), fixes: this.#fixes };
  }

  async #open(): Promise<void> {
    let stream: Readable;
    try {
      await configureSerial(this.#device, this.#baud, this.#stty);
      if (!this.#running) return;
      stream = openSerialStream(this.#device);
    } catch (e) {
      this.#logger.warn({ device: this.#device, err: errorMessage(e) }, 'cannot open GPS serial device');
      this.#events.setState('disconnected');
      this.#scheduleReopen();
      return;
    }
    const assembler = new EpochAssembler(
      (fix) => {
        this.#fixes++;
        this.#events.fix(fix);
      },
      { source: 'nmea' },
    );
    const decoder = new NmeaDecoder((s) => assembler.push(s));
    this.#decoder = decoder;
    this.#stream = stream;
    this.#lastData = this.#clock.monotonic();
    stream.on('data', (chunk: Buffer) => {
      this.#lastData = this.#clock.monotonic();
      // The first bytes after (re)opening mean the receiver is back: restart the backoff.
      this.#attempt = 0;
      decoder.push(chunk);
    });
    stream.on('error', (e) => this.#logger.warn({ device: this.#device, err: errorMessage(e) }, 'GPS serial read error'));
    stream.once('close', () => this.#closed(stream, decoder));
    this.#armWatchdog();
    this.#logger.info({ device: this.#device, baud: this.#baud }, 'GPS serial device open');
    this.#events.setState('connected');
  }

  #closed(stream: Readable, decoder: NmeaDecoder): void {
    decoder.end();
    const s = decoder.stats();
    this.#received += s.received;
    this.#dropped += s.dropped;
    if (this.#decoder === decoder) this.#decoder = undefined;
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    this.#clock.clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    if (this.#running) {
      this.#logger.warn({ device: this.#device }, 'GPS serial device closed; reopening');
      this.#events.setState('disconnected');
      this.#scheduleReopen();
    }
  }

  #armWatchdog(): void {
    const wait = Math.max(1, this.#lastData + this.#silenceMs - this.#clock.monotonic());
    this.#watchdog = this.#clock.setTimeout(() => {
      this.#watchdog = undefined;
      if (this.#stream === undefined) return;
      if (this.#clock.monotonic() - this.#lastData >= this.#silenceMs) {
        this.#logger.warn({ device: this.#device, silenceMs: this.#silenceMs }, 'GPS receiver silent; reopening');
        this.#stream.destroy();
      } else {
        this.#armWatchdog();
      }
    }, wait);
  }

  async #close(): Promise<void> {
    this.#clock.clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    const stream = this.#stream;
    if (stream === undefined || stream.destroyed) return;
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.destroy();
    await closed;
  }

  #scheduleReopen(): void {
    const delay = fullJitterDelay(this.#attempt++, this.#backoff, this.#random);
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#running) void this.#open();
    }, delay);
  }
}
