import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Emulator } from '../../src/emulator/server.ts';
import type { AlertSnapshot } from '../../src/incident/types.ts';
import { SqliteOutboxStore } from '../../src/outbox/sqlite-store.ts';
import { REPO_ROOT } from './fixtures.ts';
import { makeAlert } from './outbox-alerts.ts';
import { triggersPerAlert } from './outbox-direct.ts';

/**
 * What the crash test kills and restarts. The default is test/support/outbox-child.ts, fed alerts on stdin;
 * test/support/agent-crash-subject.ts drives `sos-agent run` through a real button source instead.
 */
export interface CrashSubject {
  command(apiUrl: string, dbPath: string): { file: string; args: string[]; env?: NodeJS.ProcessEnv };
  /**
   * What raises this alert in a running life: the stdin line that does it, or a gesture the subject performs
   * itself (on a real button), resolving once the gesture is over or the life has ended.
   */
  press(alert: AlertSnapshot, life: CrashLife): string | Promise<void>;
  /** The alertId a stdout line confirms as committed ("queued" shown to the person), if any. */
  confirmed(line: string): string | undefined;
  /** The stdout line that says the process has started (its outbox recovered and delivering). */
  ready(line: string): boolean;
  /** The subject takes the alertId it is given, so an unconfirmed press can be fed again to the next run. */
  refeedUnconfirmed: boolean;
  /**
   * SIGKILL the whole process group (the process and the helpers it spawned, as a power cut
   * would) rather than the process alone.
   */
  killGroup?: boolean;
}

/** One life of the subject's process, as a subject's `press` sees it. */
export interface CrashLife {
  child: ChildProcess;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
  /** Resolves once the subject said it is ready; never if it dies first (race it with `exited`). */
  ready: Promise<void>;
  /** Every stdout line from now on, until the returned function is called. */
  onLine(listener: (line: string) => void): () => void;
}

export const NODE = join(REPO_ROOT, 'node_modules/.bin/node');

export const outboxChildSubject: CrashSubject = {
  command: (apiUrl, dbPath) => ({ file: NODE, args: [join(REPO_ROOT, 'test/support/outbox-child.ts'), '--api', apiUrl, '--db', dbPath] }),
  press: (alert) => JSON.stringify(alert),
  confirmed: (line) => /^queued (\S+)/.exec(line)?.[1],
  ready: (line) => line === 'ready',
  refeedUnconfirmed: true,
};

export interface CrashRunOptions {
  subject: CrashSubject;
  emulator: Emulator;
  dbPath: string;
  kills: number;
  /** New alerts pressed in each life of the process. */
  alertsPerLife: number;
  /** 'flap': faults and outages come and go; 'down': the emulator is stopped for every life before the last. */
  weather: 'flap' | 'down';
  random?: () => number;
  /** How long the last life may take to deliver everything. */
  deadlineMs?: number;
  /** The longest a life runs once ready, ms (default 750); a life killed while starting runs up to 500. */
  lifeMs?: number;
}

export interface CrashRunReport {
  kills: number;
  alerts: number;
  confirmed: number;
  delivered: number;
  /** Accepted triggers beyond the first, summed over alerts: extra 9-1-1 flows. */
  duplicates: number;
  /** Resends the outbox recorded as ambiguous (crash mid-send, no answer): every duplicate must be one of them. */
  ambiguousRecorded: number;
  /** Confirmed alerts not delivered, and records on file not delivered. */
  notDelivered: string[];
  /** The child's stdout and stderr of every life, for a failing test to show. */
  logs: string;
}

/** A free loopback port, so the emulator can be stopped and started again at the same address. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function spawnLife(o: CrashRunOptions, apiUrl: string, onLine: (line: string) => void, onLog: (s: string) => void): CrashLife {
  const { file, args, env } = o.subject.command(apiUrl, o.dbPath);
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: o.subject.killGroup === true });
  const listeners = new Set<(line: string) => void>();
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (o.subject.ready(line)) ready();
    onLine(line);
    for (const l of listeners) l(line);
  });
  child.stderr!.on('data', (d: Buffer) => onLog(d.toString()));
  // A killed child may leave a write to its stdin failing; that is the point of the test, not an error.
  child.stdin!.on('error', () => {});
  // 'close', not 'exit': every line the process wrote before it died has been read by then.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    exited,
    ready: isReady,
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

function kill(o: CrashRunOptions, life: CrashLife): void {
  if (o.subject.killGroup && life.child.pid !== undefined) {
    try {
      process.kill(-life.child.pid, 'SIGKILL');
      return;
    } catch {
      // The group is gone already; the process alone may still need it.
    }
  }
  life.child.kill('SIGKILL');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Kills the subject with SIGKILL at random moments while alerts are pressed and the emulator flaps (or is
 * down), restarts it each time, then lets a last life run with the emulator up until every confirmed alert is
 * delivered. Counts duplicates from the emulator's own list of accepted triggers.
 */
export async function runCrashTest(o: CrashRunOptions): Promise<CrashRunReport> {
  const random = o.random ?? Math.random;
  const apiUrl = o.emulator.url;
  const alerts: AlertSnapshot[] = [];
  const confirmed = new Set<string>();
  let logs = '';
  let up = true;
  const setUp = async (want: boolean): Promise<void> => {
    if (want === up) return;
    up = want;
    if (want) await o.emulator.start();
    else await o.emulator.stop();
  };

  const onLine = (line: string): void => {
    logs += `${line}\n`;
    const id = o.subject.confirmed(line);
    if (id) confirmed.add(id);
  };

  if (o.weather === 'down') await setUp(false);
  let flapping = o.weather === 'flap';
  const flapper = (async () => {
    while (flapping) {
      await sleep(50 + random() * 150);
      if (!flapping) break;
      const r = random();
      if (r < 0.15) {
        await setUp(false);
        await sleep(100 + random() * 300);
        if (flapping) await setUp(true);
      } else if (r < 0.35) o.emulator.addFault({ target: 'trigger', status: 503, times: 1 + Math.floor(random() * 3) });
      else if (r < 0.45) o.emulator.addFault({ target: 'trigger', drop: true });
      else if (r < 0.52) o.emulator.addFault({ target: 'trigger', delayMs: 1200 });
      else if (r < 0.6) o.emulator.addFault({ target: 'trigger', status: 500, code: -1 });
      else if (r < 0.68) o.emulator.addFault({ target: 'token', status: 503, times: 2 });
      else if (r < 0.75) o.emulator.expireTokens();
    }
  })();

  let t = Date.now();
  for (let k = 0; k < o.kills; k++) {
    const life = spawnLife(o, apiUrl, onLine, (s) => (logs += s));
    let over = false;
    void life.exited.then(() => (over = true));
    const press = (a: AlertSnapshot): Promise<void> | undefined => {
      const how = o.subject.press(a, life);
      if (typeof how !== 'string') return how;
      life.child.stdin!.write(`${how}\n`);
      return undefined;
    };
    if (o.subject.refeedUnconfirmed) for (const a of alerts) if (!confirmed.has(a.alertId)) void press(a);
    // A third of the kills land while the process starts and recovers; the rest while it delivers.
    const early = random() < 0.33;
    if (!early) await Promise.race([life.ready, life.exited, sleep(10_000)]);
    const lifeMs = early ? random() * 500 : 50 + random() * (o.lifeMs ?? 700);
    const pressAt = Array.from({ length: o.alertsPerLife }, () => random() * lifeMs).sort((a, b) => a - b);
    const start = Date.now();
    // Presses run beside the kill's timer: a gesture in progress is cut by the kill like any other moment.
    const pressing = (async () => {
      for (const at of pressAt) {
        await sleep(Math.max(0, at - (Date.now() - start)));
        if (over) return;
        const a = makeAlert((t += 1));
        alerts.push(a);
        await press(a);
      }
    })();
    await sleep(Math.max(0, lifeMs - (Date.now() - start)));
    kill(o, life);
    await life.exited;
    await pressing;
    logs += `--- SIGKILL ${k + 1} (${early ? 'starting' : 'running'}) ---\n`;
  }

  flapping = false;
  await flapper;
  o.emulator.clearFaults();
  await setUp(true);

  const last = spawnLife(o, apiUrl, onLine, (s) => (logs += s));
  if (o.subject.refeedUnconfirmed) {
    for (const a of alerts) {
      const how = confirmed.has(a.alertId) ? undefined : o.subject.press(a, last);
      if (typeof how === 'string') last.child.stdin!.write(`${how}\n`);
    }
  }
  const wanted = o.subject.refeedUnconfirmed ? alerts.map((a) => a.alertId) : [...confirmed];
  const deadline = Date.now() + (o.deadlineMs ?? 20_000);
  let notDelivered = wanted;
  while (Date.now() < deadline) {
    const counts = triggersPerAlert(o.emulator);
    const states = readStates(o.dbPath);
    notDelivered = wanted.filter((id) => !confirmed.has(id) || !counts.has(id) || states.get(id) !== 'delivered');
    // A record committed by a life killed before it said "queued" was never promised, but is on file: it goes too.
    for (const [id, state] of states) if (state !== 'delivered' && !notDelivered.includes(id)) notDelivered.push(id);
    if (notDelivered.length === 0) break;
    await sleep(100);
  }
  last.child.kill('SIGTERM');
  const force = setTimeout(() => kill(o, last), 10_000);
  await last.exited;
  clearTimeout(force);

  const counts = triggersPerAlert(o.emulator);
  const store = new SqliteOutboxStore({ path: o.dbPath, readOnly: true });
  store.open();
  const records = store.list();
  store.close();
  return {
    kills: o.kills,
    alerts: alerts.length,
    confirmed: confirmed.size,
    delivered: wanted.filter((id) => counts.has(id)).length,
    duplicates: [...counts.values()].reduce((sum, n) => sum + (n - 1), 0),
    ambiguousRecorded: records.reduce((sum, r) => sum + r.ambiguousRetries, 0),
    notDelivered,
    logs,
  };
}

/** Every record's state, as the CLI would read it beside the running process. */
function readStates(dbPath: string): Map<string, string> {
  const store = new SqliteOutboxStore({ path: dbPath, readOnly: true });
  try {
    store.open();
    return new Map(store.list().map((r) => [r.alertId, r.state]));
  } catch {
    return new Map();
  } finally {
    store.close();
  }
}
