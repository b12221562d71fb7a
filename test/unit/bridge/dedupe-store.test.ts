import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DedupeStore } from '../../../src/bridge/dedupe-store.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { uuidv7 } from '../../../src/shared/uuidv7.ts';
import { tempDir } from './fixture.ts';

describe('DedupeStore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let clock: FakeClock;
  const open: DedupeStore[] = [];

  function store(instance: string, path = join(tmp.dir, 'bridge.db')): DedupeStore {
    const s = new DedupeStore({ path, instance, leaseMs: 10_000, clock });
    s.open();
    open.push(s);
    return s;
  }

  beforeEach(() => {
    tmp = tempDir();
    clock = new FakeClock();
  });

  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    tmp.cleanup();
  });

  it('claims a new alertId once; a repeat of a triggered one gets the same API id, never a second claim', () => {
    const s = store('a');
    const id = uuidv7();
    expect(s.claim(id, 'truck-042')).toEqual({ kind: 'claimed', takeover: false });
    expect(s.claim(id, 'truck-042')).toEqual({ kind: 'in_flight', owner: 'a' });
    expect(s.markTriggered(id, 'exec-1', 'started')).toBe(true);
    expect(s.claim(id, 'truck-042')).toEqual({ kind: 'triggered', apiId: 'exec-1', message: 'started' });
  });

  it('remembers a rejection, and lets a failed alert be claimed again', () => {
    const s = store('a');
    const rejected = uuidv7();
    s.claim(rejected, 'truck-042');
    s.markRejected(rejected, 'api_rejected', 'unknown callflow');
    expect(s.claim(rejected, 'truck-042')).toEqual({ kind: 'rejected', reason: 'api_rejected', message: 'unknown callflow' });

    const failed = uuidv7();
    s.claim(failed, 'truck-042');
    expect(s.release(failed, 'api_unavailable')).toBe(true);
    expect(s.claim(failed, 'truck-042')).toEqual({ kind: 'claimed', takeover: false });
  });

  it('never answers one device with another device\'s alert', () => {
    const s = store('a');
    const id = uuidv7();
    s.claim(id, 'truck-042');
    s.markTriggered(id, 'exec-1', 'ok');
    expect(s.claim(id, 'truck-043')).toEqual({ kind: 'foreign' });
  });

  it('survives a restart: the file remembers what was triggered', () => {
    const path = join(tmp.dir, 'persist.db');
    const id = uuidv7();
    const first = new DedupeStore({ path, instance: 'a', leaseMs: 10_000, clock });
    first.open();
    first.claim(id, 'truck-042');
    first.markTriggered(id, 'exec-1', 'ok');
    first.close();
    expect(store('b', path).claim(id, 'truck-042')).toMatchObject({ kind: 'triggered', apiId: 'exec-1' });
  });

  it('leaves an alert to a live bridge sharing the file, and takes it over once that bridge stops answering', () => {
    // Two processes in real life, each committing at the end of its event-loop turn; here `turn` does that.
    const a = store('a');
    a.flush();
    const b = store('b');
    b.flush();
    const turn = <T>(s: DedupeStore, op: (s: DedupeStore) => T): T => {
      const result = op(s);
      s.flush();
      return result;
    };
    const id = uuidv7();
    expect(turn(a, (s) => s.claim(id, 'truck-042'))).toMatchObject({ kind: 'claimed' });
    clock.advance(9_000);
    expect(turn(b, (s) => s.claim(id, 'truck-042'))).toEqual({ kind: 'in_flight', owner: 'a' });
    turn(a, (s) => s.heartbeat());
    clock.advance(9_000);
    expect(turn(b, (s) => s.claim(id, 'truck-042'))).toEqual({ kind: 'in_flight', owner: 'a' });
    // a is silent for a whole lease: it is dead (SIGKILL); b takes over, exactly once.
    clock.advance(1_001);
    turn(b, (s) => s.heartbeat());
    expect(turn(b, (s) => s.claim(id, 'truck-042'))).toEqual({ kind: 'claimed', takeover: true });
    expect(turn(b, (s) => s.claim(id, 'truck-042'))).toEqual({ kind: 'in_flight', owner: 'b' });
    // The dead owner's late answer no longer counts: the row is b's.
    expect(turn(a, (s) => s.markTriggered(id, 'exec-late', 'ok'))).toBe(false);
    expect(turn(b, (s) => s.markTriggered(id, 'exec-b', 'ok'))).toBe(true);
    expect(turn(a, (s) => s.claim(id, 'truck-042'))).toMatchObject({ kind: 'triggered', apiId: 'exec-b' });
  });

  it('commits a turn\'s writes together, and only then says they are durable', async () => {
    const s = store('a');
    await s.committed();
    const id = uuidv7();
    s.claim(id, 'truck-042');
    let durable = false;
    const done = s.committed().then(() => (durable = true));
    expect(durable).toBe(false);
    await done;
    expect(durable).toBe(true);
    // Another connection (another bridge process) sees the claim once committed.
    const other = new DedupeStore({ path: join(tmp.dir, 'bridge.db'), instance: 'reader', leaseMs: 10_000, clock });
    other.open();
    other.flush();
    open.push(other);
    expect(other.stateOf(id)).toMatchObject({ state: 'in_flight', owner: 'a' });
  });

  it('with commitGapMs, a write soon after a commit waits for the gap and shares the next commit; an idle store commits at once', async () => {
    const gapMs = 60;
    const path = join(tmp.dir, 'gap.db');
    const s = new DedupeStore({ path, instance: 'a', leaseMs: 10_000, clock, commitGapMs: gapMs });
    s.open();
    open.push(s);
    await s.committed(); // open()'s heartbeat: nothing committed before it, so at the end of its turn
    // What a power cut would leave: what another connection reads from the file.
    const reader = new DatabaseSync(path, { readOnly: true });
    const onDisk = (id: string) => reader.prepare('SELECT 1 FROM alerts WHERE alert_id = ?').get(id) !== undefined;
    try {
      const t0 = performance.now();
      const first = uuidv7();
      s.claim(first, 'truck-042');
      const firstDone = s.committed();
      await new Promise((r) => setImmediate(r));
      expect(onDisk(first)).toBe(false); // not yet: no side effect may rest on it
      const second = uuidv7();
      s.claim(second, 'truck-042'); // a later turn
      await firstDone;
      expect(performance.now() - t0).toBeGreaterThanOrEqual(gapMs - 10); // timers may fire a little early against performance.now()
      expect(onDisk(first) && onDisk(second)).toBe(true); // one commit carried both
      await new Promise((r) => setTimeout(r, gapMs + 10)); // idle for a whole gap
      const t1 = performance.now();
      s.claim(uuidv7(), 'truck-042');
      await s.committed();
      expect(performance.now() - t1).toBeLessThan(gapMs - 10);
    } finally {
      reader.close();
    }
  });

  it('with another live bridge on the file, commits every turn: an open transaction would hold that bridge up', async () => {
    const gapMs = 200;
    const path = join(tmp.dir, 'shared.db');
    const s = new DedupeStore({ path, instance: 'a', leaseMs: 10_000, clock, commitGapMs: gapMs });
    s.open();
    open.push(s);
    await s.committed();
    store('b', path).flush(); // another bridge starts on the file and says it is alive
    s.heartbeat(); // ... which `a` learns at its next heartbeat
    await s.committed();
    const t0 = performance.now();
    s.claim(uuidv7(), 'truck-042');
    await s.committed();
    expect(performance.now() - t0).toBeLessThan(gapMs / 2);
  });

  it('prunes only old final records', () => {
    const s = store('a');
    const old = uuidv7();
    const held = uuidv7();
    s.claim(old, 'truck-042');
    s.markTriggered(old, 'x', 'ok');
    s.claim(held, 'truck-042');
    clock.advance(2 * 86_400_000);
    s.heartbeat();
    expect(s.prune(86_400_000)).toBe(1);
    expect(s.stateOf(old)).toBeNull();
    expect(s.stateOf(held)).toMatchObject({ state: 'in_flight' });
  });
});
