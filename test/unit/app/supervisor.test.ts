import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmergencyApiClient } from '../../../src/api/client.ts';
import { brokerCheck, buttonCheck, fixCheck, outboxCheck, tokenCheck } from '../../../src/app/health-checks.ts';
import { FixTracker } from '../../../src/gps/fix-tracker.ts';
import type { Fix } from '../../../src/gps/types.ts';
import { Supervisor, type CheckResult, type HealthCheck, type HealthState } from '../../../src/app/supervisor.ts';
import { EmbeddedBroker } from '../../../src/bridge/embedded-broker.ts';
import { EvdevButtonSource } from '../../../src/button/evdev.ts';
import { MemoryOutboxStore } from '../../../src/outbox/memory-store.ts';
import { Outbox } from '../../../src/outbox/outbox.ts';
import { OutboxStoreError, type OutboxStore } from '../../../src/outbox/store.ts';
import { RelayLink } from '../../../src/relay/link.ts';
import { FakeClock, systemClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import type { Emulator } from '../../../src/emulator/server.ts';
import { makeAlert } from '../../support/outbox-alerts.ts';
import { startEmulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../../support/emulator.ts';
import { ScriptedRoute } from '../outbox/fake-route.ts';

const INTERVAL = 10_000;

/** A check whose answer the test sets. */
function settable(name: string, initial: CheckResult = { ok: true, detail: 'fine' }) {
  let answer: CheckResult | Promise<CheckResult> = initial;
  let runs = 0;
  const check: HealthCheck = {
    name,
    run: () => {
      runs++;
      return answer;
    },
  };
  return {
    check,
    set: (r: CheckResult | Promise<CheckResult>) => (answer = r),
    runs: () => runs,
  };
}

function recordChanges(s: Supervisor): HealthState[] {
  const changes: HealthState[] = [];
  s.onChange((st) => changes.push(st));
  return changes;
}

/** Resolves with the next change whose state is `want`. */
function nextState(s: Supervisor, want: 'healthy' | 'degraded'): Promise<HealthState> {
  return new Promise((resolve) => {
    const off = s.onChange((st) => {
      if (st.state !== want) return;
      off();
      resolve(st);
    });
  });
}

describe('Supervisor', () => {
  let clock: FakeClock;
  let sup: Supervisor | undefined;
  beforeEach(() => {
    clock = new FakeClock();
  });
  afterEach(async () => {
    await sup?.stop();
    sup = undefined;
  });

  function make(checks: HealthCheck[], checkTimeoutMs?: number): Supervisor {
    sup = new Supervisor({ clock, logger: silentLogger(), intervalMs: INTERVAL, checks, ...(checkTimeoutMs ? { checkTimeoutMs } : {}) });
    return sup;
  }

  it('is healthy after the first round when every check passes, and says so without an event', async () => {
    const s = make([settable('a').check, settable('b').check]);
    const changes = recordChanges(s);
    await s.start();
    expect(s.state()).toBe('healthy');
    expect(s.failing()).toEqual([]);
    expect(changes).toEqual([]);
  });

  it('shows a pushed failure at once, not at the next poll, and recovers the same way', async () => {
    const s = make([settable('outbox').check]);
    const changes = recordChanges(s);
    await s.start();
    s.report('broker', false, 'disconnected');
    expect(s.state()).toBe('degraded');
    expect(s.failing()).toEqual([{ name: 'broker', detail: 'disconnected' }]);
    s.report('broker', true, 'connected');
    expect(s.state()).toBe('healthy');
    expect(changes.map((c) => [c.state, c.failing.map((f) => f.name)])).toEqual([
      ['degraded', ['broker']],
      ['healthy', []],
    ]);
  });

  it('finds a check that starts failing at the next poll, and its recovery at the one after', async () => {
    const fix = settable('gps_fix');
    const s = make([fix.check]);
    await s.start();
    fix.set({ ok: false, detail: 'no fix yet' });
    await clock.advanceAsync(INTERVAL - 1);
    expect(s.state()).toBe('healthy');
    await clock.advanceAsync(1);
    expect(s.snapshot()).toMatchObject({ state: 'degraded', failing: [{ name: 'gps_fix', detail: 'no fix yet' }] });
    fix.set({ ok: true, detail: 'fix 1 s old' });
    await clock.advanceAsync(INTERVAL);
    expect(s.state()).toBe('healthy');
    expect(fix.runs()).toBe(3);
  });

  it('fires onChange when the set of failing checks changes, not when only a detail does', async () => {
    const a = settable('a');
    const b = settable('b');
    const s = make([a.check, b.check]);
    const changes = recordChanges(s);
    await s.start();
    a.set({ ok: false, detail: 'down 1' });
    await clock.advanceAsync(INTERVAL);
    a.set({ ok: false, detail: 'down 2' });
    await clock.advanceAsync(INTERVAL);
    b.set({ ok: false, detail: 'b down' });
    await clock.advanceAsync(INTERVAL);
    a.set({ ok: true, detail: 'fine' });
    b.set({ ok: true, detail: 'fine' });
    await clock.advanceAsync(INTERVAL);
    expect(changes.map((c) => c.failing.map((f) => f.name))).toEqual([['a'], ['a', 'b'], []]);
    expect(changes.map((c) => c.state)).toEqual(['degraded', 'degraded', 'healthy']);
  });

  it('counts a warning as healthy and lists it', async () => {
    const fix = settable('gps_fix', { ok: true, warn: true, detail: 'no fix yet; alerts carry the static fallback (±50 m)' });
    const s = make([fix.check]);
    await s.start();
    expect(s.snapshot()).toEqual({ state: 'healthy', failing: [], warnings: [{ name: 'gps_fix', detail: 'no fix yet; alerts carry the static fallback (±50 m)' }] });
  });

  it('fails a check that does not answer within its timeout, while the others still answer', async () => {
    const hung = settable('api_token');
    hung.set(new Promise<CheckResult>(() => {}));
    const other = settable('outbox');
    const s = make([hung.check, other.check], 3000);
    const started = s.start();
    await clock.advanceAsync(3000);
    await started;
    expect(s.failing()).toEqual([{ name: 'api_token', detail: 'no answer within 3000 ms' }]);
    expect(s.snapshot().failing.map((f) => f.name)).not.toContain('outbox');
  });

  it('counts a check that throws as failing, with its message', async () => {
    const s = make([{ name: 'boom', run: () => { throw new Error('EIO reading the state'); } }]);
    await s.start();
    expect(s.failing()).toEqual([{ name: 'boom', detail: 'check failed: EIO reading the state' }]);
  });

  it('keeps pushed news when a poll that started before it answers later', async () => {
    let answerPoll: (r: CheckResult) => void = () => {};
    let events: { report(r: CheckResult): void } | undefined;
    let first = true;
    const check: HealthCheck = {
      name: 'broker',
      run: () => {
        if (first) {
          first = false;
          return { ok: true, detail: 'connected' };
        }
        return new Promise<CheckResult>((r) => (answerPoll = r));
      },
      watch: (e) => {
        events = e;
        return () => (events = undefined);
      },
    };
    const s = make([check]);
    await s.start();
    await clock.advanceAsync(INTERVAL); // a poll starts and waits
    events!.report({ ok: false, detail: 'connection lost' });
    answerPoll({ ok: true, detail: 'connected (read before the loss)' });
    await clock.advanceAsync(0);
    expect(s.failing()).toEqual([{ name: 'broker', detail: 'connection lost' }]);
  });

  it('stops polling and listening on stop(), leaving no timer behind', async () => {
    let watching = 0;
    const s = make([
      {
        name: 'x',
        run: () => ({ ok: true, detail: 'fine' }),
        watch: () => {
          watching++;
          return () => watching--;
        },
      },
    ]);
    await s.start();
    expect(watching).toBe(1);
    await s.stop();
    expect(watching).toBe(0);
    expect(clock.pending()).toBe(0);
    s.report('x', false, 'after stop');
    expect(s.state()).toBe('healthy');
  });
});

describe('standard checks: each broken and recovered', () => {
  let clock: FakeClock;
  let sup: Supervisor | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeEach(() => {
    clock = new FakeClock();
  });
  afterEach(async () => {
    await sup?.stop();
    sup = undefined;
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function supervise(check: HealthCheck): Supervisor {
    sup = new Supervisor({ clock, logger: silentLogger(), intervalMs: INTERVAL, checks: [check] });
    return sup;
  }

  it('api_token: degraded when a token refresh fails against the API, healthy when the next one succeeds', async () => {
    const emulator: Emulator = await startEmulator();
    cleanups.push(() => emulator.stop());
    const client = new EmergencyApiClient({
      baseUrl: emulator.url,
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
      tokenMarginMs: 120_000,
      clock,
      logger: silentLogger(),
    });
    cleanups.push(() => client.stop());
    const s = supervise(tokenCheck(client.tokens));
    await s.start();
    expect(s.snapshot().warnings).toEqual([{ name: 'api_token', detail: 'first token not fetched yet' }]);

    const firstOk = new Promise<void>((r) => client.tokens.once('health', () => r()));
    await client.start();
    await firstOk;
    expect(s.snapshot()).toEqual({ state: 'healthy', failing: [], warnings: [] });

    emulator.addFault({ target: 'token', status: 503, times: 1 });
    const degraded = nextState(s, 'degraded');
    // The refresh falls due 120 s before the hour is up.
    await clock.advanceAsync(3_600_000 - 120_000);
    const st = await degraded;
    expect(st.failing).toEqual([{ name: 'api_token', detail: expect.stringMatching(/^token fetch failing \(ERR_SOS_TOKEN_FETCH, 1×\)/) as string }]);

    const healthy = nextState(s, 'healthy');
    await clock.advanceAsync(1000); // the first retry (full jitter, at most 1 s)
    await healthy;
    expect(s.state()).toBe('healthy');
  });

  it('broker: degraded the moment the broker goes away, healthy when the link is back', async () => {
    let broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: silentLogger() });
    await broker.start();
    const port = broker.port;
    cleanups.push(() => broker.stop());
    const link = new RelayLink({
      deviceId: 'dev-1',
      relay: { broker_url: `mqtt://127.0.0.1:${port}`, ca_file: null, cert_file: null, key_file: null, keepalive_s: 30 },
      clock: systemClock,
      logger: silentLogger(),
      presenceIntervalMs: 0,
      reconnect: { baseMs: 20, capMs: 100 },
    });
    cleanups.push(() => link.stop());
    const s = supervise(brokerCheck(link));
    await s.start();
    expect(s.failing()).toEqual([{ name: 'broker', detail: 'not connected to the broker' }]);

    const up = nextState(s, 'healthy');
    await link.start();
    await up;

    const down = nextState(s, 'degraded');
    await broker.stop();
    expect((await down).failing).toEqual([{ name: 'broker', detail: 'not connected to the broker' }]);

    broker = new EmbeddedBroker({ host: '127.0.0.1', port, logger: silentLogger() });
    const back = nextState(s, 'healthy');
    await broker.start();
    await back;
    expect(s.state()).toBe('healthy');
  });

  it('outbox: degraded when the store fails a write, healthy after the next write succeeds', async () => {
    const inner = new MemoryOutboxStore();
    let failWrites = false;
    const flaky: OutboxStore = new Proxy(inner, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (failWrites && typeof prop === 'string' && /^(mark|insert)/.test(prop)) throw new OutboxStoreError('full', 'disk full');
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const outbox = new Outbox({ store: flaky, route: new ScriptedRoute(clock), clock, logger: silentLogger(), maxBackoffMs: 30_000, alertMaxAgeMs: 3_600_000 });
    await outbox.start();
    cleanups.push(() => outbox.stop());
    const s = supervise(outboxCheck(outbox));
    await s.start();
    expect(s.state()).toBe('healthy');

    failWrites = true;
    expect(await outbox.enqueue(makeAlert(clock.now()))).toEqual({ durable: false });
    await clock.advanceAsync(0);
    expect(s.snapshot().failing).toEqual([{ name: 'outbox', detail: expect.stringContaining('disk full') as string }]);

    failWrites = false;
    await clock.advanceAsync(0); // the memory-held alert is delivered
    expect(await outbox.enqueue(makeAlert(clock.now()))).toEqual({ durable: true });
    await clock.advanceAsync(0);
    expect(s.state()).toBe('healthy');
  });

  it('button: degraded while the input device is missing, healthy once it appears', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-sup-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const device = join(dir, 'event0');
    const source = new EvdevButtonSource({ device, keyCode: 639, layout: '64', clock, logger: silentLogger(), random: () => 0.5 });
    cleanups.push(() => source.stop());
    const s = supervise(buttonCheck(source));
    await source.start();
    await s.start();
    expect(s.failing()).toEqual([{ name: 'button', detail: 'evdev button unavailable: a press would not be seen' }]);

    execFileSync('mkfifo', [device]);
    await clock.advanceAsync(5000); // the source reopens within its backoff cap
    expect(s.state()).toBe('healthy');
    expect(source.status()).toBe('ready');
  });

  describe('gps_fix', () => {
    const MAX_AGE = 10_000;
    function fixAt(time: number): Fix {
      return { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, time, mode: '3d', source: 'gpsd' };
    }

    it('without a fallback: degraded when the fix goes stale, healthy the moment a new fix arrives', async () => {
      const tracker = new FixTracker({ maxAgeMs: MAX_AGE, fallback: null, clock });
      const fixListeners = new Set<() => void>();
      const onFix = (l: () => void) => {
        fixListeners.add(l);
        return () => fixListeners.delete(l);
      };
      const receive = (fix: Fix) => {
        tracker.update(fix);
        for (const l of fixListeners) l();
      };
      const s = supervise(fixCheck(tracker, { maxAgeMs: MAX_AGE, hasFallback: false, onFix }));
      await s.start();
      expect(s.failing()).toEqual([{ name: 'gps_fix', detail: 'no fix yet' }]);

      receive(fixAt(clock.now()));
      await clock.advanceAsync(0);
      expect(s.snapshot()).toEqual({ state: 'healthy', failing: [], warnings: [] });

      await clock.advanceAsync(2 * INTERVAL); // no fix for 20 s: stale, found by the poll
      expect(s.failing()).toEqual([{ name: 'gps_fix', detail: expect.stringMatching(/^last fix 20 s old \(stale after 10 s\); alerts carry it with a grown radius/) as string }]);

      receive(fixAt(clock.now()));
      await clock.advanceAsync(0);
      expect(s.state()).toBe('healthy');
    });

    it('with a static fallback: a missing or stale fix is a warning, never degraded', async () => {
      // The depot where the vehicle was last seen: the fix lies inside the fallback's circle.
      const fallback = { latitude: 39.2853, longitude: -76.6125, uncertainty_m: 50 };
      const tracker = new FixTracker({ maxAgeMs: MAX_AGE, fallback, clock });
      const s = supervise(fixCheck(tracker, { maxAgeMs: MAX_AGE, hasFallback: true }));
      const changes: HealthState[] = [];
      s.onChange((st) => changes.push(st));
      await s.start();
      expect(s.snapshot()).toEqual({ state: 'healthy', failing: [], warnings: [{ name: 'gps_fix', detail: 'no fix yet; alerts carry the static fallback (±50 m)' }] });
      tracker.update(fixAt(clock.now()));
      await clock.advanceAsync(INTERVAL);
      expect(s.snapshot().warnings).toEqual([]);
      await clock.advanceAsync(10 * INTERVAL);
      expect(s.snapshot()).toMatchObject({ state: 'healthy', warnings: [{ name: 'gps_fix', detail: expect.stringMatching(/^last fix 110 s old .*; alerts carry the static fallback \(±50 m\)$/) as string }] });
      expect(changes).toEqual([]);
    });

    it('a static source never goes stale', async () => {
      const tracker = new FixTracker({ maxAgeMs: MAX_AGE, fallback: null, clock });
      tracker.update({ ...fixAt(clock.now()), source: 'static', stationary: true });
      const s = supervise(fixCheck(tracker, { maxAgeMs: MAX_AGE, hasFallback: false }));
      await s.start();
      await clock.advanceAsync(100 * INTERVAL);
      expect(s.snapshot()).toEqual({ state: 'healthy', failing: [], warnings: [] });
    });
  });
});
