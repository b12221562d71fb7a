import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GpsdSource } from '../../src/gps/gpsd-source.ts';
import type { Fix, GpsSource, GpsSourceState } from '../../src/gps/types.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { haveTool } from '../support/tools.ts';

/**
 * GpsdSource against a real gpsd, fed by gpsfake from an NMEA log we write here: fixes come through, and when
 * gpsd dies and comes back on the same port, the source reconnects by itself.
 */

function nmea(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

function track(): string {
  let out = '';
  for (let i = 0; i < 30; i++) {
    const t = `1200${String(i).padStart(2, '0')}.00`;
    out += nmea(`GPRMC,${t},A,4404.13387,N,12118.85628,W,0.0,,100126,,,A`);
    out += nmea(`GPGGA,${t},4404.13387,N,12118.85628,W,1,08,1.2,1144.8,M,-21.4,M,,`);
    out += nmea(`GPGST,${t},11,5.0,0.1,45,4.0,3.0,5.0`);
    out += nmea('GPGSA,A,3,23,09,16,07,26,03,27,22,,,,,1.71,1.2,1.38');
    out += nmea(`GPGLL,4404.13387,N,12118.85628,W,${t},A,A`);
  }
  return out;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** gpsfake (and the gpsd it runs) in a process group of its own, so that SIGKILL takes both. */
function startGpsfake(port: number, log: string): ChildProcess {
  return spawn('gpsfake', ['-P', String(port), '-n', '-q', '-c', '0.05', log], { detached: true, stdio: 'ignore' });
}

async function killGpsfake(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  // gpsfake can ignore SIGTERM; its gpsd would outlive it.
  process.kill(-child.pid, 'SIGKILL');
  await exited;
}

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

function fixWhere(source: GpsSource, pred: (f: Fix) => boolean): Promise<Fix> {
  return new Promise((resolve) => {
    const off = source.onFix((f) => {
      if (pred(f)) {
        off();
        resolve(f);
      }
    });
  });
}

describe.runIf(haveTool('gpsfake'))('GpsdSource with a real gpsd (gpsfake)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-gpsfake-'));
  const log = join(dir, 'track.log');
  writeFileSync(log, track());
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) await killGpsfake(c);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets fixes with the GST radius, and reconnects after gpsd restarts', async () => {
    const port = await freePort();
    const first = startGpsfake(port, log);
    children.push(first);
    const source = new GpsdSource({ host: '127.0.0.1', port, clock: systemClock, logger: silentLogger(), backoff: { baseMs: 100, capMs: 500 } });
    try {
      // gpsd may not listen yet: the source retries until it does.
      const withGst = fixWhere(source, (f) => Math.abs(f.uncertainty_m - 10) < 1e-9);
      await source.start();
      const fix = await withGst;
      expect(fix.latitude).toBeCloseTo(44 + 4.13387 / 60, 6);
      expect(fix.longitude).toBeCloseTo(-(121 + 18.85628 / 60), 6);
      expect(fix.mode).toBe('3d');
      expect(fix.altitude_m).toBeCloseTo(1144.8, 6);
      expect(new Date(fix.time).toISOString()).toMatch(/^2026-01-10T12:00:\d\d\.000Z$/);

      const down = nextState(source, 'disconnected');
      await killGpsfake(first);
      await down;

      const up = nextState(source, 'connected');
      const again = fixWhere(source, () => true);
      children.push(startGpsfake(port, log));
      await up;
      expect((await again).source).toBe('gpsd');
    } finally {
      await source.stop();
    }
    expect(source.stats().fixes).toBeGreaterThan(1);
  });
});
