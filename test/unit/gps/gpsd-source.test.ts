import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GpsdSource } from '../../../src/gps/gpsd-source.ts';
import { parseGpsdLine, tpvToFix } from '../../../src/gps/gpsd-protocol.ts';
import { LineSplitter } from '../../../src/gps/line-splitter.ts';
import type { Fix, GpsSource, GpsSourceState } from '../../../src/gps/types.ts';
import { systemClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';

const TPV =
  '{"class":"TPV","device":"/dev/ttyACM0","mode":3,"time":"2026-01-10T12:00:01.000Z","ept":0.005,"lat":44.068900167,"lon":-121.314272167,"altHAE":1123.5,"altMSL":1144.9,"alt":1144.9,"epx":8.626,"epy":7.711,"epv":33.81,"speed":0.021,"track":12.5,"eph":19.19}';
const GST = '{"class":"GST","device":"/dev/ttyACM0","time":"2026-01-10T12:00:01.000Z","rms":11.0,"major":5.0,"minor":0.5,"orient":10.0,"lat":3.0,"lon":4.0,"alt":5.0}';

function nextState(source: GpsSource, wanted: GpsSourceState): Promise<void> {
  return new Promise((resolve) => {
    const off = source.onState((s) => {
      if (s === wanted) {
        off();
        resolve();
      }
    });
  });
}

function nextFix(source: GpsSource): Promise<Fix> {
  return new Promise((resolve) => {
    const off = source.onFix((f) => {
      off();
      resolve(f);
    });
  });
}

/** A gpsd stand-in on a loopback port: hands each client's socket to the test. */
class FakeGpsd {
  readonly server: Server;
  readonly clients: Socket[] = [];
  #waiters: ((s: Socket) => void)[] = [];

  constructor() {
    this.server = createServer((socket) => {
      socket.setEncoding('utf8');
      socket.on('error', () => {});
      this.clients.push(socket);
      for (const w of this.#waiters.splice(0)) w(socket);
    });
  }

  listen(port = 0): Promise<number> {
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', () => resolve((this.server.address() as AddressInfo).port)));
  }

  nextClient(): Promise<Socket> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('gpsd JSON', () => {
  it('frames whole lines across any chunking', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((l) => lines.push(l), () => lines.push('<overflow>'));
    const text = `${GST}\r\n${TPV}\n{"class":"SKY"}\n`;
    for (let i = 0; i < text.length; i += 7) splitter.push(text.slice(i, i + 7));
    expect(lines).toEqual([GST, TPV, '{"class":"SKY"}']);
  });

  it('drops an over-long line whole, up to its newline, and frames the next', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((l) => lines.push(l), () => lines.push('<overflow>'), 100);
    splitter.push('x'.repeat(150));
    splitter.push('y'.repeat(50));
    splitter.push('\n{"ok":1}\n');
    expect(lines).toEqual(['<overflow>', '{"ok":1}']);
  });

  it('a TPV with the GST of its epoch takes the GST radius; without it, eph', () => {
    const tpv = parseGpsdLine(TPV);
    const gst = parseGpsdLine(GST);
    if (tpv.kind !== 'tpv' || gst.kind !== 'gst') throw new Error('not parsed');
    expect(tpvToFix(tpv.tpv, gst.gst, 12, 100)).toMatchObject({ uncertainty_m: 10, mode: '3d', altitude_m: 1144.9, satellites: 12, speed_mps: 0.021, heading_deg: 12.5, source: 'gpsd' });
    expect(tpvToFix(tpv.tpv, undefined, undefined, 100)?.uncertainty_m).toBe(19.19);
    expect(tpvToFix({ ...tpv.tpv, eph: undefined }, undefined, undefined, 100)?.uncertainty_m).toBeCloseTo(2 * Math.hypot(8.626 / 1.96, 7.711 / 1.96), 9);
    expect(tpvToFix({ ...tpv.tpv, mode: 1 }, undefined, undefined, 100)).toBeNull();
    expect(tpvToFix({ ...tpv.tpv, time: undefined }, undefined, undefined, 100)).toBeNull();
  });

  it('bad lines are bad, other classes are other', () => {
    expect(parseGpsdLine('{"class":"TPV","mode":"3"}').kind).toBe('bad');
    expect(parseGpsdLine('{"class":"TPV","mode":3,"lat":91}').kind).toBe('bad');
    expect(parseGpsdLine('not json').kind).toBe('bad');
    expect(parseGpsdLine('{"class":"VERSION","release":"3.22"}').kind).toBe('other');
    expect(parseGpsdLine('{"class":"SKY","satellites":[{"used":true},{"used":false},{"used":true}]}')).toEqual({ kind: 'sky', used: 2 });
  });
});

describe('GpsdSource', () => {
  it('asks for JSON, and turns TPV (with its GST) split across TCP chunks into fixes', async () => {
    const gpsd = new FakeGpsd();
    const port = await gpsd.listen();
    cleanups.push(() => gpsd.close());
    const source = new GpsdSource({ host: '127.0.0.1', port, clock: systemClock, logger: silentLogger() });
    cleanups.push(() => source.stop());
    const client = gpsd.nextClient();
    await source.start();
    const socket = await client;
    // Like gpsd, say nothing until the client has asked.
    const watch = await new Promise<string>((resolve) => socket.once('data', (d: string) => resolve(d)));
    expect(watch).toBe('?WATCH={"enable":true,"json":true}\n');
    const fix = nextFix(source);
    const text = `{"class":"VERSION","release":"3.22"}\n${GST}\n${TPV}\n`;
    for (let i = 0; i < text.length; i += 50) socket.write(text.slice(i, i + 50));
    expect(await fix).toMatchObject({ latitude: 44.068900167, longitude: -121.314272167, uncertainty_m: 10, time: Date.parse('2026-01-10T12:00:01.000Z'), mode: '3d', source: 'gpsd' });
    socket.write('garbage\n{"class":"TPV","mode":1,"time":"2026-01-10T12:00:02.000Z"}\n');
    const second = nextFix(source);
    socket.write(`${TPV.replace('12:00:01', '12:00:03')}\n`);
    expect((await second).uncertainty_m).toBe(19.19);
    expect(source.stats()).toEqual({ received: 5, dropped: 1, fixes: 2 });
  });

  it('reconnects when gpsd restarts', async () => {
    const gpsd = new FakeGpsd();
    const port = await gpsd.listen();
    const source = new GpsdSource({ host: '127.0.0.1', port, clock: systemClock, logger: silentLogger(), backoff: { baseMs: 20, capMs: 100 } });
    cleanups.push(() => source.stop());
    const first = gpsd.nextClient();
    await source.start();
    await first;
    const down = nextState(source, 'disconnected');
    await gpsd.close();
    await down;
    const again = new FakeGpsd();
    cleanups.push(() => again.close());
    const client = again.nextClient();
    const up = nextState(source, 'connected');
    await again.listen(port);
    const socket = await client;
    await up;
    const fix = nextFix(source);
    socket.write(`${TPV}\n`);
    expect((await fix).source).toBe('gpsd');
  });

  it('starts when gpsd is not running yet, and stops cleanly while retrying', async () => {
    const probe = new FakeGpsd();
    const port = await probe.listen();
    await probe.close();
    const source = new GpsdSource({ host: '127.0.0.1', port, clock: systemClock, logger: silentLogger(), backoff: { baseMs: 20, capMs: 50 } });
    const states: GpsSourceState[] = [];
    source.onState((s) => states.push(s));
    await source.start();
    expect(states).toEqual(['starting', 'disconnected']);
    await source.stop();
    expect(states.at(-1)).toBe('stopped');
  });
});
