import type { AlertSnapshot, TriggerResult } from '../incident/types.ts';
import { variablesFor, type Template } from '../incident/variables.ts';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { retryDelay, type BackoffPolicy } from '../shared/backoff.ts';
import { ErrorCodes, errorMessage, isSosError } from '../shared/errors.ts';
import { retryHints } from '../api/errors.ts';
import { decodeAlert, parseTopic, type AlertMessage, type FailReason, type RejectReason, type StatusMessage } from '../relay/wire.ts';
import type { DedupeStore } from './dedupe-store.ts';
import type { DeviceRegistry } from './device-registry.ts';
import type { BridgeMetrics } from './metrics.ts';

/** What the processor needs of the API client (EmergencyApiClient, or a double in unit tests). */
export interface ApiTrigger {
  trigger(callflow: string, variables: Record<string, unknown>, options?: { signal?: AbortSignal | undefined }): Promise<TriggerResult>;
}

export interface AlertProcessorOptions {
  registry: DeviceRegistry;
  store: DedupeStore;
  api: ApiTrigger;
  /** Sends a status to a device; best effort (a device that misses one resends and is answered again). */
  publish: (deviceId: string, status: StatusMessage) => void;
  metrics: BridgeMetrics;
  templates: Record<string, { variables: Template }>;
  callflow: { name: string; test_name: string | null };
  retry: BackoffPolicy & { giveUpMs: number };
  maxInFlight: number;
  clock: Clock;
  logger: Logger;
  random?: (() => number) | undefined;
}

interface Job {
  alert: AlertSnapshot;
  variables: Record<string, unknown>;
  started: number;
}

/**
 * One alert message in, statuses out: validate → authorize → dedupe → `accepted` → trigger (retrying transient
 * failures with capped, jittered backoff) → `triggered` | `rejected` | `failed`. Never throws: whatever a device
 * sends is counted, answered when the device can be told, and dropped.
 */
export class AlertProcessor {
  readonly #o: AlertProcessorOptions;
  readonly #log: Logger;
  /** alertId → job, for every alert this instance has claimed and not finished. */
  readonly #jobs = new Map<string, Job>();
  readonly #sleeps = new Set<{ timer: TimerHandle; wake: () => void }>();
  readonly #slotQueue: ((granted: boolean) => void)[] = [];
  /** Every claimed alert's run, until it has answered the device. */
  readonly #runs = new Set<Promise<void>>();
  #slotsInUse = 0;
  #stopping = false;

  constructor(options: AlertProcessorOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** Alerts claimed by this instance and not yet finished. */
  get inFlight(): number {
    return this.#jobs.size;
  }

  handle(topic: string, payload: Buffer): void {
    try {
      this.#handle(topic, payload);
    } catch (e) {
      // A bug here must not take the bridge down with it; the device's retry gets another chance.
      this.#log.error({ err: errorMessage(e), topic }, 'alert handling failed');
    }
  }

  #handle(topic: string, payload: Buffer): void {
    const { metrics } = this.#o;
    const t = parseTopic(topic);
    if (!t || t.kind !== 'alert') return;
    metrics.received.inc();
    if (this.#stopping) return;

    const decoded = decodeAlert(payload);
    if (!decoded.ok) {
      this.#log.warn({ deviceId: t.deviceId, reason: decoded.reason, detail: decoded.detail, bytes: payload.length }, 'dropped an invalid alert');
      this.#refuse(t.deviceId, decoded.alertId, decoded.reason, decoded.detail, true);
      return;
    }
    const msg = decoded.value;
    if (msg.deviceId !== t.deviceId) {
      this.#log.warn({ topicDevice: t.deviceId, payloadDevice: msg.deviceId, alertId: msg.alertId }, 'alert published under another device\'s id');
      this.#refuse(t.deviceId, msg.alertId, 'device_mismatch', `topic device ${t.deviceId} is not the payload's deviceId`, true);
      return;
    }
    const entry = this.#o.registry.get(msg.deviceId);
    if (!entry) {
      this.#log.warn({ deviceId: msg.deviceId, alertId: msg.alertId }, 'alert from a device not in the registry');
      this.#refuse(t.deviceId, msg.alertId, 'unknown_device', `device ${msg.deviceId} is not registered with this bridge`, false);
      return;
    }
    const built = this.#snapshot(msg, entry);
    if ('reason' in built) {
      this.#refuse(t.deviceId, msg.alertId, built.reason, built.message, false);
      return;
    }
    const alert = built.alert;

    const claim = this.#o.store.claim(alert.alertId, alert.deviceId);
    switch (claim.kind) {
      case 'foreign':
        this.#log.warn({ deviceId: alert.deviceId, alertId: alert.alertId }, 'alertId already used by another device');
        this.#refuse(t.deviceId, alert.alertId, 'device_mismatch', 'this alertId belongs to another device', true);
        return;
      case 'triggered':
        metrics.duplicates.inc();
        this.#statusWhenDurable(alert.deviceId, { alertId: alert.alertId, state: 'triggered', apiId: claim.apiId, message: claim.message });
        return;
      case 'rejected':
        metrics.duplicates.inc();
        this.#statusWhenDurable(alert.deviceId, { alertId: alert.alertId, state: 'rejected', reason: claim.reason, message: claim.message });
        return;
      case 'in_flight':
        // Held here or by a live bridge: say so, trigger nothing; the answer follows when the API has spoken.
        metrics.duplicates.inc();
        this.#statusWhenDurable(alert.deviceId, { alertId: alert.alertId, state: 'accepted' });
        return;
      case 'claimed':
        if (claim.takeover) {
          metrics.takeovers.inc();
          this.#log.warn({ alertId: alert.alertId, deviceId: alert.deviceId }, 'took over an alert from a bridge that stopped answering; triggering it again');
        }
        break;
    }
    const job: Job = { alert, variables: variablesFor(alert, this.#o.templates), started: this.#o.clock.monotonic() };
    this.#jobs.set(alert.alertId, job);
    const run = this.#run(job).catch((e: unknown) => this.#log.error({ err: errorMessage(e), alertId: alert.alertId }, 'alert delivery failed'));
    this.#runs.add(run);
    void run.finally(() => this.#runs.delete(run));
  }

  /** The claim must be on disk before the API is called: otherwise a crash could let a resend trigger it again. */
  async #run(job: Job): Promise<void> {
    const { alert } = job;
    try {
      await this.#o.store.committed();
    } catch (e) {
      this.#log.error({ alertId: alert.alertId, err: errorMessage(e) }, 'could not record the alert; not triggering it (the device will resend)');
      this.#jobs.delete(alert.alertId);
      this.#o.metrics.failed.inc({ reason: 'bridge_storage' });
      this.#status(alert.deviceId, { alertId: alert.alertId, state: 'failed', reason: 'bridge_storage', message: 'the bridge could not record the alert' });
      return;
    }
    this.#log.debug({ alertId: alert.alertId, deviceId: alert.deviceId, callflow: alert.callflow }, 'alert accepted');
    this.#status(alert.deviceId, { alertId: alert.alertId, state: 'accepted' });
    await this.#deliver(job);
  }

  /** Answers once what the answer rests on is on disk (a commit failure does not unsay an older record). */
  #statusWhenDurable(deviceId: string, status: Omit<StatusMessage, 'at'>): void {
    const send = (): void => this.#status(deviceId, status);
    this.#o.store.committed().then(send, send);
  }

  /** Waits for the store's commit; a failure is logged, not thrown: the API has already spoken and the device must hear it. */
  async #durable(ids: { alertId: string; deviceId: string }, what: string): Promise<void> {
    try {
      await this.#o.store.committed();
    } catch (e) {
      this.#log.error({ ...ids, err: errorMessage(e) }, `could not record that the alert was ${what}; a resend may be triggered again`);
    }
  }

  /** Applies the registry: caller and vehicle defaults, and which callflow (the test one for test alerts). */
  #snapshot(msg: AlertMessage, entry: NonNullable<ReturnType<DeviceRegistry['get']>>): { alert: AlertSnapshot } | { reason: RejectReason; message: string } {
    const caller = msg.caller ?? entry.caller;
    if (!caller) return { reason: 'no_caller', message: 'the alert has no caller and the registry has none for this device' };
    // A device must never pick a real callflow for a test alert: the test callflow comes from the bridge only.
    const callflow = msg.test ? (entry.test_callflow ?? this.#o.callflow.test_name) : (entry.callflow ?? msg.callflow ?? this.#o.callflow.name);
    if (!callflow) return { reason: 'no_test_callflow', message: 'test alerts need a test callflow (registry test_callflow or callflow.test_name)' };
    const vehicle = { ...entry.vehicle };
    for (const [k, v] of Object.entries(msg.vehicle ?? {})) if (v !== undefined) (vehicle as Record<string, string>)[k] = v;
    return {
      alert: {
        alertId: msg.alertId,
        deviceId: msg.deviceId,
        createdAt: msg.createdAt,
        initiation: msg.initiation,
        test: msg.test,
        caller,
        vehicle,
        location: msg.location,
        callflow,
      },
    };
  }

  /**
   * Rejects without remembering: a later valid copy of the same alertId is still served. When the alertId is
   * already known as a valid alert, a bad copy (`guard`) gets no answer, so nobody can cancel a real alert by
   * sending garbage under its id.
   */
  #refuse(deviceId: string, alertId: string | undefined, reason: RejectReason, message: string, guard: boolean): void {
    this.#o.metrics.rejected.inc({ reason });
    if (alertId === undefined) return;
    if (guard && this.#o.store.stateOf(alertId) !== null) return;
    this.#status(deviceId, { alertId, state: 'rejected', reason, message });
  }

  #status(deviceId: string, status: Omit<StatusMessage, 'at'>): void {
    this.#o.publish(deviceId, { ...status, at: this.#o.clock.now() });
  }

  async #deliver(job: Job): Promise<void> {
    const { alert } = job;
    const { api, store, metrics, clock, retry } = this.#o;
    // Plain fields, not a child logger: a child per alert costs more than the rest of the bookkeeping.
    const ids = { alertId: alert.alertId, deviceId: alert.deviceId };
    for (let attempt = 0; ; attempt++) {
      if (this.#stopping) return this.#fail(job, 'bridge_stopping', 'the bridge is stopping');
      const granted = await this.#acquire();
      if (!granted || this.#stopping) {
        if (granted) this.#releaseSlot();
        return this.#fail(job, 'bridge_stopping', 'the bridge is stopping');
      }
      const t0 = clock.monotonic();
      let result: TriggerResult | undefined;
      let error: unknown;
      await api.trigger(alert.callflow, job.variables).then(
        (r) => (result = r),
        (e: unknown) => (error = e),
      );
      this.#releaseSlot();
      metrics.apiLatency.observe((clock.monotonic() - t0) / 1000);

      if (result) {
        metrics.apiAttempts.inc({ outcome: 'accepted' });
        metrics.triggered.inc();
        if (!store.markTriggered(alert.alertId, result.id, result.message)) this.#log.error(ids, 'triggered, but the dedupe row was no longer ours');
        await this.#durable(ids, 'triggered');
        this.#jobs.delete(alert.alertId);
        this.#log.info({ ...ids, apiId: result.id, callflow: alert.callflow, attempts: attempt + 1, ms: Math.round(clock.monotonic() - job.started) }, 'alert triggered');
        this.#status(alert.deviceId, { alertId: alert.alertId, state: 'triggered', apiId: result.id, message: result.message });
        return;
      }
      const code = isSosError(error) ? error.code : 'unexpected';
      if (code === ErrorCodes.API_REJECTED) {
        metrics.apiAttempts.inc({ outcome: 'rejected' });
        metrics.rejected.inc({ reason: 'api_rejected' });
        const message = errorMessage(error);
        store.markRejected(alert.alertId, 'api_rejected', message);
        await this.#durable(ids, 'rejected');
        this.#jobs.delete(alert.alertId);
        this.#log.warn({ ...ids, err: message, callflow: alert.callflow }, 'the API rejected the alert');
        this.#status(alert.deviceId, { alertId: alert.alertId, state: 'rejected', reason: 'api_rejected', message });
        return;
      }
      metrics.apiAttempts.inc({ outcome: 'transient' });
      if (code === ErrorCodes.TOKEN_REJECTED) {
        this.#log.error({ ...ids, err: errorMessage(error) }, 'the API refused the bridge\'s credentials');
        return this.#fail(job, 'api_credentials', 'the bridge cannot get an API token');
      }
      const hints = retryHints(error);
      const delay = retryDelay(attempt, retry, hints.retryAfterMs, this.#o.random);
      if (clock.monotonic() - job.started + delay > retry.giveUpMs) {
        this.#log.warn({ ...ids, err: errorMessage(error), attempts: attempt + 1 }, 'giving up on the API for now');
        return this.#fail(job, 'api_unavailable', errorMessage(error));
      }
      this.#log.info({ ...ids, err: errorMessage(error), code, attempt: attempt + 1, delayMs: delay }, 'trigger failed; retrying');
      await this.#sleep(delay);
    }
  }

  async #fail(job: Job, reason: FailReason, message: string): Promise<void> {
    const { alert } = job;
    this.#o.metrics.failed.inc({ reason });
    this.#o.store.release(alert.alertId, reason);
    await this.#durable({ alertId: alert.alertId, deviceId: alert.deviceId }, 'released');
    this.#jobs.delete(alert.alertId);
    this.#status(alert.deviceId, { alertId: alert.alertId, state: 'failed', reason, message });
  }

  /** A turn at the API (at most maxInFlight requests at once); false when the bridge stopped while waiting. */
  #acquire(): Promise<boolean> {
    if (this.#slotsInUse < this.#o.maxInFlight) {
      this.#slotsInUse++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#slotQueue.push(resolve));
  }

  /** Hands the slot straight to the next waiter, or frees it. */
  #releaseSlot(): void {
    const next = this.#slotQueue.shift();
    if (next) next(true);
    else this.#slotsInUse--;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: this.#o.clock.setTimeout(() => {
          this.#sleeps.delete(entry);
          resolve();
        }, ms),
        wake: () => {
          this.#o.clock.clearTimeout(entry.timer);
          this.#sleeps.delete(entry);
          resolve();
        },
      };
      this.#sleeps.add(entry);
    });
  }

  /**
   * Stops taking alerts. Alerts waiting for a retry are released at once (`failed`, so the device's next copy
   * can go to another bridge); requests already at the API are waited for, up to `graceMs`, because an
   * abandoned request may still have started a flow and its answer is what makes a repeat safe.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    for (const s of [...this.#sleeps]) s.wake();
    for (const wake of this.#slotQueue.splice(0)) wake(false);
    if (this.#runs.size === 0) return;
    await Promise.race([
      Promise.allSettled([...this.#runs]),
      new Promise<void>((resolve) => {
        // A real timer: it bounds waiting on the network at shutdown, not logic under test.
        const t = setTimeout(resolve, graceMs);
        t.unref();
      }),
    ]);
  }
}
