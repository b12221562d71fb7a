import { MALFORMED, parseSentence, SentenceFields, type NmeaSentence } from './nmea-sentences.ts';

export type { NmeaSentence } from './nmea-sentences.ts';

/**
 * Why a sentence was dropped:
 * - `checksum`: the `*hh` did not match, or was not exactly two hex digits at the end of the line.
 * - `no_checksum`: no `*hh` at all (see `requireChecksum`).
 * - `too_long`: longer than `maxLength` characters before its line end.
 * - `truncated`: a new `$` (or the end of the stream) came before the line end.
 * - `bad_char`: a byte that is not printable ASCII (NUL fill, binary protocol, wrong baud rate).
 * - `malformed`: checksum good, but a field does not hold what it must, or too few fields.
 */
export type DropReason = 'checksum' | 'no_checksum' | 'too_long' | 'truncated' | 'bad_char' | 'malformed';

export const DROP_REASONS: readonly DropReason[] = ['checksum', 'no_checksum', 'too_long', 'truncated', 'bad_char', 'malformed'];

export interface NmeaDecoderStats {
  /** Sentences delivered. */
  received: number;
  /** Sentences dropped, all reasons. */
  dropped: number;
  droppedBy: Record<DropReason, number>;
}

export interface NmeaDecoderOptions {
  /**
   * Drop sentences that carry no `*hh` checksum (default true). gpsd accepts them, for a few receivers of the
   * 1990s that never sent one; we do not by default: without a checksum a line cut short by noise (gpsd's own
   * cold-boot capture has `$GP` and `$GPVTG,,T,,M,2C`) cannot be told from data, and every receiver we support
   * sends checksums. Against gpsd's regression captures this changes none of the fixes gpsd reports.
   */
  requireChecksum?: boolean;
  /** Longest sentence accepted, from `$` through the checksum (default 120; NMEA's own limit is 82 with CR LF). */
  maxLength?: number;
}

const DOLLAR = 36;
const STAR = 42;
const COMMA = 44;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function toLatin1(chunk: Uint8Array): string {
  const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  // latin1 maps each byte to one char, so byte garbage stays visible (as non-ASCII) and never merges.
  return buf.toString('latin1');
}

/**
 * Streaming NMEA 0183 decoder: bytes or text in, in any chunking; typed sentences out through `onSentence`.
 * A sentence starts at `$` (a `$` inside a sentence starts a new one: the receiver was reset or a byte was
 * lost) and ends at CR or LF. Anything else is counted and dropped; no input makes it throw.
 */
export class NmeaDecoder {
  readonly #onSentence: (sentence: NmeaSentence) => void;
  readonly #requireChecksum: boolean;
  readonly #maxLength: number;
  /** The current sentence so far, from its `$`, when it spans chunks. */
  #partial = '';
  readonly #fields = new SentenceFields();
  #received = 0;
  readonly #droppedBy: Record<DropReason, number> = { checksum: 0, no_checksum: 0, too_long: 0, truncated: 0, bad_char: 0, malformed: 0 };

  constructor(onSentence: (sentence: NmeaSentence) => void, options: NmeaDecoderOptions = {}) {
    this.#onSentence = onSentence;
    this.#requireChecksum = options.requireChecksum ?? true;
    this.#maxLength = options.maxLength ?? 120;
  }

  push(chunk: string | Uint8Array): void {
    const s = typeof chunk === 'string' ? chunk : toLatin1(chunk);
    const partial = this.#partial;
    const text = partial === '' ? s : partial + s;
    const n = text.length;
    const max = this.#maxLength;
    const fields = this.#fields;
    const by = this.#droppedBy;
    // Native indexOf finds the frame (`$` … CR/LF); one JS pass per sentence then checks its characters,
    // computes the checksum and notes the commas. Next CR and LF are remembered so each is searched once.
    let start = partial === '' ? -1 : 0;
    let from = 0;
    let cr = -1;
    let lf = -1;
    this.#partial = '';
    for (;;) {
      if (start < 0) {
        start = text.indexOf('$', from);
        if (start < 0) return;
      }
      if (cr <= start) {
        cr = text.indexOf('\r', start + 1);
        if (cr < 0) cr = n;
      }
      if (lf <= start) {
        lf = text.indexOf('\n', start + 1);
        if (lf < 0) lf = n;
      }
      const eol = cr < lf ? cr : lf;
      // A sentence may be `max` characters long, `$` included: its last character is at start + max - 1.
      const limit = eol < start + max ? eol : start + max;
      let sum = 0;
      let star = -1;
      let fieldsOk = true;
      let j = start + 1;
      fields.begin(text, j);
      for (; j < limit; j++) {
        const c = text.charCodeAt(j);
        if (c === DOLLAR || c < 32 || c > 126) break;
        if (star < 0) {
          if (c === STAR) star = j;
          else {
            sum ^= c;
            if (c === COMMA && !fields.comma(j)) fieldsOk = false;
          }
        }
      }
      if (j < limit) {
        // Stopped early on `$` (a new sentence: this one was cut) or a byte that is no NMEA text.
        if (text.charCodeAt(j) === DOLLAR) {
          by.truncated++;
          start = j;
        } else {
          by.bad_char++;
          start = -1;
          from = j + 1;
        }
        continue;
      }
      if (limit === eol && eol < n) {
        this.#finish(text, start, eol, star, sum, fieldsOk);
        start = -1;
        from = eol + 1;
        continue;
      }
      if (limit === n) {
        // The stream has not said more yet: keep the sentence so far (checked again with the next chunk).
        this.#partial = text.slice(start);
        return;
      }
      // `max` characters and no line end: too long, unless the next character says otherwise.
      const c = text.charCodeAt(limit);
      if (c === DOLLAR) {
        by.truncated++;
        start = limit;
      } else if (c < 32 || c > 126) {
        by.bad_char++;
        start = -1;
        from = limit + 1;
      } else {
        by.too_long++;
        start = -1;
        from = limit + 1;
      }
    }
  }

  /** End of stream: a sentence without its line end is dropped as truncated. */
  end(): void {
    if (this.#partial !== '') this.#droppedBy.truncated++;
    this.#partial = '';
  }

  stats(): NmeaDecoderStats {
    const d = this.#droppedBy;
    return {
      received: this.#received,
      dropped: d.checksum + d.no_checksum + d.too_long + d.truncated + d.bad_char + d.malformed,
      droppedBy: { ...d },
    };
  }

  /** `text[start]` is `$`, `text[end]` the CR or LF after it; `star` the `*` (or -1), `sum` the XOR before it. */
  #finish(text: string, start: number, end: number, star: number, sum: number, fieldsOk: boolean): void {
    const fields = this.#fields;
    if (star < 0) {
      if (this.#requireChecksum) {
        this.#droppedBy.no_checksum++;
        return;
      }
      fields.close(end);
    } else {
      const hi = star + 3 === end ? hexValue(text.charCodeAt(star + 1)) : -1;
      const lo = hi < 0 ? -1 : hexValue(text.charCodeAt(star + 2));
      if (lo < 0 || ((hi << 4) | lo) !== sum) {
        this.#droppedBy.checksum++;
        return;
      }
      fields.close(star);
    }
    const sentence = fieldsOk ? parseSentence(fields) : MALFORMED;
    if (sentence === MALFORMED) {
      this.#droppedBy.malformed++;
      return;
    }
    this.#received++;
    this.#onSentence(sentence);
  }
}

/** Decodes one line (with or without its line end); for tests, logs and tools. */
export function decodeNmeaLine(line: string, options?: NmeaDecoderOptions): NmeaSentence | DropReason {
  let out: NmeaSentence | undefined;
  const decoder = new NmeaDecoder((s) => (out = s), options);
  decoder.push(line.endsWith('\n') || line.endsWith('\r') ? line : `${line}\r\n`);
  decoder.end();
  if (out !== undefined) return out;
  const by = decoder.stats().droppedBy;
  return (Object.keys(by) as DropReason[]).find((k) => by[k] > 0) ?? 'truncated';
}
