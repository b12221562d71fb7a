/**
 * Typed NMEA 0183 sentences and the field parsers that make them. A field that is empty is an absent value
 * (`undefined`), never a zero; a field that is present but malformed makes the whole sentence malformed
 * (`MALFORMED`), so that a receiver's garbage is counted and dropped rather than half-used.
 *
 * Positions are decimal degrees (south and west negative); times of day are milliseconds since 00:00 UTC.
 *
 * Fields are read in place from the sentence text by their offsets (`SentenceFields`), numbers straight
 * from the characters: no `split(',')`, no string per field. That is what makes decoding cheap enough to
 * run beside everything else on a Raspberry Pi Zero (scripts/bench/nmea.ts).
 */

export interface CalendarDate {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
}

interface Base {
  /** Two-letter talker (GP, GN, GL, GA, GB, BD, QZ, ...); "P" for proprietary sentences. */
  talker: string;
  /** Number of comma-separated fields including the address field, as gpsd counts them. */
  fieldCount: number;
}

/** Global positioning fix data. */
export interface GgaSentence extends Base {
  kind: 'GGA';
  time: number | undefined;
  latitude: number | undefined;
  longitude: number | undefined;
  /** 0 invalid, 1 GPS, 2 DGPS, 3 PPS, 4 RTK fixed, 5 RTK float, 6 estimated, 7 manual, 8 simulator. */
  quality: number | undefined;
  satellites: number | undefined;
  hdop: number | undefined;
  /** Meters above mean sea level. */
  altitude: number | undefined;
}

/** Recommended minimum data: the one sentence with a date. */
export interface RmcSentence extends Base {
  kind: 'RMC';
  time: number | undefined;
  /** A valid, D differential, V warning (no fix). */
  status: string | undefined;
  latitude: number | undefined;
  longitude: number | undefined;
  speedKnots: number | undefined;
  /** Course over ground, degrees true. */
  track: number | undefined;
  date: CalendarDate | undefined;
  faaMode: string | undefined;
}

/** DOP and active satellites. */
export interface GsaSentence extends Base {
  kind: 'GSA';
  /** M manual, A automatic. */
  selection: string | undefined;
  /** 1 no fix, 2 2D, 3 3D (undefined when empty). */
  fixType: number | undefined;
  /** Raw fix-type field: u-blox Antaris sends "E" for dead reckoning. */
  fixTypeField: string;
  /** PRNs of the satellites used, in order, empty fields skipped. */
  prns: number[];
  pdop: number | undefined;
  hdop: number | undefined;
  vdop: number | undefined;
}

/** Pseudorange noise statistics: the receiver's own error estimate (1-sigma, meters). */
export interface GstSentence extends Base {
  kind: 'GST';
  time: number | undefined;
  rms: number | undefined;
  majorSigma: number | undefined;
  minorSigma: number | undefined;
  orientation: number | undefined;
  latSigma: number | undefined;
  lonSigma: number | undefined;
  altSigma: number | undefined;
}

/** GNSS fix data (multi-constellation GGA). */
export interface GnsSentence extends Base {
  kind: 'GNS';
  time: number | undefined;
  latitude: number | undefined;
  longitude: number | undefined;
  /** One mode character per constellation (N no fix, A autonomous, D differential, ...). */
  modes: string | undefined;
  satellites: number | undefined;
  hdop: number | undefined;
  altitude: number | undefined;
  /** NMEA 4.1 navigational status: S safe, C caution, U unsafe, V not valid. */
  navStatus: string | undefined;
}

/** Geographic position. */
export interface GllSentence extends Base {
  kind: 'GLL';
  latitude: number | undefined;
  longitude: number | undefined;
  time: number | undefined;
  /** A valid, V invalid. */
  status: string | undefined;
  faaMode: string | undefined;
}

/** Time and date. */
export interface ZdaSentence extends Base {
  kind: 'ZDA';
  time: number | undefined;
  day: number | undefined;
  month: number | undefined;
  year: number | undefined;
}

/** Track made good and ground speed. */
export interface VtgSentence extends Base {
  kind: 'VTG';
  track: number | undefined;
  speedKnots: number | undefined;
  faaMode: string | undefined;
}

/** GNSS satellite fault detection; carries the epoch's time (u-blox sends it last in a cycle). */
export interface GbsSentence extends Base {
  kind: 'GBS';
  time: number | undefined;
  latSigma: number | undefined;
  lonSigma: number | undefined;
}

/** SkyTraq $PSTI,030: recommended minimum 3D data, the last timestamped sentence of a SkyTraq cycle. */
export interface Psti030Sentence extends Base {
  kind: 'PSTI030';
  time: number | undefined;
  status: string | undefined;
  latitude: number | undefined;
  longitude: number | undefined;
  altitude: number | undefined;
  date: CalendarDate | undefined;
  faaMode: string | undefined;
}

/** SiRF $PSRFEPE: estimated position errors; timestamped, so it takes part in epoch detection. */
export interface PsrfepeSentence extends Base {
  kind: 'PSRFEPE';
  time: number | undefined;
  status: string | undefined;
  hdop: number | undefined;
}

/** Any other well-formed sentence (GSV, TXT, proprietary, ...): kept for counting and epoch bookkeeping. */
export interface OtherSentence extends Base {
  kind: 'other';
  /** The sentence formatter: "GSV", "TXT", or the proprietary address without its leading P ("UBX", ...). */
  type: string;
}

export type NmeaSentence =
  | GgaSentence
  | RmcSentence
  | GsaSentence
  | GstSentence
  | GnsSentence
  | GllSentence
  | ZdaSentence
  | VtgSentence
  | GbsSentence
  | Psti030Sentence
  | PsrfepeSentence
  | OtherSentence;

/** Returned by a parser when a present field does not hold what it must. */
export const MALFORMED = Symbol('malformed');
export type Parsed<T> = T | typeof MALFORMED;

/** Thrown only inside this module, to unwind from a field reader to `parseSentence`. */
class Malformed {}
const MALFORMED_FIELD = new Malformed();

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
/** A sentence of at most 120 characters has at most 120 fields. */
const MAX_FIELDS = 128;

/**
 * The comma-separated fields of one sentence (address first, without `$` and `*hh`), as offsets into its text.
 * One instance is reused for every sentence of a decoder.
 */
export class SentenceFields {
  text = '';
  count = 0;
  readonly starts = new Int32Array(MAX_FIELDS);
  readonly ends = new Int32Array(MAX_FIELDS);

  /** Fields of `text.slice(start, end)`; false when there are more than MAX_FIELDS. */
  set(text: string, start: number, end: number): boolean {
    this.text = text;
    let n = 0;
    let from = start;
    for (let i = start; i < end; i++) {
      if (text.charCodeAt(i) === 44) {
        if (n >= MAX_FIELDS - 1) return false;
        this.starts[n] = from;
        this.ends[n] = i;
        n++;
        from = i + 1;
      }
    }
    this.starts[n] = from;
    this.ends[n] = end;
    this.count = n + 1;
    return true;
  }

  /** Incremental form of `set`, for a decoder that finds the commas while it checks the characters. */
  begin(text: string, start: number): void {
    this.text = text;
    this.count = 0;
    this.starts[0] = start;
  }

  /** A comma at `at`; false when there are too many fields. */
  comma(at: number): boolean {
    const n = this.count;
    if (n >= MAX_FIELDS - 1) return false;
    this.ends[n] = at;
    this.starts[n + 1] = at + 1;
    this.count = n + 1;
    return true;
  }

  close(end: number): void {
    this.ends[this.count] = end;
    this.count++;
  }

  static of(body: string): SentenceFields {
    const f = new SentenceFields();
    f.set(body, 0, body.length);
    return f;
  }

  /** Field i as text; '' when empty or beyond the last field. */
  str(i: number): string {
    return i < this.count ? this.text.slice(this.starts[i], this.ends[i]) : '';
  }

  #span(i: number): number {
    return i < this.count ? this.ends[i]! - this.starts[i]! : 0;
  }

  /** A one-or-more character field (status, mode letters); undefined when empty. */
  char(i: number): string | undefined {
    return this.#span(i) === 0 ? undefined : this.str(i);
  }

  /** Decimal: optional sign, digits, optional fraction; no exponent, hex, spaces or "Infinity". */
  num(i: number): number | undefined {
    if (this.#span(i) === 0) return undefined;
    const t = this.text;
    const end = this.ends[i]!;
    let j = this.starts[i]!;
    let c = t.charCodeAt(j);
    const negative = c === 45;
    if (negative || c === 43) j++;
    let mantissa = 0;
    let digits = 0;
    let fraction = -1;
    for (; j < end; j++) {
      c = t.charCodeAt(j);
      if (c >= 48 && c <= 57) {
        mantissa = mantissa * 10 + (c - 48);
        digits++;
        if (fraction >= 0) fraction++;
      } else if (c === 46 && fraction < 0) {
        fraction = 0;
      } else {
        throw MALFORMED_FIELD;
      }
    }
    if (digits === 0) throw MALFORMED_FIELD;
    // Up to 15 digits the integer mantissa is exact and one division rounds correctly: the same double as Number().
    if (digits > 15) return +t.slice(this.starts[i]!, end);
    const v = fraction > 0 ? mantissa / POW10[fraction]! : mantissa;
    return negative ? -v : v;
  }

  /** Unsigned integer; undefined when empty. */
  int(i: number): number | undefined {
    if (this.#span(i) === 0) return undefined;
    const t = this.text;
    const end = this.ends[i]!;
    if (end - this.starts[i]! > 15) throw MALFORMED_FIELD;
    let v = 0;
    for (let j = this.starts[i]!; j < end; j++) {
      const c = t.charCodeAt(j);
      if (c < 48 || c > 57) throw MALFORMED_FIELD;
      v = v * 10 + (c - 48);
    }
    return v;
  }

  #digits2(at: number): number {
    const a = this.text.charCodeAt(at) - 48;
    const b = this.text.charCodeAt(at + 1) - 48;
    if (a < 0 || a > 9 || b < 0 || b > 9) throw MALFORMED_FIELD;
    return a * 10 + b;
  }

  /** hhmmss[.s...] to milliseconds since midnight (sub-millisecond digits kept as a fraction). */
  time(i: number): number | undefined {
    const n = this.#span(i);
    if (n === 0) return undefined;
    if (n < 6) throw MALFORMED_FIELD;
    const s0 = this.starts[i]!;
    const h = this.#digits2(s0);
    const m = this.#digits2(s0 + 2);
    const s = this.#digits2(s0 + 4);
    // 60 is a leap second.
    if (h > 23 || m > 59 || s > 60) throw MALFORMED_FIELD;
    let ms = ((h * 60 + m) * 60 + s) * 1000;
    if (n > 6) {
      if (this.text.charCodeAt(s0 + 6) !== 46 || n === 7 || n > 16) throw MALFORMED_FIELD;
      let frac = 0;
      for (let j = s0 + 7; j < s0 + n; j++) {
        const c = this.text.charCodeAt(j);
        if (c < 48 || c > 57) throw MALFORMED_FIELD;
        frac = frac * 10 + (c - 48);
      }
      ms += (frac / POW10[n - 7]!) * 1000;
    }
    return ms;
  }

  /** ddmmyy; two-digit years pivot at 80 (the GPS epoch is 1980), as gpsd does. */
  date(i: number): CalendarDate | undefined {
    const n = this.#span(i);
    if (n === 0) return undefined;
    if (n !== 6) throw MALFORMED_FIELD;
    const s0 = this.starts[i]!;
    const day = this.#digits2(s0);
    const month = this.#digits2(s0 + 2);
    const yy = this.#digits2(s0 + 4);
    if (month < 1 || month > 12 || day < 1 || day > 31) throw MALFORMED_FIELD;
    return { year: yy < 80 ? 2000 + yy : 1900 + yy, month, day };
  }

  /**
   * A (d)ddmm.mmmm value and its hemisphere letter. Either field empty: absent. Present but not a coordinate
   * (sign, bad letter, minutes ≥ 60, out of range): malformed.
   */
  #coordinate(i: number, pos: number, neg: number, max: number): number | undefined {
    if (this.#span(i) === 0 || this.#span(i + 1) !== 1) {
      if (this.#span(i) !== 0 && this.#span(i + 1) > 1) throw MALFORMED_FIELD;
      return undefined;
    }
    const first = this.text.charCodeAt(this.starts[i]!);
    if (first === 45 || first === 43) throw MALFORMED_FIELD;
    const v = this.num(i)!;
    const deg = Math.floor(v / 100);
    const min = v - deg * 100;
    if (min >= 60) throw MALFORMED_FIELD;
    const d = deg + min / 60;
    if (d > max) throw MALFORMED_FIELD;
    const hemi = this.text.charCodeAt(this.starts[i + 1]!);
    if (hemi === pos) return d;
    if (hemi === neg) return -d;
    throw MALFORMED_FIELD;
  }

  /** Latitude and longitude from four fields at `at`; both or neither (gpsd: one without the other is no position). */
  position(at: number): { latitude: number | undefined; longitude: number | undefined } {
    const latitude = this.#coordinate(at, 78, 83, 90); // N S
    const longitude = this.#coordinate(at + 2, 69, 87, 180); // E W
    if (latitude === undefined || longitude === undefined) return { latitude: undefined, longitude: undefined };
    return { latitude, longitude };
  }
}

function parseGga(talker: string, f: SentenceFields): GgaSentence {
  const p = f.position(2);
  return {
    kind: 'GGA',
    talker,
    fieldCount: f.count,
    time: f.time(1),
    latitude: p.latitude,
    longitude: p.longitude,
    quality: f.int(6),
    satellites: f.int(7),
    hdop: f.num(8),
    altitude: f.num(9),
  };
}

function parseRmc(talker: string, f: SentenceFields): RmcSentence {
  const p = f.position(3);
  return {
    kind: 'RMC',
    talker,
    fieldCount: f.count,
    time: f.time(1),
    status: f.char(2),
    latitude: p.latitude,
    longitude: p.longitude,
    speedKnots: f.num(7),
    track: f.num(8),
    date: f.date(9),
    faaMode: f.char(12),
  };
}

function parseGsa(talker: string, f: SentenceFields): GsaSentence {
  const n = f.count;
  // 12 PRN slots in the standard; some receivers send more. NMEA 4.1 appends a system id after the DOPs.
  const dopsAt = n === 19 ? n - 4 : n - 3;
  const prns: number[] = [];
  for (let i = 3; i < dopsAt; i++) {
    const prn = f.int(i);
    if (prn !== undefined && prn > 0) prns.push(prn);
  }
  const fixTypeField = f.str(2);
  return {
    kind: 'GSA',
    talker,
    fieldCount: n,
    selection: f.char(1),
    fixType: fixTypeField === 'E' ? undefined : f.int(2),
    fixTypeField,
    prns,
    pdop: f.num(dopsAt),
    hdop: f.num(dopsAt + 1),
    vdop: f.num(dopsAt + 2),
  };
}

function parseGst(talker: string, f: SentenceFields): GstSentence {
  return {
    kind: 'GST',
    talker,
    fieldCount: f.count,
    time: f.time(1),
    rms: f.num(2),
    majorSigma: f.num(3),
    minorSigma: f.num(4),
    orientation: f.num(5),
    latSigma: f.num(6),
    lonSigma: f.num(7),
    altSigma: f.num(8),
  };
}

function parseGns(talker: string, f: SentenceFields): GnsSentence {
  const p = f.position(2);
  return {
    kind: 'GNS',
    talker,
    fieldCount: f.count,
    time: f.time(1),
    latitude: p.latitude,
    longitude: p.longitude,
    modes: f.char(6),
    satellites: f.int(7),
    hdop: f.num(8),
    altitude: f.num(9),
    navStatus: f.char(13),
  };
}

function parseGll(talker: string, f: SentenceFields): GllSentence {
  const p = f.position(1);
  return {
    kind: 'GLL',
    talker,
    fieldCount: f.count,
    latitude: p.latitude,
    longitude: p.longitude,
    time: f.time(5),
    status: f.char(6),
    faaMode: f.char(7),
  };
}

function parseZda(talker: string, f: SentenceFields): ZdaSentence {
  return { kind: 'ZDA', talker, fieldCount: f.count, time: f.time(1), day: f.int(2), month: f.int(3), year: f.int(4) };
}

function parseVtg(talker: string, f: SentenceFields): VtgSentence {
  return { kind: 'VTG', talker, fieldCount: f.count, track: f.num(1), speedKnots: f.num(5), faaMode: f.char(9) };
}

function parseGbs(talker: string, f: SentenceFields): GbsSentence {
  return { kind: 'GBS', talker, fieldCount: f.count, time: f.time(1), latSigma: f.num(2), lonSigma: f.num(3) };
}

function parsePsti030(f: SentenceFields): Psti030Sentence {
  const p = f.position(4);
  return {
    kind: 'PSTI030',
    talker: 'P',
    fieldCount: f.count,
    time: f.time(2),
    status: f.char(3),
    latitude: p.latitude,
    longitude: p.longitude,
    altitude: f.num(8),
    date: f.date(12),
    faaMode: f.char(13),
  };
}

function parsePsrfepe(f: SentenceFields): PsrfepeSentence {
  return { kind: 'PSRFEPE', talker: 'P', fieldCount: f.count, time: f.time(1), status: f.char(2), hdop: f.num(3) };
}

type FieldParser = (talker: string, f: SentenceFields) => NmeaSentence;

/** Parser and gpsd's minimum field count (shorter sentences gpsd ignores; we drop them as malformed). */
const FORMATTERS: Record<string, [FieldParser, number]> = {
  GGA: [parseGga, 13],
  RMC: [parseRmc, 8],
  GSA: [parseGsa, 18],
  GST: [parseGst, 8],
  GNS: [parseGns, 13],
  GLL: [parseGll, 7],
  ZDA: [parseZda, 4],
  VTG: [parseVtg, 5],
  GBS: [parseGbs, 7],
};

function isUpperAlnum(t: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = t.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (c >= 48 && c <= 57))) return false;
  }
  return true;
}

/** Turns the fields of one checksum-verified sentence into a typed sentence. Never throws. */
export function parseSentence(f: SentenceFields): Parsed<NmeaSentence> {
  const t = f.text;
  const a0 = f.starts[0]!;
  const a1 = f.ends[0]!;
  const length = a1 - a0;
  if (length < 2 || !isUpperAlnum(t, a0, a1)) return MALFORMED;
  try {
    // A 5-letter address is talker + formatter; "PQGSA" (Quectel BeiDou) is a talker too, not proprietary.
    if (length === 5) {
      const type = t.slice(a0 + 2, a1);
      const talker = t.slice(a0, a0 + 2);
      const formatter = FORMATTERS[type];
      if (formatter !== undefined) return f.count < formatter[1] ? MALFORMED : formatter[0](talker, f);
      if (t.charCodeAt(a0) !== 80) return { kind: 'other', talker, type, fieldCount: f.count };
    }
    if (t.charCodeAt(a0) === 80) {
      // Proprietary: $P + manufacturer + message.
      const address = t.slice(a0, a1);
      if (address === 'PSTI' && f.str(1) === '030') return f.count === 16 ? parsePsti030(f) : MALFORMED;
      if (address === 'PSRFEPE') return f.count >= 7 ? parsePsrfepe(f) : MALFORMED;
      return { kind: 'other', talker: 'P', type: address.slice(1), fieldCount: f.count };
    }
    return { kind: 'other', talker: t.slice(a0, a0 + 2), type: t.slice(a0 + 2, a1), fieldCount: f.count };
  } catch (e) {
    if (e === MALFORMED_FIELD) return MALFORMED;
    throw e;
  }
}

/** Parses one sentence body (address first, without `$` and `*hh`); for tests and tools. */
export function parseBody(body: string): Parsed<NmeaSentence> {
  const f = new SentenceFields();
  return f.set(body, 0, body.length) ? parseSentence(f) : MALFORMED;
}
