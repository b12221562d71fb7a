import type { LocationSnapshot } from '../gps/types.ts';

/**
 * A made-up GPS track for a simulated device: a loop around a centre (the seed's sample point in Baltimore by
 * default), each device on its own radius and phase so a fleet spreads out, driving at `speedMps`.
 */
export interface TrackOptions {
  centreLat?: number;
  centreLon?: number;
  /** Loop radius in meters. */
  radiusM: number;
  speedMps: number;
  /** Starting angle, radians. */
  phase: number;
}

const EARTH_M_PER_DEG_LAT = 111_320;

export class LoopTrack {
  readonly #o: Required<TrackOptions>;

  constructor(options: TrackOptions) {
    this.#o = { centreLat: 39.28527, centreLon: -76.61247, ...options };
  }

  /** Where the device is at `nowMs`, as a fix measured `fixAgeMs` earlier with a 95% radius of `uncertaintyM`. */
  locationAt(nowMs: number, fixAgeMs = 1000, uncertaintyM = 8): LocationSnapshot {
    const { centreLat, centreLon, radiusM, speedMps, phase } = this.#o;
    const fixTime = nowMs - fixAgeMs;
    const angle = phase + ((fixTime / 1000) * speedMps) / radiusM;
    const dLat = (radiusM * Math.sin(angle)) / EARTH_M_PER_DEG_LAT;
    const dLon = (radiusM * Math.cos(angle)) / (EARTH_M_PER_DEG_LAT * Math.cos((centreLat * Math.PI) / 180));
    const headingDeg = ((((angle + Math.PI / 2) * 180) / Math.PI) % 360 + 360) % 360;
    return {
      latitude: centreLat + dLat,
      longitude: centreLon + dLon,
      uncertainty_m: uncertaintyM,
      fix_time: fixTime,
      age_ms: fixAgeMs,
      stale: false,
      source: 'sim',
      speed_mps: speedMps,
      heading_deg: Math.round(headingDeg),
    };
  }
}
