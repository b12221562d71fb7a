import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Bridge } from '../../src/bridge/bridge.ts';
import { command as simulate } from '../../src/cli/simulate.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { startEmulator } from '../support/emulator.ts';
import { bridgeConfig, tempDir, writeRegistry } from '../unit/bridge/fixture.ts';

describe('sos-agent simulate', () => {
  let emulator: Emulator;
  let bridge: Bridge;
  let tmp: ReturnType<typeof tempDir>;

  beforeEach(async () => {
    tmp = tempDir();
    emulator = await startEmulator();
    const devices = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`sim-${String(i + 1).padStart(4, '0')}`, null]));
    const devicesFile = writeRegistry(tmp.dir, devices);
    bridge = new Bridge({ config: bridgeConfig({ dir: tmp.dir, apiUrl: emulator.url, devicesFile }), logger: silentLogger() });
    await bridge.start();
    await bridge.whenUp();
  });

  afterEach(async () => {
    await bridge.stop();
    await emulator.stop();
    tmp.cleanup();
  });

  async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await simulate(argv, { stdout: new PassThrough(), stderr, env: {}, stopSignal: new Promise(() => {}) });
    return { code, stderr: err };
  }

  it('runs a fleet whose presses all reach the API as test alerts, each exactly once', async () => {
    const { code, stderr } = await run(['--devices', '20', '--broker', bridge.brokerUrl, '--alerts', '60']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/devices \d+\/20 online · alerts 60\/60: 60 triggered, 0 rejected, 0 undelivered, 0 pending · p50 \d+ ms · p99 \d+ ms/);
    const triggers = emulator.triggers();
    expect(triggers).toHaveLength(60);
    // Simulated presses are always test alerts: only the test callflow is ever started.
    expect(new Set(triggers.map((t) => t.callflow))).toEqual(new Set(['company_test_v1']));
  });

  it('reports devices the bridge does not know as rejected (exit 3) and refuses bad arguments (exit 2)', async () => {
    const unknown = await run(['--devices', '2', '--broker', bridge.brokerUrl, '--alerts', '2', '--prefix', 'ghost']);
    expect(unknown.code).toBe(3);
    expect(emulator.triggers()).toHaveLength(0);
    expect((await run(['--devices', 'many', '--broker', bridge.brokerUrl])).code).toBe(2);
    expect((await run(['--devices', '2', '--broker', 'http://x'])).code).toBe(2);
  });
});
