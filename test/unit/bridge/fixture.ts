import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import mqtt, { type MqttClient } from 'mqtt';
import { bridgeConfigSchema, type BridgeConfig, type BridgeConfigInput } from '../../../src/config/bridge-schema.ts';
import { parseConfig } from '../../../src/config/load.ts';
import type { DeviceEntry } from '../../../src/bridge/device-registry.ts';
import type { RelayConfig } from '../../../src/config/agent-schema.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../../support/emulator.ts';

/** A fresh temporary directory and a function that removes it. */
export function tempDir(prefix = 'sos-bridge-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeRegistry(dir: string, devices: Record<string, DeviceEntry | null>): string {
  const file = join(dir, 'devices.yaml');
  writeFileSync(file, stringify(devices));
  return file;
}

export interface BridgeConfigOptions {
  dir: string;
  apiUrl: string;
  devicesFile: string;
  /** null: embedded broker on a free port. */
  brokerUrl?: string | null;
  shareGroup?: string | null;
  clientId?: string;
  username?: string;
  password?: string;
  leaseS?: number;
  giveUpS?: number;
  dedupePath?: string;
  retryBaseMs?: number;
  logLevel?: 'silent' | 'info' | 'debug' | 'warn';
  callflows?: Record<string, { variables: Record<string, unknown> }>;
}

/** A complete, validated bridge configuration for tests: loopback only, free ports, fast retries. */
export function bridgeConfig(o: BridgeConfigOptions): BridgeConfig {
  return parseConfig(bridgeConfigSchema, bridgeConfigInput(o));
}

/** The same, as a config file holds it. */
export function bridgeConfigInput(o: BridgeConfigOptions): BridgeConfigInput {
  return {
    broker: {
      url: o.brokerUrl ?? null,
      port: 0,
      share_group: o.shareGroup === undefined ? null : o.shareGroup,
      ...(o.clientId ? { client_id: o.clientId } : {}),
      ...(o.username ? { username: o.username } : {}),
      ...(o.password ? { password: o.password } : {}),
      keepalive_s: 5,
    },
    api: {
      base_url: o.apiUrl,
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
      connect_timeout_ms: 1000,
      response_timeout_ms: 5000,
      retry: { base_ms: o.retryBaseMs ?? 50, cap_ms: 500, give_up_s: o.giveUpS ?? 30 },
    },
    callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
    devices: { file: o.devicesFile },
    dedupe: { path: o.dedupePath ?? join(o.dir, 'bridge.db'), lease_s: o.leaseS ?? 2 },
    http: { host: '127.0.0.1', port: 0 },
    log: { level: o.logLevel ?? 'silent' },
    ...(o.callflows ? { callflows: o.callflows } : {}),
  };
}

export function relayConfig(brokerUrl: string, extra: Partial<RelayConfig> = {}): RelayConfig {
  return { broker_url: brokerUrl, ca_file: null, cert_file: null, key_file: null, ack_timeout_s: 5, keepalive_s: 5, ...extra };
}

/** A plain MQTT client, for playing a misbehaving device. */
export async function rawClient(url: string, clientId: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, protocolVersion: 4, reconnectPeriod: 0, ...extra });
}

/** Resolves with the first message on `topic` that satisfies `match`. */
export function nextMessage(client: MqttClient, topic: string, match: (payload: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        return;
      }
      if (!match(parsed)) return;
      client.off('message', onMessage);
      resolve(parsed);
    };
    client.on('message', onMessage);
  });
}

/** Polls `check` until it is true (for state held by another process, where no event reaches the test). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs `sos-agent bridge --config FILE` as a child process (so it can be SIGKILLed), resolving once it is subscribed. */
export async function spawnBridge(
  configFile: string,
): Promise<{ child: import('node:child_process').ChildProcess; output: () => string; metrics: () => Promise<string> }> {
  const { spawn } = await import('node:child_process');
  const { REPO_ROOT } = await import('../../support/fixtures.ts');
  const bin = join(REPO_ROOT, 'node_modules/.bin');
  const child = spawn(join(bin, 'node'), ['--disable-warning=ExperimentalWarning', join(REPO_ROOT, 'bin/sos-agent.js'), 'bridge', '--config', configFile], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bridge did not get ready:\n${out}`)), 20_000);
    const check = (): void => {
      if (out.includes('bridge ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bridge exited with ${code}:\n${out}`));
    });
  });
  const health = /health (http:\/\/[^/\s]+)\/healthz/.exec(out)?.[1] ?? '';
  return { child, output: () => out, metrics: async () => (await fetch(`${health}/metrics`)).text() };
}

/** A counter's value in Prometheus text (labels as written, e.g. `{reason="x"}`). */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"\\]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** SIGTERM and wait for the exit. */
export async function stopChild(child: import('node:child_process').ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await gone;
}

/** Writes a bridge config (as the CLI reads it) to `dir/name`. */
export function writeBridgeConfig(dir: string, input: BridgeConfigInput, name = 'bridge.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(input));
  return file;
}

/**
 * The bridge is SIGKILLed while it holds an alert in flight (the API down, the bridge retrying), then started
 * again on the same config; resolves with the device's final outbox event and the second bridge (stopped by
 * the returned cleanup). Shared by the aedes and the Mosquitto suites.
 */
export async function deliverThroughBridgeCrash(o: {
  emulator: import('../../../src/emulator/server.ts').Emulator;
  configFile: string;
  first: Awaited<ReturnType<typeof spawnBridge>>;
  device: { outbox: { enqueue(a: import('../../../src/incident/types.ts').AlertSnapshot): Promise<unknown> }; settled(alertId: string): Promise<import('../../../src/outbox/outbox.ts').OutboxEvent> };
  alert: import('../../../src/incident/types.ts').AlertSnapshot;
}): Promise<{ event: import('../../../src/outbox/outbox.ts').OutboxEvent; second: Awaited<ReturnType<typeof spawnBridge>>; cleanup: () => Promise<void> }> {
  const { emulator, configFile, first, device, alert } = o;
  emulator.addFault({ target: 'trigger', status: 503, times: 1_000_000 });
  const done = device.settled(alert.alertId);
  await device.outbox.enqueue(alert);
  await eventually(() => emulator.stats().triggerRequests >= 2, 5000, 'the bridge to retry the API');
  const exited = new Promise((resolve) => first.child.once('exit', resolve));
  first.child.kill('SIGKILL');
  await exited;
  emulator.clearFaults();
  const second = await spawnBridge(configFile);
  const cleanup = async (): Promise<void> => {
    const gone = new Promise((resolve) => second.child.once('exit', resolve));
    second.child.kill('SIGTERM');
    await gone;
  };
  return { event: await done, second, cleanup };
}
