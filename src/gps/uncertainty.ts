/**
 * The 95% horizontal uncertainty radius of a fix, in meters, and how it grows with age.
 *
 * 1. From a GST sentence of the same epoch (the receiver's own 1-sigma errors of latitude and longitude):
 *        u95 = 2 · hypot(σlat, σlon)
 *    This is 2DRMS, the radius that holds 95-98% of fixes for any ellipse shape. The GST is used only when
 *    sane: both sigmas finite, > 0 and ≤ 5 km, and, when the ellipse axes are sent too, consistent with them:
 *    σlat² + σlon² = σmajor² + σminor² (the trace of the covariance does not change with rotation), within
 *    25% + 0.5 m for rounding. u-blox LEA-5Q sends 300 km sigmas before its first fix and a SkyTraq sends
 *    σlat 0.4 m beside a 22 m semi-major axis; both are rejected.
 * 2. Else from the HDOP of the epoch (or the last one the receiver sent):
 *        u95 = 2 · HDOP · UERE,   UERE = 5 m (user equivalent range error of a single-frequency receiver)
 * 3. Else, a receiver that sends no HDOP at all (RMC only): HDOP is taken as UNKNOWN_HDOP = 10 ("poor"), so
 *    100 m: better to promise too little than too much.
 *
 * From gpsd's JSON (src/gps/gpsd-source.ts): `eph` is already gpsd's 95% horizontal estimate and is used as
 * is; without it, `epx`/`epy` are gpsd's 95% bounds per axis (1.96 σ each), so
 *        u95 = 2 · hypot(epx / 1.96, epy / 1.96)
 * the same 2DRMS as above.
 *
 * Age: a fix older than `max_age_s` is stale; the person may have moved since it was measured. Its radius
 * grows with its whole age:
 *        u(age) = u95 + age · rate,   rate = max(last speed, STALE_GROWTH_MPS)  [m/s]
 * STALE_GROWTH_MPS = 1.5 m/s is a walking pace: a person who pressed the button may be walking away from a
 * parked vehicle even when the last fix said 0 m/s; a moving vehicle grows at its own last speed. The whole
 * age counts (not only the time past `max_age_s`): the distance one may have covered since the fix is what
 * matters. A fix within `max_age_s` is current and keeps the receiver's radius.
 */

export const UERE_M = 5;
export const UNKNOWN_HDOP = 10;
export const STALE_GROWTH_MPS = 1.5;
/** Above this a GST sigma is absurd (no receiver that has a fix is 5 km wrong 1-sigma). */
export const GST_MAX_SIGMA_M = 5000;
/** 95% of a normal distribution lies within this many sigmas of the mean, per axis. */
export const Z95 = 1.96;

export interface GstSigmas {
  latSigma: number | undefined;
  lonSigma: number | undefined;
  majorSigma?: number | undefined;
  minorSigma?: number | undefined;
}

function saneSigma(x: number | undefined): x is number {
  return x !== undefined && Number.isFinite(x) && x > 0 && x <= GST_MAX_SIGMA_M;
}

/** 2·hypot(σlat, σlon) when the GST is sane, else undefined. */
export function gstUncertainty(gst: GstSigmas): number | undefined {
  const { latSigma, lonSigma, majorSigma, minorSigma } = gst;
  if (!saneSigma(latSigma) || !saneSigma(lonSigma)) return undefined;
  const radial = Math.hypot(latSigma, lonSigma);
  if (majorSigma !== undefined && minorSigma !== undefined) {
    if (!Number.isFinite(majorSigma) || !Number.isFinite(minorSigma) || majorSigma < 0 || minorSigma < 0) return undefined;
    const axes = Math.hypot(majorSigma, minorSigma);
    if (Math.abs(radial - axes) > 0.5 + 0.25 * Math.max(radial, axes)) return undefined;
  }
  return 2 * radial;
}

/** 2·HDOP·UERE; an absent or nonsensical HDOP counts as UNKNOWN_HDOP. */
export function hdopUncertainty(hdop: number | undefined): number {
  const h = hdop !== undefined && Number.isFinite(hdop) && hdop > 0 ? hdop : UNKNOWN_HDOP;
  return 2 * h * UERE_M;
}

/** gpsd TPV: `eph` when present, else 2·hypot(epx/1.96, epy/1.96); undefined when neither is usable. */
export function gpsdUncertainty(eph: number | undefined, epx: number | undefined, epy: number | undefined): number | undefined {
  if (eph !== undefined && Number.isFinite(eph) && eph > 0) return eph;
  if (epx !== undefined && epy !== undefined && Number.isFinite(epx) && Number.isFinite(epy) && epx > 0 && epy > 0) {
    return 2 * Math.hypot(epx / Z95, epy / Z95);
  }
  return undefined;
}

/** The radius of a fix `ageMs` old: the receiver's until `maxAgeMs`, then grown by its age at max(speed, walking pace). */
export function grownUncertainty(uncertaintyM: number, ageMs: number, maxAgeMs: number, speedMps?: number): number {
  if (ageMs <= maxAgeMs) return uncertaintyM;
  const rate = Math.max(speedMps !== undefined && Number.isFinite(speedMps) ? speedMps : 0, STALE_GROWTH_MPS);
  return uncertaintyM + (ageMs / 1000) * rate;
}
