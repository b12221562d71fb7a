import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { SourceEvents } from './source-events.ts';
import type { Fix, GpsSource, GpsSourceState } from './types.ts';

export interface StaticSourceOptions {
  latitude: number;
  longitude: number;
  uncertainty_m: number;
  clock: Clock;
  logger: Logger;
}

/**
 * A fixed location for a gateway that never moves: one fix at `start()`, with its configured radius and the
 * time of the start. It is marked `stationary`, so the fix tracker never ages it.
 */
export class StaticSource implements GpsSource {
  readonly kind = 'static';
  readonly #options: StaticSourceOptions;
  readonly #events: SourceEvents;
  #fixes = 0;

  constructor(options: StaticSourceOptions) {
    this.#options = options;
    this.#events = new SourceEvents(options.logger);
  }

  async start(): Promise<void> {
    if (this.#events.state === 'connected') return;
    const { latitude, longitude, uncertainty_m, clock } = this.#options;
    this.#events.setState('connected');
    this.#fixes++;
    this.#events.fix({ latitude, longitude, uncertainty_m, time: clock.now(), mode: '2d', source: 'static', stationary: true });
  }

  async stop(): Promise<void> {
    this.#events.setState('stopped');
  }

  onFix(listener: (fix: Fix) => void): () => void {
    return this.#events.onFix(listener);
  }

  onState(listener: (state: GpsSourceState) => void): () => void {
    return this.#events.onState(listener);
  }

  stats(): { received: number; dropped: number; fixes: number } {
    return { received: 0, dropped: 0, fixes: this.#fixes };
  }
}
