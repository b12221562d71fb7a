import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/app/agent.ts';
import { EmbeddedBroker } from '../../src/bridge/embedded-broker.ts';
import { ScriptedButtonSource } from '../../src/button/scripted.ts';
import { agentConfigSchema } from '../../src/config/agent-schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import { presenceTopic } from '../../src/relay/wire.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { agentConfig } from '../support/agent-config.ts';
import { nextMessage, rawClient } from '../unit/bridge/fixture.ts';

/**
 * Supervision while armed: the moment a press would not get through, the person's LED and the device's retained
 * MQTT presence both say "degraded", naming the failing check; when it recovers, both say so again.
 */
describe('agent supervision: degraded on the LED and in the MQTT presence', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('no fix and no fallback: degraded (gps_fix) on the LED and in the presence; healthy again with the first fix', async () => {
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: silentLogger(), bridgePassword: 'pw' });
    await broker.start();
    cleanups.push(() => broker.stop());
    const watcher: MqttClient = await rawClient(broker.url, 'watcher', broker.bridgeCredentials);
    cleanups.push(() => watcher.endAsync());
    await watcher.subscribeAsync(presenceTopic('truck-042'), { qos: 1 });

    // A tiny gpsd: answers ?WATCH with one TPV fix per connection, on demand.
    const sockets = new Set<import('node:net').Socket>();
    const gpsd: Server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => gpsd.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          gpsd.close(() => r());
        }),
    );
    const port = (gpsd.address() as import('node:net').AddressInfo).port;
    const sendFix = () => {
      const tpv = { class: 'TPV', mode: 3, time: new Date().toISOString(), lat: 39.28527, lon: -76.61247, alt: 10, eph: 6 };
      for (const s of sockets) s.write(`${JSON.stringify(tpv)}\n`);
    };

    const dir = mkdtempSync(join(tmpdir(), 'sos-presence-'));
    mkdirSync(join(dir, 'leds', 'sos'), { recursive: true });
    for (const f of ['brightness', 'trigger', 'delay_on', 'delay_off']) writeFileSync(join(dir, 'leds', 'sos', f), '');
    const config = parseConfig(
      agentConfigSchema,
      agentConfig('http://127.0.0.1:9', {
        api: {},
        route: 'relay',
        relay: { broker_url: broker.url, ack_timeout_s: 5 },
        gps: { source: 'gpsd', host: '127.0.0.1', port, max_age_s: 1 },
        feedback: { leds_root: join(dir, 'leds'), led: 'sos', terminal: false },
      }),
    );
    const agent = new Agent({ config, logger: silentLogger(), clock: systemClock, button: new ScriptedButtonSource({ clock: systemClock }) });
    const degraded = nextMessage(watcher, presenceTopic('truck-042'), (p) => (p.health as { status?: string } | undefined)?.status === 'degraded');
    await agent.start();
    cleanups.push(() => agent.stop());

    // No fix and no fallback: an alert would have to wait for a location.
    const d = await degraded;
    expect((d.health as { failing: string[] }).failing).toContain('gps_fix');
    expect(agent.shown()).toBe('degraded');
    expect(readFileSync(join(dir, 'leds', 'sos', 'delay_on'), 'utf8').trim()).toBe('1000');

    const healthy = nextMessage(watcher, presenceTopic('truck-042'), (p) => (p.health as { status?: string } | undefined)?.status === 'healthy');
    sendFix();
    const h = await healthy;
    expect((h.health as { failing: string[] }).failing).toEqual([]);
    expect(agent.shown()).toBe('armed');
  });
});
