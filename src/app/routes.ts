import type { EmergencyApiClient } from '../api/client.ts';
import type { AgentConfig } from '../config/agent-schema.ts';
import type { AlertRoute } from '../incident/types.ts';
import { composeRoute } from '../relay/fallback-route.ts';
import type { RelayLink } from '../relay/link.ts';
import type { RelayRoute } from '../relay/relay-route.ts';
import type { HealthSummary } from '../relay/wire.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';

/** The ways this device can reach the API, built from the config; only `app/` constructs them. */
export interface Ways {
  route: AlertRoute;
  client: EmergencyApiClient | null;
  link: RelayLink | null;
  relayRoute: RelayRoute | null;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface WaysDeps {
  clock: Clock;
  logger: Logger;
  health?: () => HealthSummary;
}

export function hasApiCredentials(config: AgentConfig): boolean {
  return Boolean(config.api.client_id && config.api.client_secret);
}

/**
 * Builds the direct client (when the device has credentials), the relay link (when configured), and the route.
 * The API client and MQTT.js (~18 MB of RSS) are loaded only when the config uses them: a Pi has little memory
 * to spare (measured in scripts/bench/agent.ts).
 */
export async function buildWays(config: AgentConfig, deps: WaysDeps): Promise<Ways> {
  const { clock, logger } = deps;
  let client: EmergencyApiClient | null = null;
  let direct: AlertRoute | null = null;
  if (hasApiCredentials(config)) {
    const [{ EmergencyApiClient }, { DirectRoute }] = await Promise.all([import('../api/client.ts'), import('../incident/direct-route.ts')]);
    client = new EmergencyApiClient({
      baseUrl: config.api.base_url,
      clientId: config.api.client_id!,
      clientSecret: config.api.client_secret!,
      connectTimeoutMs: config.api.connect_timeout_ms,
      responseTimeoutMs: config.api.response_timeout_ms,
      tokenMarginMs: config.api.token_margin_s * 1000,
      clock,
      logger,
    });
    direct = new DirectRoute(client, config.callflows);
  }
  let link: RelayLink | null = null;
  let relayRoute: RelayRoute | null = null;
  if (config.relay) {
    const [{ RelayLink }, { RelayRoute }] = await Promise.all([import('../relay/link.ts'), import('../relay/relay-route.ts')]);
    const relayLog = logger.child({ part: 'relay' });
    link = new RelayLink({ deviceId: config.device.id, relay: config.relay, clock, logger: relayLog, health: deps.health });
    relayRoute = new RelayRoute({ link, ackTimeoutMs: config.relay.ack_timeout_s * 1000, clock, logger: relayLog });
  }
  const route = composeRoute(config.route, { direct, relay: relayRoute }, logger.child({ part: 'route' }));
  return {
    route,
    client,
    link,
    relayRoute,
    async start() {
      await client?.start();
      await link?.start();
    },
    async stop() {
      relayRoute?.stop();
      await link?.stop();
      await client?.stop();
    },
  };
}
