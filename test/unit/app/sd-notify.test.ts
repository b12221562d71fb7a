import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SdNotifier, WatchdogPinger, watchdogIntervalMs, watchdogTimeoutMs, type WatchdogNotifier } from '../../../src/app/sd-notify.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { createLogger, silentLogger } from '../../../src/shared/logger.ts';
import { NotifyListener } from '../../support/notify-listener.ts';
import { haveTool } from '../../support/tools.ts';

function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger({ destination, level: 'debug' }),
    lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('SdNotifier without systemd', () => {
  it('does nothing and says so when NOTIFY_SOCKET is absent', async () => {
    const log = capturingLogger();
    const notifier = new SdNotifier({ logger: log.logger, env: {}, command: '/nonexistent/systemd-notify' });
    expect(notifier.enabled).toBe(false);
    expect(await notifier.ready('armed')).toBe(false);
    expect(await notifier.watchdog()).toBe(false);
    expect(await notifier.stopping()).toBe(false);
    // The sender was never started: a missing one would have been reported.
    expect(log.lines()).toEqual([]);
  });

  it('refuses a NOTIFY_SOCKET that is no socket address, with a warning', () => {
    const log = capturingLogger();
    const notifier = new SdNotifier({ logger: log.logger, env: { NOTIFY_SOCKET: 'relative/path' } });
    expect(notifier.enabled).toBe(false);
    expect(log.lines()[0]?.msg).toMatch(/NOTIFY_SOCKET/);
  });

  it('reports a missing systemd-notify once and keeps the agent running', async () => {
    const log = capturingLogger();
    const notifier = new SdNotifier({ logger: log.logger, env: { NOTIFY_SOCKET: '/run/none', PATH: '/usr/bin' }, command: '/nonexistent/systemd-notify' });
    expect(await notifier.ready()).toBe(false);
    expect(await notifier.watchdog()).toBe(false);
    const errors = log.lines().filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/command not found/);
  });
});

describe('SdNotifier with a sender that hangs', () => {
  it('kills it after timeoutMs, reports the message as not sent, and sends the next one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-sdnotify-hang-'));
    try {
      const sender = join(dir, 'sender');
      const sent = join(dir, 'sent');
      // Hangs on READY (as systemd-notify would if PID 1 never answered its barrier), records anything else.
      writeFileSync(sender, `#!/bin/sh\ncase "$1" in READY=*) exec sleep 600;; esac\necho "$@" >> '${sent}'\n`, { mode: 0o755 });
      const clock = new FakeClock();
      const log = capturingLogger();
      const notifier = new SdNotifier({ logger: log.logger, env: { NOTIFY_SOCKET: '/run/x', PATH: process.env.PATH }, command: sender, timeoutMs: 10_000, clock });
      const ready = notifier.ready();
      const stopping = notifier.stopping();
      await clock.advanceAsync(10_000);
      expect(await ready).toBe(false);
      expect(await stopping).toBe(true);
      expect(readFileSync(sent, 'utf8')).toBe('STOPPING=1\n');
      expect(log.lines().some((l) => l.msg === 'systemd notification timed out')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const tools = haveTool('systemd-notify') && haveTool('python3');

describe.runIf(tools)('SdNotifier over a real NOTIFY_SOCKET', () => {
  let dir: string;
  let listener: NotifyListener | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sos-sdnotify-'));
  });
  afterEach(async () => {
    await listener?.stop();
    listener = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function listen(address: string): Promise<NotifyListener> {
    listener = new NotifyListener(address);
    await listener.start();
    return listener;
  }

  it('sends READY=1 with a status, then WATCHDOG=1 and STOPPING=1, in call order', async () => {
    const l = await listen(join(dir, 'notify.sock'));
    const notifier = new SdNotifier({ logger: silentLogger(), env: { NOTIFY_SOCKET: l.address, PATH: process.env.PATH } });
    const results = await Promise.all([notifier.ready('armed: direct route'), notifier.watchdog(), notifier.status('degraded: no GPS fix'), notifier.stopping()]);
    expect(results).toEqual([true, true, true, true]);
    expect(l.payloads().map((m) => m.fields)).toEqual([
      { READY: '1', STATUS: 'armed: direct route' },
      { WATCHDOG: '1' },
      { STATUS: 'degraded: no GPS fix' },
      { STOPPING: '1' },
    ]);
  });

  it('reaches an abstract socket name (@…)', async () => {
    const l = await listen(`@sos-agent-test-${process.pid}-${Date.now()}`);
    const notifier = new SdNotifier({ logger: silentLogger(), env: { NOTIFY_SOCKET: l.address, PATH: process.env.PATH } });
    expect(await notifier.ready()).toBe(true);
    expect(l.payloads().map((m) => m.fields)).toEqual([{ READY: '1' }]);
  });

  it('keeps a status text on one line, so it cannot smuggle in READY=1', async () => {
    const l = await listen(join(dir, 'inject.sock'));
    const notifier = new SdNotifier({ logger: silentLogger(), env: { NOTIFY_SOCKET: l.address, PATH: process.env.PATH } });
    await notifier.status('token refresh failed: bad gateway\nREADY=1\r\nMAINPID=1');
    expect(l.payloads().map((m) => m.fields)).toEqual([{ STATUS: 'token refresh failed: bad gateway READY=1 MAINPID=1' }]);
  });

  it('merges watchdog pings asked for while one is waiting, instead of piling up senders', async () => {
    const l = await listen(join(dir, 'merge.sock'));
    const notifier = new SdNotifier({ logger: silentLogger(), env: { NOTIFY_SOCKET: l.address, PATH: process.env.PATH } });
    const first = notifier.status('busy');
    const pings = [notifier.watchdog(), notifier.watchdog(), notifier.watchdog()];
    expect(await Promise.all([first, ...pings])).toEqual([true, true, true, true]);
    await notifier.drain();
    expect(l.payloads().map((m) => m.fields)).toEqual([{ STATUS: 'busy' }, { WATCHDOG: '1' }]);
  });

  it('reports a socket nobody listens on as a failed notification, not a crash', async () => {
    const log = capturingLogger();
    const notifier = new SdNotifier({ logger: log.logger, env: { NOTIFY_SOCKET: join(dir, 'nobody.sock'), PATH: process.env.PATH } });
    expect(await notifier.ready()).toBe(false);
    expect(log.lines().some((l) => l.msg === 'systemd notification failed')).toBe(true);
  });
});

describe('watchdog settings from the environment', () => {
  it('pings at half of WatchdogSec', () => {
    expect(watchdogTimeoutMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
  });

  it('has no watchdog when none is set, when it is garbage, or when it is meant for another process', () => {
    expect(watchdogIntervalMs({}, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30s' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '-5' }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42)).toBeNull();
  });
});

describe('WatchdogPinger', () => {
  function counter(): WatchdogNotifier & { count: number } {
    return {
      count: 0,
      watchdog() {
        this.count++;
        return Promise.resolve(true);
      },
    };
  }

  it('pings at once and then every interval while the agent is alive, and not after stop()', async () => {
    const clock = new FakeClock();
    const notifier = counter();
    const pinger = new WatchdogPinger({ notifier, intervalMs: 15_000, clock, logger: silentLogger() });
    pinger.start();
    await clock.advanceAsync(0);
    expect(notifier.count).toBe(1);
    await clock.advanceAsync(45_000);
    expect(notifier.count).toBe(4);
    pinger.stop();
    await clock.advanceAsync(60_000);
    expect(notifier.count).toBe(4);
    expect(clock.pending()).toBe(0);
  });

  it('withholds pings while the liveness check fails or throws, so systemd restarts a stuck agent', async () => {
    const clock = new FakeClock();
    const notifier = counter();
    let state: 'ok' | 'down' | 'throws' = 'ok';
    const isAlive = (): boolean => {
      if (state === 'throws') throw new Error('outbox store closed');
      return state === 'ok';
    };
    const pinger = new WatchdogPinger({ notifier, intervalMs: 1_000, clock, logger: silentLogger(), isAlive });
    pinger.start();
    await clock.advanceAsync(0);
    expect(notifier.count).toBe(1);
    state = 'down';
    await clock.advanceAsync(3_000);
    state = 'throws';
    await clock.advanceAsync(3_000);
    expect(notifier.count).toBe(1);
    state = 'ok';
    await clock.advanceAsync(1_000);
    expect(notifier.count).toBe(2);
    pinger.stop();
  });

  it('does not ping while a liveness check hangs', async () => {
    const clock = new FakeClock();
    const notifier = counter();
    let calls = 0;
    const pinger = new WatchdogPinger({
      notifier,
      intervalMs: 1_000,
      clock,
      logger: silentLogger(),
      isAlive: () => (++calls === 1 ? true : new Promise<boolean>(() => {})),
    });
    pinger.start();
    await clock.advanceAsync(10_000);
    expect(notifier.count).toBe(1);
    expect(calls).toBe(2);
    pinger.stop();
  });
});
