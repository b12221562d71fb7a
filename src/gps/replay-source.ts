import { readFile } from 'node:fs/promises';
import { fullJitterDelay, type BackoffPolicy } from '../shared/backoff.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { EpochAssembler } from './epoch.ts';
import { NmeaDecoder, type NmeaSentence } from './nmea.ts';
import { SourceEvents } from './source-events.ts';
import type { Fix, GpsSource, GpsSourceState } from './types.ts';

export interface ReplaySourceOptions {
  file: string;
  /** 1 = the log's own pace; 10 = ten times faster. */
  rate: number;
  loop: boolean;
  clock: Clock;
  logger: Logger;
  backoff?: BackoffPolicy;
}

/** One epoch's sentences, to be played `delayMs` (log time) after the previous burst. */
interface Burst {
  delayMs: number;
  sentences: NmeaSentence[];
}

const DAY_MS = 86_400_000;
/** A gap in the log longer than this (receiver reboot, capture pause) is played as this. */
const MAX_GAP_MS = 10_000;

/**
 * Splits a log into bursts at each change of the sentences' time of day and computes the pauses between them
 * from those times (midnight crossings included; backwards jumps play at once; long gaps are shortened).
 */
export function planReplay(sentences: readonly NmeaSentence[]): Burst[] {
  const bursts: Burst[] = [];
  let current: Burst | undefined;
  let lastTime: number | undefined;
  for (const s of sentences) {
    const t = 'time' in s ? s.time : undefined;
    if (t !== undefined && t !== lastTime) {
      let gap = 0;
      if (lastTime !== undefined) {
        gap = t - lastTime;
        if (gap < -DAY_MS / 2) gap += DAY_MS;
        gap = Math.min(Math.max(gap, 0), MAX_GAP_MS);
      }
      lastTime = t;
      current = { delayMs: gap, sentences: [] };
      bursts.push(current);
    }
    if (current === undefined) {
      current = { delayMs: 0, sentences: [] };
      bursts.push(current);
    }
    current.sentences.push(s);
  }
  return bursts;
}

/**
 * Plays an NMEA log file as if a receiver were sending it now (demo, simulator, tests): at the log's own pace,
 * or `rate` times faster, looping when asked. The fixes carry the time they are played, not the log's: a replay
 * stands in for a live receiver, and a 2017 timestamp would make every fix look years stale.
 */
export class ReplaySource implements GpsSource {
  readonly kind = 'replay';
  readonly #file: string;
  readonly #rate: number;
  readonly #loop: boolean;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #backoff: BackoffPolicy;
  readonly #events: SourceEvents;
  #running = false;
  #timer: TimerHandle | undefined;
  #attempt = 0;
  #bursts: Burst[] = [];
  #next = 0;
  #assembler: EpochAssembler | undefined;
  #received = 0;
  #dropped = 0;
  #fixes = 0;

  constructor(options: ReplaySourceOptions) {
    this.#file = options.file;
    this.#rate = options.rate;
    this.#loop = options.loop;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#backoff = options.backoff ?? { baseMs: 1000, capMs: 30_000 };
    this.#events = new SourceEvents(options.logger);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#events.setState('starting');
    await this.#load();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
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

  async #load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#file, 'latin1');
    } catch (e) {
      this.#logger.error({ file: this.#file, err: errorMessage(e) }, 'cannot read NMEA replay file');
      if (!this.#running) return;
      this.#events.setState('disconnected');
      const delay = fullJitterDelay(this.#attempt++, this.#backoff);
      this.#timer = this.#clock.setTimeout(() => void (this.#running ? this.#load() : undefined), delay);
      return;
    }
    if (!this.#running) return;
    const sentences: NmeaSentence[] = [];
    const decoder = new NmeaDecoder((s) => sentences.push(s));
    decoder.push(text);
    decoder.end();
    const stats = decoder.stats();
    this.#dropped += stats.dropped;
    this.#bursts = planReplay(sentences);
    if (this.#bursts.length === 0) {
      this.#logger.error({ file: this.#file }, 'NMEA replay file has no sentences');
      this.#events.setState('disconnected');
      return;
    }
    this.#logger.info({ file: this.#file, sentences: sentences.length, epochs: this.#bursts.length, rate: this.#rate }, 'replaying NMEA log');
    this.#events.setState('connected');
    this.#restart();
    this.#play();
  }

  #restart(): void {
    this.#next = 0;
    // A new pass is a receiver restarting: its epoch learning starts over.
    this.#assembler = new EpochAssembler(
      (fix) => {
        this.#fixes++;
        this.#events.fix({ ...fix, time: this.#clock.now(), source: 'replay' });
      },
      { source: 'replay' },
    );
  }

  /** Plays the current burst now, then schedules the next. */
  #play(): void {
    if (!this.#running) return;
    const burst = this.#bursts[this.#next];
    const assembler = this.#assembler;
    if (burst === undefined || assembler === undefined) return;
    for (const s of burst.sentences) {
      this.#received++;
      assembler.push(s);
    }
    this.#next++;
    let following = this.#bursts[this.#next];
    if (following === undefined) {
      if (!this.#loop) {
        this.#events.setState('disconnected');
        return;
      }
      this.#restart();
      following = this.#bursts[0];
    }
    const logDelay = following === undefined || following.delayMs === 0 ? (this.#next === 0 ? 1000 : 0) : following.delayMs;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#play();
    }, logDelay / this.#rate);
  }
}
