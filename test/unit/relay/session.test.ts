import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttSession } from '../../../src/relay/session.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';

/** A TCP server that takes each connection and hangs up at once: a broker that is down, but countable. */
async function slammingServer(): Promise<{ server: Server; port: number; connections: () => number; next: () => Promise<void> }> {
  let count = 0;
  let waiter: (() => void) | null = null;
  const server = createServer((socket: Socket) => {
    count++;
    socket.destroy();
    waiter?.();
    waiter = null;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, connections: () => count, next: () => new Promise((r) => (waiter = r)) };
}

describe('MqttSession reconnects', () => {
  const servers: Server[] = [];
  const sessions: MqttSession[] = [];
  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.stop();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('with capped exponential backoff and full jitter, so a fleet does not come back in step', async () => {
    const broker = await slammingServer();
    servers.push(broker.server);
    const clock = new FakeClock();
    const session = new MqttSession({
      endpoint: { url: `mqtt://127.0.0.1:${broker.port}`, clientId: 'truck-042', keepaliveS: 30 },
      subscriptions: [],
      reconnect: { baseMs: 1000, capMs: 4000 },
      clock,
      logger: silentLogger(),
      random: () => 0.5,
    });
    sessions.push(session);
    const first = broker.next();
    await session.start();
    await first;
    // Waits (with random = 0.5): 500, 1000, 2000, then capped at 4000 → 2000.
    for (const wait of [500, 1000, 2000, 2000]) {
      await waitForTimer(clock);
      const next = broker.next();
      const before = broker.connections();
      clock.advance(wait - 1);
      expect(clock.pending()).toBe(1);
      clock.advance(1);
      expect(clock.pending()).toBe(0);
      await next;
      expect(broker.connections()).toBe(before + 1);
    }
    expect(session.connected).toBe(false);
  });

  it('stop() cancels a pending reconnect', async () => {
    const broker = await slammingServer();
    servers.push(broker.server);
    const clock = new FakeClock();
    const session = new MqttSession({
      endpoint: { url: `mqtt://127.0.0.1:${broker.port}`, clientId: 'truck-042', keepaliveS: 30 },
      subscriptions: [],
      clock,
      logger: silentLogger(),
    });
    const first = broker.next();
    await session.start();
    await first;
    await waitForTimer(clock);
    await session.stop();
    expect(clock.pending()).toBe(0);
    clock.advance(60_000);
    expect(broker.connections()).toBe(1);
  });
});

/** The close that schedules the reconnect arrives over the socket; wait for it (an event, not a fixed sleep). */
async function waitForTimer(clock: FakeClock): Promise<void> {
  for (let i = 0; i < 1000 && clock.pending() === 0; i++) await new Promise((r) => setImmediate(r));
  expect(clock.pending()).toBe(1);
}
