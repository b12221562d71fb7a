// CPU time and RSS of `sos-agent run` over 60 s: one agent replaying NMEA at 10 Hz, one idle with a static
// location, and a bare `node` process as the baseline, all three at once on the same machine. The agents run
// the esbuild bundle, the same code the single executable carries (type stripping of the sources costs
// ~35 MB more RSS in a checkout; that is not what runs on a device).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle as buildBundle } from '../package.ts';
import { stringify } from 'yaml';
import { Emulator } from '../../src/emulator/server.ts';
import { round, summarize, type BenchResult } from './result.ts';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const WINDOW_MS = Number(process.env.SOS_BENCH_AGENT_MS ?? 60_000);
const WARMUP_MS = 5_000;
const TICKS_PER_S = 100; // USER_HZ on Linux

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function config(dir: string, apiUrl: string, gps: object): string {
  const file = join(dir, `agent-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    stringify({
      device: { id: 'bench-truck' },
      caller: { full_name: 'Joe User', phone_number: '6615555555' },
      api: { base_url: apiUrl, client_id: 'bench', client_secret: 'bench-secret' },
      gps,
      button: { source: 'terminal' },
      feedback: { terminal: false },
      outbox: { path: join(dir, `${Math.random().toString(36).slice(2)}.db`) },
      log: { level: 'warn' },
    }),
  );
  return file;
}

function start(args: string[]): ChildProcess {
  return spawn(NODE, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` } });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchAgent(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sos-bench-agent-'));
  const bundle = join(dir, 'sos-agent.cjs');
  await buildBundle(bundle);
  const emulator = new Emulator({ clientId: 'bench', clientSecret: 'bench-secret', port: 0 });
  await emulator.start();
  const replay = { source: 'replay', file: join(ROOT, 'config/demo-track.nmea'), rate: 10, loop: true };
  const still = { source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 };
  const procs = {
    replay: start(['--disable-warning=ExperimentalWarning', bundle, 'run', '--config', config(dir, emulator.url, replay)]),
    idle: start(['--disable-warning=ExperimentalWarning', bundle, 'run', '--config', config(dir, emulator.url, still)]),
    baseline: start(['-e', 'setInterval(() => {}, 1000)']),
  };
  try {
    await sleep(WARMUP_MS);
    const t0 = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, cpuTicks(p.pid!)]));
    const rss: Record<string, number[]> = { replay: [], idle: [], baseline: [] };
    const steps = 12;
    for (let i = 0; i < steps; i++) {
      await sleep(WINDOW_MS / steps);
      for (const [k, p] of Object.entries(procs)) {
        if (p.exitCode !== null) throw new Error(`${k} exited early with ${p.exitCode}`);
        rss[k]!.push(rssMb(p.pid!));
      }
    }
    const cpu = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, ((cpuTicks(p.pid!) - t0[k]!) / TICKS_PER_S / (WINDOW_MS / 1000)) * 100]));
    const s = (k: string) => summarize(rss[k]!);
    const base = { name: 'node -e setInterval (idle)', median: round(s('baseline').median, 1), p99: round(s('baseline').p99, 1) };
    return [
      { name: 'agent run, 10 Hz NMEA replay: CPU', unit: '% of one core', median: round(cpu.replay!, 2), p99: round(cpu.replay!, 2), n: 1, baseline: { name: base.name, median: round(cpu.baseline!, 2), p99: round(cpu.baseline!, 2) }, target: '< 1 %' },
      { name: 'agent run, 10 Hz NMEA replay: RSS', unit: 'MB', median: round(s('replay').median, 1), p99: round(s('replay').p99, 1), n: steps, baseline: base, target: '< 80 MB' },
      { name: 'agent run, idle (static GPS): CPU', unit: '% of one core', median: round(cpu.idle!, 2), p99: round(cpu.idle!, 2), n: 1, baseline: { name: base.name, median: round(cpu.baseline!, 2), p99: round(cpu.baseline!, 2) } },
      { name: `agent run, idle RSS after ${Math.round((WARMUP_MS + WINDOW_MS) / 1000)} s`, unit: 'MB', median: round(s('idle').median, 1), p99: round(s('idle').p99, 1), n: steps, baseline: base, target: '< 80 MB' },
    ];
  } finally {
    for (const p of Object.values(procs)) p.kill('SIGKILL');
    await emulator.stop();
  }
}
