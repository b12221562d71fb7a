import { ErrorCodes, SosError } from '../shared/errors.ts';

/**
 * How a relayed alert can fail, as the outbox sees it. Retrying through the relay is always safe (the bridge
 * drops repeats of an alertId), so none of these is `ambiguous` for the relay itself; `bridgeAccepted` tells a
 * fallback route that the bridge holds the alert, so going direct as well may start a second flow.
 */

/** The bridge refused the alert for good (bad payload, unknown device, the API refused it). */
export class RelayRejectedError extends SosError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(ErrorCodes.RELAY_REJECTED, `bridge rejected the alert (${reason})${message ? `: ${message}` : ''}`, { retryable: false });
    this.name = 'RelayRejectedError';
    this.reason = reason;
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
