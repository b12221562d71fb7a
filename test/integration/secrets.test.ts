import { Writable } from 'node:stream';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/app/agent.ts';
import { Bridge } from '../../src/bridge/bridge.ts';
import { EmbeddedBroker } from '../../src/bridge/embedded-broker.ts';
import { pressSteps, ScriptedButtonSource } from '../../src/button/scripted.ts';
import { agentConfigSchema } from '../../src/config/agent-schema.ts';
import { bridgeConfigSchema } from '../../src/config/bridge-schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { agentConfig } from '../support/agent-config.ts';
import { startEmulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/emulator.ts';
import { rawClient, tempDir, writeRegistry } from '../unit/bridge/fixture.ts';

/**
 * Invariant 5: client secrets, tokens and MQTT passwords never reach a log line or an MQTT payload. Both halves
 * run at trace level (everything they can log) through a real alert over the relay, with a fallback to direct.
 */
describe('secrets stay secret (agent + bridge at trace level, one relayed alert)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('no log line and no MQTT payload carries the API secret, a token, or the MQTT password', async () => {
    const emulator: Emulator = await startEmulator();
    cleanups.push(() => emulator.stop());
    let logs = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ level: 'trace', destination: sink });
    const { dir, cleanup } = tempDir();
    cleanups.push(async () => cleanup());
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, bridgePassword: 'bridge-pass-Kx72' });
    await broker.start();
    cleanups.push(() => broker.stop());
    const bridge = new Bridge({
      config: parseConfig(bridgeConfigSchema, {
        broker: { url: broker.url, ...broker.bridgeCredentials, client_id: 'bridge-1', share_group: null },
        api: { base_url: emulator.url, client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET },
        devices: { file: writeRegistry(dir, { 'truck-042': null }) },
        dedupe: { path: `${dir}/bridge.db` },
        http: { port: null },
      }),
      logger,
    });
    await bridge.start();
    cleanups.push(() => bridge.stop());
    await bridge.whenUp();

    const payloads: string[] = [];
    const tap: MqttClient = await rawClient(broker.url, 'tap', broker.bridgeCredentials);
    cleanups.push(() => tap.endAsync());
    tap.on('message', (_t, p: Buffer) => payloads.push(p.toString()));
    await tap.subscribeAsync('sos/#', { qos: 1 });

    const mqttPassword = 'mqtt-pass-Zq81';
    const config = parseConfig(
      agentConfigSchema,
      agentConfig(emulator.url, { route: 'relay_then_direct', relay: { broker_url: broker.url, username: 'truck-042', password: mqttPassword, ack_timeout_s: 5 } }),
    );
    const agent = new Agent({ config, logger, clock: systemClock, button: new ScriptedButtonSource({ clock: systemClock, steps: pressSteps(config.press.hold_ms + 100) }) });
    const delivered = new Promise<void>((resolve) => agent.onAlert((e) => e.state === 'delivered' && resolve()));
    await agent.start();
    cleanups.push(() => agent.stop());
    await delivered;
    expect(emulator.triggers()).toHaveLength(1);

    const tokens = emulator.issuedTokens();
    expect(tokens.length).toBeGreaterThan(0);
    const secrets = [TEST_CLIENT_SECRET, mqttPassword, 'bridge-pass-Kx72', ...tokens];
    expect(logs.length).toBeGreaterThan(1000);
    // alert, accepted, triggered, presence: the tap saw the whole conversation.
    expect(payloads.length).toBeGreaterThanOrEqual(4);
    for (const secret of secrets) {
      expect(logs.includes(secret), `a log line contains ${secret.slice(0, 3)}…`).toBe(false);
      for (const p of payloads) expect(p.includes(secret), `an MQTT payload contains ${secret.slice(0, 3)}…`).toBe(false);
    }
  });
});
