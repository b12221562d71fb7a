import type { AlertRoute, AlertSnapshot, TriggerResult } from '../incident/types.ts';
import type { Logger } from '../shared/logger.ts';
import { ErrorCodes, errorMessage, isSosError } from '../shared/errors.ts';
import { RelayRejectedError } from './errors.ts';

/**
 * True when a failure is the API's verdict on this alert (it refused the alert itself): another way to the
 * same API would be refused too. Everything else (timeouts, a dead broker, a bridge that does not know this
 * device, credentials the device lacks) is about the way, not the alert, and another way may get through.
 */
export function isVerdictOnAlert(e: unknown): boolean {
  if (e instanceof RelayRejectedError) return e.reason === 'api_rejected';
  return isSosError(e) && e.code === ErrorCodes.API_REJECTED;
}

export interface FallbackRouteOptions {
  primary: AlertRoute;
  /** null when the device has no second way (e.g. relay_then_direct without API credentials). */
  secondary: AlertRoute | null;
  logger: Logger;
}

/**
 * `relay_then_direct` / `direct_then_relay`: the first way, then on a failure about the way (not the alert)
 * the second. The person sees the same feedback either way; the log says which way the alert went.
 * When the second way also fails, the error the outbox sees is retryable unless the API refused the alert,
 * so a device whose second way is misconfigured keeps retrying instead of giving up on an SOS.
 */
export class FallbackRoute implements AlertRoute {
  readonly name: string;
  readonly #opts: FallbackRouteOptions;

  constructor(options: FallbackRouteOptions) {
    this.#opts = options;
    this.name = options.secondary ? `${options.primary.name}_then_${options.secondary.name}` : options.primary.name;
  }

  async send(alert: AlertSnapshot, signal?: AbortSignal): Promise<TriggerResult> {
    const { primary, secondary, logger } = this.#opts;
    const log = logger.child({ alertId: alert.alertId });
    let first: unknown;
    try {
      const result = await primary.send(alert, signal);
      log.info({ via: primary.name }, `alert delivered via ${primary.name}`);
      return result;
    } catch (e) {
      first = e;
    }
    if (!secondary || isVerdictOnAlert(first) || signal?.aborted) throw first;
    if ((first as { bridgeAccepted?: boolean }).bridgeAccepted === true) {
      // The bridge has the alert and is still working on it (its own API retries outlast our ack timeout):
      // going direct now could start a second flow. Retry the same way; the bridge answers a resend of the same
      // alertId from its dedupe store, says `failed` if it gives up (then we fall back), or, if it died, a
      // later attempt finds no bridge accepting and falls back then.
      log.warn({ via: primary.name, err: errorMessage(first) }, `the bridge accepted the alert and has not answered yet: waiting for it, not falling back to ${secondary.name}`);
      throw first;
    }
    log.warn({ from: primary.name, to: secondary.name, code: isSosError(first) ? first.code : undefined, err: errorMessage(first) }, `falling back to ${secondary.name}`);
    try {
      const result = await secondary.send(alert, signal);
      log.info({ via: secondary.name }, `alert delivered via ${secondary.name} (fallback)`);
      return result;
    } catch (second) {
      log.warn({ via: secondary.name, err: errorMessage(second) }, `fallback ${secondary.name} failed too`);
      if (isVerdictOnAlert(second)) throw second;
      // A second way that is broken for good (no credentials) must not turn a retryable first failure final.
      throw isSosError(second) && second.retryable ? second : first;
    }
  }
}

export type RouteName = 'direct' | 'relay' | 'relay_then_direct' | 'direct_then_relay';

/** Builds the configured route from the ways the device has (`direct` is null without API credentials). */
export function composeRoute(route: RouteName, ways: { direct: AlertRoute | null; relay: AlertRoute | null }, logger: Logger): AlertRoute {
  const need = (way: AlertRoute | null, what: string): AlertRoute => {
    if (!way) throw new Error(`route "${route}" needs the ${what} way, which is not configured`);
    return way;
  };
  switch (route) {
    case 'direct':
      return need(ways.direct, 'direct');
    case 'relay':
      return need(ways.relay, 'relay');
    case 'relay_then_direct':
      return new FallbackRoute({ primary: need(ways.relay, 'relay'), secondary: ways.direct, logger });
    case 'direct_then_relay':
      return new FallbackRoute({ primary: need(ways.direct, 'direct'), secondary: ways.relay, logger });
  }
}
