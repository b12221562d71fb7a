/**
 * Whole-line framing over a stream: a TCP chunk may hold half a line or several; only complete lines come out.
 * A line longer than `maxLength` is dropped whole (counted by `onOverflow`), up to its newline, so that a
 * runaway peer cannot grow the buffer without bound.
 */
export class LineSplitter {
  readonly #onLine: (line: string) => void;
  readonly #onOverflow: () => void;
  readonly #maxLength: number;
  #buf = '';
  #discarding = false;

  constructor(onLine: (line: string) => void, onOverflow: () => void, maxLength = 65_536) {
    this.#onLine = onLine;
    this.#onOverflow = onOverflow;
    this.#maxLength = maxLength;
  }

  push(chunk: string): void {
    const text = this.#buf === '' ? chunk : this.#buf + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      if (this.#discarding) {
        this.#discarding = false;
      } else {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        if (end - start > this.#maxLength) this.#onOverflow();
        else this.#onLine(text.slice(start, end));
      }
      start = nl + 1;
    }
    const rest = text.slice(start);
    if (this.#discarding) {
      this.#buf = '';
    } else if (rest.length > this.#maxLength) {
      this.#buf = '';
      this.#discarding = true;
      this.#onOverflow();
    } else {
      this.#buf = rest;
    }
  }

  /** Forget a partial line (the connection it came from is gone). */
  reset(): void {
    this.#buf = '';
    this.#discarding = false;
  }
}
