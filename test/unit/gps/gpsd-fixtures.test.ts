import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EpochAssembler, type EpochReport } from '../../../src/gps/epoch.ts';
import { NmeaDecoder } from '../../../src/gps/nmea.ts';
import type { Fix } from '../../../src/gps/types.ts';
import { sharedFixtures } from '../../support/fixtures.ts';

/**
 * The verification against gpsd's own regression suite: every NMEA capture, decoded by us, must give the
 * reports gpsd gave (its TPVs in the .chk file): same count, and each with the same mode, the same time and
 * the same position within 1e-6°. Captures that are binary protocols (SiRF, UBX) hold no NMEA: they must
 * decode to nothing, without a throw, and are listed here with the reason.
 */

const fixtures = sharedFixtures();
const dir = fixtures === null ? '' : join(fixtures, 'gpsd');

/** gpsd's answer for these came from its SiRF and u-blox binary drivers; the .log holds no NMEA sentence. */
const BINARY = new Set(['bu303-moving.log', 'bu303-nofix.log', 'ublox-neo-m8n.log']);

interface Tpv {
  mode: number;
  time?: string;
  lat?: number;
  lon?: number;
}

function gpsdReports(file: string): Tpv[] {
  const out: Tpv[] = [];
  for (const line of readFileSync(`${file}.chk`, 'latin1').split('\n')) {
    if (!line.startsWith('{"class":"TPV"')) continue;
    out.push(JSON.parse(line) as Tpv);
  }
  return out;
}

function decode(file: string, chunk: number): { reports: EpochReport[]; fixes: Fix[]; decoder: NmeaDecoder } {
  const reports: EpochReport[] = [];
  const fixes: Fix[] = [];
  const assembler = new EpochAssembler((f) => fixes.push(f), { onReport: (r) => reports.push(r) });
  const decoder = new NmeaDecoder((s) => assembler.push(s));
  const bytes = readFileSync(file);
  for (let i = 0; i < bytes.length; i += chunk) decoder.push(bytes.subarray(i, i + chunk));
  decoder.end();
  return { reports, fixes, decoder };
}

function sameReport(ours: EpochReport | undefined, gpsd: Tpv): boolean {
  if (ours === undefined || ours.mode !== gpsd.mode) return false;
  if ((ours.time === undefined ? undefined : new Date(ours.time).toISOString()) !== gpsd.time) return false;
  if (gpsd.lat === undefined || gpsd.lon === undefined) return ours.latitude === undefined && ours.longitude === undefined;
  return ours.latitude !== undefined && ours.longitude !== undefined && Math.abs(ours.latitude - gpsd.lat) < 1e-6 && Math.abs(ours.longitude - gpsd.lon) < 1e-6;
}

const logs = fixtures === null ? [] : readdirSync(dir).filter((f) => f.endsWith('.log')).sort();

describe.runIf(fixtures !== null)("gpsd's regression captures", () => {
  it('are all here (17 receivers)', () => {
    expect(logs).toHaveLength(17);
  });

  for (const name of logs.filter((f) => !BINARY.has(f))) {
    it(`${name}: every report matches gpsd's TPV (mode, time, lat/lon within 1e-6°)`, () => {
      const file = join(dir, name);
      const expected = gpsdReports(file);
      // An odd chunk size puts chunk boundaries inside sentences: framing must not care.
      const { reports, fixes } = decode(file, 37);
      const mismatches = expected.map((e, i) => (sameReport(reports[i], e) ? null : { i, gpsd: e, ours: reports[i] })).filter((m) => m !== null);
      expect(mismatches.slice(0, 3)).toEqual([]);
      expect(reports).toHaveLength(expected.length);
      // The fixes an alert can use are exactly gpsd's TPVs with a 2D/3D position and a time.
      const gpsdFixes = expected.filter((e) => e.mode >= 2 && e.time !== undefined && e.lat !== undefined);
      expect(fixes).toHaveLength(gpsdFixes.length);
      for (const fix of fixes) {
        expect(fix.uncertainty_m).toBeGreaterThan(0);
        expect(Number.isFinite(fix.uncertainty_m)).toBe(true);
      }
    });
  }

  for (const name of logs.filter((f) => BINARY.has(f))) {
    it(`${name}: a binary protocol, no NMEA: decodes to no fix and no throw`, () => {
      const { fixes, decoder } = decode(join(dir, name), 64);
      expect(fixes).toEqual([]);
      expect(decoder.stats().received).toBe(0);
    });
  }

  it('the cold-boot capture (truncated, NUL-filled, run-together sentences) is counted and dropped, not thrown', () => {
    const { decoder } = decode(join(dir, 'gp-320fw-2019-04-07-coldboot.log'), 1);
    const s = decoder.stats();
    expect(s.received).toBe(91);
    expect(s.droppedBy).toMatchObject({ checksum: 36, no_checksum: 5, truncated: 5, bad_char: 1 });
  });

  it('the GST before the first fix of the u-blox LEA-5Q (300 km sigmas) never becomes an uncertainty', () => {
    const { reports } = decode(join(dir, 'ublox-lea-5q.log'), 512);
    expect(reports.length).toBeGreaterThan(0);
    for (const r of reports) expect(r.uncertaintyM).toBeLessThan(1000);
  });

  it('the ZED-F9P fixes take their radius from its GST (σlat 2.3-2.4 m, σlon 3.5 m), not from its HDOP', () => {
    const { fixes } = decode(join(dir, 'ublox-zed-f9p-nmea.log'), 4096);
    const radii = new Set(fixes.slice(7).map((f) => f.uncertainty_m.toFixed(6)));
    expect(radii).toEqual(new Set([(2 * Math.hypot(2.3, 3.5)).toFixed(6), (2 * Math.hypot(2.4, 3.5)).toFixed(6)]));
    // The first epoch reports before its GST: at RMC nothing says how good the fix is (100 m), at GGA the
    // HDOP does (0.64: 6.4 m).
    expect(fixes[0]?.uncertainty_m).toBe(100);
    expect(fixes[1]?.uncertainty_m).toBeCloseTo(2 * 0.64 * 5, 6);
  });
});
