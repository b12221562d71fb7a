// Outbox benchmarks (issue 4): durable enqueue latency against a bare fsync-per-write loop on the same disk,
// and recovery of 1,000 alerts queued while the API emulator was down.
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlertRoute } from '../../src/incident/types.ts';
import { Outbox } from '../../src/outbox/outbox.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { startEmulator } from '../../test/support/emulator.ts';
import { makeAlert } from '../../test/support/outbox-alerts.ts';
import { freePort } from '../../test/support/outbox-crash.ts';
import { directOutbox } from '../../test/support/outbox-direct.ts';
import { round, summarize, type BenchResult } from './result.ts';

const N = 1000;

/** A route that never answers (until stopped): only the commit is measured, not deliveries competing with it. */
const silentRoute: AlertRoute = {
  name: 'bench',
  send: (_alert, signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true })),
};

/**
 * Press confirmed → committed (fsync'd by synchronous=FULL), as the app awaits it, interleaved one for one
 * with the floor: a write of a record's size and an fsync, in the same directory. Interleaving makes both
 * see the same disk (this machine is shared; a baseline taken a minute earlier would compare other weather).
 */
async function enqueueAndFloor(dir: string): Promise<{ enqueue: number[]; floor: number[]; bytes: number }> {
  const outbox = new Outbox({
    store: new SqliteOutboxStore({ path: join(dir, 'outbox.db') }),
    route: silentRoute,
    clock: systemClock,
    logger: silentLogger(),
    maxBackoffMs: 30_000,
    alertMaxAgeMs: 3_600_000,
  });
  const t0 = Date.now();
  const alerts = Array.from({ length: N }, (_, i) => makeAlert(t0 + i));
  const bytes = Buffer.byteLength(JSON.stringify(alerts[0]));
  const buf = Buffer.alloc(bytes, 0x61);
  const fd = openSync(join(dir, 'fsync.bin'), 'w');
  const enqueue: number[] = [];
  const floor: number[] = [];
  await outbox.start();
  try {
    for (const alert of alerts) {
      let start = performance.now();
      writeSync(fd, buf);
      fsyncSync(fd);
      floor.push(performance.now() - start);
      start = performance.now();
      const { durable } = await outbox.enqueue(alert);
      enqueue.push(performance.now() - start);
      if (!durable) throw new Error('bench: the outbox fell back to memory');
      // Let the scheduler run between presses, as it would between real ones (outside the measured window).
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    closeSync(fd);
    await outbox.stop();
  }
  return { enqueue, floor, bytes };
}

export async function benchEnqueue(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sos-bench-outbox-'));
  try {
    const { enqueue, floor, bytes } = await enqueueAndFloor(dir);
    const base = summarize(floor);
    const got = summarize(enqueue);
    return {
      name: 'outbox_durable_enqueue',
      unit: 'ms',
      median: round(got.median),
      p99: round(got.p99),
      n: got.n,
      baseline: { name: `write+fsync of ${bytes} bytes, same disk, interleaved`, median: round(base.median), p99: round(base.p99) },
      ratio: round(got.p99 / base.p99, 2),
      target: 'p99 ≤ 2× the baseline p99',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 1,000 alerts queued while the emulator is down; the time from its return to the first and last delivery. */
async function recoveryRound(downMs: number): Promise<{ firstMs: number; allMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sos-bench-recovery-'));
  const emulator = await startEmulator({ port: await freePort() });
  await emulator.stop();
  const direct = directOutbox({
    apiUrl: emulator.url,
    dbPath: join(dir, 'outbox.db'),
    // The shipped defaults: 30 s backoff cap, 1 s base.
    outbox: { maxBackoffMs: 30_000, baseBackoffMs: 1000 },
  });
  try {
    await direct.start();
    const t0 = Date.now();
    for (let i = 0; i < N; i++) await direct.outbox.enqueue(makeAlert(t0 + i));
    await new Promise((r) => setTimeout(r, downMs));
    let first = -1;
    let delivered = 0;
    let back = 0;
    const all = new Promise<number>((resolve) => {
      direct.outbox.onChange((e) => {
        if (e.state !== 'delivered') return;
        const at = performance.now() - back;
        if (first < 0) first = at;
        if (++delivered === N) resolve(at);
      });
    });
    back = performance.now();
    await emulator.start();
    let giveUp: NodeJS.Timeout | undefined;
    const allMs = await Promise.race([all, new Promise<number>((r) => (giveUp = setTimeout(() => r(Number.POSITIVE_INFINITY), 60_000)))]);
    clearTimeout(giveUp);
    if (!Number.isFinite(allMs)) throw new Error(`bench: only ${delivered} of ${N} delivered within 60 s of the emulator's return`);
    if (emulator.triggers().length !== N) throw new Error(`bench: emulator accepted ${emulator.triggers().length} triggers for ${N} alerts`);
    return { firstMs: first, allMs };
  } finally {
    await direct.stop();
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchRecovery(): Promise<BenchResult[]> {
  const rounds: { firstMs: number; allMs: number }[] = [];
  for (let i = 0; i < 3; i++) rounds.push(await recoveryRound(5000));
  const first = summarize(rounds.map((r) => r.firstMs));
  const all = summarize(rounds.map((r) => r.allMs));
  return [
    { name: 'outbox_recovery_first_delivery', unit: 'ms', median: round(first.median, 1), p99: round(first.p99, 1), n: first.n, target: '≤ 1000 ms after the API is back' },
    { name: 'outbox_recovery_all_1000', unit: 'ms', median: round(all.median, 1), p99: round(all.p99, 1), n: all.n, target: '≤ 5000 ms after the API is back' },
  ];
}

export async function benchOutbox(): Promise<BenchResult[]> {
  return [await benchEnqueue(), ...(await benchRecovery())];
}
