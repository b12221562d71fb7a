import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { isSosError } from '../shared/errors.ts';
import { fullJitterDelay } from '../shared/backoff.ts';
import { uuidv7 } from '../shared/uuidv7.ts';
import { VERSION } from '../shared/version.ts';
import type { AlertSnapshot } from '../incident/types.ts';
import { RelayLink } from '../relay/link.ts';
import { RelayRoute } from '../relay/relay-route.ts';
import { RelayRejectedError } from '../relay/errors.ts';
import { LoopTrack } from './track.ts';

export interface FleetOptions {
  devices: number;
  brokerUrl: string;
  /** Client ids are `${prefix}-0001` ...; the bridge's registry must list them. */
  prefix: string;
  /** Per-device password (the username is the device id), for a broker with per-device logins. */
  password?: string | undefined;
  ackTimeoutMs: number;
  clock: Clock;
  logger: Logger;
}

export interface FleetProgress {
  devices: number;
  online: number;
  alerts: number;
  triggered: number;
  rejected: number;
  /** Given up after maxAttempts retryable failures. */
  undelivered: number;
  /** publish → `triggered`, ms, of every triggered alert (first attempt to answer). */
  latenciesMs: number[];
}

interface SimDevice {
  id: string;
  link: RelayLink;
  route: RelayRoute;
  track: LoopTrack;
  pending: number;
}

/**
 * N simulated devices, each with its own client id, presence and a moving GPS track, sending scripted presses
 * through the same RelayLink and RelayRoute a real device uses. Every simulated alert is a TEST alert
 * (gesture test_hold, test callflow), so a simulator pointed at a real bridge can never start a real 9-1-1 flow.
 */
export class SimulatedFleet {
  readonly #o: FleetOptions;
  readonly #devices: SimDevice[] = [];
  readonly #progress: FleetProgress;

  constructor(options: FleetOptions) {
    this.#o = options;
    this.#progress = { devices: options.devices, online: 0, alerts: 0, triggered: 0, rejected: 0, undelivered: 0, latenciesMs: [] };
  }

  progress(): FleetProgress {
    return { ...this.#progress, online: this.#devices.filter((d) => d.link.connected).length };
  }

  static deviceId(prefix: string, i: number): string {
    return `${prefix}-${String(i + 1).padStart(4, '0')}`;
  }

  /** The devices' links (after start), for a benchmark that times statuses itself. */
  links(): RelayLink[] {
    return this.#devices.map((d) => d.link);
  }

  static #track(i: number): LoopTrack {
    return new LoopTrack({ radiusM: 200 + (i % 50) * 20, speedMps: 8 + (i % 7), phase: (i * 2.399) % (2 * Math.PI) });
  }

  /** Connects every device (in batches, so a broker is not hit by N handshakes at once) and waits until all are up. */
  async start(batch = 100): Promise<void> {
    const { clock, logger } = this.#o;
    for (let i = 0; i < this.#o.devices; i++) {
      const id = SimulatedFleet.deviceId(this.#o.prefix, i);
      const device: SimDevice = {
        id,
        pending: 0,
        track: SimulatedFleet.#track(i),
        link: undefined as unknown as RelayLink,
        route: undefined as unknown as RelayRoute,
      };
      device.link = new RelayLink({
        deviceId: id,
        relay: {
          broker_url: this.#o.brokerUrl,
          username: this.#o.password ? id : undefined,
          password: this.#o.password,
          ca_file: null,
          cert_file: null,
          key_file: null,
          keepalive_s: 60,
        },
        clock,
        logger,
        presenceIntervalMs: 0,
        health: () => ({ fixAgeS: 1, outboxDepth: device.pending, lastContactAt: device.link.lastContactAt, version: VERSION }),
      });
      device.route = new RelayRoute({ link: device.link, ackTimeoutMs: this.#o.ackTimeoutMs, clock, logger });
      this.#devices.push(device);
    }
    for (let i = 0; i < this.#devices.length; i += batch) {
      const slice = this.#devices.slice(i, i + batch);
      await Promise.all(slice.map((d) => d.link.start()));
      await Promise.all(slice.map((d) => d.link.whenUp()));
    }
  }

  async stop(): Promise<void> {
    for (const d of this.#devices) d.route.stop();
    await Promise.all(this.#devices.map((d) => d.link.stop()));
  }

  /** A test alert from device `k mod N`, pressed now, where its track says it is. */
  alertFrom(k: number): AlertSnapshot {
    const i = k % this.#o.devices;
    const d = this.#devices[i] ?? { id: SimulatedFleet.deviceId(this.#o.prefix, i), track: SimulatedFleet.#track(i) };
    const now = this.#o.clock.now();
    return {
      alertId: uuidv7(now),
      deviceId: d.id,
      createdAt: now,
      initiation: { gesture: 'test_hold', source: 'sim', press_times: [this.#o.clock.monotonic()], hold_ms: 10_000, confirmed_at: now, test: true },
      test: true,
      caller: { full_name: `Simulated Driver ${i + 1}`, phone_number: '6615555555' },
      vehicle: { make: 'Sim', model: 'Truck', license_plate: d.id.slice(-8).toUpperCase() },
      location: d.track.locationAt(now),
      callflow: 'company_test_v1',
    };
  }

  /**
   * Sends `count` alerts round-robin over the devices at `ratePerSec` (0 = as fast as they go), each retried
   * like an outbox would (same alertId, jittered backoff) up to `maxAttempts` times. Resolves when all are settled.
   */
  async sendAlerts(count: number, ratePerSec = 0, maxAttempts = 5): Promise<FleetProgress> {
    const { clock } = this.#o;
    const jobs: Promise<void>[] = [];
    const t0 = clock.monotonic();
    for (let k = 0; k < count; k++) {
      if (ratePerSec > 0) {
        const due = t0 + (k * 1000) / ratePerSec;
        const wait = due - clock.monotonic();
        if (wait > 1) await new Promise<void>((r) => clock.setTimeout(r, wait));
      }
      jobs.push(this.#sendOne(k, maxAttempts));
    }
    await Promise.all(jobs);
    return this.progress();
  }

  async #sendOne(k: number, maxAttempts: number): Promise<void> {
    const { clock } = this.#o;
    const alert = this.alertFrom(k);
    const device = this.#devices[k % this.#devices.length]!;
    this.#progress.alerts++;
    device.pending++;
    const started = clock.monotonic();
    try {
      for (let attempt = 0; attempt < maxAttempts; attempt++) {
        try {
          await device.route.send(alert);
          this.#progress.triggered++;
          this.#progress.latenciesMs.push(clock.monotonic() - started);
          return;
        } catch (e) {
          // A `rejected` answer is reported, not waited out: a device keeps a rejection about the bridge's setup
          // (unknown_device, no_caller) queued for a slow retry, but a simulation wants to see it now.
          if ((isSosError(e) && !e.retryable) || e instanceof RelayRejectedError) {
            this.#progress.rejected++;
            this.#o.logger.warn({ alertId: alert.alertId, deviceId: device.id, err: e.message }, 'simulated alert rejected');
            return;
          }
          await new Promise<void>((r) => clock.setTimeout(r, fullJitterDelay(attempt, { baseMs: 500, capMs: 5000 })));
        }
      }
      this.#progress.undelivered++;
    } finally {
      device.pending--;
    }
  }
}
