import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeNmeaLine, NmeaDecoder, type NmeaDecoderOptions, type NmeaSentence } from '../../../src/gps/nmea.ts';

/** `$body*hh` with the right checksum. */
function nmea(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}`;
}

function decodeAll(chunks: readonly (string | Uint8Array)[], options?: NmeaDecoderOptions): { sentences: NmeaSentence[]; decoder: NmeaDecoder } {
  const sentences: NmeaSentence[] = [];
  const decoder = new NmeaDecoder((s) => sentences.push(s), options);
  for (const c of chunks) decoder.push(c);
  decoder.end();
  return { sentences, decoder };
}

const GGA = nmea('GPGGA,092835.00,4804.14539,N,01621.54005,E,1,10,0.96,205.3,M,42.0,M,,');
const RMC = nmea('GNRMC,092835.00,A,4804.14539,N,01621.54005,E,0.250,,210615,,,A');

describe('NMEA framing', () => {
  it('decodes a GGA into typed values: degrees, meters, ms of the day', () => {
    const s = decodeNmeaLine(GGA);
    expect(s).toMatchObject({
      kind: 'GGA',
      talker: 'GP',
      time: ((9 * 60 + 28) * 60 + 35) * 1000,
      quality: 1,
      satellites: 10,
      hdop: 0.96,
      altitude: 205.3,
    });
    if (typeof s === 'string' || s.kind !== 'GGA') throw new Error('not a GGA');
    expect(s.latitude).toBeCloseTo(48 + 4.14539 / 60, 9);
    expect(s.longitude).toBeCloseTo(16 + 21.54005 / 60, 9);
  });

  it('south and west are negative', () => {
    const s = decodeNmeaLine(nmea('GNRMC,003956.00,A,4552.65403,S,17030.00668,W,0.025,,120419,,,A,V'));
    expect(s).toMatchObject({ kind: 'RMC', date: { year: 2019, month: 4, day: 12 }, status: 'A' });
    if (typeof s === 'string' || s.kind !== 'RMC') throw new Error('not an RMC');
    expect(s.latitude).toBeCloseTo(-(45 + 52.65403 / 60), 9);
    expect(s.longitude).toBeCloseTo(-(170 + 30.00668 / 60), 9);
  });

  it('empty fields are absent values, never zeros', () => {
    const s = decodeNmeaLine(nmea('GPGGA,,,,,,0,,,,M,,M,,'));
    expect(s).toMatchObject({ kind: 'GGA', time: undefined, latitude: undefined, longitude: undefined, satellites: undefined, hdop: undefined, altitude: undefined, quality: 0 });
    const gsa = decodeNmeaLine(nmea('GPGSA,A,1,,,,,,,,,,,,,,,'));
    expect(gsa).toMatchObject({ kind: 'GSA', fixType: 1, prns: [], pdop: undefined, hdop: undefined, vdop: undefined });
  });

  it.each(['GP', 'GN', 'GL', 'GA', 'GB', 'BD', 'QZ', 'GI'])('takes GGA, RMC, GSA, GST and GNS from any talker (%s)', (talker) => {
    expect(decodeNmeaLine(nmea(`${talker}GGA,092835.00,4804.1,N,01621.5,E,1,10,0.96,205.3,M,42.0,M,,`))).toMatchObject({ kind: 'GGA', talker });
    expect(decodeNmeaLine(nmea(`${talker}RMC,092835.00,A,4804.1,N,01621.5,E,0.2,,210615,,,A`))).toMatchObject({ kind: 'RMC', talker });
    expect(decodeNmeaLine(nmea(`${talker}GSA,A,3,22,17,28,15,18,,,,,,,,1.75,0.96,1.47`))).toMatchObject({ kind: 'GSA', talker, prns: [22, 17, 28, 15, 18], hdop: 0.96 });
    expect(decodeNmeaLine(nmea(`${talker}GST,003956.00,43,,,,2.3,3.5,4.0`))).toMatchObject({ kind: 'GST', talker, latSigma: 2.3, lonSigma: 3.5, majorSigma: undefined });
    expect(decodeNmeaLine(nmea(`${talker}GNS,053232.438,3114.8789,N,12135.2442,E,ANNA,07,1.2,153.8,8.3,,0000`))).toMatchObject({ kind: 'GNS', talker, modes: 'ANNA', satellites: 7 });
  });

  it('reads NMEA 4.1 GSA (system id after the DOPs)', () => {
    expect(decodeNmeaLine(nmea('GNGSA,A,3,13,16,21,15,10,29,27,20,,,,,1.05,0.64,0.83,1'))).toMatchObject({ prns: [13, 16, 21, 15, 10, 29, 27, 20], pdop: 1.05, hdop: 0.64, vdop: 0.83 });
  });

  it('wants exactly two hex digits of checksum at the end of the line (either case)', () => {
    expect(decodeNmeaLine(GGA.toLowerCase().replace('$gpgga', '$GPGGA').replace(/,n,/, ',N,').replace(/,e,/, ',E,').replace(/,m,/g, ',M,'))).toMatchObject({ kind: 'GGA' });
    expect(decodeNmeaLine(GGA.slice(0, -1))).toBe('checksum');
    expect(decodeNmeaLine(`${GGA}0`)).toBe('checksum');
    expect(decodeNmeaLine(`${GGA.slice(0, -2)}ZZ`)).toBe('checksum');
    expect(decodeNmeaLine(`${GGA.slice(0, -2)}00`)).toBe('checksum');
  });

  it('drops sentences without a checksum unless told to accept them (gpsd does)', () => {
    const bare = GGA.slice(0, GGA.indexOf('*'));
    expect(decodeNmeaLine(bare)).toBe('no_checksum');
    expect(decodeNmeaLine(bare, { requireChecksum: false })).toMatchObject({ kind: 'GGA', satellites: 10 });
  });

  it('resynchronizes at $: a sentence cut by another is dropped, the other decoded', () => {
    const { sentences, decoder } = decodeAll([`$GPGSA,A,1,,,,,,,,,,,,,,,*1E${RMC}\r\n$GPGSV,3,2,11,25,32,097${GGA}\r\n`]);
    expect(sentences.map((s) => s.kind)).toEqual(['RMC', 'GGA']);
    expect(decoder.stats().droppedBy.truncated).toBe(2);
  });

  it('drops lines longer than the limit, and keeps going', () => {
    const long = nmea(`GPTXT,01,01,02,${'x'.repeat(120)}`);
    const { sentences, decoder } = decodeAll([`${long}\r\n${GGA}\r\n`]);
    expect(sentences.map((s) => s.kind)).toEqual(['GGA']);
    expect(decoder.stats().droppedBy.too_long).toBe(1);
    const exactly120 = nmea(`GPTXT,01,01,02,${'x'.repeat(120 - 19)}`);
    expect(exactly120).toHaveLength(120);
    expect(decodeNmeaLine(exactly120)).toMatchObject({ kind: 'other', type: 'TXT' });
  });

  it('drops NUL-filled and binary garbage as bad characters', () => {
    const { sentences, decoder } = decodeAll([Buffer.concat([Buffer.from('$GPRMC,000346.03,A,4808'), Buffer.alloc(12), Buffer.from(`\r\n${GGA}\r\n`), Buffer.from([0xb5, 0x62, 0x01, 0x07, 0x24])])]);
    expect(sentences.map((s) => s.kind)).toEqual(['GGA']);
    expect(decoder.stats().droppedBy.bad_char).toBe(1);
  });

  it('drops a checksum-valid sentence whose fields are not what they must be', () => {
    expect(decodeNmeaLine(nmea('GPGGA,092835.00,48x4.1,N,01621.5,E,1,10,0.96,205.3,M,42.0,M,,'))).toBe('malformed');
    expect(decodeNmeaLine(nmea('GPGGA,256035.00,4804.1,N,01621.5,E,1,10,0.96,205.3,M,42.0,M,,'))).toBe('malformed');
    expect(decodeNmeaLine(nmea('GPGGA,092835.00,4864.1,N,01621.5,E,1,10,0.96,205.3,M,42.0,M,,'))).toBe('malformed');
    expect(decodeNmeaLine(nmea('GPGGA,092835.00,4804.1,X,01621.5,E,1,10,0.96,205.3,M,42.0,M,,'))).toBe('malformed');
    expect(decodeNmeaLine(nmea('GPRMC,092835.00,A,4804.1,N,01621.5,E,0.2,,211315,,,A'))).toBe('malformed');
    expect(decodeNmeaLine(nmea('GPGGA,092835.00,4804.1,N'))).toBe('malformed');
    expect(decodeNmeaLine(nmea('GPGGA,092835.00,4804.1,N,01621.5,E,1,1e1,0.96,205.3,M,42.0,M,,'))).toBe('malformed');
  });

  it('a position with a missing half is no position (gpsd: both or neither)', () => {
    expect(decodeNmeaLine(nmea('GPRMC,235955.00,V,0000.0000,,00000.0000,E,,,161206,,,N'))).toMatchObject({ kind: 'RMC', latitude: undefined, longitude: undefined });
  });

  it('a sentence cut at the end of the stream counts as truncated', () => {
    const { sentences, decoder } = decodeAll([`${GGA}\r\n${RMC.slice(0, 30)}`]);
    expect(sentences).toHaveLength(1);
    expect(decoder.stats()).toMatchObject({ received: 1, dropped: 1, droppedBy: { truncated: 1 } });
  });

  it('counts what it received and why it dropped the rest', () => {
    const { decoder } = decodeAll([`${GGA}\r\n${RMC}\n${GGA.slice(0, -1)}0\r\n$GP\r\nnoise\r\n`]);
    expect(decoder.stats()).toEqual({
      received: 2,
      dropped: 2,
      droppedBy: { checksum: 1, no_checksum: 1, too_long: 0, truncated: 0, bad_char: 0, malformed: 0 },
    });
  });

  it('keeps unknown and proprietary sentences, typed as other', () => {
    expect(decodeNmeaLine(nmea('GPGSV,4,1,16,02,05,307,,03,21,174,29,04,12,038,23,06,07,270,06'))).toMatchObject({ kind: 'other', talker: 'GP', type: 'GSV' });
    expect(decodeNmeaLine(nmea('PUBX,00,081350.00,4717.113210,N'))).toMatchObject({ kind: 'other', talker: 'P', type: 'UBX' });
    expect(decodeNmeaLine(nmea('PQGSA,A,3,201,,,,,,,,,,,,2.5,1.2,2.2'))).toMatchObject({ kind: 'GSA', talker: 'PQ' });
  });
});

/** A stream of valid sentences and garbage, as a receiver with a bad cable might send. */
const streamPart = fc.oneof(
  fc.constantFrom(GGA, RMC, nmea('GPGSA,A,3,20,,,,13,31,,04,,,,,02.7,01.4,02.3'), nmea('GPGST,213121.000,16.1,22.2,10.2,2.0,0.4,0.6,1.4'), nmea('GNZDA,000941.00,10,01,2017,00,00')).map((s) => `${s}\r\n`),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('\r\n', '\n', '$', '*', '$GP', '\u0000\u0000', '\u00b5b'),
);

describe('NMEA decoder under any input', () => {
  it('never throws on arbitrary bytes in arbitrary chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        const { decoder } = decodeAll(chunks);
        const s = decoder.stats();
        expect(s.received).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary text, including any unicode', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        decodeAll(chunks);
        decodeAll(chunks, { requireChecksum: false });
      }),
      { numRuns: 500 },
    );
  });

  it('the chunking of a stream never changes what is decoded or dropped', () => {
    fc.assert(
      fc.property(fc.array(streamPart, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (parts, cuts) => {
        const text = parts.join('');
        const whole = decodeAll([text]);
        const points = [...new Set(cuts.map((c) => (text.length === 0 ? 0 : c % text.length)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let at = 0;
        for (const p of points) {
          chunks.push(text.slice(at, p));
          at = p;
        }
        chunks.push(text.slice(at));
        const split = decodeAll(chunks);
        expect(split.sentences).toEqual(whole.sentences);
        expect(split.decoder.stats()).toEqual(whole.decoder.stats());
      }),
      { numRuns: 500 },
    );
  });

  it('one changed character in a sentence is caught by the checksum', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 32, max: 126 }), (at, code) => {
        const body = GGA.slice(1, GGA.indexOf('*'));
        const i = at % body.length;
        const c = String.fromCharCode(code);
        fc.pre(c !== body[i] && c !== '$' && c !== '*');
        const corrupted = `$${body.slice(0, i)}${c}${body.slice(i + 1)}${GGA.slice(GGA.indexOf('*'))}`;
        expect(decodeNmeaLine(corrupted)).toBe('checksum');
      }),
      { numRuns: 500 },
    );
  });

  it('values survive a round trip through a sentence', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8999999 }),
        fc.integer({ min: 0, max: 17999999 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 86399 }),
        (latE5, lonE5, south, west, secs) => {
          const lat = latE5 / 1e5;
          const lon = lonE5 / 1e5;
          const dm = (d: number, w: number): string => {
            const deg = Math.floor(d);
            const min = (d - deg) * 60;
            return `${String(deg).padStart(w, '0')}${min.toFixed(5).padStart(8, '0')}`;
          };
          const hh = String(Math.floor(secs / 3600)).padStart(2, '0');
          const mm = String(Math.floor(secs / 60) % 60).padStart(2, '0');
          const ss = String(secs % 60).padStart(2, '0');
          const s = decodeNmeaLine(nmea(`GNGGA,${hh}${mm}${ss}.00,${dm(lat, 2)},${south ? 'S' : 'N'},${dm(lon, 3)},${west ? 'W' : 'E'},1,08,1.0,10.0,M,0.0,M,,`));
          if (typeof s === 'string' || s.kind !== 'GGA') throw new Error(`not decoded: ${String(s)}`);
          expect(s.time).toBe(secs * 1000);
          expect(Math.abs(s.latitude! - (south ? -lat : lat))).toBeLessThan(1e-6);
          expect(Math.abs(s.longitude! - (west ? -lon : lon))).toBeLessThan(1e-6);
        },
      ),
      { numRuns: 300 },
    );
  });
});
