import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GpiomonButtonSource, type GpiomonButtonOptions } from '../../src/button/gpiomon.ts';
import type { ButtonEvent, ButtonSourceStatus } from '../../src/button/types.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { haveTool } from '../support/tools.ts';
import { REPO_ROOT } from '../support/fixtures.ts';

/**
 * The gpiomon source against a fake `gpiomon` put first in PATH: a shell script that answers --help like
 * libgpiod v1 or v2 would, records how it was called, prints the lines of run N from `run-N.txt`, then
 * either keeps running (until killed) or exits (as gpiomon does when the line is busy or the chip goes).
 */

const V2_HELP = 'Usage: gpiomon [OPTIONS] <line>...\n  -b, --bias <bias>\n  -c, --chip <chip>\n  -e, --edges <edges>\n';
const V1_HELP = 'Usage: gpiomon [OPTIONS] <chip name/number> <offset 1> <offset 2> ...\n  -b, --line-buffered:\tset standard output as line buffered\n  -B, --bias=[as-is|disable|pull-down|pull-up]\n';
const OLD_V1_HELP = 'Usage: gpiomon [OPTIONS] <chip name/number> <line offset>\n  -l, --active-low:\tset the line active state to low\n';

let dir: string;
const cleanups: Array<() => Promise<void>> = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sos-gpiomon-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  rmSync(dir, { recursive: true, force: true });
});

function fakeGpiomon(help: string, runs: Array<{ lines: string[]; then: 'run' | 'exit' }>) {
  writeFileSync(join(dir, 'help.txt'), help);
  runs.forEach((r, i) => {
    writeFileSync(join(dir, `run-${i + 1}.txt`), r.lines.map((l) => `${l}\n`).join(''));
    writeFileSync(join(dir, `run-${i + 1}.then`), r.then);
  });
  const script = join(dir, 'gpiomon');
  writeFileSync(
    script,
    `#!/bin/sh
D=${JSON.stringify(dir)}
if [ "$1" = "--help" ]; then cat "$D/help.txt"; exit 0; fi
N=$(( $(cat "$D/count" 2>/dev/null || echo 0) + 1 ))
echo $N > "$D/count"
echo "$*" > "$D/args-$N"
echo "\${_STDBUF_O:-}" > "$D/stdbuf-$N"
echo $$ > "$D/pid-$N"
[ -f "$D/run-$N.txt" ] && cat "$D/run-$N.txt"
if [ "$(cat "$D/run-$N.then" 2>/dev/null)" = "exit" ]; then echo "gpiomon: unable to request lines: Device or resource busy" >&2; exit 1; fi
exec sleep 600
`,
  );
  chmodSync(script, 0o755);
  return {
    args: (n: number) => readFileSync(join(dir, `args-${n}`), 'utf8').trim(),
    stdbuf: (n: number) => readFileSync(join(dir, `stdbuf-${n}`), 'utf8').trim(),
    pid: (n: number) => Number(readFileSync(join(dir, `pid-${n}`), 'utf8')),
  };
}

function startSource(options: Partial<GpiomonButtonOptions> = {}) {
  const source = new GpiomonButtonSource({
    chip: 'gpiochip0',
    line: 17,
    activeLow: true,
    bias: 'auto',
    command: 'gpiomon',
    clock: systemClock,
    logger: silentLogger(),
    env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` },
    backoff: { baseMs: 20, capMs: 50 },
    ...options,
  });
  const events: ButtonEvent[] = [];
  const statuses: ButtonSourceStatus[] = [];
  let waiting: { n: number; resolve: () => void } | null = null;
  source.onEvent((e) => {
    events.push(e);
    if (waiting && events.length >= waiting.n) waiting.resolve();
  });
  source.onStatus((s) => statuses.push(s));
  const eventCount = (n: number) => new Promise<void>((resolve) => (events.length >= n ? resolve() : (waiting = { n, resolve })));
  cleanups.push(() => source.stop());
  return { source, events, statuses, eventCount };
}

const isZombie = (pid: number) => {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('gpiomon source', () => {
  it('libgpiod v2: an active-low button (falling = down), pull-up bias, and stop() ends the child', async () => {
    const fake = fakeGpiomon(V2_HELP, [{ lines: ['100.000000000\tfalling\tgpiochip0 17 "GPIO17"', '102.500000000\trising\tgpiochip0 17 "GPIO17"'], then: 'run' }]);
    const t = startSource();
    await t.source.start();
    await t.eventCount(2);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
    expect(t.events.every((e) => e.source === 'gpiomon')).toBe(true);
    expect(fake.args(1)).toBe('--chip gpiochip0 --bias pull-up 17');
    const pid = fake.pid(1);
    expect(alive(pid)).toBe(true);
    await t.source.stop();
    expect(alive(pid)).toBe(false);
    expect(t.statuses.at(-1)).toBe('stopped');
  });

  it('libgpiod v1 with --line-buffered: an active-high button (rising = down)', async () => {
    const fake = fakeGpiomon(V1_HELP, [{ lines: ['event:  RISING EDGE offset: 17 timestamp: [     100.000000000]', 'event: FALLING EDGE offset: 17 timestamp: [     100.300000000]'], then: 'run' }]);
    const t = startSource({ activeLow: false });
    await t.source.start();
    await t.eventCount(2);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
    expect(fake.args(1)).toBe('--line-buffered --bias=pull-down gpiochip0 17');
  });

  it('an old v1 without --line-buffered runs under stdbuf -oL', async () => {
    if (!haveTool('stdbuf')) return;
    const fake = fakeGpiomon(OLD_V1_HELP, [{ lines: ['event: FALLING EDGE offset: 17 timestamp: [     100.000000000]'], then: 'run' }]);
    const t = startSource();
    await t.source.start();
    await t.eventCount(1);
    expect(fake.args(1)).toBe('gpiochip0 17');
    expect(fake.stdbuf(1)).toBe('L');
  });

  it('ignores other lines and noise, counting the noise', async () => {
    fakeGpiomon(V2_HELP, [{ lines: ['1.0\tfalling\tgpiochip0 4', 'garbage here', '2.0\tfalling\tgpiochip0 17', '', '3.0\trising\tgpiochip0 17'], then: 'run' }]);
    const t = startSource();
    await t.source.start();
    await t.eventCount(2);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
    expect(t.source.stats()).toEqual({ events: 2, dropped: 1 });
  });

  it('restarts gpiomon when it dies; a key that was down is reported up meanwhile', async () => {
    fakeGpiomon(V2_HELP, [
      { lines: ['1.0\tfalling\tgpiochip0 17'], then: 'exit' },
      { lines: ['5.0\tfalling\tgpiochip0 17', '5.2\trising\tgpiochip0 17'], then: 'run' },
    ]);
    const t = startSource();
    await t.source.start();
    await t.eventCount(4);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up', 'down', 'up']);
    expect(t.statuses).toContain('unavailable');
    expect(t.source.status()).toBe('ready');
  });

  it('gpiomon does not outlive the agent: process.exit() kills it', async () => {
    const fake = fakeGpiomon(V2_HELP, [{ lines: ['1.0\tfalling\tgpiochip0 17'], then: 'run' }]);
    const script = join(dir, 'agent.ts');
    writeFileSync(
      script,
      `import { GpiomonButtonSource } from ${JSON.stringify(join(REPO_ROOT, 'src/button/gpiomon.ts'))};
import { systemClock } from ${JSON.stringify(join(REPO_ROOT, 'src/shared/clock.ts'))};
import { silentLogger } from ${JSON.stringify(join(REPO_ROOT, 'src/shared/logger.ts'))};
const source = new GpiomonButtonSource({ chip: 'gpiochip0', line: 17, activeLow: true, bias: 'auto', command: 'gpiomon', clock: systemClock, logger: silentLogger(), env: { ...process.env, PATH: ${JSON.stringify(dir)} + ':' + process.env.PATH } });
await source.start();
// The source holds nothing alive by itself; the app does (here a timer).
setInterval(() => {}, 1 << 30);
// The first edge: gpiomon is up and running. Exit without stop(), as a crash handler would.
source.onEvent(() => process.exit(0));
`,
    );
    const code = await new Promise<number | null>((resolve) => spawn(process.execPath, [script], { stdio: 'inherit' }).once('exit', resolve));
    expect(code).toBe(0);
    const pid = fake.pid(1);
    // No event tells another process's death; SIGKILL lands within microseconds, so a short bounded wait.
    for (let i = 0; i < 100 && alive(pid) && !isZombie(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid) && !isZombie(pid)).toBe(false);
  });

  it('a missing gpiomon is "unavailable", not a crash', async () => {
    const t = startSource({ command: join(dir, 'no-such-gpiomon') });
    await t.source.start();
    expect(t.source.status()).toBe('unavailable');
  });
});
