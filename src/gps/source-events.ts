import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Fix, GpsSourceState } from './types.ts';

/**
 * The listener lists every GpsSource has. A throwing listener is logged and skipped: one bad consumer must not
 * stop the others from getting fixes, nor break the source's read loop.
 */
export class SourceEvents {
  readonly #fix = new Set<(fix: Fix) => void>();
  readonly #state = new Set<(state: GpsSourceState) => void>();
  readonly #logger: Logger;
  #current: GpsSourceState = 'stopped';

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get state(): GpsSourceState {
    return this.#current;
  }

  onFix(listener: (fix: Fix) => void): () => void {
    this.#fix.add(listener);
    return () => this.#fix.delete(listener);
  }

  onState(listener: (state: GpsSourceState) => void): () => void {
    this.#state.add(listener);
    return () => this.#state.delete(listener);
  }

  fix(fix: Fix): void {
    for (const l of [...this.#fix]) {
      try {
        l(fix);
      } catch (e) {
        this.#logger.error({ err: errorMessage(e) }, 'gps fix listener threw');
      }
    }
  }

  /** Emits only changes. */
  setState(state: GpsSourceState): void {
    if (state === this.#current) return;
    this.#current = state;
    for (const l of [...this.#state]) {
      try {
        l(state);
      } catch (e) {
        this.#logger.error({ err: errorMessage(e) }, 'gps state listener threw');
      }
    }
  }
}
