import type { CalendarDate, NmeaSentence } from './nmea-sentences.ts';
import type { Fix } from './types.ts';
import { gstUncertainty, hdopUncertainty } from './uncertainty.ts';

/**
 * Turns a stream of NMEA sentences into position reports, the way gpsd does, so that our fixes can be checked
 * against gpsd's own regression captures (test/unit/gps/gpsd-fixtures.test.ts) and behave like gpsd with any
 * receiver gpsd has met.
 *
 * An NMEA receiver sends one burst of sentences per epoch (RMC, GGA, GSA, ... in an order of its own). The
 * sentences with a time of day mark the epochs: when that time changes, a new epoch starts, and the
 * timestamped sentence type seen last before the change is learned as the one that ends an epoch (a "cycle
 * ender"). From then on a report is made at every cycle ender, with everything merged since the epoch
 * started. Until a cycle ender is known (the first second), a report is made at every sentence that brings a
 * position or a mode, so the first fix is never held back. gpsd 3.20+, driver_nmea0183.c `nmea_parse` and
 * libgpsd_core.c `gpsd_poll`; its per-sentence rules for the fix mode are mirrored in `#rmc`, `#gga`, ....
 *
 * Dates: only RMC and ZDA carry one; other sentences' times take the last date seen (rolling over at
 * midnight). A date before 2017 is a receiver whose firmware predates a GPS week-number rollover: it is moved
 * 1024 weeks forward, as gpsd does. Until a date is known, reports have no time and make no `Fix`.
 */

/** gpsd's fix mode: 0 not seen, 1 no fix, 2 2D, 3 3D. */
export type ReportMode = 0 | 1 | 2 | 3;

/** One position report: what gpsd would put in a TPV at this point of the stream. */
export interface EpochReport {
  mode: ReportMode;
  /** UTC ms, when the date is known. */
  time: number | undefined;
  latitude: number | undefined;
  longitude: number | undefined;
  /** Meters above mean sea level. */
  altitude: number | undefined;
  speedMps: number | undefined;
  /** Course over ground, degrees true. */
  track: number | undefined;
  /** Satellites used in the solution. */
  satellites: number | undefined;
  hdop: number | undefined;
  /** 95% horizontal radius, meters (src/gps/uncertainty.ts). */
  uncertaintyM: number;
}

const KNOTS_TO_MPS = 1852 / 3600;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const GPS_ROLLOVER_MS = 1024 * 7 * DAY_MS;
/** gpsd moves UTC dates before 2017-01-01 (its leap-second count of 18 says they cannot be real) forward. */
const ROLLOVER_FLOOR_MS = Date.UTC(2017, 0, 1);

// gpsd's mask bits, the subset that matters for a report.
const TIME = 1;
const LATLON = 2;
const MODE = 4;
const ALTITUDE = 8;
const SPEED = 16;
const TRACK = 32;
const CLEAR = 64;
const REPORT = 128;
const SATELLITES = 256;

interface FixState {
  mode: number;
  time: number | undefined;
  latitude: number | undefined;
  longitude: number | undefined;
  altitude: number | undefined;
  speed: number | undefined;
  track: number | undefined;
  satellites: number | undefined;
}

function emptyFix(): FixState {
  return { mode: 0, time: undefined, latitude: undefined, longitude: undefined, altitude: undefined, speed: undefined, track: undefined, satellites: undefined };
}

/** Time-of-day as gpsd's `safe_atof("hhmmss.ss")`, for its 10 ms epoch-change test. */
function hhmmss(ms: number): number {
  const s = Math.floor(ms / 1000);
  return Math.floor(s / 3600) * 10000 + (Math.floor(s / 60) % 60) * 100 + (s % 60) + (ms - s * 1000) / 1000;
}

/** gpsd's nmeaid_to_prn(): does this satellite number count as a used satellite (non-zero PRN)? */
function countsAsUsed(n: number): boolean {
  if (n < 1) return false;
  if (n <= 96) return true;
  if (n < 120) return false;
  if (n <= 158) return true;
  if (n < 173) return false;
  if (n <= 182) return true;
  if (n < 193) return false;
  if (n <= 197) return true;
  if (n < 201) return false;
  if (n <= 237) return true;
  if (n < 301) return false;
  if (n <= 356) return true;
  if (n < 401) return false;
  return n <= 437;
}

/** Sentence types whose time marks epochs; each gets a tag number for the cycle-ender set. */
const TAGS: Record<string, number> = { RMC: 1, GGA: 2, GLL: 3, GNS: 4, GBS: 5, PSRFEPE: 6, PSTI030: 7 };

export interface EpochAssemblerOptions {
  /** `Fix.source` of the fixes made (default "nmea"). */
  source?: string;
  /** Every report, fix or not (gpsd's TPV), for comparison with gpsd and for "waiting for a fix" states. */
  onReport?: (report: EpochReport) => void;
}

export class EpochAssembler {
  readonly #onFix: (fix: Fix) => void;
  readonly #onReport: ((report: EpochReport) => void) | undefined;
  readonly #source: string;

  // The running date and time of day (gpsd's session->nmea.date).
  #date: CalendarDate | undefined;
  #hour = 0;
  #timeOfDay = 0;

  // Epoch detection.
  #thisStamp = 0;
  #lastStamp = 0;
  #latch = false;
  #lastTag = 0;
  readonly #cycleEnders = new Set<number>();
  #cycleEndReliable = false;

  // Per-receiver bookkeeping gpsd keeps across sentences.
  #lastGgaTalker = '';
  #lastGgaTime: number | undefined = undefined;
  #latchMode = false;
  #lastGsaTalker = '';
  #seenOtherGsa = false;
  #satellitesUsed = 0;
  #hdop: number | undefined = undefined;
  #gst: { time: number; latSigma: number | undefined; lonSigma: number | undefined; majorSigma: number | undefined; minorSigma: number | undefined } | undefined;

  // gpsd's merged fix of the current epoch, the last merged fix with a time, and the one before that.
  #fix: FixState = emptyFix();
  #lastFix: FixState = emptyFix();
  #oldFix: FixState = emptyFix();
  // What the sentence being processed brings (gpsd's newdata).
  #new: FixState = emptyFix();

  #reports = 0;
  #fixes = 0;

  constructor(onFix: (fix: Fix) => void, options: EpochAssemblerOptions = {}) {
    this.#onFix = onFix;
    this.#onReport = options.onReport;
    this.#source = options.source ?? 'nmea';
  }

  stats(): { reports: number; fixes: number } {
    return { reports: this.#reports, fixes: this.#fixes };
  }

  push(s: NmeaSentence): void {
    this.#new = emptyFix();
    this.#latch = false;
    let mask = 0;
    switch (s.kind) {
      case 'RMC':
        mask = this.#rmc(s);
        break;
      case 'GGA':
        mask = this.#gga(s);
        break;
      case 'GLL':
        mask = this.#gll(s);
        break;
      case 'GNS':
        mask = this.#gns(s);
        break;
      case 'GSA':
        mask = this.#gsa(s);
        break;
      case 'ZDA':
        mask = this.#zda(s);
        break;
      case 'VTG':
        mask = this.#vtg(s);
        break;
      case 'GBS':
        if (s.time !== undefined) this.#registerTime(s.time);
        break;
      case 'GST':
        if (s.time !== undefined) {
          this.#gst = { time: s.time, latSigma: s.latSigma, lonSigma: s.lonSigma, majorSigma: s.majorSigma, minorSigma: s.minorSigma };
        }
        break;
      case 'PSRFEPE':
        mask = this.#psrfepe(s);
        break;
      case 'PSTI030':
        mask = this.#psti030(s);
        break;
      case 'other':
        break;
    }
    if (s.kind !== 'GSA') this.#lastGsaTalker = '';
    this.#endOfSentence(s.kind, mask);
  }

  // ---- dates and times -------------------------------------------------------------------------------------

  #mergeTimeOfDay(ms: number): void {
    const hour = Math.floor(ms / HOUR_MS);
    // A time of day that went backwards crossed midnight: the day moves on until a date says otherwise.
    if (hour < this.#hour && this.#date !== undefined) this.#date = { ...this.#date, day: this.#date.day + 1 };
    this.#hour = hour;
    this.#timeOfDay = ms;
  }

  #registerTime(ms: number): void {
    this.#lastStamp = this.#thisStamp;
    this.#thisStamp = hhmmss(ms);
    this.#latch = true;
  }

  #resolveTime(): number | undefined {
    const d = this.#date;
    if (d === undefined) return undefined;
    let t = Date.UTC(d.year, d.month - 1, d.day) + this.#timeOfDay;
    if (t < ROLLOVER_FLOOR_MS) {
      while (t < ROLLOVER_FLOOR_MS) t += GPS_ROLLOVER_MS;
      const shifted = new Date(t);
      this.#date = { year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate() };
    }
    return t;
  }

  // ---- sentences (gpsd's processXXX) -----------------------------------------------------------------------

  #rmc(s: Extract<NmeaSentence, { kind: 'RMC' }>): number {
    const n = this.#new;
    let mask = 0;
    if (s.status !== 'A' && s.status !== 'D') {
      n.mode = 1;
      return MODE;
    }
    if (s.time !== undefined && s.fieldCount > 9 && s.date !== undefined) {
      this.#mergeTimeOfDay(s.time);
      this.#date = s.date;
      mask |= TIME;
      this.#registerTime(s.time);
    }
    if (s.latitude !== undefined && s.longitude !== undefined) {
      n.latitude = s.latitude;
      n.longitude = s.longitude;
      mask |= LATLON;
      // RMC says nothing of 2D or 3D: keep what the last fix was.
      n.mode = this.#lastFix.mode === 3 ? 3 : 2;
    } else {
      n.mode = 1;
    }
    mask |= MODE;
    if (s.speedKnots !== undefined) {
      n.speed = s.speedKnots * KNOTS_TO_MPS;
      mask |= SPEED;
    }
    if (s.track !== undefined) {
      n.track = s.track;
      mask |= TRACK;
    }
    if (this.#satellitesUsed > 3 || this.#fix.altitude !== undefined) n.mode = 3;
    return mask;
  }

  #gga(s: Extract<NmeaSentence, { kind: 'GGA' }>): number {
    const n = this.#new;
    let mask = 0;
    const talker = s.talker.charAt(1);
    const lastLast = this.#lastGgaTalker;
    this.#lastGgaTalker = talker;
    // A GGA repeating the last one's time is a receiver that lost lock and keeps resending its last fix
    // (Trimble Placer); SiRFstarV sends one GGA per constellation with the same time, hence the talker test.
    if (lastLast !== '' && lastLast !== talker) this.#latchMode = false;
    else this.#latchMode = s.time === this.#lastGgaTime;
    if (this.#latchMode) n.mode = 1;
    else this.#lastGgaTime = s.time;
    const satellites = s.satellites ?? 0;
    if (s.time !== undefined) {
      this.#mergeTimeOfDay(s.time);
      this.#registerTime(s.time);
      if (this.#date !== undefined) mask |= TIME;
    }
    if (s.latitude !== undefined && s.longitude !== undefined) {
      n.latitude = s.latitude;
      n.longitude = s.longitude;
      n.mode = 2;
      mask |= LATLON;
      if (s.altitude !== undefined) {
        n.altitude = s.altitude;
        mask |= ALTITUDE;
        if (satellites >= 4) n.mode = 3;
      }
      if (satellites < 3) n.mode = 1;
    } else {
      n.mode = 1;
    }
    mask |= MODE;
    if (s.hdop !== undefined) this.#hdop = s.hdop;
    if (s.satellites !== undefined) {
      n.satellites = s.satellites;
      mask |= SATELLITES;
    }
    return mask;
  }

  #gll(s: Extract<NmeaSentence, { kind: 'GLL' }>): number {
    const n = this.#new;
    let mask = 0;
    if (s.time !== undefined) {
      this.#mergeTimeOfDay(s.time);
      this.#registerTime(s.time);
      if (this.#date !== undefined) mask = TIME;
    }
    if (s.status === undefined || s.status === 'V') {
      n.mode = 1;
    } else if (s.status === 'A' && (s.fieldCount < 8 || s.faaMode !== 'N') && s.latitude !== undefined && s.longitude !== undefined) {
      n.latitude = s.latitude;
      n.longitude = s.longitude;
      mask |= LATLON;
      if (this.#fix.altitude !== undefined) n.mode = 3;
      else if (this.#satellitesUsed > 3) n.mode = 3;
      else if (this.#fix.mode < 2 || this.#oldFix.altitude === undefined) n.mode = 2;
    } else {
      n.mode = 1;
    }
    return mask | MODE;
  }

  #gns(s: Extract<NmeaSentence, { kind: 'GNS' }>): number {
    const n = this.#new;
    let mask = 0;
    if (s.time !== undefined) {
      this.#mergeTimeOfDay(s.time);
      this.#registerTime(s.time);
      if (this.#date !== undefined) mask = TIME;
    }
    if (s.modes === undefined || s.modes.charAt(0) === 'N') {
      n.mode = 1;
      return mask | MODE;
    }
    if (s.navStatus === 'U' || s.navStatus === 'V') return mask;
    if (s.latitude !== undefined && s.longitude !== undefined) {
      n.latitude = s.latitude;
      n.longitude = s.longitude;
      n.mode = 2;
      mask |= LATLON;
      if (s.altitude !== undefined) {
        n.altitude = s.altitude;
        mask |= ALTITUDE;
        if ((s.satellites ?? 0) > 3) n.mode = 3;
      }
    } else {
      n.mode = 1;
    }
    if (s.hdop !== undefined) this.#hdop = s.hdop;
    if (s.satellites !== undefined) {
      n.satellites = s.satellites;
      mask |= SATELLITES;
    }
    return mask | MODE;
  }

  #gsa(s: Extract<NmeaSentence, { kind: 'GSA' }>): number {
    const talker = s.talker.charAt(1);
    const lastLast = this.#lastGsaTalker;
    let mask = 0;
    // After a GGA that repeated its time, the GSA is as stale as it was.
    if (!this.#latchMode) {
      this.#new.mode = s.fixType ?? 0;
      mask = s.fixTypeField === 'E' ? 0 : MODE;
      if (s.fieldCount <= 19 && s.hdop !== undefined) this.#hdop = s.hdop;
      // Receivers send one GSA per constellation; accumulate within the run, restart on a repeat.
      if (this.#lastGsaTalker === '' || (talker === this.#lastGsaTalker && talker !== 'N')) this.#satellitesUsed = 0;
      this.#lastGsaTalker = talker;
      if (talker === 'B' || talker === 'D' || talker === 'Q' || talker === 'L' || talker === 'A') this.#seenOtherGsa = true;
      for (const prn of s.prns) if (countsAsUsed(prn)) this.#satellitesUsed++;
    }
    if (this.#seenOtherGsa && talker === 'P') mask = 0;
    else if (lastLast !== 'N' && talker === 'N') mask = MODE;
    return mask;
  }

  #zda(s: Extract<NmeaSentence, { kind: 'ZDA' }>): number {
    if (s.time === undefined || s.day === undefined || s.month === undefined || s.year === undefined) return 0;
    this.#mergeTimeOfDay(s.time);
    if (s.year < 1900 || s.year > 2200 || s.month < 1 || s.month > 12 || s.day < 1 || s.day > 31) return 0;
    this.#date = { year: s.year, month: s.month, day: s.day };
    return TIME;
  }

  #vtg(s: Extract<NmeaSentence, { kind: 'VTG' }>): number {
    if (s.track === undefined || s.speedKnots === undefined) return 0;
    if (s.fieldCount > 9 && (s.faaMode === 'E' || s.faaMode === 'N')) return 0;
    this.#new.track = s.track;
    this.#new.speed = s.speedKnots * KNOTS_TO_MPS;
    return TRACK | SPEED;
  }

  #psrfepe(s: Extract<NmeaSentence, { kind: 'PSRFEPE' }>): number {
    let mask = 0;
    if (s.time !== undefined) {
      this.#mergeTimeOfDay(s.time);
      this.#registerTime(s.time);
      if (this.#date !== undefined) mask |= TIME;
    }
    if (s.status === 'A' && s.hdop !== undefined) this.#hdop = s.hdop;
    return mask;
  }

  #psti030(s: Extract<NmeaSentence, { kind: 'PSTI030' }>): number {
    const n = this.#new;
    let mask = 0;
    if (s.status === 'V' || s.faaMode === 'N') {
      n.mode = 1;
      return MODE;
    }
    if (s.status !== 'A') return 0;
    if (s.time !== undefined && s.date !== undefined) {
      this.#mergeTimeOfDay(s.time);
      this.#date = s.date;
      mask |= TIME;
      this.#registerTime(s.time);
    }
    if (s.latitude !== undefined && s.longitude !== undefined) {
      n.latitude = s.latitude;
      n.longitude = s.longitude;
      n.mode = 2;
      mask |= LATLON;
      if (s.altitude !== undefined) {
        n.altitude = s.altitude;
        mask |= ALTITUDE;
        n.mode = 3;
      }
      mask |= MODE;
    }
    return mask;
  }

  // ---- epoch detection, merge and report ---------------------------------------------------------------------

  #endOfSentence(kind: string, sentenceMask: number): void {
    let mask = sentenceMask;
    const n = this.#new;
    if ((mask & TIME) !== 0) n.time = this.#resolveTime();
    const thisTag = TAGS[kind] ?? 0;
    if (this.#latch) {
      if (Math.abs(this.#thisStamp - this.#lastStamp) > 0.01) {
        mask |= CLEAR;
        if (this.#lastTag > 0 && !this.#cycleEnders.has(this.#lastTag)) {
          this.#cycleEnders.add(this.#lastTag);
          this.#cycleEndReliable = true;
        }
      }
      if (this.#cycleEnders.has(thisTag)) mask |= REPORT;
      this.#lastTag = thisTag;
    }
    // Do not let a sentence without altitude (RMC, GLL) downgrade a 3D fix.
    if ((mask & MODE) !== 0 && this.#fix.mode === 3 && n.mode !== 1 && (this.#lastFix.altitude !== undefined || this.#oldFix.altitude !== undefined)) {
      n.mode = 3;
    }

    if ((mask & CLEAR) !== 0) this.#fix = emptyFix();
    const f = this.#fix;
    if ((mask & MODE) !== 0) f.mode = n.mode;
    if ((mask & TIME) !== 0) f.time = n.time;
    if ((mask & LATLON) !== 0) {
      f.latitude = n.latitude;
      f.longitude = n.longitude;
    }
    if ((mask & ALTITUDE) !== 0) f.altitude = n.altitude;
    if ((mask & SPEED) !== 0) f.speed = n.speed;
    if ((mask & TRACK) !== 0) f.track = n.track;
    if ((mask & SATELLITES) !== 0) f.satellites = n.satellites;
    if (f.time !== undefined) {
      if (this.#lastFix.time === undefined || Math.abs(f.time - this.#lastFix.time) > 9.9) this.#oldFix = this.#lastFix;
      this.#lastFix = { ...f };
    }

    if (!this.#cycleEndReliable && (mask & (LATLON | MODE)) !== 0) mask |= REPORT;
    if ((mask & REPORT) !== 0) this.#report();
  }

  #report(): void {
    const f = this.#fix;
    const hasPosition = f.mode >= 2 && f.latitude !== undefined && f.longitude !== undefined;
    const report: EpochReport = {
      mode: f.mode as ReportMode,
      time: f.time,
      latitude: hasPosition ? f.latitude : undefined,
      longitude: hasPosition ? f.longitude : undefined,
      altitude: hasPosition && f.mode === 3 ? f.altitude : undefined,
      speedMps: f.speed,
      track: f.track,
      satellites: f.satellites ?? (this.#satellitesUsed > 0 ? this.#satellitesUsed : undefined),
      hdop: this.#hdop,
      uncertaintyM: this.#uncertainty(f.time),
    };
    this.#reports++;
    this.#onReport?.(report);
    const fix = reportToFix(report, this.#source);
    if (fix !== null) {
      this.#fixes++;
      this.#onFix(fix);
    }
  }

  #uncertainty(time: number | undefined): number {
    const gst = this.#gst;
    // Same epoch: the GST's time of day is the fix's (dates may have been moved by whole weeks).
    if (gst !== undefined && time !== undefined && Math.abs((((time % DAY_MS) + DAY_MS) % DAY_MS) - gst.time) < 1) {
      const u = gstUncertainty(gst);
      if (u !== undefined) return u;
    }
    return hdopUncertainty(this.#hdop);
  }
}

/** A report becomes a `Fix` when it has a 2D/3D position and a time; anything less is no location. */
export function reportToFix(r: EpochReport, source: string): Fix | null {
  if (r.mode < 2 || r.time === undefined || r.latitude === undefined || r.longitude === undefined) return null;
  const fix: Fix = {
    latitude: r.latitude,
    longitude: r.longitude,
    uncertainty_m: r.uncertaintyM,
    time: r.time,
    mode: r.mode === 3 ? '3d' : '2d',
    source,
  };
  if (r.altitude !== undefined) fix.altitude_m = r.altitude;
  if (r.satellites !== undefined) fix.satellites = r.satellites;
  if (r.speedMps !== undefined) fix.speed_mps = r.speedMps;
  if (r.track !== undefined) fix.heading_deg = r.track;
  return fix;
}
