import { describe, expect, it } from 'vitest';
import { EpochAssembler, type EpochReport } from '../../../src/gps/epoch.ts';
import { NmeaDecoder } from '../../../src/gps/nmea.ts';
import type { Fix } from '../../../src/gps/types.ts';

function nmea(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

function run(text: string): { fixes: Fix[]; reports: EpochReport[] } {
  const fixes: Fix[] = [];
  const reports: EpochReport[] = [];
  const assembler = new EpochAssembler((f) => fixes.push(f), { onReport: (r) => reports.push(r) });
  const decoder = new NmeaDecoder((s) => assembler.push(s));
  decoder.push(text);
  decoder.end();
  return { fixes, reports };
}

/** A u-blox-like epoch: RMC, VTG, GGA, GSA, GLL; `hhmmss` is the time of day, `ddmmyy` the date. */
function epoch(hhmmss: string, ddmmyy = '100126', opts: { lat?: string; sats?: string; hdop?: string; extra?: string } = {}): string {
  const lat = opts.lat ?? '4404.13387';
  return [
    nmea(`GNRMC,${hhmmss}.00,A,${lat},N,12118.85628,W,10.0,90.5,${ddmmyy},,,A`),
    nmea('GNVTG,90.5,T,,M,10.0,N,18.5,K,A'),
    nmea(`GNGGA,${hhmmss}.00,${lat},N,12118.85628,W,1,${opts.sats ?? '12'},${opts.hdop ?? '1.01'},1144.8,M,-21.4,M,,`),
    opts.extra ?? '',
    nmea('GNGSA,A,3,23,09,16,07,26,03,27,22,,,,,1.71,1.01,1.38'),
    nmea(`GNGLL,${lat},N,12118.85628,W,${hhmmss}.00,A,A`),
  ].join('');
}

describe('epoch assembly', () => {
  it('gives a first fix at the first sentence with a position, then one fix per epoch at its last sentence', () => {
    const { fixes } = run(epoch('120000') + epoch('120001') + epoch('120002'));
    // First epoch: RMC, GGA, GSA, GLL each report (the epoch's end is not known yet); then GLL ends each epoch.
    expect(fixes.map((f) => new Date(f.time).toISOString())).toEqual([
      '2026-01-10T12:00:00.000Z',
      '2026-01-10T12:00:00.000Z',
      '2026-01-10T12:00:00.000Z',
      '2026-01-10T12:00:00.000Z',
      '2026-01-10T12:00:01.000Z',
      '2026-01-10T12:00:02.000Z',
    ]);
  });

  it('makes a complete fix: position, 3D altitude, satellites, speed in m/s, heading, HDOP radius', () => {
    const { fixes } = run(epoch('120000') + epoch('120001'));
    const last = fixes.at(-1);
    expect(last).toMatchObject({ mode: '3d', altitude_m: 1144.8, satellites: 12, heading_deg: 90.5, source: 'nmea' });
    expect(last?.latitude).toBeCloseTo(44 + 4.13387 / 60, 9);
    expect(last?.longitude).toBeCloseTo(-(121 + 18.85628 / 60), 9);
    expect(last?.speed_mps).toBeCloseTo(10 * 0.514444, 5);
    expect(last?.uncertainty_m).toBeCloseTo(2 * 1.01 * 5, 9);
  });

  it('uses the GST of the same epoch for the radius: 2·hypot(σlat, σlon)', () => {
    const gst = (t: string): string => nmea(`GNGST,${t}.00,11,4.0,3.0,45,4.0,3.0,5.0`);
    const { fixes } = run(epoch('120000', '100126', { extra: gst('120000') }) + epoch('120001', '100126', { extra: gst('120001') }));
    expect(fixes.at(-1)?.uncertainty_m).toBeCloseTo(10, 9);
  });

  it("ignores a GST of another epoch, an absurd one, and one whose sigmas contradict its own ellipse", () => {
    const hdopRadius = 2 * 1.01 * 5;
    const stale = run(epoch('120000', '100126', { extra: nmea('GNGST,115959.00,11,4.0,3.0,45,4.0,3.0,5.0') }));
    expect(stale.fixes.at(-1)?.uncertainty_m).toBeCloseTo(hdopRadius, 9);
    const absurd = run(epoch('120000', '100126', { extra: nmea('GPGST,120000.00,0.0000,,,,304885,304880,62123') }));
    expect(absurd.fixes.at(-1)?.uncertainty_m).toBeCloseTo(hdopRadius, 9);
    const contradictory = run(epoch('120000', '100126', { extra: nmea('GPGST,120000.00,16.1,22.2,10.2,2.0,0.4,0.6,1.4') }));
    expect(contradictory.fixes.at(-1)?.uncertainty_m).toBeCloseTo(hdopRadius, 9);
  });

  it('has no fix before it knows the date: a report without time is no location', () => {
    const text = nmea('GPGGA,120000.00,4404.13387,N,12118.85628,W,1,08,1.0,100.0,M,0.0,M,,') + nmea('GPGGA,120001.00,4404.13387,N,12118.85628,W,1,08,1.0,100.0,M,0.0,M,,');
    const { fixes, reports } = run(text);
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((r) => r.time === undefined && r.mode === 3)).toBe(true);
    expect(fixes).toEqual([]);
  });

  it('carries the date from RMC to later times of day, across midnight', () => {
    const gga = (t: string): string => nmea(`GPGGA,${t}.00,4404.13387,N,12118.85628,W,1,08,1.0,100.0,M,0.0,M,,`);
    const { fixes } = run(nmea('GPRMC,235958.00,A,4404.13387,N,12118.85628,W,0.0,,311226,,,A') + gga('235958') + gga('235959') + gga('000000'));
    expect(new Date(fixes.at(-1)!.time).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('moves a date from before 2017 forward 1024 weeks (a receiver that missed a GPS week rollover), as gpsd does', () => {
    const { fixes } = run(epoch('120000', '220899'));
    expect(new Date(fixes[0]!.time).toISOString()).toBe('2019-04-07T12:00:00.000Z');
  });

  it('a receiver without a fix gives no location', () => {
    const text = nmea('GPRMC,120000.00,V,,,,,,,100126,,,N') + nmea('GPGGA,120000.00,,,,,0,00,99.99,,,,,,') + nmea('GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99');
    const { fixes, reports } = run(text + text.replaceAll('120000', '120001'));
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((r) => r.mode === 1)).toBe(true);
    expect(fixes).toEqual([]);
  });

  it('a 2D fix (3 satellites, no altitude) is a 2d fix without altitude', () => {
    const text = nmea('GPGGA,112257.00,3844.24011,N,00908.43828,W,1,03,10.5,,,,,,') + nmea('GPRMC,112257.00,A,3844.24011,N,00908.43828,W,0.1,339.1,220326,5.6,E,A') + nmea('GPGSA,A,2,10,13,23,,,,,,,,,,10.5,10.5,');
    const { fixes } = run(text);
    expect(fixes.at(-1)).toMatchObject({ mode: '2d', uncertainty_m: 105 });
    expect(fixes.at(-1)?.altitude_m).toBeUndefined();
  });

  it('an RMC-only receiver gets the unknown-HDOP radius (100 m): nothing says it is better', () => {
    const { fixes } = run(nmea('GPRMC,120000.00,A,4404.1,N,12118.8,W,0.0,,100126,,,A') + nmea('GPRMC,120001.00,A,4404.1,N,12118.8,W,0.0,,100126,,,A'));
    expect(fixes.map((f) => f.uncertainty_m)).toEqual([100, 100]);
  });
});
