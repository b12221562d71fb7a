import { EmergencyApiClient } from '../../src/api/client.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { DirectRoute } from '../../src/incident/direct-route.ts';
import { DEFAULT_TEMPLATE } from '../../src/incident/variables.ts';
import { Outbox, type OutboxOptions } from '../../src/outbox/outbox.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import type { OutboxStore } from '../../src/outbox/store.ts';
import { systemClock, type Clock } from '../../src/shared/clock.ts';
import { silentLogger, type Logger } from '../../src/shared/logger.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from './emulator.ts';

/**
 * The seed's variables plus the alertId, so the emulator's list of accepted triggers says which alert each
 * one was: that is how duplicates (two 9-1-1 flows for one press) are counted.
 */
export const COUNTABLE_TEMPLATES = {
  company_dataconnect_v1: { variables: { ...DEFAULT_TEMPLATE, event_info: { alert_id: '{{alert.id}}' } } },
  company_test_v1: { variables: { ...DEFAULT_TEMPLATE, event_info: { alert_id: '{{alert.id}}' } } },
};

/** Accepted triggers per alertId, from the emulator's own record. */
export function triggersPerAlert(emulator: Pick<Emulator, 'triggers'>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of emulator.triggers()) {
    const id = (t.variables as { event_info?: { alert_id?: unknown } }).event_info?.alert_id;
    if (typeof id === 'string') counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

export interface DirectOutboxOptions {
  apiUrl: string;
  dbPath?: string;
  store?: OutboxStore;
  clock?: Clock;
  logger?: Logger;
  connectTimeoutMs?: number;
  responseTimeoutMs?: number;
  outbox?: Partial<OutboxOptions>;
}

export interface DirectOutbox {
  outbox: Outbox;
  client: EmergencyApiClient;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The direct path as the app wires it: SQLite outbox → DirectRoute → EmergencyApiClient, with a successful token
 * fetch telling the outbox that the way is back.
 */
export function directOutbox(o: DirectOutboxOptions): DirectOutbox {
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? silentLogger();
  const client = new EmergencyApiClient({
    baseUrl: o.apiUrl,
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    connectTimeoutMs: o.connectTimeoutMs ?? 1000,
    responseTimeoutMs: o.responseTimeoutMs ?? 2000,
    tokenMarginMs: 0,
    clock,
    logger,
  });
  if (!o.store && !o.dbPath) throw new Error('directOutbox: give dbPath or store');
  const store = o.store ?? new SqliteOutboxStore({ path: o.dbPath!, logger });
  const outbox = new Outbox({
    store,
    route: new DirectRoute(client, COUNTABLE_TEMPLATES),
    clock,
    logger: logger.child({ part: 'outbox' }),
    maxBackoffMs: 1000,
    alertMaxAgeMs: 3_600_000,
    baseBackoffMs: 50,
    ...o.outbox,
  });
  const onHealth = (h: { state: string }): void => {
    if (h.state === 'ok') outbox.wayIsBack();
  };
  return {
    outbox,
    client,
    async start() {
      await outbox.start();
      client.tokens.on('health', onHealth);
      await client.start();
    },
    async stop() {
      client.tokens.off('health', onHealth);
      await outbox.stop();
      await client.stop();
    },
  };
}
