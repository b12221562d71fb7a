import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gpsSchema } from '../../../src/config/agent-schema.ts';
import { createGpsSource } from '../../../src/gps/create.ts';
import { FixTracker } from '../../../src/gps/fix-tracker.ts';
import { NmeaSerialSource } from '../../../src/gps/nmea-source.ts';
import { ReplaySource } from '../../../src/gps/replay-source.ts';
import { sttyArgs } from '../../../src/gps/serial-port.ts';
import { StaticSource } from '../../../src/gps/static-source.ts';
import type { Fix, GpsSourceState } from '../../../src/gps/types.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';

function nmea(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

function epoch(t: string): string {
  return (
    nmea(`GNRMC,${t}.00,A,4404.13387,N,12118.85628,W,0.0,,100117,,,A`) +
    nmea(`GNGGA,${t}.00,4404.13387,N,12118.85628,W,1,12,1.01,1144.8,M,-21.4,M,,`) +
    nmea(`GNGLL,4404.13387,N,12118.85628,W,${t}.00,A,A`)
  );
}

const dir = mkdtempSync(join(tmpdir(), 'sos-gps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const LOG = join(dir, 'track.nmea');
writeFileSync(LOG, `# a comment line, as in gpsd's captures\n${epoch('235958')}${epoch('235959')}${epoch('000000')}`);

function collect(source: { onFix(l: (f: Fix) => void): () => void; onState(l: (s: GpsSourceState) => void): () => void }): { fixes: Fix[]; states: GpsSourceState[] } {
  const fixes: Fix[] = [];
  const states: GpsSourceState[] = [];
  source.onFix((f) => fixes.push(f));
  source.onState((s) => states.push(s));
  return { fixes, states };
}

describe('ReplaySource', () => {
  it("plays a log at its own pace (across midnight), stamping fixes with the time they are played", async () => {
    const clock = new FakeClock(Date.UTC(2026, 2, 1, 9, 0, 0));
    const source = new ReplaySource({ file: LOG, rate: 1, loop: false, clock, logger: silentLogger() });
    const { fixes, states } = collect(source);
    await source.start();
    // First epoch at once: the epoch's end is not known yet, so RMC, GGA and GLL each give a fix.
    expect(fixes).toHaveLength(3);
    expect(fixes.every((f) => f.time === clock.now() && f.source === 'replay')).toBe(true);
    clock.advance(999);
    expect(fixes).toHaveLength(3);
    clock.advance(1);
    expect(fixes).toHaveLength(4);
    expect(fixes[3]?.time).toBe(clock.now());
    clock.advance(1000);
    expect(fixes).toHaveLength(5);
    expect(states).toEqual(['starting', 'connected', 'disconnected']);
    expect(clock.pending()).toBe(0);
    expect(source.stats()).toEqual({ received: 9, dropped: 0, fixes: 5 });
  });

  it('plays rate× faster and loops', async () => {
    const clock = new FakeClock();
    const source = new ReplaySource({ file: LOG, rate: 10, loop: true, clock, logger: silentLogger() });
    const { fixes } = collect(source);
    await source.start();
    clock.advance(200);
    expect(fixes).toHaveLength(5);
    // A pass ends, the next starts one (log) second later: a receiver restarting.
    clock.advance(100);
    expect(fixes).toHaveLength(8);
    await source.stop();
    clock.advance(10_000);
    expect(fixes).toHaveLength(8);
    expect(clock.pending()).toBe(0);
  });

  it('a missing file is reported and retried, not thrown', async () => {
    const clock = new FakeClock();
    const source = new ReplaySource({ file: join(dir, 'nope.nmea'), rate: 1, loop: true, clock, logger: silentLogger() });
    const { states } = collect(source);
    await source.start();
    expect(states).toEqual(['starting', 'disconnected']);
    expect(clock.pending()).toBe(1);
    await source.stop();
    expect(clock.pending()).toBe(0);
  });
});

describe('NmeaSerialSource', () => {
  it('sets the port raw at its baud, ignoring modem lines (a GPS HAT has no carrier detect)', () => {
    expect(sttyArgs('/dev/serial0', 9600)).toEqual(['-F', '/dev/serial0', '9600', 'raw', '-echo', 'clocal', 'cread']);
  });

  it('a receiver not plugged in yet is retried until stop, not thrown', async () => {
    const clock = new FakeClock();
    const source = new NmeaSerialSource({ device: join(dir, 'ttyACM9'), baud: 9600, clock, logger: silentLogger() });
    const { states } = collect(source);
    await source.start();
    expect(states).toEqual(['starting', 'disconnected']);
    expect(clock.pending()).toBe(1);
    await source.stop();
    expect(states.at(-1)).toBe('stopped');
    expect(clock.pending()).toBe(0);
  });
});

describe('StaticSource', () => {
  it('emits its configured location once at start, as a stationary fix timed now', async () => {
    const clock = new FakeClock();
    const source = new StaticSource({ latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, clock, logger: silentLogger() });
    const { fixes, states } = collect(source);
    await source.start();
    expect(fixes).toEqual([{ latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, time: clock.now(), mode: '2d', source: 'static', stationary: true }]);
    expect(states).toEqual(['connected']);
    const tracker = new FixTracker({ maxAgeMs: 10_000, fallback: null, clock });
    tracker.update(fixes[0]!);
    clock.advance(86_400_000);
    expect(tracker.snapshot()).toMatchObject({ uncertainty_m: 7, stale: false });
  });
});

describe('createGpsSource', () => {
  it.each([
    [{ source: 'gpsd' }, 'gpsd'],
    [{ source: 'nmea', device: '/dev/serial0' }, 'nmea'],
    [{ source: 'replay', file: LOG }, 'replay'],
    [{ source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 }, 'static'],
  ])('makes the source the config names (%o), opening nothing', (gps, kind) => {
    const source = createGpsSource(gpsSchema.parse(gps), { clock: new FakeClock(), logger: silentLogger() });
    expect(source.kind).toBe(kind);
    expect(source.stats()).toEqual({ received: 0, dropped: 0, fixes: 0 });
  });
});
