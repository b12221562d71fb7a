import { createServer, type Server, type AddressInfo } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Aedes, type Client } from 'aedes';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';
import { deviceIdSchema, parseTopic } from '../relay/wire.ts';

export interface EmbeddedBrokerOptions {
  /** Default 127.0.0.1: the embedded broker has no device passwords, so it belongs on a trusted network. */
  host: string;
  /** 0 = a free port (read `port` after start). */
  port: number;
  logger: Logger;
  /** The bridge client's password; random per start by default (the bridge in this process is told it). */
  bridgePassword?: string | undefined;
}

/**
 * The zero-setup single-box broker: aedes in this process on a TCP port, sessions in memory.
 * It enforces the same per-device rule as the Mosquitto ACL (config/mosquitto.example.conf) by client id:
 * a device may publish only its own alert and presence and subscribe only to its own status. The bridge's own
 * client logs in with a random password made at each start, and may do anything.
 */
export class EmbeddedBroker {
  readonly #opts: EmbeddedBrokerOptions;
  readonly #log: Logger;
  readonly #bridgeUser = 'sos-bridge-internal';
  readonly #bridgePassword: string;
  readonly #privileged = new WeakSet<Client>();
  #aedes: Aedes | null = null;
  #server: Server | null = null;
  #port = 0;

  constructor(options: EmbeddedBrokerOptions) {
    this.#opts = options;
    this.#log = options.logger;
    this.#bridgePassword = options.bridgePassword ?? randomBytes(24).toString('base64url');
  }

  /** The URL the bridge (and local devices) connect to. */
  get url(): string {
    return `mqtt://${this.#opts.host.includes(':') ? `[${this.#opts.host}]` : this.#opts.host}:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The credentials for the bridge's own client. Never logged. */
  get bridgeCredentials(): { username: string; password: string } {
    return { username: this.#bridgeUser, password: this.#bridgePassword };
  }

  /** Connected clients, the bridge's own included. */
  get connectedClients(): number {
    return this.#aedes?.connectedClients ?? 0;
  }

  async start(): Promise<void> {
    if (this.#aedes) return;
    const aedes = await Aedes.createBroker({ drainTimeout: 30_000 });
    aedes.authenticate = (client, username, password, done) => {
      if (username === this.#bridgeUser) {
        const ok = password !== undefined && safeEqual(password, Buffer.from(this.#bridgePassword));
        if (ok) this.#privileged.add(client);
        done(ok ? null : Object.assign(new Error('bad bridge credentials'), { returnCode: 4 as never }), ok);
        return;
      }
      // A device's client id is its topic level; anything else could not be held to its own topics.
      const ok = deviceIdSchema.safeParse(client.id).success;
      done(ok ? null : Object.assign(new Error('client id is not a device id'), { returnCode: 2 as never }), ok);
    };
    aedes.authorizePublish = (client, packet, done) => {
      if (packet.topic.startsWith('$SYS')) return done(new Error('$SYS is reserved'));
      if (client === null || this.#privileged.has(client)) return done(null);
      const t = parseTopic(packet.topic);
      if (t && t.deviceId === client.id && (t.kind === 'alert' || t.kind === 'presence')) return done(null);
      this.#log.warn({ clientId: client.id, topic: packet.topic }, 'refused a publish outside the device\'s own topics');
      done(new Error('not authorized'));
    };
    aedes.authorizeSubscribe = (client, sub, done) => {
      if (this.#privileged.has(client)) return done(null, sub);
      const t = parseTopic(sub.topic);
      if (t && t.deviceId === client.id && t.kind === 'status') return done(null, sub);
      this.#log.warn({ clientId: client.id, topic: sub.topic }, 'refused a subscription outside the device\'s own status');
      done(null, null);
    };
    aedes.on('clientError', (client, e) => this.#log.debug({ clientId: client.id, err: errorMessage(e) }, 'mqtt client error'));
    aedes.on('connectionError', (client, e) => this.#log.debug({ clientId: client.id, err: errorMessage(e) }, 'mqtt connection error'));

    const server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch(async (e: unknown) => {
      await new Promise<void>((r) => aedes.close(() => r()));
      throw e;
    });
    server.on('error', (e) => this.#log.error({ err: errorMessage(e) }, 'embedded broker server error'));
    this.#port = (server.address() as AddressInfo).port;
    this.#aedes = aedes;
    this.#server = server;
    this.#log.info({ url: this.url }, 'embedded MQTT broker listening');
  }

  async stop(): Promise<void> {
    const aedes = this.#aedes;
    const server = this.#server;
    this.#aedes = null;
    this.#server = null;
    // Stop accepting first, then let aedes disconnect its clients, then the listener can finish closing.
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
  }
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
