import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NmeaSerialSource } from '../../src/gps/nmea-source.ts';
import type { Fix, GpsSource, GpsSourceState } from '../../src/gps/types.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { haveTool } from '../support/tools.ts';

/**
 * The nmea source on a real tty: a socat pty pair stands in for the serial port, the test writes the
 * receiver's side. Killing socat is unplugging the receiver; starting it again is plugging it back.
 */

function nmea(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

function epoch(t: string): string {
  return (
    nmea(`GNRMC,${t}.00,A,4552.65403,S,17030.00668,E,0.025,,120426,,,A`) +
    nmea(`GNGGA,${t}.00,4552.65403,S,17030.00668,E,1,12,0.64,14.2,M,1.8,M,,`) +
    nmea(`GNGST,${t}.00,43,,,,2.3,3.5,4.0`) +
    nmea(`GNGLL,4552.65403,S,17030.00668,E,${t}.00,A,A`)
  );
}

/** socat with two linked ptys; resolves once it says it is transferring (both links exist by then). */
async function startSocat(gps: string, feed: string): Promise<ChildProcess> {
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${gps}`, `pty,raw,echo=0,link=${feed}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      err += d;
      if (err.includes('starting data transfer loop')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`socat exited ${code}: ${err}`)));
  });
  return child;
}

async function stopSocat(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  // SIGTERM: socat removes its links, as a device node goes away on unplug.
  child.kill('SIGTERM');
  await exited;
}

/** Writes as the receiver. The feed stays open while socat lives: closing it would end socat's transfer. */
function send(fd: number, text: string, chunk: number): void {
  for (let i = 0; i < text.length; i += chunk) writeSync(fd, text.slice(i, i + chunk));
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

function nextFix(source: GpsSource, pred: (f: Fix) => boolean = () => true): Promise<Fix> {
  return new Promise((resolve) => {
    const off = source.onFix((f) => {
      if (pred(f)) {
        off();
        resolve(f);
      }
    });
  });
}

describe.runIf(haveTool('socat') && haveTool('stty'))('NmeaSerialSource on a pty (socat)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-pty-'));
  const gps = join(dir, 'gps');
  const feed = join(dir, 'feed');
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) await stopSocat(c);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads fixes, survives unplug and replug, and reopens a silent receiver', async () => {
    children.push(await startSocat(gps, feed));
    let receiver = openSync(feed, 'w');
    const source = new NmeaSerialSource({ device: gps, baud: 9600, clock: systemClock, logger: silentLogger(), backoff: { baseMs: 50, capMs: 200 }, silenceMs: 1500 });
    try {
      await source.start();
      expect(source.stats()).toEqual({ received: 0, dropped: 0, fixes: 0 });

      const withGst = nextFix(source, (f) => f.time === Date.UTC(2026, 3, 12, 0, 39, 57));
      // Odd chunk sizes: sentences arrive in pieces, as from a UART.
      send(receiver, epoch('003956') + epoch('003957') + '$GPGGA,garbage*00\r\n', 13);
      const fix = await withGst;
      expect(fix).toMatchObject({ mode: '3d', source: 'nmea', satellites: 12 });
      expect(fix.latitude).toBeCloseTo(-(45 + 52.65403 / 60), 9);
      expect(fix.longitude).toBeCloseTo(170 + 30.00668 / 60, 9);
      expect(fix.uncertainty_m).toBeCloseTo(2 * Math.hypot(2.3, 3.5), 9);

      // Unplug.
      const down = nextState(source, 'disconnected');
      closeSync(receiver);
      await stopSocat(children.pop()!);
      await down;

      // Plug back in: the source finds the device again by itself.
      const up = nextState(source, 'connected');
      children.push(await startSocat(gps, feed));
      receiver = openSync(feed, 'w');
      await up;
      const after = nextFix(source, (f) => f.time === Date.UTC(2026, 3, 12, 0, 40, 0));
      send(receiver, epoch('003959') + epoch('004000'), 29);
      expect((await after).source).toBe('nmea');
      const lastData = Date.now();
      expect(source.stats().dropped).toBeGreaterThanOrEqual(1);

      // A receiver that stops talking (wedged USB adapter) while its device stays is closed and reopened.
      await nextState(source, 'disconnected');
      expect(Date.now() - lastData).toBeGreaterThanOrEqual(1400);
      expect(children.at(-1)?.exitCode).toBeNull();
      await nextState(source, 'connected');
    } finally {
      await source.stop();
      closeSync(receiver);
    }
  });
});
