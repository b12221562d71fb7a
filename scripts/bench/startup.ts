// Cold start of the packaged agent: from exec to "armed" (READY=1 on a NOTIFY_SOCKET this bench holds, as
// systemd would), for the single executable and for `node dist/sos-agent.cjs`, with a bare `node -e 0` as the
// baseline in the same run, interleaved so that machine noise hits all three alike. Until `run` reaches
// READY=1 the figures are exec → exit of `--version` and their names say so. "Cold" means a new process;
// the files are in the page cache after the first run, as on a Pi that restarts its service.
// Also: the executable's size against the stripped Node binary it is built on.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Emulator } from '../../src/emulator/server.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { NotifyListener } from '../../test/support/notify-listener.ts';
import { BUNDLE_PATH, binaryPath, packageExecutables, strippedNodePath, type Target } from '../package.ts';
import { round, summarize, type BenchResult } from './result.ts';

const RUNS = 30;
const READY_TIMEOUT_MS = 15_000;
const MIB = 1024 * 1024;
const CLIENT_ID = 'bench-client';
const CLIENT_SECRET = 'bench-secret';

interface Subject {
  name: string;
  command: string;
  args: string[];
}

async function timeToExit(subject: Subject): Promise<number> {
  const t0 = performance.now();
  const child = spawn(subject.command, subject.args, { stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  const t1 = performance.now();
  if (code !== 0) throw new Error(`${subject.name} exited with ${code}`);
  return t1 - t0;
}

/** exec → READY=1 on the listener; then SIGTERM and wait for the exit so runs do not overlap. */
async function timeToReady(subject: Subject, listener: NotifyListener, env: NodeJS.ProcessEnv): Promise<number> {
  const from = listener.messages.length;
  const t0 = performance.now();
  const child: ChildProcess = spawn(subject.command, subject.args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 2000) stderr += d.toString();
  });
  const exited = once(child, 'exit');
  let timer: NodeJS.Timeout | undefined;
  try {
    const ready = await Promise.race([
      listener.waitFor('READY', from),
      exited.then(([code]) => Promise.reject(new Error(`${subject.name} exited with ${String(code)} before READY=1: ${stderr.trim()}`))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${subject.name}: no READY=1 within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      }),
    ]);
    return ready.at - t0;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  }
}

function agentConfig(dir: string, apiUrl: string): string {
  const fifo = join(dir, 'button');
  // The button as the gpio-key overlay makes it, but a FIFO: nobody presses it during the bench.
  spawnSync('mkfifo', [fifo]);
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    [
      'device: { id: bench-startup }',
      'caller: { full_name: Bench Person, phone_number: "6615555555" }',
      `api: { base_url: "${apiUrl}", client_id: ${CLIENT_ID}, client_secret: ${CLIENT_SECRET} }`,
      'gps: { source: static, latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 }',
      `button: { source: evdev, device: "${fifo}" }`,
      'feedback: { terminal: false }',
      `outbox: { path: "${join(dir, 'outbox.db')}" }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  return file;
}

export async function benchStartup(): Promise<BenchResult[]> {
  const target = process.arch as Target;
  if (process.platform !== 'linux' || (target !== 'x64' && target !== 'arm64')) throw new Error(`no executable for ${process.platform}-${process.arch}`);
  await packageExecutables({ ifStale: true });

  const node = process.execPath;
  const binary: Subject = { name: `sos-agent-linux-${target}`, command: binaryPath(target), args: [] };
  const bundle: Subject = { name: 'node dist/sos-agent.cjs', command: node, args: ['--disable-warning=ExperimentalWarning', BUNDLE_PATH] };
  const baseline: Subject = { name: 'node -e 0', command: node, args: ['-e', '0'] };

  const dir = mkdtempSync(join(tmpdir(), 'sos-bench-startup-'));
  const emulator = new Emulator({ host: '127.0.0.1', port: 0, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, logger: silentLogger() });
  const listener = new NotifyListener(join(dir, 'notify.sock'));
  const samples = new Map<Subject, number[]>([[baseline, []], [bundle, []], [binary, []]]);
  let mode: 'ready' | 'version' = 'version';
  try {
    await emulator.start();
    await listener.start();
    const config = agentConfig(dir, emulator.url);
    const runArgs = ['run', '--config', config];
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, NOTIFY_SOCKET: listener.address };
    try {
      await timeToReady({ ...binary, args: runArgs }, listener, env);
      mode = 'ready';
    } catch (e) {
      console.error(`startup: measuring --version instead of READY=1 (${e instanceof Error ? e.message : String(e)})`);
    }
    // One untimed round first: page cache and CPU frequency settle.
    for (let i = -1; i < RUNS; i++) {
      for (const [subject, list] of samples) {
        let ms: number;
        if (subject === baseline) ms = await timeToExit(subject);
        else if (mode === 'ready') ms = await timeToReady({ ...subject, args: [...subject.args, ...runArgs] }, listener, env);
        else ms = await timeToExit({ ...subject, args: [...subject.args, '--version'] });
        if (i >= 0) list.push(ms);
      }
    }
  } finally {
    await listener.stop();
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const base = summarize(samples.get(baseline)!);
  const what = mode === 'ready' ? 'exec → READY=1 (run, armed)' : 'exec → exit of --version (run does not reach READY=1 yet)';
  const results: BenchResult[] = [{ name: `startup: ${baseline.name}`, unit: 'ms', median: round(base.median, 1), p99: round(base.p99, 1), n: base.n }];
  for (const subject of [bundle, binary]) {
    const s = summarize(samples.get(subject)!);
    results.push({
      name: `startup: ${subject.name}, ${what}`,
      unit: 'ms',
      median: round(s.median, 1),
      p99: round(s.p99, 1),
      n: s.n,
      baseline: { name: baseline.name, median: round(base.median, 1), p99: round(base.p99, 1) },
      ratio: round(s.median / base.median, 2),
      target: mode === 'ready' ? 'median ≤ 300 ms to READY=1 (ratio = median / baseline median)' : 'ratio = median / baseline median',
    });
  }
  for (const t of ['x64', 'arm64'] as const) {
    const size = statSync(binaryPath(t)).size / MIB;
    const nodeSize = statSync(strippedNodePath(t)).size / MIB;
    results.push({
      name: `size: sos-agent-linux-${t}`,
      unit: 'MiB',
      median: round(size, 2),
      p99: round(size, 2),
      n: 1,
      baseline: { name: `stripped node ${process.version} linux-${t}`, median: round(nodeSize, 2), p99: round(nodeSize, 2) },
      ratio: round(size / nodeSize, 3),
      target: 'ratio = executable / the stripped Node it is built on',
    });
  }
  return results;
}

if (import.meta.main) {
  for (const r of await benchStartup()) process.stdout.write(`${JSON.stringify(r)}\n`);
}
