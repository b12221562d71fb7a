import type { AlertRoute, AlertSnapshot, TriggerResult } from '../incident/types.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';
import { RelayFailedError, RelayRejectedError, RelayTimeoutError, RelayUnavailableError } from './errors.ts';
import { encode, MAX_PAYLOAD_BYTES, toAlertMessage, type AlertMessage, type StatusMessage } from './wire.ts';

/** What the route needs of a link: RelayLink, or a test double. */
export interface StatusLink {
  readonly connected: boolean;
  publishAlert(message: AlertMessage): Promise<void>;
  onStatus(listener: (status: StatusMessage) => void): () => void;
}

export interface RelayRouteOptions {
  link: StatusLink;
  /** relay.ack_timeout_s in ms: how long to wait for `triggered` before the outbox retries. */
  ackTimeoutMs: number;
  clock: Clock;
  logger: Logger;
}

interface Waiter {
  accepted: boolean;
  onStatus(status: StatusMessage): void;
  fail(error: Error): void;
}

/**
 * The relay way to the API. `send` publishes the alert (QoS 1) and resolves only when the bridge says
 * `triggered` for its alertId: a PUBACK means the broker has it, not that a 9-1-1 flow started.
 * `rejected` is permanent; `failed`, no answer within the ack timeout, or no connection are retryable, and the
 * outbox resends the same alertId, which the bridge deduplicates.
 */
export class RelayRoute implements AlertRoute {
  readonly name = 'relay';
  readonly #opts: RelayRouteOptions;
  readonly #log: Logger;
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #off: () => void;

  constructor(options: RelayRouteOptions) {
    this.#opts = options;
    this.#log = options.logger;
    this.#off = options.link.onStatus((s) => this.#onStatus(s));
  }

  /** Detaches from the link; sends still waiting fail as retryable. */
  stop(): void {
    this.#off();
    for (const set of [...this.#waiters.values()]) {
      for (const w of [...set]) w.fail(new RelayUnavailableError('the relay is stopping'));
    }
    this.#waiters.clear();
  }

  /** Alerts waiting for their end-to-end answer. */
  pending(): number {
    return this.#waiters.size;
  }

  send(alert: AlertSnapshot, signal?: AbortSignal): Promise<TriggerResult> {
    const message = toAlertMessage(alert);
    const size = encode(message).length;
    if (size > MAX_PAYLOAD_BYTES) {
      return Promise.reject(new RelayRejectedError('too_large', `alert is ${size} bytes, the relay takes at most ${MAX_PAYLOAD_BYTES}`));
    }
    if (!this.#opts.link.connected) return Promise.reject(new RelayUnavailableError());
    if (signal?.aborted) return Promise.reject(signal.reason as Error);

    const { clock, ackTimeoutMs } = this.#opts;
    const alertId = alert.alertId;
    return new Promise<TriggerResult>((resolve, reject) => {
      const waiter: Waiter = {
        accepted: false,
        onStatus: () => undefined,
        fail: (e) => {
          done();
          reject(e);
        },
      };
      const done = (): void => {
        clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const set = this.#waiters.get(alertId);
        set?.delete(waiter);
        if (set?.size === 0) this.#waiters.delete(alertId);
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason as Error);
      };
      const timer = clock.setTimeout(() => {
        done();
        reject(new RelayTimeoutError(ackTimeoutMs, waiter.accepted));
      }, ackTimeoutMs);
      waiter.onStatus = (status) => {
        switch (status.state) {
          case 'accepted':
            waiter.accepted = true;
            this.#log.debug({ alertId }, 'bridge accepted the alert');
            return;
          case 'triggered':
            done();
            resolve({ id: status.apiId ?? '', message: status.message ?? '' });
            return;
          case 'rejected':
            done();
            reject(new RelayRejectedError(status.reason ?? 'unspecified', status.message ?? ''));
            return;
          case 'failed':
            done();
            reject(new RelayFailedError(status.reason ?? 'unspecified', status.message ?? ''));
            return;
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.#waiters.get(alertId);
      if (!set) this.#waiters.set(alertId, (set = new Set()));
      set.add(waiter);
      this.#opts.link.publishAlert(message).catch((e: unknown) => {
        // Not sent at all (the connection went in between): fail now rather than at the ack timeout.
        // A publish that was sent but not yet acknowledged is kept and resent by the session instead.
        if (!set.has(waiter)) return;
        done();
        reject(new RelayUnavailableError(`alert not published: ${errorMessage(e)}`));
      });
    });
  }

  #onStatus(status: StatusMessage): void {
    const set = this.#waiters.get(status.alertId);
    if (!set) {
      this.#log.debug({ alertId: status.alertId, state: status.state }, 'status for an alert nobody waits on');
      return;
    }
    for (const w of [...set]) w.onStatus(status);
  }
}
