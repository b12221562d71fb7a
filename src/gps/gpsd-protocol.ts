import { z } from 'zod';
import type { Fix } from './types.ts';
import { gpsdUncertainty, gstUncertainty } from './uncertainty.ts';

/**
 * The parts of gpsd's JSON protocol (https://gpsd.gitlab.io/gpsd/gpsd_json.html) that make a fix. Other report
 * classes (VERSION, DEVICES, WATCH, SKY, ...) are read and ignored. Unknown fields are ignored, so newer gpsd
 * versions keep working.
 */

/** Sent once connected: stream JSON reports (and only JSON). */
export const WATCH_COMMAND = '?WATCH={"enable":true,"json":true}\n';

// zod 4 numbers reject NaN and ±Infinity.
const finite = z.number();

export const tpvSchema = z.object({
  class: z.literal('TPV'),
  device: z.string().optional(),
  /** 0 unknown, 1 no fix, 2 2D, 3 3D. */
  mode: z.number().int().min(0).max(3),
  time: z.string().optional(),
  lat: finite.min(-90).max(90).optional(),
  lon: finite.min(-180).max(180).optional(),
  /** gpsd ≥ 3.20 sends altMSL; older ones alt (MSL too). */
  altMSL: finite.optional(),
  alt: finite.optional(),
  eph: finite.optional(),
  epx: finite.optional(),
  epy: finite.optional(),
  speed: finite.optional(),
  track: finite.optional(),
});
export type Tpv = z.infer<typeof tpvSchema>;

export const gstSchema = z.object({
  class: z.literal('GST'),
  time: z.string().optional(),
  /** 1-sigma errors in meters. */
  lat: finite.optional(),
  lon: finite.optional(),
  major: finite.optional(),
  minor: finite.optional(),
});
export type Gst = z.infer<typeof gstSchema>;

export const skySchema = z.object({
  class: z.literal('SKY'),
  uSat: z.number().int().nonnegative().optional(),
  satellites: z.array(z.object({ used: z.boolean().optional() }).loose()).optional(),
});

export type GpsdReport = { kind: 'tpv'; tpv: Tpv } | { kind: 'gst'; gst: Gst } | { kind: 'sky'; used: number | undefined } | { kind: 'other' } | { kind: 'bad' };

/** One line of gpsd output to a report; `bad` for anything that is not JSON or not what its class says. */
export function parseGpsdLine(line: string): GpsdReport {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { kind: 'bad' };
  }
  if (typeof json !== 'object' || json === null || !('class' in json) || typeof json.class !== 'string') return { kind: 'bad' };
  switch (json.class) {
    case 'TPV': {
      const r = tpvSchema.safeParse(json);
      return r.success ? { kind: 'tpv', tpv: r.data } : { kind: 'bad' };
    }
    case 'GST': {
      const r = gstSchema.safeParse(json);
      return r.success ? { kind: 'gst', gst: r.data } : { kind: 'bad' };
    }
    case 'SKY': {
      const r = skySchema.safeParse(json);
      if (!r.success) return { kind: 'bad' };
      const used = r.data.uSat ?? r.data.satellites?.filter((s) => s.used === true).length;
      return { kind: 'sky', used };
    }
    default:
      return { kind: 'other' };
  }
}

/**
 * A TPV with a 2D/3D position and a time to a Fix. Uncertainty: the GST of the same epoch when sane, else
 * `eph`, else `epx`/`epy` (src/gps/uncertainty.ts), else the unknown-HDOP default.
 */
export function tpvToFix(tpv: Tpv, gst: Gst | undefined, satellites: number | undefined, fallbackUncertaintyM: number): Fix | null {
  if (tpv.mode < 2 || tpv.lat === undefined || tpv.lon === undefined || tpv.time === undefined) return null;
  const time = Date.parse(tpv.time);
  if (!Number.isFinite(time)) return null;
  const fromGst =
    gst !== undefined && gst.time === tpv.time
      ? gstUncertainty({ latSigma: gst.lat, lonSigma: gst.lon, majorSigma: gst.major, minorSigma: gst.minor })
      : undefined;
  const fix: Fix = {
    latitude: tpv.lat,
    longitude: tpv.lon,
    uncertainty_m: fromGst ?? gpsdUncertainty(tpv.eph, tpv.epx, tpv.epy) ?? fallbackUncertaintyM,
    time,
    mode: tpv.mode === 3 ? '3d' : '2d',
    source: 'gpsd',
  };
  const alt = tpv.altMSL ?? tpv.alt;
  if (alt !== undefined && tpv.mode === 3) fix.altitude_m = alt;
  if (satellites !== undefined) fix.satellites = satellites;
  if (tpv.speed !== undefined) fix.speed_mps = tpv.speed;
  if (tpv.track !== undefined) fix.heading_deg = tpv.track;
  return fix;
}
