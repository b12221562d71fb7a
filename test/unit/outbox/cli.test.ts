import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../../src/outbox/record.ts';
import { SqliteOutboxStore } from '../../../src/outbox/sqlite-store.ts';
import { runCli } from '../../support/cli.ts';
import { makeAlert } from '../../support/outbox-alerts.ts';

describe('sos-agent outbox', () => {
  let dir: string;
  let db: string;
  let agent: SqliteOutboxStore;
  const T0 = Date.now() - 60_000;
  const delivered = makeAlert(T0);
  const rejected = makeAlert(T0 + 1000);
  const waiting = makeAlert(T0 + 2000);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sos-outbox-cli-'));
    db = join(dir, 'outbox.db');
    // The running agent's connection, held open for the whole test.
    agent = new SqliteOutboxStore({ path: db });
    agent.open();
    for (const a of [delivered, rejected, waiting]) agent.insert(a, T0 + 3000);
    agent.markSending(delivered.alertId, 'direct', T0 + 3000);
    agent.markDelivered(delivered.alertId, 'exec-42', T0 + 3100);
    agent.markSending(rejected.alertId, 'direct', T0 + 3000);
    agent.markRejected(rejected.alertId, { code: 'ERR_SOS_API_REJECTED', message: 'code -2: callflow "x" is missing required variables' }, T0 + 3100);
    agent.markSending(waiting.alertId, 'direct', T0 + 3000);
    agent.markRetry(waiting.alertId, Date.now() + 3_600_000, { code: 'ERR_SOS_API_TRANSIENT', message: 'HTTP 503' }, false, T0 + 3100);
  });
  afterEach(() => {
    agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every alert, oldest press first, while the agent holds the file', async () => {
    const r = await runCli(['outbox', 'list', '--db', db]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ALERT ID\s+STATE\s+PRESSED\s+ATTEMPTS\s+NEXT ATTEMPT\s+API ID\s+LAST ERROR$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      [delivered.alertId, 'delivered'],
      [rejected.alertId, 'rejected'],
      [waiting.alertId, 'queued'],
    ]);
    expect(lines[1]).toContain('exec-42');
    expect(lines[2]).toContain('ERR_SOS_API_REJECTED: code -2');
    const json = await runCli(['outbox', 'list', '--db', db, '--json']);
    expect((JSON.parse(json.stdout) as OutboxRecord[]).map((x) => x.state)).toEqual(['delivered', 'rejected', 'queued']);
  });

  it('shows held presses (waiting for a location, or in their cancel window) and cancelled ones; retry leaves them be', async () => {
    const held = { ...makeAlert(T0 + 4000), location: null };
    const cancelled = makeAlert(T0 + 5000);
    agent.hold(held, 'location', T0 + 4000);
    agent.hold(cancelled, 'cancel_window', T0 + 5000);
    agent.cancel(cancelled.alertId, 'person', T0 + 6000);
    const r = await runCli(['outbox', 'list', '--db', db]);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/));
    expect(rows.map((c) => [c[0], c[1], c[4]])).toEqual([
      [delivered.alertId, 'delivered', '-'],
      [rejected.alertId, 'rejected', '-'],
      [waiting.alertId, 'queued', expect.stringMatching(/^\d{4}-/)],
      [held.alertId, 'held', 'at-first-fix'],
      [cancelled.alertId, 'cancelled', 'never'],
    ]);
    const show = await runCli(['outbox', 'show', held.alertId, '--db', db]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('state:             held');
    expect(show.stdout).toContain('held for:          a first location (no GPS fix and no fallback yet)');
    expect(show.stdout).toContain('location:          none yet');
    const gone = await runCli(['outbox', 'show', cancelled.alertId, '--db', db, '--json']);
    expect(JSON.parse(gone.stdout)).toMatchObject({ state: 'cancelled', cancelReason: 'person', heldFor: 'cancel_window' });
    const retry = await runCli(['outbox', 'retry', held.alertId, '--db', db]);
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain('is held until a first location');
    expect((await runCli(['outbox', 'retry', cancelled.alertId, '--db', db])).stderr).toContain('was cancelled; it is never sent');
    expect(agent.get(held.alertId)?.state).toBe('held');
    expect(agent.get(cancelled.alertId)?.state).toBe('cancelled');
  });

  it('finds the file through the agent config', async () => {
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        'device: { id: dev-1 }',
        'caller: { full_name: Joe User, phone_number: "6615555555" }',
        'gps: { source: static, latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 }',
        `outbox: { path: ${JSON.stringify(db)} }`,
      ].join('\n'),
    );
    const r = await runCli(['outbox', 'show', waiting.alertId, '--config', config, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ alertId: waiting.alertId, state: 'queued', attempts: 1, alert: waiting });
    writeFileSync(config, 'device: { id: "bad id" }\n');
    const bad = await runCli(['outbox', 'list', '--config', config]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('device.id');
  });

  it('reads a file the agent closed cleanly (no WAL files left)', async () => {
    agent.close();
    const r = await runCli(['outbox', 'list', '--db', db, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(3);
    agent.open();
  });

  it('shows one alert in full by an unambiguous prefix', async () => {
    const r = await runCli(['outbox', 'show', rejected.alertId.slice(0, 23), '--db', db]);
    // The first 8 hex digits are the press time, shared by alerts of the same second: a longer prefix is unique.
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`alert id:          ${rejected.alertId}`);
    expect(r.stdout).toContain('last error:        ERR_SOS_API_REJECTED: code -2');
    expect(r.stdout).toContain('"full_name": "Joe User"');
    const missing = await runCli(['outbox', 'show', '0190b5c0-0000-7000-8000-000000000000', '--db', db]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no alert 0190b5c0-0000-7000-8000-000000000000');
  });

  it('retry makes a rejected or waiting alert due now, for the running agent to pick up', async () => {
    const before = Date.now();
    for (const a of [rejected, waiting]) {
      const r = await runCli(['outbox', 'retry', a.alertId, '--db', db]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('is due now');
    }
    const due = agent.due(Date.now(), 10).map((r) => r.alertId);
    expect(due).toEqual([rejected.alertId, waiting.alertId]);
    expect(agent.get(waiting.alertId)!.nextAttemptAt).toBeGreaterThanOrEqual(before);
    const again = await runCli(['outbox', 'retry', delivered.alertId, '--db', db]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('was delivered (API id exec-42)');
    expect(agent.get(delivered.alertId)!.state).toBe('delivered');
  });

  it('purges delivered alerts only, and only when told --delivered', async () => {
    const refused = await runCli(['outbox', 'purge', '--db', db]);
    expect(refused.code).toBe(2);
    expect(agent.list()).toHaveLength(3);
    const r = await runCli(['outbox', 'purge', '--delivered', '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('purged 1 delivered alert\n');
    expect(agent.list().map((x) => x.state)).toEqual(['rejected', 'queued']);
  });

  it('says what is wrong with the command line, and never creates a file it was pointed at', async () => {
    expect((await runCli(['outbox', 'list'])).code).toBe(2);
    expect((await runCli(['outbox', 'frobnicate', '--db', db])).code).toBe(2);
    expect((await runCli(['outbox', 'show', '--db', db])).code).toBe(2);
    const nowhere = join(dir, 'nowhere', 'outbox.db');
    const r = await runCli(['outbox', 'list', '--db', nowhere]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no outbox at ${nowhere}`);
    expect(existsSync(nowhere)).toBe(false);
  });
});
