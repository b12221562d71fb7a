/** One position report from a receiver, as decoded. Times are UTC milliseconds since the epoch. */
export interface Fix {
  latitude: number;
  longitude: number;
  /** Altitude above mean sea level, meters, when known. */
  altitude_m?: number;
  /** 95% horizontal uncertainty radius in meters (see src/gps/uncertainty.ts for the formulas). */
  uncertainty_m: number;
  /** When the receiver measured this fix (UTC ms). Not when we received it. */
  time: number;
  mode: '2d' | '3d';
  satellites?: number;
  speed_mps?: number;
  heading_deg?: number;
  /** Which source produced it: gpsd, nmea, replay, static. */
  source: string;
  /**
   * A configured location of a device that does not move (the static source): it is as true now as when it was
   * set, so it never goes stale. Never set on a measured fix.
   */
  stationary?: boolean;
}

export type GpsSourceState = 'starting' | 'connected' | 'disconnected' | 'stopped';

/**
 * A source of fixes. The constructor does no I/O; `start()` begins (and keeps) the connection until `stop()`,
 * reconnecting by itself with jittered backoff. Garbage input is counted and dropped, never thrown.
 */
export interface GpsSource {
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Registers a listener for every decoded fix; returns a function that removes it. */
  onFix(listener: (fix: Fix) => void): () => void;
  /** Connection state changes, for feedback and health. */
  onState(listener: (state: GpsSourceState) => void): () => void;
  /** Counters for health and doctor: sentences/reports seen, dropped as garbage, fixes emitted. */
  stats(): { received: number; dropped: number; fixes: number };
}

/** The location an alert carries: a fix (or the static fallback) as it stands at the moment of the snapshot. */
export interface LocationSnapshot {
  latitude: number;
  longitude: number;
  /** 95% radius in meters, grown with the fix's age when it is stale. */
  uncertainty_m: number;
  /** When the fix was measured (UTC ms). */
  fix_time: number;
  /** now - fix_time at the snapshot, ms. */
  age_ms: number;
  /** True when older than gps.max_age_s. */
  stale: boolean;
  source: string;
  altitude_m?: number;
  speed_mps?: number;
  heading_deg?: number;
}
