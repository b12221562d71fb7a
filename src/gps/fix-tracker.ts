import type { Clock } from '../shared/clock.ts';
import type { Fix, LocationSnapshot } from './types.ts';
import { grownUncertainty } from './uncertainty.ts';

export interface StaticLocation {
  latitude: number;
  longitude: number;
  uncertainty_m: number;
}

export interface FixTrackerOptions {
  /** A fix older than this is stale (gps.max_age_s · 1000). */
  maxAgeMs: number;
  /** gps.fallback: used when better than a stale fix, or when there is no fix at all. */
  fallback: StaticLocation | null;
  clock: Clock;
}

export type LocationState = 'fresh' | 'stale' | 'fallback' | 'waiting';

export interface FixTrackerHealth {
  /** fresh: a current fix; stale: only an old one; fallback: the configured location; waiting: nothing. */
  state: LocationState;
  fixes: number;
  /** Age of the last fix, ms; null before the first. */
  lastFixAgeMs: number | null;
}

/**
 * Keeps the latest fix and says, at any moment, where the device is and how sure we are.
 *
 * Age is the larger of two clocks: the receiver's (now − fix time) and ours (monotonic time since the fix
 * arrived). A Raspberry Pi has no RTC and boots with an old wall clock until NTP or GPS sets it: then
 * now − fix time is negative and the monotonic age still counts; a wall clock that is wrong the other way
 * makes fixes look older, never newer. A stale fix keeps its true time; its radius grows with its age
 * (src/gps/uncertainty.ts); the fallback replaces it only when the fallback's radius is smaller AND the last
 * fix lay inside the fallback's circle: a vehicle last seen 80 km from its depot is not at the depot, however
 * old the fix (then the stale fix, with its true age and grown radius, is the honest answer).
 */
export class FixTracker {
  readonly #maxAgeMs: number;
  readonly #fallback: StaticLocation | null;
  readonly #clock: Clock;
  #fix: Fix | null = null;
  #receivedAt = 0;
  #fixes = 0;
  readonly #waiters = new Set<() => void>();

  constructor(options: FixTrackerOptions) {
    this.#maxAgeMs = options.maxAgeMs;
    this.#fallback = options.fallback;
    this.#clock = options.clock;
  }

  /** The latest fix received replaces the previous one (the receiver's present state, even if its clock jumped). */
  update(fix: Fix): void {
    this.#fix = fix;
    this.#receivedAt = this.#clock.monotonic();
    this.#fixes++;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  snapshot(): LocationSnapshot | null {
    const fix = this.#fix;
    const fallback = this.#fallback;
    if (fix === null) return fallback === null ? null : this.#fallbackSnapshot(fallback);
    const now = this.#clock.now();
    if (fix.stationary === true) return { ...this.#measured(fix, now), fix_time: now, age_ms: 0, stale: false };
    const age = this.#ageMs(fix, now);
    const stale = age > this.#maxAgeMs;
    const uncertainty = grownUncertainty(fix.uncertainty_m, age, this.#maxAgeMs, fix.speed_mps);
    if (stale && fallback !== null && fallback.uncertainty_m < uncertainty && withinFallback(fix, fallback)) return this.#fallbackSnapshot(fallback);
    return { ...this.#measured(fix, now), uncertainty_m: uncertainty, age_ms: age, stale };
  }

  /** Resolves at once when there is a location (fix or fallback), else with the first fix; rejects on abort. */
  waitForLocation(signal?: AbortSignal): Promise<LocationSnapshot> {
    const now = this.snapshot();
    if (now !== null) return Promise.resolve(now);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<LocationSnapshot>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters.delete(wake);
        reject(signal?.reason);
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        const snap = this.snapshot();
        // update() always leaves a fix, so a snapshot exists.
        if (snap !== null) resolve(snap);
      };
      this.#waiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  health(): FixTrackerHealth {
    const fix = this.#fix;
    const lastFixAgeMs = fix === null ? null : fix.stationary === true ? 0 : this.#ageMs(fix, this.#clock.now());
    const snap = this.snapshot();
    const state: LocationState = snap === null ? 'waiting' : fix === null || snap.source === 'fallback' ? 'fallback' : snap.stale ? 'stale' : 'fresh';
    return { state, fixes: this.#fixes, lastFixAgeMs };
  }

  #ageMs(fix: Fix, now: number): number {
    return Math.max(now - fix.time, this.#clock.monotonic() - this.#receivedAt);
  }

  #measured(fix: Fix, now: number): LocationSnapshot {
    const snap: LocationSnapshot = {
      latitude: fix.latitude,
      longitude: fix.longitude,
      uncertainty_m: fix.uncertainty_m,
      fix_time: fix.time,
      age_ms: Math.max(0, now - fix.time),
      stale: false,
      source: fix.source,
    };
    if (fix.altitude_m !== undefined) snap.altitude_m = fix.altitude_m;
    if (fix.speed_mps !== undefined) snap.speed_mps = fix.speed_mps;
    if (fix.heading_deg !== undefined) snap.heading_deg = fix.heading_deg;
    return snap;
  }

  /** The configured location: not a measurement, so it has no age; its radius is what was configured. */
  #fallbackSnapshot(f: StaticLocation): LocationSnapshot {
    const now = this.#clock.now();
    return { latitude: f.latitude, longitude: f.longitude, uncertainty_m: f.uncertainty_m, fix_time: now, age_ms: 0, stale: false, source: 'fallback' };
  }
}

const EARTH_RADIUS_M = 6_371_008.8;

/** Great-circle distance in meters (haversine). */
export function distanceM(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The fix's own circle overlaps the fallback's: the device was there, so the fallback may stand in for it. */
function withinFallback(fix: Fix, fallback: StaticLocation): boolean {
  return distanceM(fix, fallback) <= fallback.uncertainty_m + fix.uncertainty_m;
}
