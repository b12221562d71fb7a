import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { fullJitterDelay, type BackoffPolicy } from '../shared/backoff.ts';
import { errorMessage } from '../shared/errors.ts';
import { clientOptions, safeBrokerUrl, type BrokerEndpoint } from './mqtt-options.ts';

export interface Subscription {
  topic: string;
  qos: 0 | 1;
}

export interface MqttSessionOptions {
  endpoint: BrokerEndpoint;
  /** Subscribed on every connect (a broker that lost the session, e.g. after a restart, has forgotten them). */
  subscriptions: readonly Subscription[];
  /** The Last Will, made afresh at each connect (so its time is the connect's, not the constructor's). */
  will?: (() => { topic: string; payload: Buffer; qos: 0 | 1; retain: boolean }) | undefined;
  reconnect?: BackoffPolicy | undefined;
  clock: Clock;
  logger: Logger;
  random?: (() => number) | undefined;
  /** Runs after the subscriptions are granted and before listeners hear "up" (e.g. publish presence). */
  onConnect?: (() => Promise<void>) | undefined;
}

export type Listener<T> = (value: T) => void;

export const DEFAULT_RECONNECT: BackoffPolicy = { baseMs: 1000, capMs: 30_000 };

function listen<T>(set: Set<Listener<T>>, listener: Listener<T>): () => void {
  set.add(listener);
  return () => set.delete(listener);
}

function emit<T>(set: Set<Listener<T>>, value: T, logger: Logger): void {
  for (const l of set) {
    try {
      l(value);
    } catch (e) {
      logger.error({ err: errorMessage(e) }, 'listener threw');
    }
  }
}

/**
 * One MQTT connection that stays up from `start()` to `stop()`: a persistent QoS 1 session (clean: false),
 * reconnecting with capped exponential backoff and full jitter, so a fleet that lost its broker at the same
 * moment does not come back in step. mqtt.js's in-memory stores are carried over reconnects, so a QoS 1
 * message sent but not yet acknowledged is resent by the library; end-to-end delivery does not rely on it.
 */
export class MqttSession {
  readonly #opts: MqttSessionOptions;
  readonly #log: Logger;
  #client: MqttClient | null = null;
  #stopping = false;
  #up = false;
  #attempt = 0;
  #timer: TimerHandle | undefined;
  #connects = 0;
  readonly #upListeners = new Set<Listener<void>>();
  readonly #downListeners = new Set<Listener<void>>();
  readonly #messageListeners = new Set<Listener<{ topic: string; payload: Buffer }>>();

  constructor(options: MqttSessionOptions) {
    this.#opts = options;
    this.#log = options.logger;
  }

  /** True between a granted connect and the next close. */
  get connected(): boolean {
    return this.#up;
  }

  /** Successful connects so far (a reconnect after an outage counts). */
  get connects(): number {
    return this.#connects;
  }

  onUp(listener: Listener<void>): () => void {
    return listen(this.#upListeners, listener);
  }

  onDown(listener: Listener<void>): () => void {
    return listen(this.#downListeners, listener);
  }

  onMessage(listener: Listener<{ topic: string; payload: Buffer }>): () => void {
    return listen(this.#messageListeners, listener);
  }

  /** Resolves when the session is up (at once if it already is). */
  whenUp(): Promise<void> {
    if (this.#up) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onUp(() => {
        off();
        resolve();
      });
    });
  }

  /** Starts connecting and returns; the session then keeps itself connected until stop(). */
  async start(): Promise<void> {
    if (this.#client) return;
    this.#stopping = false;
    const base = await clientOptions(this.#opts.endpoint);
    const options: IClientOptions = { ...base };
    if (this.#opts.will) options.will = this.#opts.will();
    const client = mqtt.connect(this.#opts.endpoint.url, options);
    this.#client = client;
    client.on('connect', () => {
      // mqtt.js leaves Nagle on: a small status or PUBACK would wait ~40 ms for the peer's delayed ACK.
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      void this.#onConnect(client);
    });
    client.on('close', () => this.#onClose());
    client.on('error', (e) => {
      // Connection refused, bad credentials, TLS failures: the close that follows schedules the retry.
      this.#log.warn({ err: errorMessage(e), broker: safeBrokerUrl(this.#opts.endpoint.url) }, 'mqtt error');
    });
    client.on('message', (topic, payload) => emit(this.#messageListeners, { topic, payload }, this.#log));
  }

  async #onConnect(client: MqttClient): Promise<void> {
    try {
      if (this.#opts.subscriptions.length > 0) {
        await client.subscribeAsync(this.#opts.subscriptions.map((s) => s.topic), { qos: 1 });
      }
      await this.#opts.onConnect?.();
    } catch (e) {
      if ((e as { name?: string }).name === 'ErrorWithSubackPacket') {
        // Without its subscriptions the session is useless (no statuses would arrive): stay down, so routes fail
        // fast, and try again after a backoff in case the ACL gets fixed.
        this.#log.error({ topics: this.#opts.subscriptions.map((s) => s.topic) }, 'broker refused a subscription (check the ACL)');
        client.stream?.destroy();
        return;
      }
      // The connection dropped while subscribing: the close handler will reconnect.
      this.#log.warn({ err: errorMessage(e) }, 'mqtt setup after connect failed');
      return;
    }
    if (!client.connected || this.#stopping) return;
    this.#attempt = 0;
    this.#connects++;
    this.#up = true;
    this.#log.info({ broker: safeBrokerUrl(this.#opts.endpoint.url), clientId: this.#opts.endpoint.clientId }, 'mqtt connected');
    emit(this.#upListeners, undefined, this.#log);
  }

  #onClose(): void {
    if (this.#up) {
      this.#up = false;
      // Our own stop() closing the connection is not news; anything else is.
      if (this.#stopping) this.#log.info({ broker: safeBrokerUrl(this.#opts.endpoint.url) }, 'mqtt connection closed');
      else this.#log.warn({ broker: safeBrokerUrl(this.#opts.endpoint.url) }, 'mqtt connection lost');
      emit(this.#downListeners, undefined, this.#log);
    }
    if (this.#stopping || this.#timer !== undefined) return;
    const delay = fullJitterDelay(this.#attempt, this.#opts.reconnect ?? DEFAULT_RECONNECT, this.#opts.random);
    this.#attempt++;
    this.#timer = this.#opts.clock.setTimeout(() => {
      this.#timer = undefined;
      const client = this.#client;
      if (!client || this.#stopping) return;
      if (this.#opts.will) client.options.will = this.#opts.will();
      // Keep the stores: their unacknowledged QoS 1 messages are resent after the reconnect.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delay);
  }

  /** Resolves on PUBACK for QoS 1 (at once for QoS 0). Rejects when not connected: the caller decides what next. */
  publish(topic: string, payload: Buffer, options: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    const client = this.#client;
    if (!client || !client.connected) return Promise.reject(new Error('not connected to the MQTT broker'));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: options.qos, retain: options.retain ?? false }, (e) => (e ? reject(e) : resolve()));
    });
  }

  /**
   * Runs `beforeEnd` (e.g. a retained "offline") if connected, then disconnects. Waits at most `graceMs` for
   * in-flight acknowledgements, then closes the socket: a dead broker must not hang a shutdown.
   */
  async stop(beforeEnd?: () => Promise<void>, graceMs = 2000): Promise<void> {
    const client = this.#client;
    if (!client) return;
    this.#stopping = true;
    this.#opts.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (client.connected && beforeEnd) {
      await withTimeout(beforeEnd(), graceMs).catch(() => undefined);
    }
    await withTimeout(client.endAsync(false), graceMs).catch(() => {
      // end() waits for every unacknowledged message; with the broker gone that is forever.
      client.stream?.destroy();
    });
    this.#client = null;
    if (this.#up) {
      this.#up = false;
      emit(this.#downListeners, undefined, this.#log);
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    // A real timer on purpose: this bounds I/O against a broker, not logic under test.
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
