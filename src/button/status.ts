import type { ButtonSourceStatus } from './types.ts';
import { Listeners } from './listeners.ts';

/** A source's current status; listeners hear each change once. */
export class StatusCell {
  #value: ButtonSourceStatus = 'stopped';
  readonly #listeners: Listeners<ButtonSourceStatus>;

  constructor(onError: (error: unknown) => void) {
    this.#listeners = new Listeners(onError);
  }

  get(): ButtonSourceStatus {
    return this.#value;
  }

  set(value: ButtonSourceStatus): void {
    if (value === this.#value) return;
    this.#value = value;
    this.#listeners.emit(value);
  }

  onChange(listener: (status: ButtonSourceStatus) => void): () => void {
    return this.#listeners.add(listener);
  }
}
