import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { BackoffPolicy } from '../shared/backoff.ts';
import { errorMessage } from '../shared/errors.ts';
import type { RelayConfig } from '../config/agent-schema.ts';
import { VERSION } from '../shared/version.ts';
import { MqttSession, type Listener } from './session.ts';
import {
  alertTopic,
  decodeStatus,
  encode,
  presenceTopic,
  statusTopic,
  type AlertMessage,
  type HealthSummary,
  type PresenceMessage,
  type StatusMessage,
} from './wire.ts';

export interface RelayLinkOptions {
  deviceId: string;
  relay: Pick<RelayConfig, 'broker_url' | 'username' | 'password' | 'ca_file' | 'cert_file' | 'key_file' | 'keepalive_s'>;
  clock: Clock;
  logger: Logger;
  /** The small health summary in the retained presence message; polled at each presence publish. */
  health?: (() => HealthSummary) | undefined;
  /** Republish presence this often (ms) so the bridge sees a fresh health summary; 0 = only on connect. */
  presenceIntervalMs?: number | undefined;
  reconnect?: BackoffPolicy | undefined;
  random?: (() => number) | undefined;
}

export interface RelayLinkStats {
  connects: number;
  statusReceived: number;
  /** Status messages that failed the wire schema: counted and dropped. */
  statusDropped: number;
}

const noHealth = (): HealthSummary => ({ fixAgeS: null, outboxDepth: null, lastContactAt: null, version: VERSION });

/**
 * The device's connection to the broker: client id = device id, persistent session, subscribed to its own
 * status topic, a retained `online` presence with a health summary and a retained Last Will `offline`.
 * "Up" fires after every (re)connect: the app calls `outbox.wayIsBack()` so queued alerts go at once.
 */
export class RelayLink {
  readonly deviceId: string;
  readonly #opts: RelayLinkOptions;
  readonly #log: Logger;
  readonly #session: MqttSession;
  readonly #statusListeners = new Set<Listener<StatusMessage>>();
  #presenceTimer: TimerHandle | undefined;
  #statusReceived = 0;
  #statusDropped = 0;
  #lastContactAt: number | null = null;

  constructor(options: RelayLinkOptions) {
    this.deviceId = options.deviceId;
    this.#opts = options;
    this.#log = options.logger;
    const r = options.relay;
    this.#session = new MqttSession({
      endpoint: {
        url: r.broker_url,
        clientId: options.deviceId,
        username: r.username,
        password: r.password,
        caFile: r.ca_file,
        certFile: r.cert_file,
        keyFile: r.key_file,
        keepaliveS: r.keepalive_s,
      },
      subscriptions: [{ topic: statusTopic(options.deviceId), qos: 1 }],
      will: () => ({ topic: presenceTopic(options.deviceId), payload: encode(this.#presence('offline')), qos: 1, retain: true }),
      reconnect: options.reconnect,
      clock: options.clock,
      logger: options.logger,
      random: options.random,
      onConnect: () => this.#publishPresence(),
    });
    this.#session.onMessage(({ topic, payload }) => this.#onMessage(topic, payload));
  }

  get connected(): boolean {
    return this.#session.connected;
  }

  /** Last time a status came from the bridge (UTC ms), for the health summary. */
  get lastContactAt(): number | null {
    return this.#lastContactAt;
  }

  stats(): RelayLinkStats {
    return { connects: this.#session.connects, statusReceived: this.#statusReceived, statusDropped: this.#statusDropped };
  }

  onUp(listener: Listener<void>): () => void {
    return this.#session.onUp(listener);
  }

  onDown(listener: Listener<void>): () => void {
    return this.#session.onDown(listener);
  }

  /** Every valid status for this device, including ones for alerts nobody waits on any more. */
  onStatus(listener: Listener<StatusMessage>): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  /** Publishes presence now (when connected), e.g. the moment the device turns degraded or healthy. */
  refreshPresence(): void {
    if (!this.connected) return;
    this.#publishPresence().catch((e: unknown) => this.#log.debug({ err: errorMessage(e) }, 'presence publish failed'));
  }

  whenUp(): Promise<void> {
    return this.#session.whenUp();
  }

  async start(): Promise<void> {
    await this.#session.start();
    const every = this.#opts.presenceIntervalMs ?? 60_000;
    if (every > 0) this.#schedulePresence(every);
  }

  async stop(): Promise<void> {
    this.#opts.clock.clearTimeout(this.#presenceTimer);
    this.#presenceTimer = undefined;
    // Say "offline" ourselves: a clean DISCONNECT suppresses the Last Will.
    await this.#session.stop(() =>
      this.#session.publish(presenceTopic(this.deviceId), encode(this.#presence('offline')), { qos: 1, retain: true }),
    );
  }

  /** QoS 1; resolves on PUBACK (the broker has it), which is NOT delivery: see RelayRoute. */
  publishAlert(message: AlertMessage): Promise<void> {
    return this.#session.publish(alertTopic(this.deviceId), encode(message), { qos: 1 });
  }

  #presence(state: 'online' | 'offline'): PresenceMessage {
    const at = this.#opts.clock.now();
    if (state === 'offline') return { state, at };
    const health = (this.#opts.health ?? noHealth)();
    return { state, at, health: { ...health, lastContactAt: health.lastContactAt ?? this.#lastContactAt } };
  }

  async #publishPresence(): Promise<void> {
    await this.#session.publish(presenceTopic(this.deviceId), encode(this.#presence('online')), { qos: 1, retain: true });
  }

  #schedulePresence(every: number): void {
    this.#presenceTimer = this.#opts.clock.setTimeout(() => {
      if (this.#session.connected) {
        this.#publishPresence().catch((e: unknown) => this.#log.debug({ err: errorMessage(e) }, 'presence publish failed'));
      }
      this.#schedulePresence(every);
    }, every);
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic !== statusTopic(this.deviceId)) return;
    const decoded = decodeStatus(payload);
    if (!decoded.ok) {
      this.#statusDropped++;
      this.#log.warn({ reason: decoded.reason, detail: decoded.detail }, 'dropped an invalid status message');
      return;
    }
    this.#statusReceived++;
    this.#lastContactAt = this.#opts.clock.now();
    for (const l of this.#statusListeners) {
      try {
        l(decoded.value);
      } catch (e) {
        this.#log.error({ err: errorMessage(e) }, 'status listener threw');
      }
    }
  }
}
