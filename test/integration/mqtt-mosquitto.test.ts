import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Bridge } from '../../src/bridge/bridge.ts';
import { RelayLink } from '../../src/relay/link.ts';
import { RelayRoute } from '../../src/relay/relay-route.ts';
import { FallbackRoute } from '../../src/relay/fallback-route.ts';
import { DirectRoute } from '../../src/incident/direct-route.ts';
import { EmergencyApiClient } from '../../src/api/client.ts';
import { Outbox, type OutboxEvent } from '../../src/outbox/outbox.ts';
import { MemoryOutboxStore } from '../../src/outbox/memory-store.ts';
import { encode, statusTopic, toAlertMessage } from '../../src/relay/wire.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import type { AlertRoute, AlertSnapshot } from '../../src/incident/types.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { startEmulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/emulator.ts';
import { haveTool } from '../support/tools.ts';
import { REPO_ROOT } from '../support/fixtures.ts';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto.ts';
import { sampleAlert } from '../unit/relay/sample-alert.ts';
import {
  bridgeConfig,
  deliverThroughBridgeCrash,
  bridgeConfigInput,
  eventually,
  nextMessage,
  rawClient,
  relayConfig,
  metricValue,
  spawnBridge,
  stopChild,
  tempDir,
  writeBridgeConfig,
  writeRegistry,
} from '../unit/bridge/fixture.ts';

const FAST_RECONNECT = { baseMs: 50, capMs: 300 };
const DEVICES = { 'truck-042': null, 'truck-043': null };
const hasMosquitto = haveTool('mosquitto');

interface Device {
  link: RelayLink;
  route: RelayRoute;
  outbox: Outbox;
  /** Resolves with the outbox's final event for this alert (delivered or rejected). */
  settled(alertId: string): Promise<OutboxEvent>;
}

describe.skipIf(!hasMosquitto)('relay through a real Mosquitto', () => {
  let emulator: Emulator;
  let tmp: ReturnType<typeof tempDir>;
  let devicesFile: string;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  beforeEach(async () => {
    tmp = tempDir();
    emulator = await startEmulator();
    devicesFile = writeRegistry(tmp.dir, DEVICES);
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator.stop();
    tmp.cleanup();
  });

  async function mosquitto(options: Parameters<typeof startMosquitto>[0] = {}): Promise<RunningMosquitto> {
    const m = await startMosquitto(options);
    cleanups.push(() => m.dispose());
    return m;
  }

  async function bridge(brokerUrl: string, extra: Partial<Parameters<typeof bridgeConfig>[0]> = {}): Promise<Bridge> {
    const b = new Bridge({ config: bridgeConfig({ dir: tmp.dir, apiUrl: emulator.url, devicesFile, brokerUrl, shareGroup: 'bridges', ...extra }), logger: silentLogger() });
    await b.start();
    cleanups.push(() => b.stop());
    await b.whenUp();
    return b;
  }

  /** A device as the app builds it: link, relay route (optionally behind a fallback), and a real outbox. */
  async function device(deviceId: string, brokerUrl: string, options: { password?: string; ackTimeoutMs?: number; wrap?: (relay: RelayRoute) => AlertRoute } = {}): Promise<Device> {
    const link = new RelayLink({
      deviceId,
      relay: relayConfig(brokerUrl, options.password ? { username: deviceId, password: options.password } : {}),
      clock: systemClock,
      logger: silentLogger(),
      reconnect: FAST_RECONNECT,
    });
    const route = new RelayRoute({ link, ackTimeoutMs: options.ackTimeoutMs ?? 2000, clock: systemClock, logger: silentLogger() });
    const outbox = new Outbox({
      store: new MemoryOutboxStore(),
      route: options.wrap ? options.wrap(route) : route,
      clock: systemClock,
      logger: silentLogger(),
      baseBackoffMs: 200,
      maxBackoffMs: 1000,
      alertMaxAgeMs: 3_600_000,
    });
    link.onUp(() => outbox.wayIsBack());
    await outbox.start();
    await link.start();
    cleanups.push(async () => {
      await outbox.stop();
      route.stop();
      await link.stop();
    });
    const settled = (alertId: string): Promise<OutboxEvent> =>
      new Promise((resolve) => {
        const off = outbox.onChange((e) => {
          if (e.alertId === alertId && (e.state === 'delivered' || e.state === 'rejected')) {
            off();
            resolve(e);
          }
        });
      });
    return { link, route, outbox, settled };
  }

  it('round trip with per-device logins and the example ACL', async () => {
    const acl = readFileSync(join(REPO_ROOT, 'config/mosquitto.acl.example'), 'utf8');
    const broker = await mosquitto({ passwords: { 'sos-bridge': 'bridge-pw', 'truck-042': 'pw-42', 'truck-043': 'pw-43' }, acl });
    await bridge(broker.url, { username: 'sos-bridge', password: 'bridge-pw', clientId: 'sos-bridge' });
    const d = await device('truck-042', broker.url, { password: 'pw-42' });
    await d.link.whenUp();
    const alert = sampleAlert();
    const done = d.settled(alert.alertId);
    await d.outbox.enqueue(alert);
    const event = await done;
    expect(event.state).toBe('delivered');
    expect(emulator.triggers()).toHaveLength(1);
    expect(event.apiId).toBe(emulator.triggers()[0]!.id);
  });

  it('the ACL refuses a device publishing under another device\'s id; with the ACL off, the bridge rejects it', async () => {
    const acl = readFileSync(join(REPO_ROOT, 'config/mosquitto.acl.example'), 'utf8');
    const secured = await mosquitto({ passwords: { 'sos-bridge': 'bridge-pw', 'truck-042': 'pw-42', 'truck-043': 'pw-43' }, acl });
    const b1 = await bridge(secured.url, { username: 'sos-bridge', password: 'bridge-pw', clientId: 'sos-bridge' });
    const attacker = await rawClient(secured.url, 'truck-043', { username: 'truck-043', password: 'pw-43' });
    cleanups.push(() => attacker.endAsync(true));
    // MQTT 3.1.1 has no way to say "refused" to a publish: Mosquitto acknowledges it and drops it.
    await attacker.publishAsync('sos/v1/truck-042/alert', encode(toAlertMessage(sampleAlert())), { qos: 1 });
    await attacker.publishAsync('sos/v1/truck-042/alert', encode(toAlertMessage(sampleAlert({ deviceId: 'truck-043' }))), { qos: 1 });
    // Its own alert still goes through, which shows the two above were dropped at the broker, not lost later.
    await attacker.subscribeAsync(statusTopic('truck-043'), { qos: 1 });
    const own = toAlertMessage(sampleAlert({ deviceId: 'truck-043' }));
    const answered = nextMessage(attacker, statusTopic('truck-043'), (s) => s.alertId === own.alertId && s.state === 'triggered');
    await attacker.publishAsync('sos/v1/truck-043/alert', encode(own), { qos: 1 });
    await answered;
    expect(b1.metrics.received.get()).toBe(1);
    expect(emulator.triggers()).toHaveLength(1);

    const open = await mosquitto({ allowAnonymous: true });
    const b2 = await bridge(open.url, { clientId: 'sos-bridge-open', dedupePath: join(tmp.dir, 'open.db') });
    const spoofer = await rawClient(open.url, 'truck-043');
    cleanups.push(() => spoofer.endAsync(true));
    await spoofer.subscribeAsync(statusTopic('truck-042'), { qos: 1 });
    const forged = toAlertMessage(sampleAlert({ deviceId: 'truck-043' }));
    const rejected = nextMessage(spoofer, statusTopic('truck-042'), (s) => s.alertId === forged.alertId);
    await spoofer.publishAsync('sos/v1/truck-042/alert', encode(forged), { qos: 1 });
    expect(await rejected).toMatchObject({ state: 'rejected', reason: 'device_mismatch' });
    expect(b2.metrics.rejected.get({ reason: 'device_mismatch' })).toBe(1);
    expect(emulator.triggers()).toHaveLength(1);
  });

  it('an alert in flight survives a broker crash and restart and is triggered once', async () => {
    const broker = await mosquitto();
    const b = await bridge(broker.url, { clientId: 'sos-bridge-a' });
    const d = await device('truck-042', broker.url);
    await d.link.whenUp();
    // The API answers slowly: the flow starts at once, the answer comes after the broker has gone away.
    emulator.addFault({ target: 'trigger', delayMs: 800 });
    const alert = sampleAlert();
    const done = d.settled(alert.alertId);
    await d.outbox.enqueue(alert);
    await eventually(() => emulator.triggers().length === 1, 5000, 'the trigger to reach the API');
    await broker.kill();
    // The API's answer arrives while the broker is gone: the bridge's `triggered` has nowhere to go.
    await eventually(() => b.metrics.triggered.get() === 1, 5000, 'the API to answer');
    await broker.start();
    const event = await done;
    expect(event.state).toBe('delivered');
    expect(emulator.triggers()).toHaveLength(1);
    expect(event.apiId).toBe(emulator.triggers()[0]!.id);
    expect(b.metrics.triggered.get()).toBe(1);
    // The `triggered` sent while the broker was down was lost; the resend was answered from the dedupe store.
    expect(b.metrics.duplicates.get()).toBeGreaterThanOrEqual(1);
  });

  it('an alert in flight when the bridge is SIGKILLed is delivered once by the restarted bridge', async () => {
    const broker = await mosquitto();
    const configFile = writeBridgeConfig(
      tmp.dir,
      bridgeConfigInput({ dir: tmp.dir, apiUrl: emulator.url, devicesFile, brokerUrl: broker.url, shareGroup: 'bridges', clientId: 'sos-bridge-k', leaseS: 1 }),
    );
    const first = await spawnBridge(configFile);
    const d = await device('truck-042', broker.url);
    await d.link.whenUp();
    // The API is down: the bridge holds the alert in flight, retrying, when it is killed.
    const { event, second, cleanup } = await deliverThroughBridgeCrash({ emulator, configFile, first, device: d, alert: sampleAlert() });
    cleanups.push(cleanup);
    expect(event.state).toBe('delivered');
    expect(emulator.triggers()).toHaveLength(1);
    expect(event.apiId).toBe(emulator.triggers()[0]!.id);
    // The restarted bridge found the alert held by a dead instance and took it over.
    const health = /health (http:\/\/[^/\s]+)\/healthz/.exec(second.output())?.[1];
    const metrics = await (await fetch(`${health}/metrics`)).text();
    expect(metrics).toMatch(/^sos_bridge_alerts_taken_over_total 1$/m);
  });

  it('two bridge processes on one shared subscription and one dedupe file trigger each of 1,000 alerts exactly once, resends included', async () => {
    const broker = await mosquitto();
    const callflows = {
      company_dataconnect_v1: {
        variables: {
          alert_id: '{{alert.id}}',
          caller_info: { full_name: '{{caller.full_name}}', phone_number: '{{caller.phone_number}}' },
          location: { latitude: '{{location.latitude}}', longitude: '{{location.longitude}}', uncertainty: '{{location.uncertainty}}' },
        },
      },
    };
    const bridges: Awaited<ReturnType<typeof spawnBridge>>[] = [];
    for (const id of ['sos-bridge-1', 'sos-bridge-2']) {
      const file = writeBridgeConfig(
        tmp.dir,
        bridgeConfigInput({ dir: tmp.dir, apiUrl: emulator.url, devicesFile, brokerUrl: broker.url, shareGroup: 'bridges', clientId: id, callflows }),
        `${id}.yaml`,
      );
      const b = await spawnBridge(file);
      cleanups.push(() => stopChild(b.child));
      bridges.push(b);
    }
    const publisher = await rawClient(broker.url, 'truck-042');
    cleanups.push(() => publisher.endAsync(true));
    await publisher.subscribeAsync(statusTopic('truck-042'), { qos: 1 });
    const triggered = new Set<string>();
    publisher.on('message', (_t, payload) => {
      const s = JSON.parse(payload.toString()) as { alertId: string; state: string };
      if (s.state === 'triggered') triggered.add(s.alertId);
    });
    const alerts: AlertSnapshot[] = Array.from({ length: 1000 }, () => sampleAlert());
    const total = async (name: string): Promise<number> => {
      let sum = 0;
      for (const b of bridges) sum += metricValue(await b.metrics(), name);
      return sum;
    };
    // Every alert twice, as devices resend after a lost answer; the copies may land on either bridge.
    await Promise.all(alerts.map((alert) => publisher.publishAsync('sos/v1/truck-042/alert', encode(toAlertMessage(alert)), { qos: 1 })));
    await eventually(async () => (await total('sos_bridge_alerts_received_total')) >= 1000, 20_000, 'first copies');
    await Promise.all(alerts.map((alert) => publisher.publishAsync('sos/v1/truck-042/alert', encode(toAlertMessage(alert)), { qos: 1 })));
    await eventually(() => triggered.size === 1000, 30_000, 'every alert triggered');
    await eventually(async () => (await total('sos_bridge_alerts_received_total')) === 2000, 10_000, 'second copies');
    const ids = emulator.triggers().map((t) => (t.variables as { alert_id: string }).alert_id);
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);
    const perBridge = await Promise.all(bridges.map(async (b) => metricValue(await b.metrics(), 'sos_bridge_alerts_triggered_total')));
    // Both bridges took a share of the work, and together triggered each alert once.
    expect(perBridge.every((n) => n > 0)).toBe(true);
    expect(perBridge[0]! + perBridge[1]!).toBe(1000);
    expect(await total('sos_bridge_alerts_duplicate_total')).toBe(1000);
  });

  it('relay_then_direct goes direct when the bridge is down, and when the broker is down', async () => {
    const broker = await mosquitto();
    const client = new EmergencyApiClient({
      baseUrl: emulator.url,
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      connectTimeoutMs: 1000,
      responseTimeoutMs: 5000,
      tokenMarginMs: 60_000,
      clock: systemClock,
      logger: silentLogger(),
    });
    await client.start();
    cleanups.push(() => client.stop());
    const direct = new DirectRoute(client, {});
    // No bridge at all: the relay times out (1 s here) and the alert goes direct.
    const d = await device('truck-042', broker.url, { ackTimeoutMs: 1000, wrap: (relay) => new FallbackRoute({ primary: relay, secondary: direct, logger: silentLogger() }) });
    await d.link.whenUp();
    const first = sampleAlert();
    const done1 = d.settled(first.alertId);
    await d.outbox.enqueue(first);
    expect((await done1).state).toBe('delivered');
    expect(emulator.triggers()).toHaveLength(1);

    // Broker gone: no waiting for an ack timeout at all.
    await broker.stop();
    await eventually(() => !d.link.connected, 5000, 'the link to notice');
    const second = sampleAlert();
    const done2 = d.settled(second.alertId);
    const t0 = Date.now();
    await d.outbox.enqueue(second);
    expect((await done2).state).toBe('delivered');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(emulator.triggers()).toHaveLength(2);
  });
});
