import { describe, expect, it } from 'vitest';
import { FixTracker } from '../../../src/gps/fix-tracker.ts';
import type { Fix } from '../../../src/gps/types.ts';
import { STALE_GROWTH_MPS } from '../../../src/gps/uncertainty.ts';
import { FakeClock } from '../../../src/shared/clock.ts';

const FALLBACK = { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 150 };

function fixAt(clock: FakeClock, over: Partial<Fix> = {}): Fix {
  return { latitude: 44.0689, longitude: -121.3142, uncertainty_m: 10, time: clock.now(), mode: '3d', source: 'nmea', ...over };
}

describe('FixTracker', () => {
  it('has nothing to say before a fix when there is no fallback', () => {
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock: new FakeClock() });
    expect(tracker.snapshot()).toBeNull();
    expect(tracker.health()).toEqual({ state: 'waiting', fixes: 0, lastFixAgeMs: null });
  });

  it('gives the configured fallback when there has never been a fix', () => {
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: FALLBACK, clock: new FakeClock() });
    expect(tracker.snapshot()).toMatchObject({ ...FALLBACK, source: 'fallback', stale: false });
    expect(tracker.health().state).toBe('fallback');
  });

  it('a fresh fix is reported with its own time, age and radius', () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: FALLBACK, clock });
    const fix = fixAt(clock, { altitude_m: 1144.8, speed_mps: 0.5, heading_deg: 90 });
    tracker.update(fix);
    clock.advance(2_000);
    expect(tracker.snapshot()).toEqual({
      latitude: fix.latitude,
      longitude: fix.longitude,
      uncertainty_m: 10,
      fix_time: fix.time,
      age_ms: 2_000,
      stale: false,
      source: 'nmea',
      altitude_m: 1144.8,
      speed_mps: 0.5,
      heading_deg: 90,
    });
    expect(tracker.health()).toEqual({ state: 'fresh', fixes: 1, lastFixAgeMs: 2_000 });
  });

  it('a stale fix keeps its true time and its radius grows with its age: never an old fix dressed as new', () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock });
    const fix = fixAt(clock);
    tracker.update(fix);
    clock.advance(60_000);
    const snap = tracker.snapshot();
    expect(snap).toMatchObject({ fix_time: fix.time, age_ms: 60_000, stale: true, uncertainty_m: 10 + 60 * STALE_GROWTH_MPS });
    expect(tracker.health().state).toBe('stale');
  });

  it('a stale fix from a moving vehicle grows at its last speed', () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock });
    tracker.update(fixAt(clock, { speed_mps: 20 }));
    clock.advance(30_000);
    expect(tracker.snapshot()?.uncertainty_m).toBe(10 + 30 * 20);
  });

  it('takes the fallback once the grown stale fix is worse than it, not before, when the fix was inside it', () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: FALLBACK, clock });
    // 100 m north of the fallback's point: inside its 150 m circle (a gateway's yard).
    tracker.update(fixAt(clock, { latitude: FALLBACK.latitude + 100 / 111_320, longitude: FALLBACK.longitude }));
    // 10 m + age·1.5 m/s passes the 150 m fallback at 93.3 s.
    clock.advance(90_000);
    expect(tracker.snapshot()).toMatchObject({ source: 'nmea', stale: true });
    clock.advance(5_000);
    expect(tracker.snapshot()).toMatchObject({ source: 'fallback', uncertainty_m: 150 });
    expect(tracker.health().state).toBe('fallback');
  });

  it('never swaps a stale fix far from the fallback for the fallback: the vehicle is not at the depot', () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: FALLBACK, clock });
    tracker.update(fixAt(clock, { speed_mps: 0 })); // Oregon, thousands of km from the Baltimore fallback
    clock.advance(3_600_000);
    const snap = tracker.snapshot();
    expect(snap).toMatchObject({ source: 'nmea', stale: true, latitude: 44.0689, age_ms: 3_600_000 });
    expect(snap!.uncertainty_m).toBeGreaterThan(5000);
  });

  it('counts age on the monotonic clock when the wall clock is behind the receiver (a Pi without RTC)', () => {
    const clock = new FakeClock(Date.UTC(2020, 0, 1));
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock });
    tracker.update(fixAt(clock, { time: Date.UTC(2026, 0, 1) }));
    clock.advance(15_000);
    expect(tracker.snapshot()).toMatchObject({ age_ms: 15_000, stale: true });
  });

  it('a stationary (static) location never goes stale', () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock });
    tracker.update(fixAt(clock, { stationary: true, uncertainty_m: 25, source: 'static' }));
    clock.advance(3_600_000);
    expect(tracker.snapshot()).toMatchObject({ uncertainty_m: 25, stale: false, age_ms: 0, fix_time: clock.now(), source: 'static' });
  });

  it('waitForLocation resolves at once when there is a location', async () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: FALLBACK, clock });
    await expect(tracker.waitForLocation()).resolves.toMatchObject({ source: 'fallback' });
  });

  it('waitForLocation waits for the first fix', async () => {
    const clock = new FakeClock();
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock });
    let got: unknown = null;
    const waiting = tracker.waitForLocation().then((s) => (got = s));
    await Promise.resolve();
    expect(got).toBeNull();
    tracker.update(fixAt(clock));
    await waiting;
    expect(got).toMatchObject({ source: 'nmea', stale: false });
  });

  it('waitForLocation rejects when aborted, and forgets the waiter', async () => {
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock: new FakeClock() });
    const abort = new AbortController();
    const waiting = tracker.waitForLocation(abort.signal);
    abort.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    await expect(tracker.waitForLocation(abort.signal)).rejects.toThrow('gave up');
  });
});
