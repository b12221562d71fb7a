import mqtt from 'mqtt';
import { EmergencyApiClient } from '../api/client.ts';
import { TokenRejectedError } from '../api/errors.ts';
import type { ApiConfig, RelayConfig } from '../config/agent-schema.ts';
import type { Clock } from '../shared/clock.ts';
import { errorMessage, isSosError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { clientOptions, safeBrokerUrl } from '../relay/mqtt-options.ts';
import type { CheckResult } from './supervisor.ts';

/**
 * One-shot probes of the far ends, for `sos-agent doctor`: a token from the API, and a connection to the
 * broker. Neither starts anything: a token request is not an alert, and the broker probe publishes nothing.
 */

/** Above this the device clock is called wrong: TLS certificate dates and token expiry both depend on it. */
export const CLOCK_SKEW_WARN_MS = 30_000;

export interface TokenProbe {
  token: CheckResult;
  /** Null when there is nothing to compare against (no token, or no `issued_at` in it). */
  skew: CheckResult | null;
}

/**
 * Fetches one token with the configured credentials, and compares the token's `issued_at` with this device's
 * clock at the middle of the request (issued_at has 1 s resolution when sent in seconds, so ±1 s is noise).
 */
export async function probeApiToken(api: ApiConfig, credentials: { clientId: string; clientSecret: string }, clock: Clock, logger: Logger, ca?: string): Promise<TokenProbe> {
  const client = new EmergencyApiClient({
    baseUrl: api.base_url,
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    connectTimeoutMs: api.connect_timeout_ms,
    responseTimeoutMs: api.response_timeout_ms,
    tokenMarginMs: api.token_margin_s * 1000,
    clock,
    logger,
    ca,
  });
  const sentWall = clock.now();
  const sentMono = clock.monotonic();
  try {
    const grant = await client.fetchToken();
    const ms = Math.round(clock.monotonic() - sentMono);
    const token: CheckResult = { ok: true, detail: `token from ${api.base_url} in ${ms} ms (valid ${Math.round(grant.expiresInMs / 1000)} s)` };
    if (grant.issuedAtMs === undefined) return { token, skew: null };
    const localMid = sentWall + (clock.now() - sentWall) / 2;
    return { token, skew: skewResult(localMid - grant.issuedAtMs) };
  } catch (e) {
    const code = isSosError(e) ? e.code : 'ERROR';
    const hint = e instanceof TokenRejectedError ? ': check api.client_id and the client secret (SOS_API_CLIENT_SECRET)' : '';
    return { token: { ok: false, detail: `${api.base_url}: ${errorMessage(e)} (${code})${hint}` }, skew: null };
  } finally {
    await client.stop().catch(() => undefined);
  }
}

/** `deltaMs` = this device's clock minus the API's. */
export function skewResult(deltaMs: number): CheckResult {
  const s = Math.abs(deltaMs) / 1000;
  const words = s < 1 ? 'within 1 s of the API' : `${s.toFixed(0)} s ${deltaMs > 0 ? 'ahead of' : 'behind'} the API`;
  if (Math.abs(deltaMs) > CLOCK_SKEW_WARN_MS) {
    return { ok: true, warn: true, detail: `device clock ${words} (token issued_at): fix NTP (timedatectl), or TLS and token expiry go wrong` };
  }
  return { ok: true, detail: `device clock ${words} (token issued_at)` };
}

/** Client id of the probe: not the device's own, so a running agent's connection and session are left alone. */
export function probeClientId(deviceId: string): string {
  return `${deviceId.slice(0, 57)}-doctor`;
}

/**
 * Connects to the broker with the device's credentials and TLS settings, then disconnects. A clean session
 * under its own client id: taking the device's id would kick a running agent off and wipe its session.
 */
export async function probeBroker(relay: RelayConfig, deviceId: string, timeoutMs: number, clock: Clock): Promise<CheckResult> {
  const url = safeBrokerUrl(relay.broker_url);
  const clientId = probeClientId(deviceId);
  let client: mqtt.MqttClient | undefined;
  const started = clock.monotonic();
  try {
    const base = await clientOptions({
      url: relay.broker_url,
      clientId,
      username: relay.username,
      password: relay.password,
      caFile: relay.ca_file,
      certFile: relay.cert_file,
      keyFile: relay.key_file,
      keepaliveS: relay.keepalive_s,
    });
    client = await mqtt.connectAsync(relay.broker_url, { ...base, clean: true, reconnectPeriod: 0, connectTimeout: timeoutMs }, false);
    return { ok: true, detail: `connected to ${url} as ${clientId} in ${Math.round(clock.monotonic() - started)} ms` };
  } catch (e) {
    return { ok: false, detail: `${url}: ${errorMessage(e)}` };
  } finally {
    if (client) await client.endAsync(true).catch(() => undefined);
  }
}
