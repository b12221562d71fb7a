import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/shared/version.ts';
import { REPO_ROOT } from '../support/fixtures.ts';
import { NotifyListener } from '../support/notify-listener.ts';
import { haveTool } from '../support/tools.ts';

/*
 * The single executables as an installer gets them: built once per run by scripts/package.ts (reused when
 * dist/ is current), copied alone into an empty directory (no node_modules anywhere near), and run.
 */

const EXAMPLE_CONFIG = join(REPO_ROOT, 'config/agent.example.yaml');
let dir: string;
let x64: string;
let arm64: string;
const children: ChildProcess[] = [];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  // A minimal environment: nothing from the checkout (NODE_PATH, npm_*) may help the binary along.
  const child = spawn(command, args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end();
  children.push(child);
  return child;
}

async function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const child = start(command, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** Runs the arm64 executable the way a Raspberry Pi would, under qemu-user with Debian's arm64 libraries. */
function qemu(args: string[]): Promise<Result> {
  return run('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', arm64, ...args]);
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^emulator listening on (\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code} before listening: ${out}`)));
  });
}

beforeAll(async () => {
  const build = spawn(process.execPath, [join(REPO_ROOT, 'scripts/package.ts'), '--if-stale'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  build.stdout.on('data', (d: Buffer) => (output += d.toString()));
  build.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const [code] = (await once(build, 'close')) as [number | null];
  if (code !== 0) throw new Error(`npm run package failed (${code}):\n${output}`);
  dir = mkdtempSync(join(tmpdir(), 'sos-package-'));
  x64 = join(dir, 'sos-agent-linux-x64');
  arm64 = join(dir, 'sos-agent-linux-arm64');
  copyFileSync(join(REPO_ROOT, 'dist/sos-agent-linux-x64'), x64);
  copyFileSync(join(REPO_ROOT, 'dist/sos-agent-linux-arm64'), arm64);
  chmodSync(x64, 0o755);
  chmodSync(arm64, 0o755);
}, 300_000);

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('the linux-x64 executable', () => {
  it('prints its version with nothing but itself', async () => {
    const r = await run(x64, ['--version']);
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('ignores NODE_OPTIONS, so a stray setting in the shell cannot change what the service runs', async () => {
    const r = await run(x64, ['--version'], { NODE_OPTIONS: '--require=/nonexistent/hook.js' });
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('accepts the example configuration and names every wrong field of a bad one (exit 2)', async () => {
    const config = existsSync(EXAMPLE_CONFIG) ? EXAMPLE_CONFIG : null;
    expect(config, 'config/agent.example.yaml is missing').not.toBeNull();
    const good = await run(x64, ['config', 'check', config!]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'device: { id: "has space" }\ncaller: { full_name: X, phone_number: "123" }\ngps: { source: static, latitude: 95, longitude: 0, uncertainty_m: 5 }\n');
    const r = await run(x64, ['config', 'check', bad]);
    expect(r.code).toBe(2);
    for (const path of ['device.id', 'caller.phone_number', 'gps.latitude']) expect(r.stderr).toContain(path);
  });

  it('runs the API emulator on a free loopback port and stops cleanly on SIGTERM', async () => {
    const emulator = start(x64, ['emulator', '--port', '0', '--client-id', 'pkg-client', '--client-secret', 'pkg-secret']);
    const url = await listeningUrl(emulator);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const token = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'client_id=pkg-client&client_secret=pkg-secret&grant_type=client_credentials',
    });
    expect(token.status).toBe(200);
    expect(await (await fetch(`${url}/__emulator/triggers`)).json()).toEqual([]);
    const exited = once(emulator, 'exit');
    emulator.kill('SIGTERM');
    expect((await exited)[0]).toBe(0);
  });

  it('runs the whole demo (emulator, agent, SQLite outbox, scripted press) to a delivered alert', async () => {
    const r = await run(x64, ['demo', '--auto']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/delivered: the API's id is \S+/);
  });

  it('sends a full alert with `trigger` to the emulator, both from the executable', async () => {
    const emulator = start(x64, ['emulator', '--port', '0', '--client-id', 'pkg-client', '--client-secret', 'pkg-secret']);
    const url = await listeningUrl(emulator);
    const config = join(dir, 'trigger.yaml');
    writeFileSync(
      config,
      [
        'device: { id: pkg-test-1 }',
        'caller: { full_name: Pat Installer, phone_number: "6615555555" }',
        `api: { base_url: "${url}", client_id: pkg-client, client_secret: pkg-secret }`,
        'gps: { source: static, latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 }',
        'button: { source: terminal }',
        'feedback: { terminal: false }',
        `outbox: { path: "${join(dir, 'outbox.db')}" }`,
        '',
      ].join('\n'),
    );
    const r = await run(x64, ['trigger', '--config', config]);
    expect(r.code, `trigger failed: ${r.stderr}`).toBe(0);
    const triggers = (await (await fetch(`${url}/__emulator/triggers`)).json()) as Array<{ id: string; callflow: string; variables: { caller_info?: { full_name?: string } } }>;
    expect(triggers).toHaveLength(1);
    expect(triggers[0]!.callflow).toBe('company_dataconnect_v1');
    expect(triggers[0]!.variables.caller_info?.full_name).toBe('Pat Installer');
    expect(r.stdout).toContain(triggers[0]!.id);
    expect(`${r.stdout}${r.stderr}`).not.toContain('pkg-secret');
  });
});

describe.runIf(process.platform === 'linux' && process.arch === 'x64' && haveTool('systemd-notify') && haveTool('python3'))('the executable under systemd (Type=notify)', () => {
  it('says READY=1 once armed, pings the watchdog, logs JSON on stdout, and says STOPPING=1 on SIGTERM', async () => {
    const emulator = start(x64, ['emulator', '--port', '0', '--client-id', 'pkg-client', '--client-secret', 'pkg-secret']);
    const url = await listeningUrl(emulator);
    const listener = new NotifyListener(join(dir, 'notify.sock'));
    await listener.start();
    try {
      // The button as the gpio-key overlay makes it, but a FIFO that nobody presses.
      const button = join(dir, 'button');
      expect(spawnSync('mkfifo', [button]).status).toBe(0);
      const config = join(dir, 'run.yaml');
      writeFileSync(
        config,
        [
          'device: { id: pkg-run-1 }',
          'caller: { full_name: Pat Installer, phone_number: "6615555555" }',
          `api: { base_url: "${url}", client_id: pkg-client, client_secret: pkg-secret }`,
          'gps: { source: static, latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 }',
          `button: { source: evdev, device: "${button}" }`,
          'feedback: { terminal: false }',
          `outbox: { path: "${join(dir, 'run-outbox.db')}" }`,
          '',
        ].join('\n'),
      );
      const agent = start(x64, ['run', '--config', config], { NOTIFY_SOCKET: listener.address, WATCHDOG_USEC: '1000000' });
      let stdout = '';
      agent.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = once(agent, 'exit');
      const ready = await Promise.race([listener.waitFor('READY'), exited.then(([code]) => Promise.reject(new Error(`run exited with ${String(code)} before READY=1: ${stdout}`)))]);
      expect(ready.fields.STATUS).toMatch(/armed/);
      await listener.waitFor('WATCHDOG');
      agent.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
      expect(listener.payloads().some((m) => m.fields.STOPPING === '1')).toBe(true);
      const logs = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg?: string });
      expect(logs.some((l) => /armed/.test(l.msg ?? ''))).toBe(true);
    } finally {
      await listener.stop();
    }
  });
});

const canEmulateArm64 = haveTool('qemu-aarch64');

describe.runIf(canEmulateArm64)('the linux-arm64 executable (under qemu-aarch64)', () => {
  it('prints its version', async () => {
    const r = await qemu(['--version']);
    expect(r.stderr, 'qemu needs Debian libc6-arm64-cross and libstdc++6-arm64-cross').toBe('');
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('accepts the example configuration', async () => {
    const r = await qemu(['config', 'check', EXAMPLE_CONFIG]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
