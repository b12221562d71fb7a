import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/fixtures.ts';
import { haveTool } from '../support/tools.ts';

/**
 * The terminal button on a real terminal: a child process whose stdin is a pty (socat EXEC ...,pty), with
 * keys typed into the pty's other end, as in the demo.
 */

let dir: string;
let child: ChildProcessWithoutNullStreams | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sos-tty-'));
});
afterEach(() => {
  child?.kill('SIGKILL');
  child = null;
  rmSync(dir, { recursive: true, force: true });
});

const CHILD = (root: string) => `import { execFileSync } from 'node:child_process';
import { TerminalButtonSource } from ${JSON.stringify(join(root, 'src/button/terminal.ts'))};
import { systemClock } from ${JSON.stringify(join(root, 'src/shared/clock.ts'))};
import { silentLogger } from ${JSON.stringify(join(root, 'src/shared/logger.ts'))};
const mode = () => execFileSync('stty', ['-g'], { stdio: ['inherit', 'pipe', 'pipe'] }).toString().trim();
const before = mode();
const source = new TerminalButtonSource({ clock: systemClock, logger: silentLogger(), output: process.stdout, hint: 'HINT' });
let n = 0;
const finish = async (why) => {
  await source.stop();
  console.log('RESTORED ' + (mode() === before));
  console.log('BYE ' + why);
  process.exit(0);
};
source.onEvent((e) => {
  console.log('EVENT ' + e.kind);
  if (++n === 4) void finish('events');
});
process.once('SIGINT', () => void finish('sigint'));
await source.start();
console.log('RAW ' + (mode() !== before));
console.log('READY');
`;

function run(): Promise<{ send: (s: string) => void; lines: () => string[]; waitFor: (text: string) => Promise<void> }> {
  const script = join(dir, 'child.ts');
  writeFileSync(script, CHILD(REPO_ROOT));
  child = spawn('socat', ['STDIO', `EXEC:${process.execPath} ${script},pty,setsid,ctty`], { stdio: 'pipe' });
  let out = '';
  let err = '';
  let exited = false;
  const waiters: Array<{ text: string; resolve: () => void; reject: (e: Error) => void }> = [];
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of [...waiters]) {
      if (!out.includes(w.text)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.once('exit', (code) => {
    exited = true;
    for (const w of waiters.splice(0)) w.reject(new Error(`child exited (${code}) before "${w.text}": ${out} ${err}`));
  });
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      if (out.includes(text)) resolve();
      else if (exited) reject(new Error(`child exited before "${text}": ${out} ${err}`));
      else waiters.push({ text, resolve, reject });
    });
  const api = { send: (s: string) => void child!.stdin.write(s), lines: () => out.split(/\r?\n/).map((l) => l.trim()).filter(Boolean), waitFor };
  return waitFor('READY').then(() => api);
}

describe('terminal button on a real pty', () => {
  it('SPACE and ENTER press the button; the terminal mode is raw while running and restored after', async () => {
    if (!haveTool('socat')) return;
    const t = await run();
    expect(t.lines()).toContain('RAW true');
    expect(t.lines().some((l) => l.includes('hold SPACE'))).toBe(true);
    expect(t.lines()).toContain('HINT');
    t.send(' ');
    await t.waitFor('EVENT up');
    t.send('\r');
    await t.waitFor('BYE');
    const events = t.lines().filter((l) => l.startsWith('EVENT'));
    expect(events).toEqual(['EVENT down', 'EVENT up', 'EVENT down', 'EVENT up']);
    expect(t.lines()).toContain('RESTORED true');
  });

  it('Ctrl-C still stops the process in raw mode, and the mode is restored', async () => {
    if (!haveTool('socat')) return;
    const t = await run();
    t.send('\x03');
    await t.waitFor('BYE');
    expect(t.lines()).toContain('BYE sigint');
    expect(t.lines()).toContain('RESTORED true');
  });
});
