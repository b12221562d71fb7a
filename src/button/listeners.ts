/**
 * A set of listeners. A listener that throws is reported to `onError` and does not stop the others, so one
 * faulty subscriber cannot make a button source stop delivering presses.
 */
export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>();
  readonly #onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  add(listener: (value: T) => void): () => void {
    this.#set.add(listener);
    return () => {
      this.#set.delete(listener);
    };
  }

  emit(value: T): void {
    for (const listener of [...this.#set]) {
      try {
        listener(value);
      } catch (e) {
        this.#onError(e);
      }
    }
  }
}
