import { describe, expect, it } from 'vitest';
import { gpsdUncertainty, grownUncertainty, gstUncertainty, hdopUncertainty, STALE_GROWTH_MPS } from '../../../src/gps/uncertainty.ts';

describe('95% radius', () => {
  it('from GST: 2·hypot(σlat, σlon)', () => {
    expect(gstUncertainty({ latSigma: 3, lonSigma: 4 })).toBe(10);
    // The ellipse axes, when sent, agree: 3² + 4² = 5² + 0².
    expect(gstUncertainty({ latSigma: 3, lonSigma: 4, majorSigma: 5, minorSigma: 0.1 })).toBe(10);
  });

  it('rejects absurd GST values', () => {
    expect(gstUncertainty({ latSigma: 304885, lonSigma: 304880 })).toBeUndefined();
    expect(gstUncertainty({ latSigma: 0, lonSigma: 3 })).toBeUndefined();
    expect(gstUncertainty({ latSigma: -1, lonSigma: 3 })).toBeUndefined();
    expect(gstUncertainty({ latSigma: undefined, lonSigma: 3 })).toBeUndefined();
    expect(gstUncertainty({ latSigma: Number.NaN, lonSigma: 3 })).toBeUndefined();
    // σlat² + σlon² must equal σmajor² + σminor²: 0.4 m beside a 22 m axis is a contradiction.
    expect(gstUncertainty({ latSigma: 0.4, lonSigma: 0.6, majorSigma: 22.2, minorSigma: 10.2 })).toBeUndefined();
  });

  it('from HDOP: 2·HDOP·5 m; none known counts as HDOP 10', () => {
    expect(hdopUncertainty(1.2)).toBe(12);
    expect(hdopUncertainty(undefined)).toBe(100);
    expect(hdopUncertainty(0)).toBe(100);
  });

  it("from gpsd: eph as is, else 2·hypot(epx/1.96, epy/1.96)", () => {
    expect(gpsdUncertainty(18.24, 11.4, 22.2)).toBe(18.24);
    expect(gpsdUncertainty(undefined, 1.96 * 3, 1.96 * 4)).toBeCloseTo(10, 9);
    expect(gpsdUncertainty(undefined, undefined, 3)).toBeUndefined();
  });
});

describe('a stale radius grows with age', () => {
  it('stays the receiver\'s while the fix is current', () => {
    expect(grownUncertainty(10, 9_999, 10_000, 30)).toBe(10);
  });

  it('grows by the whole age at walking pace when the last speed was lower', () => {
    expect(grownUncertainty(10, 60_000, 10_000, 0)).toBe(10 + 60 * STALE_GROWTH_MPS);
  });

  it('grows at the last speed when moving faster', () => {
    expect(grownUncertainty(10, 20_000, 10_000, 25)).toBe(10 + 20 * 25);
  });
});
