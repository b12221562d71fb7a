import { createServer, connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { Bridge } from '../../src/bridge/bridge.ts';
import { RelayLink } from '../../src/relay/link.ts';
import { RelayRoute } from '../../src/relay/relay-route.ts';
import { encode, MAX_PAYLOAD_BYTES, statusTopic, toAlertMessage } from '../../src/relay/wire.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { ErrorCodes } from '../../src/shared/errors.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { startEmulator } from '../support/emulator.ts';
import { sampleAlert } from '../unit/relay/sample-alert.ts';
import { EmbeddedBroker } from '../../src/bridge/embedded-broker.ts';
import { Outbox, type OutboxEvent } from '../../src/outbox/outbox.ts';
import { MemoryOutboxStore } from '../../src/outbox/memory-store.ts';
import { freePort } from '../support/mosquitto.ts';
import {
  bridgeConfig,
  deliverThroughBridgeCrash,
  bridgeConfigInput,
  eventually,
  nextMessage,
  rawClient,
  relayConfig,
  spawnBridge,
  tempDir,
  writeBridgeConfig,
  writeRegistry,
} from '../unit/bridge/fixture.ts';

const FAST_RECONNECT = { baseMs: 50, capMs: 300 };

describe('relay through the bridge on its embedded broker (aedes)', () => {
  let emulator: Emulator;
  let bridge: Bridge;
  let tmp: ReturnType<typeof tempDir>;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeEach(async () => {
    tmp = tempDir();
    emulator = await startEmulator();
    const devicesFile = writeRegistry(tmp.dir, {
      'truck-042': null,
      'truck-043': { caller: { full_name: 'Registry Caller', phone_number: '2125550100' }, vehicle: { make: 'Volvo' } },
    });
    bridge = new Bridge({ config: bridgeConfig({ dir: tmp.dir, apiUrl: emulator.url, devicesFile }), logger: silentLogger() });
    await bridge.start();
    await bridge.whenUp();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await bridge.stop();
    await emulator.stop();
    tmp.cleanup();
  });

  async function device(deviceId: string): Promise<{ link: RelayLink; route: RelayRoute }> {
    const link = new RelayLink({ deviceId, relay: relayConfig(bridge.brokerUrl), clock: systemClock, logger: silentLogger(), reconnect: FAST_RECONNECT });
    await link.start();
    await link.whenUp();
    const route = new RelayRoute({ link, ackTimeoutMs: 5000, clock: systemClock, logger: silentLogger() });
    cleanups.push(async () => {
      route.stop();
      await link.stop();
    });
    return { link, route };
  }

  async function raw(clientId: string): Promise<MqttClient> {
    const c = await rawClient(bridge.brokerUrl, clientId);
    cleanups.push(() => c.endAsync(true));
    return c;
  }

  it('delivers an alert end to end: triggered once, with the seed\'s variables, and a resend is answered from memory', async () => {
    const { route } = await device('truck-042');
    const alert = sampleAlert();
    const result = await route.send(alert);
    const triggers = emulator.triggers();
    expect(triggers).toHaveLength(1);
    expect(result.id).toBe(triggers[0]!.id);
    expect(triggers[0]!.callflow).toBe('company_dataconnect_v1');
    expect(triggers[0]!.variables).toEqual({
      caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
      location: { latitude: '39.285270', longitude: '-76.612470', uncertainty: '7' },
      vehicle_info: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
    });

    // The outbox resends the same alertId after a lost answer: same flow id, no second 9-1-1 flow.
    await expect(route.send(alert)).resolves.toEqual(result);
    expect(emulator.triggers()).toHaveLength(1);

    const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^sos_bridge_alerts_received_total 2$/m);
    expect(metrics).toMatch(/^sos_bridge_alerts_triggered_total 1$/m);
    expect(metrics).toMatch(/^sos_bridge_alerts_duplicate_total 1$/m);
    expect(metrics).toMatch(/^sos_bridge_api_latency_seconds_count 1$/m);
    expect(metrics).toMatch(/^sos_bridge_connected_devices 1$/m);
    const health = await fetch(`${bridge.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, broker: 'connected', embeddedBroker: true });
  });

  it('a device says it is online (retained, with a health summary) and offline when it stops', async () => {
    const bridgeView = () => bridge.metrics.render().match(/^sos_bridge_connected_devices (\d+)$/m)?.[1];
    const { link } = await device('truck-042');
    await eventually(() => bridgeView() === '1', 5000, 'the bridge to see the device online');
    await link.stop();
    await eventually(() => bridgeView() === '0', 5000, 'the bridge to see the device offline');
  });

  it('a device whose connection dies (no DISCONNECT) is reported offline through its Last Will', async () => {
    // A TCP proxy between device and broker stands in for the network; cutting it is a dead cellular link.
    const target = new URL(bridge.brokerUrl);
    const sockets = new Set<Socket>();
    const proxy = createServer((inbound) => {
      const outbound = connect(Number(target.port), target.hostname);
      inbound.pipe(outbound).pipe(inbound);
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => proxy.close(() => r())));
    const link = new RelayLink({
      deviceId: 'truck-042',
      relay: relayConfig(`mqtt://127.0.0.1:${(proxy.address() as { port: number }).port}`),
      clock: systemClock,
      logger: silentLogger(),
      reconnect: { baseMs: 60_000, capMs: 60_000 },
    });
    cleanups.push(() => link.stop());
    await link.start();
    await link.whenUp();
    const online = () => bridge.metrics.render().match(/^sos_bridge_connected_devices (\d+)$/m)?.[1];
    await eventually(() => online() === '1', 5000, 'online');
    for (const s of sockets) s.destroy();
    await eventually(() => online() === '0', 5000, 'the Last Will');
    expect(link.connected).toBe(false);
  });

  it('fills caller and vehicle from the registry and sends test alerts only to the test callflow', async () => {
    const { route } = await device('truck-043');
    const base = sampleAlert({ deviceId: 'truck-043' });
    const { caller: _caller, ...withoutCaller } = toAlertMessage(base);
    void _caller;
    // The device sends no caller: the registry's is used; vehicle fields it lacks come from the registry.
    const alert = { ...base, ...withoutCaller, vehicle: { model: 'FH16' } } as typeof base;
    await route.send(alert);
    expect(emulator.triggers()[0]!.variables).toMatchObject({
      caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
      vehicle_info: { make: 'Volvo', model: 'FH16' },
    });

    const test = sampleAlert({ deviceId: 'truck-043', test: true, callflow: 'company_dataconnect_v1' });
    test.initiation = { ...test.initiation, gesture: 'test_hold', test: true };
    await route.send(test);
    expect(emulator.triggers()[1]!.callflow).toBe('company_test_v1');
  });

  it('rejects an alert from a device the bridge does not serve; the device keeps it queued (bridge setup, not the alert)', async () => {
    const { route } = await device('stranger-1');
    const error = await route.send(sampleAlert({ deviceId: 'stranger-1' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCodes.RELAY_REJECTED, retryable: true, retryAfterMs: 60_000, reason: 'unknown_device' });
    expect(emulator.triggers()).toHaveLength(0);
  });

  it('retries transient API failures itself and answers `rejected` when the API refuses the alert', async () => {
    const { route } = await device('truck-042');
    emulator.addFault({ target: 'trigger', status: 503, times: 2 });
    const result = await route.send(sampleAlert());
    expect(emulator.triggers()).toHaveLength(1);
    expect(result.id).toBe(emulator.triggers()[0]!.id);

    const error = await route.send(sampleAlert({ callflow: 'no_such_callflow' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCodes.RELAY_REJECTED, reason: 'api_rejected', retryable: false });
    const metrics = bridge.metrics.render();
    expect(metrics).toMatch(/^sos_bridge_alerts_rejected_total\{reason="api_rejected"\} 1$/m);
    expect(metrics).toMatch(/^sos_bridge_api_attempts_total\{outcome="transient"\} 2$/m);
  });

  it('answers malformed and oversized alerts with `rejected` where it can name them, and keeps serving', async () => {
    const client = await raw('truck-042');
    await client.subscribeAsync(statusTopic('truck-042'), { qos: 1 });
    const good = toAlertMessage(sampleAlert());

    const invalid = nextMessage(client, statusTopic('truck-042'), (s) => s.alertId === good.alertId);
    await client.publishAsync('sos/v1/truck-042/alert', Buffer.from(JSON.stringify({ ...good, location: { latitude: 'north' } })), { qos: 1 });
    expect(await invalid).toMatchObject({ state: 'rejected', reason: 'invalid_payload' });

    const big = toAlertMessage(sampleAlert());
    const tooLarge = nextMessage(client, statusTopic('truck-042'), (s) => s.alertId === big.alertId);
    const padded = { ...big, caller: { full_name: 'x'.repeat(MAX_PAYLOAD_BYTES), phone_number: '6615555555' } };
    await client.publishAsync('sos/v1/truck-042/alert', Buffer.from(JSON.stringify(padded)), { qos: 1 });
    expect(await tooLarge).toMatchObject({ state: 'rejected', reason: 'too_large' });

    await client.publishAsync('sos/v1/truck-042/alert', Buffer.from('\u0000garbage{'), { qos: 1 });

    // The same alertId, sent properly afterwards, is still served: a bad copy is not remembered.
    const triggered = nextMessage(client, statusTopic('truck-042'), (s) => s.alertId === good.alertId && s.state === 'triggered');
    await client.publishAsync('sos/v1/truck-042/alert', encode(good), { qos: 1 });
    expect(await triggered).toMatchObject({ state: 'triggered' });
    expect(emulator.triggers()).toHaveLength(1);
    expect(bridge.metrics.rejected.get({ reason: 'invalid_payload' })).toBe(2);
    expect(bridge.metrics.rejected.get({ reason: 'too_large' })).toBe(1);
  });

  it('the embedded broker refuses a device publishing under another device\'s id', async () => {
    const victim = await raw('truck-042');
    await victim.subscribeAsync(statusTopic('truck-042'), { qos: 1 });
    const attacker = await raw('truck-043');
    const closed = new Promise<void>((resolve) => attacker.once('close', () => resolve()));
    attacker.publish('sos/v1/truck-042/alert', encode(toAlertMessage(sampleAlert())), { qos: 1 });
    await closed;
    // And it may not read another device's status either.
    const spy = await raw('truck-044');
    await expect(spy.subscribeAsync(statusTopic('truck-042'), { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(emulator.triggers()).toHaveLength(0);
    expect(bridge.metrics.received.get()).toBe(0);
  });
});

describe('relay on aedes: broker and bridge failures mid-flight', () => {
  let emulator: Emulator;
  let tmp: ReturnType<typeof tempDir>;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  beforeEach(async () => {
    tmp = tempDir();
    emulator = await startEmulator();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator.stop();
    tmp.cleanup();
  });

  async function deviceWithOutbox(brokerUrl: string) {
    const link = new RelayLink({ deviceId: 'truck-042', relay: relayConfig(brokerUrl), clock: systemClock, logger: silentLogger(), reconnect: FAST_RECONNECT });
    const route = new RelayRoute({ link, ackTimeoutMs: 2000, clock: systemClock, logger: silentLogger() });
    const outbox = new Outbox({ store: new MemoryOutboxStore(), route, clock: systemClock, logger: silentLogger(), baseBackoffMs: 200, maxBackoffMs: 1000, alertMaxAgeMs: 3_600_000 });
    link.onUp(() => outbox.wayIsBack());
    await outbox.start();
    await link.start();
    cleanups.push(async () => {
      await outbox.stop();
      route.stop();
      await link.stop();
    });
    await link.whenUp();
    const settled = (alertId: string): Promise<OutboxEvent> =>
      new Promise((resolve) => {
        const off = outbox.onChange((e) => {
          if (e.alertId === alertId && (e.state === 'delivered' || e.state === 'rejected')) {
            off();
            resolve(e);
          }
        });
      });
    return { link, outbox, settled };
  }

  it('an alert in flight survives an aedes restart and is triggered once', async () => {
    const port = await freePort();
    const password = 'test-bridge-password';
    const startBroker = async (): Promise<EmbeddedBroker> => {
      const b = new EmbeddedBroker({ host: '127.0.0.1', port, logger: silentLogger(), bridgePassword: password });
      await b.start();
      return b;
    };
    let broker = await startBroker();
    cleanups.push(() => broker.stop());
    const devicesFile = writeRegistry(tmp.dir, { 'truck-042': null });
    const bridge = new Bridge({
      config: bridgeConfig({ dir: tmp.dir, apiUrl: emulator.url, devicesFile, brokerUrl: broker.url, username: 'sos-bridge-internal', password }),
      logger: silentLogger(),
    });
    await bridge.start();
    cleanups.push(() => bridge.stop());
    await bridge.whenUp();
    const d = await deviceWithOutbox(broker.url);

    emulator.addFault({ target: 'trigger', delayMs: 500 });
    const alert = sampleAlert();
    const done = d.settled(alert.alertId);
    await d.outbox.enqueue(alert);
    await eventually(() => emulator.triggers().length === 1, 5000, 'the trigger to reach the API');
    await broker.stop();
    await eventually(() => bridge.metrics.triggered.get() === 1, 5000, 'the API to answer');
    broker = await startBroker();
    const event = await done;
    expect(event.state).toBe('delivered');
    expect(event.apiId).toBe(emulator.triggers()[0]!.id);
    expect(emulator.triggers()).toHaveLength(1);
    expect(bridge.metrics.duplicates.get()).toBeGreaterThanOrEqual(1);
  });

  it('the single box (bridge + embedded broker) SIGKILLed mid-flight and restarted delivers the alert once', async () => {
    const port = await freePort();
    const devicesFile = writeRegistry(tmp.dir, { 'truck-042': null });
    const input = bridgeConfigInput({ dir: tmp.dir, apiUrl: emulator.url, devicesFile, leaseS: 1 });
    const configFile = writeBridgeConfig(tmp.dir, { ...input, broker: { ...input.broker, port } });
    const first = await spawnBridge(configFile);
    const d = await deviceWithOutbox(`mqtt://127.0.0.1:${port}`);
    // The API is down: the bridge holds the alert in flight, retrying, when it is killed.
    const { event, cleanup } = await deliverThroughBridgeCrash({ emulator, configFile, first, device: d, alert: sampleAlert() });
    cleanups.push(cleanup);
    expect(event.state).toBe('delivered');
    expect(emulator.triggers()).toHaveLength(1);
    expect(event.apiId).toBe(emulator.triggers()[0]!.id);
  });
});
