// npm run bench [-- name ...]: runs the benchmarks and prints one JSON line per figure.
import type { BenchResult } from './result.ts';

type Bench = () => Promise<BenchResult[]>;

const BENCHES: Record<string, () => Promise<Bench>> = {
  dispatch: async () => (await import('./dispatch.ts')).benchDispatch,
  nmea: async () => (await import('./nmea.ts')).benchNmea,
  outbox: async () => (await import('./outbox.ts')).benchOutbox,
  bridge: async () => (await import('./bridge.ts')).benchBridge,
  startup: async () => (await import('./startup.ts')).benchStartup,
  agent: async () => (await import('./agent.ts')).benchAgent,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
let failed = false;
for (const name of names) {
  const load = BENCHES[name];
  if (!load) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exitCode = 2;
    continue;
  }
  try {
    const bench = await load();
    for (const result of await bench()) process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (e) {
    failed = true;
    console.error(`bench ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}
if (failed) process.exitCode = 1;
