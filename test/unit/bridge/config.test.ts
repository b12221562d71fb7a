import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { bridgeConfigSchema, BRIDGE_ENV_SECRETS } from '../../../src/config/bridge-schema.ts';
import { applyEnvSecrets, parseConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/shared/errors.ts';
import { DeviceRegistry } from '../../../src/bridge/device-registry.ts';
import { REPO_ROOT } from '../../support/fixtures.ts';
import { runCli } from '../../support/cli.ts';
import { command as bridgeCommand } from '../../../src/cli/bridge.ts';
import { startEmulator } from '../../support/emulator.ts';
import type { Emulator } from '../../../src/emulator/server.ts';
import { bridgeConfigInput, tempDir, writeBridgeConfig, writeRegistry } from './fixture.ts';

function issues(raw: unknown): string[] {
  try {
    parseConfig(bridgeConfigSchema, raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => i.path);
    throw e;
  }
  return [];
}

describe('bridge configuration', () => {
  it('the example file is valid and means an embedded broker on loopback', () => {
    const raw = parse(readFileSync(join(REPO_ROOT, 'config/bridge.example.yaml'), 'utf8')) as unknown;
    const cfg = parseConfig(bridgeConfigSchema, applyEnvSecrets(raw, { SOS_API_CLIENT_SECRET: 's3cret' }, BRIDGE_ENV_SECRETS));
    expect(cfg.broker.url).toBeNull();
    expect(cfg.broker.host).toBe('127.0.0.1');
    expect(cfg.api.base_url).toBe('https://api-sandbox.rapidsos.com');
    expect(cfg.api.client_secret).toBe('s3cret');
  });

  it('names every wrong field with its path', () => {
    expect(
      issues({
        broker: { url: 'http://broker:1883', port: 70000, shared_group: 'x' },
        api: { base_url: 'http://api.example.com' },
        devices: {},
        dedupe: { lease_s: -1 },
        callflows: { f: { variables: { a: '{{no.such}}' } } },
      }).sort(),
    ).toEqual(
      [
        'api.base_url',
        'api.client_id',
        'api.client_secret',
        'broker.port',
        'broker.shared_group',
        'broker.url',
        'callflows.f.variables.a',
        'dedupe.lease_s',
        'devices.file',
      ].sort(),
    );
  });

  it('a device registry with a bad entry is refused, naming the device and field', async () => {
    const tmp = tempDir();
    try {
      const file = writeRegistry(tmp.dir, { 'truck-042': { caller: { full_name: 'Joe', phone_number: '123' } }, 'bad id!': null } as never);
      const error = await DeviceRegistry.load(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      const paths = (error as ConfigError).issues.map((i) => i.path);
      expect(paths).toContain('truck-042.caller.phone_number');
      expect(paths.some((p) => p.startsWith('bad id!'))).toBe(true);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('sos-agent bridge', () => {
  let tmp: ReturnType<typeof tempDir>;
  let emulator: Emulator;

  beforeEach(async () => {
    tmp = tempDir();
    emulator = await startEmulator();
  });

  afterEach(async () => {
    await emulator.stop();
    tmp.cleanup();
  });

  it('exits 2 naming the wrong fields of a bad config, and 2 without --config', async () => {
    const file = writeBridgeConfig(tmp.dir, { broker: { port: 'x' }, api: {} } as never);
    const bad = await runCli(['bridge', '--config', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/broker\.port/);
    expect(bad.stderr).toMatch(/api\.client_id/);
    expect(bad.stderr).toMatch(/devices/);
    expect((await runCli(['bridge'])).code).toBe(2);
  });

  it('runs until asked to stop, then stops cleanly with 0', async () => {
    const devicesFile = writeRegistry(tmp.dir, { 'truck-042': null });
    const file = writeBridgeConfig(tmp.dir, bridgeConfigInput({ dir: tmp.dir, apiUrl: emulator.url, devicesFile }));
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const ready = new Promise<void>((resolve) =>
      stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('bridge ready')) resolve();
      }),
    );
    let stop: (s: NodeJS.Signals) => void = () => undefined;
    const run = bridgeCommand(['--config', file], { stdout, stderr, env: {}, stopSignal: new Promise((r) => (stop = r)) });
    await ready;
    expect(err).toMatch(/bridge ready: broker mqtt:\/\/127\.0\.0\.1:\d+, health http:\/\/127\.0\.0\.1:\d+\/healthz/);
    stop('SIGTERM');
    expect(await run).toBe(0);
    // No secret is ever printed, logs included.
    expect(out + err).not.toContain('test-secret');
  });
});
