import { ErrorCodes, SosError } from '../shared/errors.ts';

/**
 * How a relayed alert can fail, as the outbox sees it. Retrying through the relay is always safe (the bridge
 * drops repeats of an alertId), so none of these is `ambiguous` for the relay itself; `bridgeAccepted` tells a
 * fallback route that the bridge holds the alert, so going direct as well may start a second flow.
 */

/**
 * Rejections that say the bridge is not set up for this device yet (its registry), not that the alert is bad:
 * the registry is read when a bridge starts and may differ between bridges during a deploy. The alert stays
 * queued and is retried slowly (invariant 2), and a fallback route may go direct meanwhile.
 */
const BRIDGE_SETUP_REASONS = new Set(['unknown_device', 'no_caller']);
const BRIDGE_SETUP_RETRY_MS = 60_000;

/** The bridge refused the alert: for good (bad payload, the API refused it), or until its setup is fixed. */
export class RelayRejectedError extends SosError {
  readonly reason: string;
  /** Set for a rejection about the bridge's setup, which is retried (see BRIDGE_SETUP_REASONS). */
  readonly retryAfterMs: number | undefined;
  constructor(reason: string, message: string) {
    const setup = BRIDGE_SETUP_REASONS.has(reason);
    super(ErrorCodes.RELAY_REJECTED, `bridge rejected the alert (${reason})${message ? `: ${message}` : ''}`, { retryable: setup });
    this.name = 'RelayRejectedError';
    this.reason = reason;
    this.retryAfterMs = setup ? BRIDGE_SETUP_RETRY_MS : undefined;
  }
}

/** No `triggered` within the ack timeout. */
export class RelayTimeoutError extends SosError {
  readonly bridgeAccepted: boolean;
  readonly ambiguous = false;
  constructor(timeoutMs: number, bridgeAccepted: boolean) {
    super(
      ErrorCodes.RELAY_TIMEOUT,
      `no answer from the bridge within ${timeoutMs} ms${bridgeAccepted ? ' (it had accepted the alert)' : ''}`,
      { retryable: true },
    );
    this.name = 'RelayTimeoutError';
    this.bridgeAccepted = bridgeAccepted;
  }
}

/** The bridge said `failed`: it could not get the alert triggered yet. */
export class RelayFailedError extends SosError {
  readonly reason: string;
  readonly bridgeAccepted = true;
  readonly ambiguous = false;
  constructor(reason: string, message: string) {
    super(ErrorCodes.RELAY_FAILED, `bridge could not trigger the alert (${reason})${message ? `: ${message}` : ''}`, { retryable: true });
    this.name = 'RelayFailedError';
    this.reason = reason;
  }
}

/** Not connected to the broker: fail at once so the outbox (or a fallback route) does not wait a full ack timeout. */
export class RelayUnavailableError extends SosError {
  readonly bridgeAccepted = false;
  readonly ambiguous = false;
  constructor(message = 'not connected to the MQTT broker') {
    super(ErrorCodes.RELAY_UNAVAILABLE, message, { retryable: true });
    this.name = 'RelayUnavailableError';
  }
}
