import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { AddressInfo, Socket } from 'node:net';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { EmergencyApiClient, type EmergencyApiClientOptions } from '../../src/api/client.ts';
import {
  ApiBadResponseError,
  ApiRejectedError,
  ApiTransientError,
  TokenFetchError,
  TokenRejectedError,
  retryHints,
} from '../../src/api/errors.ts';
import { DirectRoute } from '../../src/incident/direct-route.ts';
import { createAlert } from '../../src/incident/alert.ts';
import { commandLineInitiation } from '../../src/press/initiation.ts';
import { FakeClock, systemClock } from '../../src/shared/clock.ts';
import { createLogger } from '../../src/shared/logger.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { TEST_CLIENT_SECRET, startEmulator } from '../support/emulator.ts';

const SEED_VARIABLES = {
  caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
  location: { latitude: '39.285270', longitude: '-76.61247', uncertainty: '7' },
  vehicle_info: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
};
const FLOW = 'company_dataconnect_v1';

/**
 * Every client of this file logs at trace level into `logs`; every token it was granted and every error it threw
 * is recorded. After each test: none of them contains the secret or a token (invariant 5).
 */
let logs = '';
let tokensSeen: string[] = [];
let errorsSeen: unknown[] = [];
const clients: EmergencyApiClient[] = [];

function client(baseUrl: string, o: Partial<EmergencyApiClientOptions> = {}): EmergencyApiClient {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs += chunk.toString('utf8');
      done();
    },
  });
  const c = new EmergencyApiClient({
    baseUrl,
    clientId: 'test-client',
    clientSecret: TEST_CLIENT_SECRET,
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
    tokenMarginMs: 120_000,
    clock: systemClock,
    logger: createLogger({ level: 'trace', destination: sink }),
    ...o,
  });
  const fetchToken = c.fetchToken.bind(c);
  c.fetchToken = async () => {
    const grant = await fetchToken();
    tokensSeen.push(grant.accessToken);
    return grant;
  };
  clients.push(c);
  return c;
}

/** The error a promise rejects with (recorded for the leak check). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    errorsSeen.push(e);
    return e;
  }
  throw new Error('expected a failure, got success');
}

function errorTexts(e: unknown, depth = 0): string[] {
  if (depth > 5 || !(e instanceof Error)) return [];
  return [e.message, e.stack ?? '', ...errorTexts(e.cause, depth + 1)];
}

beforeEach(() => {
  logs = '';
  tokensSeen = [];
  errorsSeen = [];
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  const texts = [logs, ...errorsSeen.flatMap((e) => errorTexts(e))];
  for (const text of texts) {
    expect(text).not.toContain(TEST_CLIENT_SECRET);
    for (const token of tokensSeen) expect(text).not.toContain(token);
  }
});

describe('EmergencyApiClient against the emulator', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu.stop();
  });
  beforeEach(() => {
    emu.clearFaults();
    emu.clearTriggers();
  });

  it('triggers the callflow with one token for many alerts, and the emulator has exactly what was sent', async () => {
    const c = client(emu.url);
    const before = emu.stats();
    const results = await Promise.all([1, 2, 3].map(() => c.trigger(FLOW, SEED_VARIABLES)));
    const accepted = emu.triggers();
    expect(accepted.map((t) => t.id).sort()).toEqual(results.map((r) => r.id).sort());
    expect(accepted[0]).toMatchObject({ callflow: FLOW, variables: SEED_VARIABLES });
    expect(emu.stats().tokenRequests - before.tokenRequests).toBe(1);
    expect(logs).toContain('token granted'); // the leak check below is not vacuous
  });

  it('DirectRoute delivers an alert made from a press, in the seed shape', async () => {
    const route = new DirectRoute(client(emu.url), {});
    const now = Date.now();
    const alert = createAlert(
      commandLineInitiation(now, false),
      { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, fix_time: now, age_ms: 0, stale: false, source: 'static' },
      {
        deviceId: 'truck-042',
        caller: { full_name: 'Joe User', phone_number: '6615555555' },
        vehicle: {},
        callflow: { name: FLOW, test_name: null },
      },
    );
    const result = await route.send(alert);
    expect(emu.triggers()).toEqual([
      expect.objectContaining({
        id: result.id,
        variables: {
          caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
          location: { latitude: '39.285270', longitude: '-76.612470', uncertainty: '7' },
        },
      }),
    ]);
  });

  describe('each emulator fault gives the error class the outbox retries on', () => {
    it('200 with code -1 → transient, ambiguous (the API may have started something)', async () => {
      emu.addFault({ target: 'trigger', status: 200, code: -1 });
      const e = (await failure(client(emu.url).trigger(FLOW, SEED_VARIABLES))) as ApiTransientError;
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ status: 200, apiCode: -1, ambiguous: true, retryable: true });
    });

    it('500 → transient, ambiguous', async () => {
      emu.addFault({ target: 'trigger', status: 500 });
      const e = await failure(client(emu.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ status: 500, apiCode: -1, ambiguous: true });
    });

    it('503 with Retry-After → transient, not ambiguous, with the delay the server asked for', async () => {
      emu.addFault({ target: 'trigger', status: 503, retryAfter: 7 });
      const e = await failure(client(emu.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(retryHints(e)).toEqual({ retryable: true, retryAfterMs: 7000, ambiguous: false });
    });

    it('429 with Retry-After → transient, not ambiguous', async () => {
      emu.addFault({ target: 'trigger', status: 429, retryAfter: 2 });
      const e = await failure(client(emu.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ status: 429, retryAfterMs: 2000, ambiguous: false });
    });

    it('400 with code -2 → permanent ApiRejectedError', async () => {
      emu.addFault({ target: 'trigger', status: 400, code: -2 });
      const e = await failure(client(emu.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiRejectedError);
      expect(e).toMatchObject({ status: 400, apiCode: -2, retryable: false });
    });

    it('a missing required variable or an unknown callflow → ApiRejectedError naming the problem, nothing started', async () => {
      const c = client(emu.url);
      const missing = (await failure(c.trigger(FLOW, { caller_info: SEED_VARIABLES.caller_info }))) as ApiRejectedError;
      expect(missing).toBeInstanceOf(ApiRejectedError);
      expect(missing.message).toContain('location.latitude');
      const unknown = (await failure(c.trigger('no_such_flow', SEED_VARIABLES))) as ApiRejectedError;
      expect(unknown).toMatchObject({ status: 400, apiCode: -2 });
      expect(unknown.message).toContain('no_such_flow');
      expect(emu.triggers()).toEqual([]);
    });

    it('dropped connection → transient, ambiguous', async () => {
      const c = client(emu.url);
      await c.probe();
      emu.addFault({ target: 'trigger', drop: true });
      const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ ambiguous: true, retryable: true });
    });

    it('an answer slower than responseTimeoutMs → transient, ambiguous (and the flow did start)', async () => {
      const c = client(emu.url, { responseTimeoutMs: 300 });
      await c.probe();
      emu.addFault({ target: 'trigger', delayMs: 3000 });
      const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ ambiguous: true });
      // Why "ambiguous" matters: the request reached the API, which acted on it.
      expect(emu.triggers()).toHaveLength(1);
    });

    it('an abort by the caller while waiting for the answer → transient, ambiguous', async () => {
      const c = client(emu.url);
      await c.probe();
      emu.addFault({ target: 'trigger', delayMs: 3000 });
      const ac = new AbortController();
      const arrived = serverSees('/v1/rem/trigger');
      const p = c.trigger(FLOW, SEED_VARIABLES, { signal: ac.signal });
      await arrived;
      ac.abort();
      const e = await failure(p);
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ ambiguous: true });
    });

    it('token endpoint failing → retryable TokenFetchError, and no trigger is sent', async () => {
      const before = emu.stats();
      emu.addFault({ target: 'token', status: 503, retryAfter: 5 });
      const e = await failure(client(emu.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(TokenFetchError);
      expect(e).toMatchObject({ status: 503, retryAfterMs: 5000, retryable: true });
      expect(emu.stats().triggerRequests).toBe(before.triggerRequests);
    });

    it('token request dropped → retryable TokenFetchError', async () => {
      emu.addFault({ target: 'token', drop: true });
      const e = await failure(client(emu.url).probe());
      expect(e).toBeInstanceOf(TokenFetchError);
    });

    it('bad credentials → permanent TokenRejectedError, and the token health says failing', async () => {
      const c = client(emu.url, { clientSecret: 'wrong-secret' });
      const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(TokenRejectedError);
      expect(e).toMatchObject({ status: 401, retryable: false });
      expect(c.tokens.health.state).toBe('failing');
      expect(logs).not.toContain('wrong-secret');
    });

    it('tokens expired mid-stream → one refresh, one retry, success', async () => {
      const c = client(emu.url);
      await c.trigger(FLOW, SEED_VARIABLES);
      const before = emu.stats();
      emu.expireTokens();
      await c.trigger(FLOW, SEED_VARIABLES);
      const after = emu.stats();
      expect(after.tokenRequests - before.tokenRequests).toBe(1);
      expect(after.triggerRequests - before.triggerRequests).toBe(2);
      expect(emu.triggers()).toHaveLength(2);
    });

    it('401 again with the fresh token → permanent ApiRejectedError after exactly one retry', async () => {
      const c = client(emu.url);
      await c.probe();
      const before = emu.stats();
      emu.addFault({ target: 'trigger', status: 401, times: 2 });
      const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiRejectedError);
      expect(e).toMatchObject({ status: 401 });
      expect(emu.stats().triggerRequests - before.triggerRequests).toBe(2);
      expect(emu.stats().tokenRequests - before.tokenRequests).toBe(1);
    });
  });

  it('start() warms a token in the background; probe() then needs no request', async () => {
    const c = client(emu.url);
    const before = emu.stats().tokenRequests;
    const ok = once(c.tokens, 'health');
    await c.start();
    expect(await ok).toEqual([expect.objectContaining({ state: 'ok' })]);
    await c.probe();
    expect(emu.stats().tokenRequests - before).toBe(1);
  });
});

describe('Apigee-style token answers (issued_at in ms, numbers as strings)', () => {
  it('are understood: the token is reused, then refreshed before it expires, never used expired', async () => {
    const clock = new FakeClock(Date.now());
    const emu = await startEmulator({ issuedAtUnit: 'ms', numbersAsStrings: true, tokenTtlS: 600, clock });
    try {
      const c = client(emu.url, { clock, tokenMarginMs: 60_000 });
      await c.trigger(FLOW, SEED_VARIABLES);
      clock.advance(500_000);
      await c.trigger(FLOW, SEED_VARIABLES);
      expect(emu.stats()).toMatchObject({ tokenRequests: 1, triggerRequests: 2 });
      clock.advance(41_000); // inside the margin: a fresh token before the old one dies
      await c.trigger(FLOW, SEED_VARIABLES);
      expect(emu.stats()).toMatchObject({ tokenRequests: 2, triggerRequests: 3, accepted: 3 });
    } finally {
      await emu.stop();
    }
  });

  it('a full Apigee body with its extra fields works', async () => {
    const issued = Date.now();
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') {
        json(res, 200, {
          refresh_token_expires_in: '0',
          api_product_list: '[Emergency WorkFlow API]',
          organization_name: 'rapidsos',
          'developer.email': 'dev@example.com',
          token_type: 'BearerToken',
          issued_at: String(issued),
          client_id: 'test-client',
          access_token: 'apigee-token-abcdef',
          application_name: 'b6f1',
          scope: '',
          expires_in: '3599',
          refresh_count: '0',
          status: 'approved',
        });
      } else {
        json(res, 200, { code: '0', id: 'exec-7', message: 'ok' });
      }
    });
    try {
      tokensSeen.push('apigee-token-abcdef');
      expect(await client(server.url).trigger(FLOW, SEED_VARIABLES)).toEqual({ id: 'exec-7', message: 'ok' });
    } finally {
      await server.close();
    }
  });
});

describe('the way to the API', () => {
  it('connection refused before any token → retryable TokenFetchError (nothing was sent)', async () => {
    const port = await closedPort();
    const e = await failure(client(`http://127.0.0.1:${port}`).trigger(FLOW, SEED_VARIABLES));
    expect(e).toBeInstanceOf(TokenFetchError);
    expect((e as Error).message).toContain('connection refused');
  });

  it('connection refused on the trigger (server gone after the token) → transient, NOT ambiguous', async () => {
    const server = await tinyServer((path, res) => {
      // Connection: close, so the refused connect below is not a reused keep-alive socket.
      json(res, 200, { access_token: 'tok-refused-case', issued_at: Math.floor(Date.now() / 1000), expires_in: 3600 }, { connection: 'close' });
    });
    const c = client(server.url);
    await c.probe();
    await server.close();
    const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
    expect(e).toBeInstanceOf(ApiTransientError);
    expect(e).toMatchObject({ ambiguous: false, retryable: true });
  });

  it('a 2xx page that is not the API (captive portal) → ApiBadResponseError', async () => {
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') json(res, 200, { access_token: 'tok-portal-case', expires_in: 3600 });
      else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>Accept the terms to use this Wi-Fi</body></html>');
      }
    });
    try {
      const e = await failure(client(server.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiBadResponseError);
      expect(e).toMatchObject({ retryable: true, ambiguous: true });
    } finally {
      await server.close();
    }
  });

  it('keeps a base URL path prefix', async () => {
    const paths: string[] = [];
    const server = await tinyServer((path, res) => {
      paths.push(path);
      if (path.endsWith('/oauth/token')) json(res, 200, { access_token: 'tok-prefix-case' });
      else json(res, 200, { code: 0, id: 'x', message: '' });
    });
    try {
      await client(`${server.url}/gw/`).trigger(FLOW, SEED_VARIABLES);
      expect(paths).toEqual(['/gw/oauth/token', '/gw/v1/rem/trigger']);
    } finally {
      await server.close();
    }
  });

  it('an answer over 64 KiB is not the API\'s: trigger → ApiBadResponseError (ambiguous), token → TokenFetchError', async () => {
    let bigToken = false;
    const padding = 'x'.repeat(70 * 1024);
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') json(res, 200, { access_token: 'tok-big-case', expires_in: 3600, ...(bigToken ? { padding } : {}) });
      else json(res, 200, { code: 0, id: 'exec-big', message: padding });
    });
    try {
      const e = await failure(client(server.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiBadResponseError);
      expect(e).toMatchObject({ status: 200, ambiguous: true, retryable: true });
      bigToken = true;
      expect(await failure(client(server.url).probe())).toBeInstanceOf(TokenFetchError);
    } finally {
      await server.close();
    }
  });

  it('an answer that stalls mid-body → transient, ambiguous, after responseTimeoutMs of silence', async () => {
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') return json(res, 200, { access_token: 'tok-stall-case', expires_in: 3600 });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"code":0,');
    });
    try {
      const c = client(server.url, { responseTimeoutMs: 200 });
      await c.probe();
      const started = performance.now();
      const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ ambiguous: true, retryable: true });
      expect((e as Error).message).toContain('answer stalled');
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await server.close();
    }
  });

  it('an answer slower than responseTimeoutMs is given up within about that time', async () => {
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') json(res, 200, { access_token: 'tok-slow-case', expires_in: 3600 });
      // the trigger is never answered
    });
    try {
      const c = client(server.url, { responseTimeoutMs: 200 });
      await c.probe();
      const started = performance.now();
      const e = await failure(c.trigger(FLOW, SEED_VARIABLES));
      const ms = performance.now() - started;
      expect(e).toMatchObject({ ambiguous: true });
      expect((e as Error).message).toContain('no answer in time');
      expect(ms).toBeGreaterThanOrEqual(190);
      expect(ms).toBeLessThan(1000);
    } finally {
      await server.close();
    }
  });

  it('a redirect is not followed: the token never goes to its Location', async () => {
    const paths: string[] = [];
    const server = await tinyServer((path, res) => {
      paths.push(path);
      if (path === '/oauth/token') json(res, 200, { access_token: 'tok-redirect-case', expires_in: 3600 });
      else {
        res.writeHead(307, { location: '/elsewhere/v1/rem/trigger' });
        res.end();
      }
    });
    try {
      const e = await failure(client(server.url).trigger(FLOW, SEED_VARIABLES));
      expect(e).toBeInstanceOf(ApiBadResponseError);
      expect(e).toMatchObject({ status: 307 });
      expect(paths).toEqual(['/oauth/token', '/v1/rem/trigger']);
    } finally {
      await server.close();
    }
  });

  it('one kept-alive connection carries the token and every trigger; stop() closes it', async () => {
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') json(res, 200, { access_token: 'tok-keepalive-case', expires_in: 3600 });
      else json(res, 200, { code: 0, id: 'x', message: '' });
    });
    try {
      const closed = new Promise<void>((resolve) => server.server.once('connection', (socket: Socket) => socket.once('close', () => resolve())));
      const c = client(server.url);
      for (let i = 0; i < 5; i++) await c.trigger(FLOW, SEED_VARIABLES);
      expect(server.connections()).toBe(1);
      await c.stop();
      await closed; // the server saw the connection end: no socket left open behind a stopped client
    } finally {
      await server.close();
    }
  });

  it('keeps maxIdleSockets connections between bursts (the bridge: max_in_flight), only 4 by default', async () => {
    const burst = 12;
    let held: (() => void)[] = [];
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') return json(res, 200, { access_token: 'tok-idle-case', expires_in: 3600 });
      // Answer a burst only once all of it has arrived, so every request of it needs a connection of its own.
      held.push(() => json(res, 200, { code: 0, id: 'x', message: '' }));
      if (held.length === burst) for (const answer of held.splice(0)) answer();
    });
    try {
      const connectionsFor = async (c: EmergencyApiClient): Promise<number[]> => {
        held = [];
        await c.probe();
        const counts: number[] = [];
        for (let round = 0; round < 2; round++) {
          const before = server.connections();
          await Promise.all(Array.from({ length: burst }, () => c.trigger(FLOW, SEED_VARIABLES)));
          counts.push(server.connections() - before);
        }
        await c.stop();
        return counts;
      };
      // The first burst opens a connection per request beyond the token's; the second reuses what was kept.
      expect(await connectionsFor(client(server.url, { maxIdleSockets: burst }))).toEqual([burst - 1, 0]);
      expect(await connectionsFor(client(server.url))).toEqual([burst - 1, burst - 4]);
    } finally {
      await server.close();
    }
  });

  it('stop() lets a request in flight finish, then refuses new ones until start()', async () => {
    let release: () => void = () => undefined;
    const server = await tinyServer((path, res) => {
      if (path === '/oauth/token') json(res, 200, { access_token: 'tok-stop-case', expires_in: 3600 });
      else release = () => json(res, 200, { code: 0, id: 'exec-late', message: '' });
    });
    try {
      const c = client(server.url);
      await c.probe();
      const arrived = serverSees('/v1/rem/trigger');
      const inFlight = c.trigger(FLOW, SEED_VARIABLES);
      await arrived;
      let stopped = false;
      const stopping = c.stop().then(() => (stopped = true));
      await new Promise((r) => setImmediate(r));
      expect(stopped).toBe(false);
      release();
      expect(await inFlight).toEqual({ id: 'exec-late', message: '' });
      await stopping;
      const e = await failure(c.fetchToken());
      expect(e).toBeInstanceOf(TokenFetchError);
      expect((e as Error).message).toContain('client stopped');
      await c.start();
      await c.probe();
    } finally {
      await server.close();
    }
  });
});

interface Tiny {
  url: string;
  server: Server;
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Resolves when an HTTP server of this process starts a request for `path` (its headers are parsed). */
function serverSees(path: string): Promise<void> {
  return new Promise((resolve) => {
    const onStart = (message: unknown) => {
      if ((message as { request: IncomingMessage }).request.url !== path) return;
      unsubscribe('http.server.request.start', onStart);
      resolve();
    };
    subscribe('http.server.request.start', onStart);
  });
}

async function tinyServer(handle: (path: string, res: import('node:http').ServerResponse) => void): Promise<Tiny> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handle(req.url ?? '/', res));
  });
  let connections = 0;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
