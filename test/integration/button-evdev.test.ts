import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EvdevButtonSource } from '../../src/button/evdev.ts';
import { EV_KEY, EV_SYN, KEY_SOS, SYN_REPORT, packInputEvent, type InputEvent, type InputEventLayout } from '../../src/button/input-event.ts';
import type { ButtonEvent, ButtonSourceStatus } from '../../src/button/types.ts';
import { systemClock, type Clock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { REPO_ROOT } from '../support/fixtures.ts';
import { haveTool } from '../support/tools.ts';

/**
 * The evdev source against real kernel objects: FIFOs (what the simulator and these tests feed) and a pty
 * (a real character device that can hang up, as an unplugged input device does).
 */

let dir: string;
const cleanups: Array<() => Promise<void> | void> = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sos-evdev-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

function startSource(device: string, layout: '64' | '32', clock: Clock) {
  const source = new EvdevButtonSource({ device, keyCode: KEY_SOS, layout, clock, logger: silentLogger(), backoff: { baseMs: 20, capMs: 100 } });
  const events: ButtonEvent[] = [];
  const statuses: ButtonSourceStatus[] = [];
  let waiting: { n: number; resolve: () => void } | null = null;
  source.onEvent((e) => {
    events.push(e);
    if (waiting && events.length >= waiting.n) waiting.resolve();
  });
  source.onStatus((s) => statuses.push(s));
  const eventCount = (n: number) => new Promise<void>((resolve) => (events.length >= n ? resolve() : (waiting = { n, resolve })));
  const status = (want: ButtonSourceStatus) =>
    new Promise<void>((resolve) => {
      if (source.status() === want) return resolve();
      const off = source.onStatus((s) => {
        if (s === want) {
          off();
          resolve();
        }
      });
    });
  cleanups.push(() => source.stop());
  return { source, events, statuses, eventCount, status };
}

const key = (timeMs: number, value: number, code = KEY_SOS): InputEvent => ({ timeMs, type: EV_KEY, code, value });
const syn = (timeMs: number): InputEvent => ({ timeMs, type: EV_SYN, code: SYN_REPORT, value: 0 });
const pack = (events: InputEvent[], size: InputEventLayout) => Buffer.concat(events.map((e) => packInputEvent(e, size)));

async function fifo(name = 'event0'): Promise<string> {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  return path;
}

async function writer(path: string): Promise<FileHandle> {
  const w = await open(path, 'w');
  cleanups.push(() => w.close());
  return w;
}

describe('evdev source on a FIFO', () => {
  for (const [layout, size] of [['64', 24], ['32', 16]] as const) {
    it(`reads ${size}-byte records written in odd-sized pieces across many reads`, async () => {
      const path = await fifo();
      const t = startSource(path, layout, systemClock);
      await t.source.start();
      await t.status('ready');
      const w = await writer(path);
      // A press (with autorepeat and another key in between) and its release: 6 records.
      const bytes = pack([key(1000, 1), syn(1000), key(1500, 2), key(1500, 1, 30), key(3000, 0), syn(3000)], size);
      for (let o = 0, i = 0; o < bytes.length; i++) {
        const piece = [7, 1, 13, 5, 29, 3][i % 6]!;
        // One write(2) each; whichever way the pipe and the reader cut them up, whole records must come out.
        await w.write(bytes.subarray(o, o + piece));
        o += piece;
      }
      await t.eventCount(2);
      expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
      expect(t.events.every((e) => e.source === 'evdev')).toBe(true);
      expect(t.events[1]!.at).toBeGreaterThanOrEqual(t.events[0]!.at);
      expect(t.source.stats()).toEqual({ events: 2, dropped: 0 });
    });
  }

  it('counts and drops garbage records and keeps reading the good ones', async () => {
    const path = await fifo();
    const t = startSource(path, '64', systemClock);
    await t.source.start();
    await t.status('ready');
    const w = await writer(path);
    const garbage = Buffer.alloc(24 * 3, 0xff);
    await w.write(Buffer.concat([pack([key(1000, 1), syn(1000)], 24), garbage, pack([key(2000, 0), syn(2000)], 24)]));
    await t.eventCount(2);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
    expect(t.source.stats().dropped).toBe(3);
  });

  it('a writer closing the FIFO is the device going away: a held key is released, the next writer is read', async () => {
    const path = await fifo();
    const t = startSource(path, '64', systemClock);
    await t.source.start();
    await t.status('ready');
    const first = await writer(path);
    await first.write(pack([key(1000, 1), syn(1000)], 24));
    await t.eventCount(1);
    await first.close();
    await t.eventCount(2);
    const second = await writer(path);
    await second.write(pack([key(2000, 1), syn(2000), key(2100, 0), syn(2100)], 24));
    await t.eventCount(4);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up', 'down', 'up']);
    expect(t.statuses).toEqual(['starting', 'ready', 'unavailable', 'ready']);
  });

  it('waits for a device that is not there yet, then reads it', async () => {
    const path = join(dir, 'late-event0');
    const t = startSource(path, '64', systemClock);
    await t.source.start();
    expect(t.source.status()).toBe('unavailable');
    execFileSync('mkfifo', [path]);
    await t.status('ready');
    const w = await writer(path);
    await w.write(pack([key(1000, 1), syn(1000)], 24));
    await t.eventCount(1);
    expect(t.statuses).toEqual(['starting', 'unavailable', 'ready']);
  });
});

describe('evdev source on a character device that hangs up (pty)', () => {
  function socatPty(link: string): Promise<ChildProcess> {
    const child = spawn('socat', ['-d', '-d', `PTY,link=${link},raw,echo=0`, 'STDIO'], { stdio: ['pipe', 'ignore', 'pipe'] });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    return new Promise((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        // socat says "starting data transfer loop" once the pty and its link exist.
        if (err.includes('starting data transfer loop')) resolve(child);
      });
      child.once('exit', (code) => reject(new Error(`socat exited ${code}: ${err}`)));
    });
  }

  it('reports a held key released when the device goes, then reopens it when it is back', async () => {
    if (!haveTool('socat')) return;
    const link = join(dir, 'ptyevent');
    const socat = await socatPty(link);
    const t = startSource(link, '64', systemClock);
    await t.source.start();
    await t.status('ready');
    socat.stdin!.write(pack([key(1000, 1), syn(1000)], 24));
    await t.eventCount(1);

    socat.kill('SIGKILL');
    await t.status('unavailable');
    await t.eventCount(2);
    // The key was down when contact was lost: it is reported up, so no hold can be completed by a dead device.
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);

    const again = await socatPty(link);
    await t.status('ready');
    again.stdin!.write(pack([key(5000, 1), syn(5000), key(5100, 0), syn(5100)], 24));
    await t.eventCount(4);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up', 'down', 'up']);
  });
});

describe('evdev source never holds the process', () => {
  function runChild(mode: 'stop' | 'exit', device: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }> {
    const script = join(dir, `child-${mode}.ts`);
    writeFileSync(
      script,
      `import fs from 'node:fs';
import { EvdevButtonSource } from ${JSON.stringify(join(REPO_ROOT, 'src/button/evdev.ts'))};
import { systemClock } from ${JSON.stringify(join(REPO_ROOT, 'src/shared/clock.ts'))};
import { silentLogger } from ${JSON.stringify(join(REPO_ROOT, 'src/shared/logger.ts'))};
const source = new EvdevButtonSource({ device: ${JSON.stringify(device)}, keyCode: 639, layout: 'auto', clock: systemClock, logger: silentLogger() });
await source.start();
await new Promise((resolve) => (source.status() === 'ready' ? resolve() : source.onStatus((s) => s === 'ready' && resolve())));
console.log('status', source.status());
${
        mode === 'stop'
          ? "await source.stop(); console.log('stopped');"
          : // A writer holds the FIFO open, as a quiet input device is, and process.exit() comes while reading.
            "fs.openSync(" + JSON.stringify(device) + ", fs.constants.O_WRONLY | fs.constants.O_NONBLOCK); setTimeout(() => process.exit(0), 50);"
      }
`,
    );
    const started = Date.now();
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    return new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        clearTimeout(guard);
        resolve({ code, signal, out, ms: Date.now() - started });
      }),
    );
  }

  it('after stop() the process ends by itself', async () => {
    const path = await fifo();
    const r = await runChild('stop', path);
    expect(r.out).toContain('status ready');
    expect(r.out).toContain('stopped');
    expect(r).toMatchObject({ code: 0, signal: null });
  });

  it('process.exit() while the device is open returns at once', async () => {
    const path = await fifo();
    const r = await runChild('exit', path);
    expect(r.out).toContain('status ready');
    expect(r).toMatchObject({ code: 0, signal: null });
  });
});
