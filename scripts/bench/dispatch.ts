// Dispatch latency: from handing a ready alert to the direct route until the emulator has the trigger request,
// warm token and connection, over 1,000 alerts; baseline in the same run: the seed's curl+jq flow against the
// same emulator. "Has the request" is stamped in the emulator's process at `http.server.request.start` (Node's
// diagnostics channel: the request line and headers are parsed), for the /v1/rem/trigger request only. The
// emulator runs in this process, so client and server share one event loop: the figure includes the server's
// share of the CPU and is an upper bound of the client's own cost. The round trip (answer back) is the second
// figure.
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { EmergencyApiClient } from '../../src/api/client.ts';
import { Emulator } from '../../src/emulator/server.ts';
import { createAlert } from '../../src/incident/alert.ts';
import { DirectRoute } from '../../src/incident/direct-route.ts';
import { commandLineInitiation } from '../../src/press/initiation.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { round, summarize, type BenchResult } from './result.ts';

const ALERTS = 1000;
const WARMUP = 100;
const SEED_RUNS = 50;
const CLIENT_ID = 'bench-client';
const CLIENT_SECRET = 'bench-secret';
const SEED_BODY =
  '{"callflow":"company_dataconnect_v1","variables":{"caller_info":{"full_name":"Joe User","phone_number":"6615555555"},"location":{"latitude":"39.285270","longitude":"-76.61247","uncertainty":"7"},"vehicle_info":{"make":"Ford","model":"Fiesta","color":"Red","license_plate":"ABC","license_plate_state":"MN"}}}';

export async function benchDispatch(): Promise<BenchResult[]> {
  const emulator = new Emulator({ host: '127.0.0.1', port: 0, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: silentLogger() });
  await emulator.start();
  let arrivedAt: number;
  const onRequest = (message: unknown) => {
    if ((message as { request: IncomingMessage }).request.url === '/v1/rem/trigger') arrivedAt = performance.now();
  };
  subscribe('http.server.request.start', onRequest);
  const client = new EmergencyApiClient({
    baseUrl: emulator.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    connectTimeoutMs: 3000,
    responseTimeoutMs: 15000,
    tokenMarginMs: 120_000,
    clock: systemClock,
    logger: silentLogger(),
  });
  try {
    await client.start();
    await client.probe();
    const route = new DirectRoute(client, {});
    const now = Date.now();
    const alert = createAlert(
      commandLineInitiation(now, false),
      { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, fix_time: now, age_ms: 0, stale: false, source: 'static' },
      {
        deviceId: 'bench-001',
        caller: { full_name: 'Joe User', phone_number: '6615555555' },
        vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
        callflow: { name: 'company_dataconnect_v1', test_name: null },
      },
    );

    for (let i = 0; i < WARMUP; i++) await route.send(alert);
    const toServer: number[] = [];
    const roundTrip: number[] = [];
    for (let i = 0; i < ALERTS; i++) {
      arrivedAt = NaN;
      const t0 = performance.now();
      await route.send(alert);
      const t1 = performance.now();
      if (Number.isNaN(arrivedAt)) throw new Error('the emulator did not see the trigger request');
      toServer.push(arrivedAt - t0);
      roundTrip.push(t1 - t0);
    }
    if (emulator.stats().accepted < WARMUP + ALERTS) throw new Error('not every alert was accepted');

    const seedToServer: number[] = [];
    const seedRoundTrip: number[] = [];
    for (let i = 0; i < SEED_RUNS; i++) {
      arrivedAt = NaN;
      const t0 = performance.now();
      await seedFlow(emulator.url);
      const t1 = performance.now();
      if (Number.isNaN(arrivedAt)) throw new Error('the seed flow did not reach the emulator');
      seedToServer.push(arrivedAt - t0);
      seedRoundTrip.push(t1 - t0);
    }
    if (emulator.stats().accepted < WARMUP + ALERTS + SEED_RUNS) throw new Error('the seed flow was not accepted by the emulator');

    return [
      figure('dispatch_to_emulator', toServer, seedToServer, 'p99 <= 5 ms and >= 20x faster than the seed flow (ratio = median / baseline median <= 0.05)'),
      figure('dispatch_round_trip', roundTrip, seedRoundTrip, 'informative: until the API answer is back (seed flow: until curl exits)'),
    ];
  } finally {
    unsubscribe('http.server.request.start', onRequest);
    await client.stop();
    await emulator.stop();
  }
}

function figure(name: string, samples: number[], seed: number[], target: string): BenchResult {
  const s = summarize(samples);
  const b = summarize(seed);
  return {
    name,
    unit: 'ms',
    median: round(s.median),
    p99: round(s.p99),
    n: s.n,
    baseline: { name: 'seed_curl_jq_flow', median: round(b.median), p99: round(b.p99) },
    ratio: round(s.median / b.median, 4),
    target,
  };
}

/** The seed's two commands, with the URLs filled in and the `&` its form data lacks. */
function seedFlow(base: string): Promise<void> {
  const script = [
    `access_token=$(curl -s --request POST "$BASE/oauth/token" --header 'content-type: application/x-www-form-urlencoded' --data "client_id=$CID&client_secret=$CSECRET&grant_type=client_credentials" | jq '.access_token' | tr -d '"')`,
    `curl -s -o /dev/null --request POST "$BASE/v1/rem/trigger" --header "authorization: Bearer $access_token" --header 'content-type: application/json' --data "$BODY"`,
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], {
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', BASE: base, CID: CLIENT_ID, CSECRET: CLIENT_SECRET, BODY: SEED_BODY },
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`seed flow exited with ${code}`))));
  });
}
