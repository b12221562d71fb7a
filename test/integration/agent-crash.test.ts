import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/server.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import { agentCrashSubject, type AgentCrashSubject } from '../support/agent-crash-subject.ts';
import { startEmulator } from '../support/emulator.ts';
import { freePort, runCrashTest, type CrashRunReport } from '../support/outbox-crash.ts';
import { triggersPerAlert } from '../support/outbox-direct.ts';

const KILLS = 22;

function report(name: string, r: CrashRunReport, subject: AgentCrashSubject): void {
  const c = subject.counts();
  console.log(
    `agent crash test (${name}): ${r.kills} SIGKILLs, ${c.holds} holds (${c.presses - c.holds} presses before armed), ` +
      `${c.newAlerts.length} alerts, ${r.confirmed} confirmed, ${r.delivered} delivered, ${r.duplicates} duplicates, ` +
      `${r.ambiguousRecorded} ambiguous; ${c.repeats} repeats, ${c.cut} holds cut by the kill, ${c.unanswered} unanswered, ` +
      `${c.newAlerts.length - r.confirmed} alerts killed before "queued"`,
  );
}

/**
 * Invariant 2 under SIGKILL, end to end: `sos-agent run` with the evdev button on a FIFO is killed at random
 * moments (its whole process group, as a power cut would) while a person holds the button, alerts are
 * committed and the emulator flaps, restarted each time; every alert the person was told is queued ends
 * delivered, and a duplicate flow can only come from a resend the outbox recorded as ambiguous.
 */
describe('sos-agent run crash test', () => {
  let dir: string;
  let emulator: Emulator;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-agent-crash-'));
    emulator = await startEmulator({ port: await freePort() });
  });
  afterEach(async () => {
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Checks common to both weathers: nothing was lost, and nothing was sent that nobody pressed for. */
  function expectSound(r: CrashRunReport, subject: AgentCrashSubject, dbPath: string): void {
    if (r.notDelivered.length > 0) console.log(r.logs.slice(-20_000));
    const c = subject.counts();
    expect(r.notDelivered).toEqual([]);
    expect(r.confirmed).toBeGreaterThan(0);
    expect(r.delivered).toBe(r.confirmed);
    // Every hold on a live button is answered: a new alert or a repeat, unless the kill cut it first.
    expect(c.unanswered).toBe(0);
    expect(c.newAlerts.length + c.repeats + c.cut).toBe(c.holds);
    // Every alert on file and at the API came from a hold: no press is invented by a crash or a restart.
    const pressed = new Set(c.newAlerts);
    const store = new SqliteOutboxStore({ path: dbPath, readOnly: true });
    store.open();
    const records = store.list();
    store.close();
    expect(records.filter((rec) => !pressed.has(rec.alertId))).toEqual([]);
    expect([...triggersPerAlert(emulator).keys()].filter((id) => !pressed.has(id))).toEqual([]);
    // Killed between the commit and "queued": never promised, yet on file; on file means delivered.
    expect(records.filter((rec) => rec.state !== 'delivered')).toEqual([]);
  }

  it(`delivers every confirmed alert through ${KILLS} SIGKILLs of sos-agent run while the emulator flaps`, async () => {
    const subject = agentCrashSubject({ dir });
    const dbPath = join(dir, 'outbox.db');
    const r = await runCrashTest({ subject, emulator, dbPath, kills: KILLS, alertsPerLife: 3, weather: 'flap', lifeMs: 1200, deadlineMs: 15_000 });
    report('emulator flapping', r, subject);
    expectSound(r, subject, dbPath);
    expect(r.duplicates).toBeLessThanOrEqual(r.ambiguousRecorded);
  }, 120_000);

  it(`delivers every alert confirmed through ${KILLS} SIGKILLs of sos-agent run with the emulator down, with no duplicate`, async () => {
    const subject = agentCrashSubject({ dir });
    const dbPath = join(dir, 'outbox.db');
    const r = await runCrashTest({ subject, emulator, dbPath, kills: KILLS, alertsPerLife: 3, weather: 'down', lifeMs: 1200, deadlineMs: 15_000 });
    report('emulator down', r, subject);
    expectSound(r, subject, dbPath);
    // Nothing reached the API while it was down: every request was refused before it was sent.
    expect(r.duplicates).toBe(0);
  }, 120_000);
});
