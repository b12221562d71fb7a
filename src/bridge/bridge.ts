import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock, type TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';
import { VERSION } from '../shared/version.ts';
import type { BridgeConfig } from '../config/bridge-schema.ts';
import { EmergencyApiClient } from '../api/client.ts';
import { MqttSession } from '../relay/session.ts';
import { ALL_PRESENCE, alertSubscription, encode, statusTopic } from '../relay/wire.ts';
import { AlertProcessor, type ApiTrigger } from './alert-processor.ts';
import { DedupeStore } from './dedupe-store.ts';
import { DeviceRegistry } from './device-registry.ts';
import { EmbeddedBroker } from './embedded-broker.ts';
import { BridgeHttpServer, type HealthReport } from './http-server.ts';
import { BridgeMetrics } from './metrics.ts';
import { PresenceTracker } from './presence-tracker.ts';

export interface BridgeOptions {
  config: BridgeConfig;
  logger: Logger;
  clock?: Clock | undefined;
  /** Instead of reading config.devices.file (tests, benchmarks). */
  registry?: DeviceRegistry | undefined;
  /** Instead of an EmergencyApiClient built from config.api (unit tests). */
  api?: ApiTrigger | undefined;
  random?: (() => number) | undefined;
}

const PRUNE_EVERY_MS = 3_600_000;
/**
 * Least time between two dedupe commits: under load each commit carries every alert that arrived or was answered
 * meanwhile (at most 200 commits a second), at the price of at most this much latency per commit an alert waits for.
 */
const COMMIT_GAP_MS = 5;
/** How long, beyond the API's response timeout, a stopping bridge waits for trigger requests already at the API. */
const STOP_GRACE_MARGIN_MS = 2_000;

function defaultClientId(): string {
  return `sos-bridge-${hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 100)}`;
}

/**
 * The cloud half of the relay: takes alerts from devices over MQTT, triggers each one once with the API
 * credentials only it holds, and answers every device on its status topic. With no broker URL it runs its
 * own broker (aedes), the zero-setup single box; otherwise it joins any broker, several bridges sharing
 * the alerts through a shared subscription and one dedupe file.
 */
export class Bridge {
  readonly #cfg: BridgeConfig;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #opts: BridgeOptions;
  readonly instance = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  readonly metrics: BridgeMetrics;
  #broker: EmbeddedBroker | null = null;
  #store: DedupeStore | null = null;
  #client: EmergencyApiClient | null = null;
  #session: MqttSession | null = null;
  #processor: AlertProcessor | null = null;
  #presence: PresenceTracker | null = null;
  #http: BridgeHttpServer | null = null;
  #heartbeat: TimerHandle | undefined;
  #prune: TimerHandle | undefined;
  #startedAt = 0;
  #brokerUrl = '';

  constructor(options: BridgeOptions) {
    this.#opts = options;
    this.#cfg = options.config;
    this.#log = options.logger.child({ part: 'bridge' });
    this.#clock = options.clock ?? systemClock;
    this.metrics = new BridgeMetrics({
      connectedDevices: () => this.#presence?.online ?? 0,
      inFlight: () => this.#processor?.inFlight ?? 0,
      brokerConnected: () => this.#session?.connected ?? false,
    });
  }

  /** The broker the bridge uses (the embedded one's URL when it runs one). */
  get brokerUrl(): string {
    return this.#brokerUrl;
  }

  /** Where /healthz and /metrics are served; empty when http.port is null. */
  get httpUrl(): string {
    return this.#http?.url ?? '';
  }

  get connected(): boolean {
    return this.#session?.connected ?? false;
  }

  /** Resolves once subscribed to the broker. */
  whenUp(): Promise<void> {
    if (!this.#session) return Promise.reject(new Error('bridge not started'));
    return this.#session.whenUp();
  }

  health(): HealthReport {
    const token = this.#client?.tokens.health;
    return {
      ok: this.connected,
      version: VERSION,
      instance: this.instance,
      broker: this.connected ? 'connected' : 'disconnected',
      embeddedBroker: this.#broker !== null,
      api: token?.state ?? 'external',
      inFlight: this.#processor?.inFlight ?? 0,
      connectedDevices: this.#presence?.online ?? 0,
      uptimeS: Math.round((this.#clock.monotonic() - this.#startedAt) / 1000),
    };
  }

  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (e) {
      // Whatever was started before the failure (store, broker, API client) is closed again.
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  async #start(): Promise<void> {
    const cfg = this.#cfg;
    this.#startedAt = this.#clock.monotonic();
    const registry = this.#opts.registry ?? (await DeviceRegistry.load(cfg.devices.file));
    this.#log.info({ devices: registry.size }, 'device registry loaded');

    const store = new DedupeStore({
      path: cfg.dedupe.path,
      instance: this.instance,
      leaseMs: cfg.dedupe.lease_s * 1000,
      clock: this.#clock,
      commitGapMs: COMMIT_GAP_MS,
    });
    store.open();
    this.#store = store;
    const pruned = store.prune(cfg.dedupe.retention_days * 86_400_000);
    if (pruned > 0) this.#log.info({ pruned }, 'pruned old dedupe records');
    this.#scheduleHeartbeat();
    this.#schedulePrune();

    let api = this.#opts.api;
    if (!api) {
      const client = new EmergencyApiClient({
        baseUrl: cfg.api.base_url,
        clientId: cfg.api.client_id,
        clientSecret: cfg.api.client_secret,
        connectTimeoutMs: cfg.api.connect_timeout_ms,
        responseTimeoutMs: cfg.api.response_timeout_ms,
        tokenMarginMs: cfg.api.token_margin_s * 1000,
        // As many idle sockets as requests at once: with fewer, every burst closes sockets and reconnects.
        maxIdleSockets: cfg.api.max_in_flight,
        clock: this.#clock,
        logger: this.#log,
      });
      await client.start();
      this.#client = client;
      api = client;
    }

    let endpointUrl = cfg.broker.url;
    let credentials = { username: cfg.broker.username, password: cfg.broker.password };
    let shareGroup = cfg.broker.share_group;
    if (endpointUrl === null) {
      const broker = new EmbeddedBroker({ host: cfg.broker.host, port: cfg.broker.port, logger: this.#log.child({ part: 'broker' }) });
      await broker.start();
      this.#broker = broker;
      const host = cfg.broker.host === '0.0.0.0' || cfg.broker.host === '::' ? '127.0.0.1' : cfg.broker.host;
      endpointUrl = `mqtt://${host.includes(':') ? `[${host}]` : host}:${broker.port}`;
      credentials = broker.bridgeCredentials;
      // aedes has no shared subscriptions; a single bridge owns the embedded broker anyway.
      shareGroup = null;
    }
    this.#brokerUrl = endpointUrl;

    const session = new MqttSession({
      endpoint: {
        url: endpointUrl,
        clientId: cfg.broker.client_id ?? defaultClientId(),
        username: credentials.username,
        password: credentials.password,
        caFile: cfg.broker.ca_file,
        certFile: cfg.broker.cert_file,
        keyFile: cfg.broker.key_file,
        keepaliveS: cfg.broker.keepalive_s,
      },
      subscriptions: [
        { topic: alertSubscription(shareGroup), qos: 1 },
        { topic: ALL_PRESENCE, qos: 1 },
      ],
      clock: this.#clock,
      logger: this.#log.child({ part: 'mqtt' }),
      random: this.#opts.random,
    });
    const presence = new PresenceTracker((id) => registry.get(id) !== undefined);
    const processor = new AlertProcessor({
      registry,
      store,
      api,
      publish: (deviceId, status) => {
        session.publish(statusTopic(deviceId), encode(status), { qos: 1 }).catch((e: unknown) => {
          // The device resends and is answered again from the dedupe store.
          this.#log.debug({ deviceId, alertId: status.alertId, state: status.state, err: errorMessage(e) }, 'status not published');
        });
      },
      metrics: this.metrics,
      templates: cfg.callflows,
      callflow: cfg.callflow,
      retry: { baseMs: cfg.api.retry.base_ms, capMs: cfg.api.retry.cap_ms, giveUpMs: cfg.api.retry.give_up_s * 1000 },
      maxInFlight: cfg.api.max_in_flight,
      clock: this.#clock,
      logger: this.#log,
      random: this.#opts.random,
    });
    session.onMessage(({ topic, payload }) => {
      if (topic.endsWith('/alert')) processor.handle(topic, payload);
      else presence.handle(topic, payload);
    });
    this.#session = session;
    this.#processor = processor;
    this.#presence = presence;
    await session.start();

    if (cfg.http.port !== null) {
      const http = new BridgeHttpServer({
        host: cfg.http.host,
        port: cfg.http.port,
        health: () => this.health(),
        metrics: () => this.metrics.render(),
        logger: this.#log,
      });
      await http.start();
      this.#http = http;
    }
    this.#log.info({ instance: this.instance, broker: this.#broker ? 'embedded' : 'external', shareGroup }, 'bridge started');
  }

  /** Reverse order of start: stop taking alerts, finish or hand back those in flight, then close everything. */
  async stop(): Promise<void> {
    this.#clock.clearTimeout(this.#heartbeat);
    this.#clock.clearTimeout(this.#prune);
    this.#heartbeat = this.#prune = undefined;
    await this.#http?.stop();
    this.#http = null;
    // Wait out requests already at the API (up to its response timeout): an answer that arrives after the
    // store is closed is lost, and the device's resend would be triggered again by whoever takes it over.
    await this.#processor?.stop(this.#cfg.api.response_timeout_ms + STOP_GRACE_MARGIN_MS);
    await this.#session?.stop();
    this.#session = null;
    await this.#broker?.stop();
    this.#broker = null;
    await this.#client?.stop();
    this.#client = null;
    this.#store?.close();
    this.#store = null;
    this.#log.info('bridge stopped');
  }

  #scheduleHeartbeat(): void {
    const every = Math.max(100, Math.floor((this.#cfg.dedupe.lease_s * 1000) / 3));
    this.#heartbeat = this.#clock.setTimeout(() => {
      try {
        this.#store?.heartbeat();
      } catch (e) {
        this.#log.error({ err: errorMessage(e) }, 'dedupe heartbeat failed');
      }
      this.#scheduleHeartbeat();
    }, every);
  }

  #schedulePrune(): void {
    this.#prune = this.#clock.setTimeout(() => {
      try {
        this.#store?.prune(this.#cfg.dedupe.retention_days * 86_400_000);
      } catch (e) {
        this.#log.error({ err: errorMessage(e) }, 'dedupe prune failed');
      }
      this.#schedulePrune();
    }, PRUNE_EVERY_MS);
  }
}
