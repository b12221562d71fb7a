import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/server.ts';
import { startEmulator } from '../support/emulator.ts';
import { freePort, outboxChildSubject, runCrashTest, type CrashRunReport } from '../support/outbox-crash.ts';

const KILLS = 24;

function report(name: string, r: CrashRunReport): void {
  console.log(
    `crash test (${name}): ${r.kills} SIGKILLs, ${r.alerts} alerts, ${r.confirmed} confirmed, ${r.delivered} delivered, ` +
      `${r.duplicates} duplicate triggers, ${r.ambiguousRecorded} ambiguous resends recorded`,
  );
}

/**
 * Invariant 2 under SIGKILL: a process holding the SQLite outbox (DirectRoute → emulator) is killed at random
 * moments while alerts are pressed, restarted each time, and every alert ends delivered. A duplicate flow can
 * only come from a resend the outbox recorded as ambiguous.
 */
describe('outbox crash test', () => {
  let dir: string;
  let emulator: Emulator;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-outbox-crash-'));
    emulator = await startEmulator({ port: await freePort() });
  });
  afterEach(async () => {
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`delivers every alert through ${KILLS} SIGKILLs while the emulator flaps`, async () => {
    const r = await runCrashTest({ subject: outboxChildSubject, emulator, dbPath: join(dir, 'outbox.db'), kills: KILLS, alertsPerLife: 3, weather: 'flap' });
    report('emulator flapping', r);
    if (r.notDelivered.length > 0) console.log(r.logs.slice(-20_000));
    expect(r.notDelivered).toEqual([]);
    expect(r.confirmed).toBe(r.alerts);
    expect(r.delivered).toBe(r.alerts);
    expect(r.duplicates).toBeLessThanOrEqual(r.ambiguousRecorded);
  }, 120_000);

  it(`delivers every alert queued through ${KILLS} SIGKILLs with the emulator down, with no duplicate`, async () => {
    const r = await runCrashTest({ subject: outboxChildSubject, emulator, dbPath: join(dir, 'outbox.db'), kills: KILLS, alertsPerLife: 3, weather: 'down' });
    report('emulator down', r);
    if (r.notDelivered.length > 0) console.log(r.logs.slice(-20_000));
    expect(r.notDelivered).toEqual([]);
    expect(r.delivered).toBe(r.alerts);
    // Nothing reached the API while it was down: every request was refused before it was sent.
    expect(r.duplicates).toBe(0);
  }, 120_000);
});
