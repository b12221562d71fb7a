import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiRejectedError, ApiTransientError } from '../../../src/api/errors.ts';
import { MemoryOutboxStore } from '../../../src/outbox/memory-store.ts';
import { Outbox, type OutboxEvent, type OutboxOptions } from '../../../src/outbox/outbox.ts';
import { SqliteOutboxStore } from '../../../src/outbox/sqlite-store.ts';
import { OutboxStoreError, type OutboxStore } from '../../../src/outbox/store.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import { makeAlert } from '../../support/outbox-alerts.ts';
import { capturingLogger, hang, ScriptedRoute } from './fake-route.ts';

const transient = (message = 'HTTP 503', extra: { retryAfterMs?: number; ambiguous?: boolean } = {}) => new ApiTransientError(message, { status: 503, ...extra });

describe('Outbox', () => {
  let dir: string;
  let path: string;
  let clock: FakeClock;
  let route: ScriptedRoute;
  const outboxes: Outbox[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sos-outbox-'));
    path = join(dir, 'outbox.db');
    clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
    route = new ScriptedRoute(clock);
  });
  afterEach(async () => {
    for (const o of outboxes.splice(0)) await o.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function sqlite(opts: Partial<ConstructorParameters<typeof SqliteOutboxStore>[0]> = {}): SqliteOutboxStore {
    return new SqliteOutboxStore({ path, ...opts });
  }
  /** A second connection, as the CLI would open, to see what is on disk. */
  function onDisk(alertId: string) {
    const s = sqlite({ readOnly: true });
    s.open();
    try {
      return s.get(alertId);
    } finally {
      s.close();
    }
  }
  function make(opts: Partial<OutboxOptions> = {}): { outbox: Outbox; events: OutboxEvent[] } {
    const outbox = new Outbox({ store: sqlite(), route, clock, logger: silentLogger(), maxBackoffMs: 30_000, alertMaxAgeMs: 3_600_000, random: () => 0.999, ...opts });
    const events: OutboxEvent[] = [];
    outbox.onChange((e) => events.push(e));
    outboxes.push(outbox);
    return { outbox, events };
  }

  it('alive() (the watchdog\'s question) holds while the scheduler turns, even degraded, and not once stopped', async () => {
    const { outbox } = make({ pollIntervalMs: 2000 });
    expect(outbox.alive()).toBe(false);
    await outbox.start();
    expect(outbox.alive()).toBe(true);
    await clock.advanceAsync(60_000);
    expect(outbox.alive()).toBe(true);
    await outbox.stop();
    expect(outbox.alive()).toBe(false);
  });

  it('stop(grace) lets an answer already on its way land (delivered, not an ambiguous resend); past the grace it aborts', async () => {
    // The API answers 3 s after the request.
    route.answer = (a, _n, signal) =>
      new Promise((resolve, reject) => {
        const t = clock.setTimeout(() => resolve({ id: `exec-${a.alertId}`, message: 'ok' }), 3000);
        signal?.addEventListener('abort', () => {
          clock.clearTimeout(t);
          reject(signal.reason);
        });
      });
    const { outbox } = make();
    await outbox.start();
    const quick = makeAlert(clock.now());
    await outbox.enqueue(quick);
    await clock.advanceAsync(10);
    const stopped = outbox.stop(8000);
    await clock.advanceAsync(3000);
    await stopped;
    expect(onDisk(quick.alertId)).toMatchObject({ state: 'delivered', apiId: `exec-${quick.alertId}`, ambiguousRetries: 0 });

    const { outbox: second } = make();
    await second.start();
    const slow = makeAlert(clock.now());
    route.answer = (_a, _n, signal) => hang(signal);
    await second.enqueue(slow);
    await clock.advanceAsync(10);
    const stopping = second.stop(8000);
    await clock.advanceAsync(8000);
    await stopping;
    expect(onDisk(slow.alertId)?.state).toBe('queued');
  });

  it('commits the alert to disk before enqueue resolves, then delivers it once and records the API id', async () => {
    route.answer = (_a, _n, signal) => hang(signal);
    const { outbox, events } = make();
    await outbox.start();
    const alert = makeAlert(clock.now());
    let seenOnDisk: unknown;
    const pending = outbox.enqueue(alert).then((r) => {
      seenOnDisk = onDisk(alert.alertId)?.alert;
      return r;
    });
    expect(await pending).toEqual({ durable: true });
    expect(seenOnDisk).toEqual(alert);
    await clock.advanceAsync(0);
    expect(route.calls).toHaveLength(1);

    route.answer = (a) => ({ id: `exec-${a.alertId}`, message: 'ok' });
    await outbox.stop();
    await outbox.start();
    await clock.advanceAsync(0);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'delivered', apiId: `exec-${alert.alertId}` });
    expect(events.filter((e) => e.alertId === alert.alertId).map((e) => e.state)).toEqual(['queued', 'sending', 'queued', 'sending', 'delivered']);
    expect(events.at(-1)).toMatchObject({ durable: true, apiId: `exec-${alert.alertId}` });
    await clock.advanceAsync(3_600_000);
    expect(route.calls.filter((c) => c.alertId === alert.alertId).length).toBe(2);
  });

  it('backs off with full jitter capped at maxBackoffMs, and never gives up on transient failures', async () => {
    route.answer = (_a, n) => {
      if (n <= 40) throw transient();
      return { id: 'exec-1', message: 'ok' };
    };
    const { outbox, events } = make({ baseBackoffMs: 1000, maxBackoffMs: 8000, random: () => 0.5 });
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    await clock.advanceAsync(40 * 8000);
    const calls = route.callsFor(alert.alertId);
    expect(calls.length).toBe(41);
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
    // random()=0.5 of the ceiling: 1 s, 2 s, 4 s, 8 s doubling, then held at the 8 s cap.
    expect(gaps.slice(0, 6)).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(Math.max(...gaps)).toBe(4000);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'delivered', attempts: 41, ambiguousRetries: 0 });
    expect(events.filter((e) => e.state === 'retrying').length).toBe(40);
    expect(events.find((e) => e.state === 'retrying')).toMatchObject({ error: { code: 'ERR_SOS_API_TRANSIENT', message: 'HTTP 503' } });
  });

  it('spreads retries over the whole jitter range (full jitter, not a fixed period)', async () => {
    const seq = [0, 0.25, 0.999];
    let i = 0;
    route.answer = () => {
      throw transient();
    };
    const { outbox } = make({ baseBackoffMs: 4000, maxBackoffMs: 4000, random: () => seq[i++ % seq.length]! });
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    await clock.advanceAsync(5000);
    const calls = route.callsFor(alert.alertId);
    expect(calls.slice(1, 4).map((c, k) => c.at - calls[k]!.at)).toEqual([0, 1000, 3996]);
  });

  it('never retries sooner than Retry-After, even past the backoff cap', async () => {
    route.answer = (_a, n) => {
      if (n === 1) throw transient('HTTP 429', { retryAfterMs: 20_000 });
      return { id: 'exec-1', message: 'ok' };
    };
    const { outbox, events } = make({ maxBackoffMs: 5000 });
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    const failedAt = route.calls[0]!.at;
    expect(events.find((e) => e.state === 'retrying')?.nextAttemptAt).toBe(failedAt + 20_000);
    await clock.advanceAsync(19_999);
    expect(route.calls.length).toBe(1);
    await clock.advanceAsync(1);
    expect(route.calls.length).toBe(2);
    expect(onDisk(alert.alertId)?.state).toBe('delivered');
  });

  it('caps a Retry-After of hours at maxRetryAfterMs: a broken gateway cannot hold an SOS back for a day', async () => {
    route.answer = (_a, n) => {
      if (n === 1) throw transient('HTTP 503', { retryAfterMs: 86_400_000 });
      return { id: 'exec-1', message: 'ok' };
    };
    const { outbox, events } = make({ maxRetryAfterMs: 600_000 });
    await outbox.start();
    await outbox.enqueue(makeAlert(clock.now()));
    await clock.advanceAsync(0);
    expect(events.find((e) => e.state === 'retrying')?.nextAttemptAt).toBe(route.calls[0]!.at + 600_000);
    await clock.advanceAsync(600_000);
    expect(events.at(-1)?.state).toBe('delivered');
  });

  it('marks a permanent failure rejected, tells the listener why, and never retries it', async () => {
    route.answer = () => {
      throw new ApiRejectedError('code -2: workflow validation error', { status: 400, apiCode: -2 });
    };
    const { logger, lines } = capturingLogger();
    const { outbox, events } = make({ logger });
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    outbox.wayIsBack();
    await clock.advanceAsync(3_600_000);
    expect(route.calls.length).toBe(1);
    expect(events.at(-1)).toMatchObject({ state: 'rejected', error: { code: 'ERR_SOS_API_REJECTED', message: 'code -2: workflow validation error' } });
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'rejected', attempts: 1, lastError: { code: 'ERR_SOS_API_REJECTED' } });
    expect(outbox.stats()).toMatchObject({ rejected: 1, depth: 0 });
    expect(lines.some((l) => l.msg === 'alert rejected: not retried' && l.alertId === alert.alertId)).toBe(true);
  });

  it('still sends an alert older than alertMaxAgeMs, with its original press time, and logs it as late', async () => {
    const { logger, lines } = capturingLogger();
    const { outbox, events } = make({ logger, alertMaxAgeMs: 60_000 });
    route.answer = (_a, n) => {
      if (n === 1) throw transient('HTTP 503', { retryAfterMs: 120_000 });
      return { id: 'exec-late', message: 'ok' };
    };
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    expect(events.find((e) => e.state === 'sending')?.late).toBeUndefined();
    await clock.advanceAsync(120_000);
    expect(route.calls.length).toBe(2);
    expect(route.calls[1]!.alert).toEqual(alert);
    expect(route.calls[1]!.alert.createdAt).toBe(alert.createdAt);
    expect(events.filter((e) => e.state === 'sending').at(-1)).toMatchObject({ late: true });
    expect(lines.filter((l) => l.msg === 'alert is late: sending it with its original press time')).toHaveLength(1);
    expect(onDisk(alert.alertId)?.state).toBe('delivered');
  });

  it('sends oldest first, one attempt per alert, and a hung alert does not hold back newer ones', async () => {
    const t = clock.now();
    const oldest = makeAlert(t - 3000);
    const middle = makeAlert(t - 2000);
    const newest = makeAlert(t - 1000);
    route.answer = (a, _n, signal) => (a.alertId === oldest.alertId ? hang(signal) : { id: `exec-${a.alertId}`, message: 'ok' });
    const { outbox } = make({ concurrency: 2, attemptTimeoutMs: 30_000 });
    // Enqueued newest first while nothing runs, so only the press time can decide the order.
    const store = sqlite();
    store.open();
    for (const a of [newest, middle, oldest]) store.insert(a, t);
    store.close();
    await outbox.start();
    await clock.advanceAsync(0);
    expect(route.calls.slice(0, 2).map((c) => c.alertId)).toEqual([oldest.alertId, middle.alertId]);
    expect(route.calls.map((c) => c.alertId)).toEqual([oldest.alertId, middle.alertId, newest.alertId]);
    expect(onDisk(newest.alertId)?.state).toBe('delivered');
    expect(onDisk(oldest.alertId)?.state).toBe('sending');
    outbox.wayIsBack();
    await clock.advanceAsync(10_000);
    expect(route.callsFor(oldest.alertId)).toHaveLength(1);
    // The safety net abandons the hung attempt and retries the alert (counted: the request may have arrived).
    await clock.advanceAsync(21_000);
    expect(route.callsFor(oldest.alertId)).toHaveLength(2);
    expect(outbox.stats().ambiguousRepeats).toBe(1);
  });

  it('retries every waiting alert at once when the way is back', async () => {
    let apiUp = false;
    route.answer = (a) => {
      if (!apiUp) throw transient('HTTP 503', { retryAfterMs: 600_000 });
      return { id: `exec-${a.alertId}`, message: 'ok' };
    };
    const { outbox } = make();
    await outbox.start();
    const alerts = [makeAlert(clock.now() - 2), makeAlert(clock.now() - 1)];
    for (const a of alerts) await outbox.enqueue(a);
    await clock.advanceAsync(1000);
    expect(route.calls).toHaveLength(2);
    apiUp = true;
    outbox.wayIsBack();
    await clock.advanceAsync(0);
    expect(route.calls).toHaveLength(4);
    for (const a of alerts) expect(onDisk(a.alertId)?.state).toBe('delivered');
  });

  it('treats one delivery as proof the way is back for the alerts waiting behind it', async () => {
    let apiUp = false;
    route.answer = (a) => {
      if (!apiUp) throw transient();
      return { id: `exec-${a.alertId}`, message: 'ok' };
    };
    const { outbox } = make({ baseBackoffMs: 30_000, maxBackoffMs: 30_000, random: () => 0.999 });
    await outbox.start();
    const first = makeAlert(clock.now() - 1);
    await outbox.enqueue(first);
    await clock.advanceAsync(0);
    apiUp = true;
    const second = makeAlert(clock.now());
    await outbox.enqueue(second);
    await clock.advanceAsync(0);
    expect(onDisk(second.alertId)?.state).toBe('delivered');
    expect(onDisk(first.alertId)?.state).toBe('delivered');
    expect(clock.now() - route.callsFor(first.alertId)[0]!.at).toBeLessThan(1000);
  });

  it('after a crash, resends alerts left "sending" with the same alertId and counts the repeat', async () => {
    const store = sqlite();
    store.open();
    const alert = makeAlert(clock.now());
    store.insert(alert, clock.now());
    store.markSending(alert.alertId, 'direct', clock.now());
    // No close: the process died here.
    const { logger, lines } = capturingLogger();
    const { outbox, events } = make({ logger });
    await outbox.start();
    await clock.advanceAsync(0);
    store.close();
    expect(events.map((e) => e.state)).toEqual(['queued', 'sending', 'delivered']);
    expect(route.calls[0]!.alert).toEqual(alert);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'delivered', attempts: 2, ambiguousRetries: 1 });
    expect(outbox.stats().ambiguousRepeats).toBe(1);
    expect(lines.some((l) => l.level === 40 && l.alertId === alert.alertId && String(l.msg).includes('same alertId'))).toBe(true);
  });

  it('stop aborts the send in flight, cancels every timer, and leaves the alert queued for the next start', async () => {
    route.answer = (_a, _n, signal) => hang(signal);
    const { outbox } = make();
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    const signal = route.calls[0]!.signal!;
    expect(signal.aborted).toBe(false);
    await outbox.stop();
    expect(signal.aborted).toBe(true);
    expect(clock.pending()).toBe(0);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'queued', nextAttemptAt: clock.now() });
    await expect(outbox.enqueue(makeAlert(clock.now()))).rejects.toBeInstanceOf(OutboxStoreError);
  });

  it('picks up an installer\'s "outbox retry" from the file within a poll interval', async () => {
    route.answer = (_a, n) => {
      if (n === 1) throw new ApiRejectedError('code -2', { apiCode: -2 });
      return { id: 'exec-2', message: 'ok' };
    };
    const { outbox } = make({ pollIntervalMs: 2000 });
    await outbox.start();
    const alert = makeAlert(clock.now());
    await outbox.enqueue(alert);
    await clock.advanceAsync(0);
    expect(onDisk(alert.alertId)?.state).toBe('rejected');
    const cli = sqlite({ create: false, moveAsideCorrupt: false });
    cli.open();
    cli.retryNow(alert.alertId, clock.now());
    cli.close();
    await clock.advanceAsync(2000);
    expect(route.calls).toHaveLength(2);
    expect(onDisk(alert.alertId)).toMatchObject({ state: 'delivered', apiId: 'exec-2' });
  });

  it('keeps an alert in memory when the file is read-only: durable=false, degraded, logged, still delivered', async () => {
    const setup = sqlite();
    setup.open();
    setup.close();
    const { logger, lines } = capturingLogger();
    const { outbox, events } = make({ store: sqlite({ readOnly: true }), logger });
    await outbox.start();
    const alert = makeAlert(clock.now());
    expect(await outbox.enqueue(alert)).toEqual({ durable: false });
    expect(outbox.stats()).toMatchObject({ storeOk: false, degraded: true, memoryOnly: 1, depth: 1 });
    await clock.advanceAsync(0);
    expect(route.calls).toHaveLength(1);
    expect(events.map((e) => [e.state, e.durable])).toEqual([
      ['queued', false],
      ['sending', false],
      ['delivered', false],
    ]);
    expect(onDisk(alert.alertId)).toBeUndefined();
    const why = lines.find((l) => l.level === 50 && String(l.msg).startsWith('outbox degraded'));
    expect(why).toMatchObject({ reason: 'readonly', code: 'ERR_SOS_OUTBOX_STORE' });
    expect(outbox.stats()).toMatchObject({ memoryOnly: 0, depth: 0, delivered: 1 });
  });

  it('moves a corrupt outbox file aside at start, says so, and carries on durably with a new one', async () => {
    writeFileSync(path, 'this was an outbox before the SD card went bad '.repeat(100));
    const { logger, lines } = capturingLogger();
    const { outbox } = make({ logger });
    await outbox.start();
    const moved = lines.find((l) => String(l.msg).startsWith('outbox file was unreadable'));
    expect(String(moved?.movedAside)).toContain(`${path}.corrupt-`);
    expect(readFileSync(String(moved!.movedAside), 'utf8')).toContain('before the SD card went bad');
    expect(outbox.stats()).toMatchObject({ storeOk: true, degraded: false });
    const alert = makeAlert(clock.now());
    expect(await outbox.enqueue(alert)).toEqual({ durable: true });
    await clock.advanceAsync(0);
    expect(onDisk(alert.alertId)?.state).toBe('delivered');
  });

  it('runs from memory when the file cannot even be opened', async () => {
    writeFileSync(join(dir, 'not-a-dir'), '');
    const { outbox } = make({ store: new SqliteOutboxStore({ path: join(dir, 'not-a-dir', 'outbox.db') }) });
    await outbox.start();
    expect(outbox.stats()).toMatchObject({ storeOk: false, degraded: true });
    const alert = makeAlert(clock.now());
    expect(await outbox.enqueue(alert)).toEqual({ durable: false });
    await clock.advanceAsync(0);
    expect(route.calls).toHaveLength(1);
    expect(outbox.stats().delivered).toBe(1);
  });

  it('carries an alert on in memory when the disk fills up mid-flight, and recovers when it answers again', async () => {
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
    route.answer = (_a, _n, signal) => hang(signal);
    const { outbox, events } = make({ store: flaky, attemptTimeoutMs: 5000 });
    await outbox.start();
    const alert = makeAlert(clock.now());
    expect(await outbox.enqueue(alert)).toEqual({ durable: true });
    await clock.advanceAsync(0);
    failWrites = true;
    route.answer = () => ({ id: 'exec-1', message: 'ok' });
    await clock.advanceAsync(5000);
    expect(outbox.stats()).toMatchObject({ storeOk: false, degraded: true });
    await clock.advanceAsync(2000);
    expect(events.at(-1)).toMatchObject({ state: 'delivered', durable: false });
    expect(outbox.stats()).toMatchObject({ delivered: 1, memoryOnly: 0 });
    failWrites = false;
    expect(await outbox.enqueue(makeAlert(clock.now()))).toEqual({ durable: true });
    expect(outbox.stats().storeOk).toBe(true);
  });
});
