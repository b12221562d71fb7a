// NMEA decoding rate: our streaming decoder against nmea-simple on the same 100,000-sentence stream.
import { parseUnsafeNmeaSentence } from 'nmea-simple';
import { EpochAssembler } from '../../src/gps/epoch.ts';
import { NmeaDecoder } from '../../src/gps/nmea.ts';
import { round, summarize, type BenchResult } from './result.ts';

const SENTENCES = 100_000;
const WARMUP = 3;
const RUNS = 15;

function nmea(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

/**
 * A u-blox M8-like receiver at 1 Hz, moving: RMC, VTG, GGA, GSA, GSA, GSV ×3, GLL, GST per epoch, each with
 * its own values (so no parser can win by caching), `count` sentences in all.
 */
export function synthesizeStream(count: number): string {
  const out: string[] = [];
  let lat = 4404.13387;
  let lon = 12118.85628;
  for (let e = 0; out.length < count; e++) {
    const s = e % 86400;
    const t = `${String(Math.floor(s / 3600)).padStart(2, '0')}${String(Math.floor(s / 60) % 60).padStart(2, '0')}${String(s % 60).padStart(2, '0')}.00`;
    lat += 0.00031;
    lon -= 0.00017;
    const la = lat.toFixed(5);
    const lo = lon.toFixed(5);
    const speed = (5 + (e % 7)).toFixed(3);
    const track = ((e * 3) % 360).toFixed(2);
    const hdop = (0.8 + (e % 5) / 10).toFixed(2);
    const epoch = [
      nmea(`GNRMC,${t},A,${la},N,${lo},W,${speed},${track},100126,,,A`),
      nmea(`GNVTG,${track},T,,M,${speed},N,${(Number(speed) * 1.852).toFixed(3)},K,A`),
      nmea(`GNGGA,${t},${la},N,${lo},W,1,12,${hdop},${(1144 + (e % 10) / 10).toFixed(1)},M,-21.4,M,,`),
      nmea(`GNGSA,A,3,23,09,16,07,26,03,27,22,,,,,1.71,${hdop},1.38`),
      nmea(`GNGSA,A,3,80,70,73,79,69,71,,,,,,,1.71,${hdop},1.38`),
      nmea(`GPGSV,3,1,12,02,05,307,${10 + (e % 30)},03,21,174,29,04,12,038,23,06,07,270,06`),
      nmea(`GPGSV,3,2,12,07,46,259,26,08,01,143,28,09,67,312,${20 + (e % 20)},16,47,064,35`),
      nmea(`GPGSV,3,3,12,22,08,167,29,23,68,103,28,26,23,045,27,27,12,109,21`),
      nmea(`GNGLL,${la},N,${lo},W,${t},A,A`),
      nmea(`GNGST,${t},11,${(2 + (e % 4) / 10).toFixed(1)},1.5,45,2.3,3.5,4.0`),
    ];
    for (const line of epoch) if (out.length < count) out.push(line);
  }
  return out.join('');
}

/** Run time of one pass, ms; checks that every sentence was decoded. */
function timeOnce(fn: () => number, expected: number): number {
  const start = performance.now();
  const n = fn();
  const ms = performance.now() - start;
  if (n !== expected) throw new Error(`decoded ${n} sentences, expected ${expected}`);
  return ms;
}

/** Rate figures from run times: the median rate, and the rate of the slow tail (99th percentile time). */
function rates(times: number[], sentences: number): { median: number; p99: number; n: number } {
  const t = summarize(times);
  return { median: round(sentences / (t.median / 1000), 0), p99: round(sentences / (t.p99 / 1000), 0), n: t.n };
}

export async function benchNmea(): Promise<BenchResult[]> {
  const stream = synthesizeStream(SENTENCES);

  const ours = (): number => {
    let n = 0;
    const decoder = new NmeaDecoder(() => n++);
    decoder.push(stream);
    decoder.end();
    return n;
  };
  const oursToFixes = (): number => {
    let n = 0;
    const assembler = new EpochAssembler(() => {});
    const decoder = new NmeaDecoder((s) => {
      n++;
      assembler.push(s);
    });
    decoder.push(stream);
    decoder.end();
    return n;
  };
  // nmea-simple parses one line at a time; splitting the stream into lines is part of its job here.
  const baseline = (): number => {
    let n = 0;
    for (const line of stream.split('\r\n')) {
      if (line === '') continue;
      parseUnsafeNmeaSentence(line);
      n++;
    }
    return n;
  };

  // Alternate the contenders so that machine noise hits both alike; the first passes warm the JIT.
  const oursTimes: number[] = [];
  const baseTimes: number[] = [];
  const fixesTimes: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const a = timeOnce(ours, SENTENCES);
    const b = timeOnce(baseline, SENTENCES);
    const c = timeOnce(oursToFixes, SENTENCES);
    if (i < WARMUP) continue;
    oursTimes.push(a);
    baseTimes.push(b);
    fixesTimes.push(c);
  }

  const o = rates(oursTimes, SENTENCES);
  const b = rates(baseTimes, SENTENCES);
  const f = rates(fixesTimes, SENTENCES);
  return [
    {
      name: 'nmea.decode',
      unit: 'sentences/s',
      ...o,
      baseline: { name: 'nmea-simple', median: b.median, p99: b.p99 },
      ratio: round(o.median / b.median, 2),
      target: '≥ 1.5 (our median rate / nmea-simple median rate, same 100,000-sentence stream)',
    },
    { name: 'nmea.decode+epochs', unit: 'sentences/s', ...f, target: 'decoder and epoch assembler, sentences to fixes' },
  ];
}
