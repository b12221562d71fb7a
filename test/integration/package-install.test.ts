import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/fixtures.ts';
import { haveTool } from '../support/tools.ts';

/*
 * scripts/install.sh into a staging root (--root): what an installer gets on a Pi, minus the user and
 * systemctl, which a test cannot touch on the machine it runs on.
 */

const INSTALL = join(REPO_ROOT, 'scripts/install.sh');
const UNIT = join(REPO_ROOT, 'scripts/sos-agent.service');
const EXAMPLE = join(REPO_ROOT, 'config/agent.example.yaml');
let dir: string;
let root: string;
let from: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function install(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const child = spawn('bash', [INSTALL, '--root', root, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const mode = (path: string): number => statSync(join(root, path)).mode & 0o777;
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const present = (path: string): boolean => existsSync(join(root, path));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sos-install-'));
  root = join(dir, 'root');
  from = join(dir, 'from');
  mkdirSync(root);
  mkdirSync(from);
  // Stand-ins for the executables: the installer copies them, it does not run them.
  writeFileSync(join(from, 'sos-agent-linux-x64'), 'x64 build 1');
  writeFileSync(join(from, 'sos-agent-linux-arm64'), 'arm64 build 1');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scripts/install.sh', () => {
  it('installs the executable for the machine, the config (0600, from the example), the state directory and the unit', async () => {
    const r = await install(['--from', from], { SOS_INSTALL_MACHINE: 'aarch64' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(read('usr/local/bin/sos-agent')).toBe('arm64 build 1');
    expect(mode('usr/local/bin/sos-agent')).toBe(0o755);
    expect(read('etc/sos-agent/agent.yaml')).toBe(readFileSync(EXAMPLE, 'utf8'));
    expect(mode('etc/sos-agent/agent.yaml')).toBe(0o600);
    expect(mode('etc/sos-agent/env')).toBe(0o600);
    expect(mode('var/lib/sos-agent')).toBe(0o700);
    expect(read('etc/systemd/system/sos-agent.service')).toBe(readFileSync(UNIT, 'utf8'));
  });

  it('prints the config.txt line for the button (KEY_SOS, not KEY_POWER) and the wiring', async () => {
    const r = await install(['--from', from, '--button-gpio', '23'], { SOS_INSTALL_MACHINE: 'aarch64' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dtoverlay=gpio-key,gpio=23,active_low=1,gpio_pull=up,keycode=639,label="SOS"');
    expect(r.stdout).toContain('/dev/input/by-path/platform-button@17-event');
    expect(r.stdout).toMatch(/GPIO23 \(pin 16\)/);
    expect(r.stdout).toMatch(/dtoverlay=gpio-led,gpio=27,label=sos\b/);
  });

  it('is safe to run again: upgrades the executable, never overwrites an edited config, keeps the outbox', async () => {
    writeFileSync(join(root, 'etc/sos-agent/agent.yaml'), 'device: { id: edited-by-installer }\n');
    writeFileSync(join(root, 'var/lib/sos-agent/outbox.db'), 'queued alerts');
    writeFileSync(join(from, 'sos-agent-linux-arm64'), 'arm64 build 2');
    const r = await install(['--from', from], { SOS_INSTALL_MACHINE: 'aarch64' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('kept /etc/sos-agent/agent.yaml');
    expect(read('usr/local/bin/sos-agent')).toBe('arm64 build 2');
    expect(read('etc/sos-agent/agent.yaml')).toBe('device: { id: edited-by-installer }\n');
    expect(read('var/lib/sos-agent/outbox.db')).toBe('queued alerts');
    // No leftovers from the write-then-rename updates.
    expect(readdirSync(join(root, 'usr/local/bin'))).toEqual(['sos-agent']);
    expect(readdirSync(join(root, 'etc/sos-agent')).sort()).toEqual(['agent.yaml', 'env']);
    expect(readdirSync(join(root, 'etc/systemd/system'))).toEqual(['sos-agent.service']);
  });

  it('refuses a 32-bit OS with a clear message and installs nothing', async () => {
    const fresh = join(dir, 'fresh');
    mkdirSync(fresh);
    const child = spawn('bash', [INSTALL, '--root', fresh, '--from', from], { env: { PATH: process.env.PATH, SOS_INSTALL_MACHINE: 'armv7l' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'close');
    expect(code).toBe(1);
    expect(stderr).toContain('64-bit');
    expect(existsSync(join(fresh, 'usr'))).toBe(false);
  });

  it('--uninstall removes the program and the unit but keeps the config and the outbox', async () => {
    const r = await install(['--uninstall']);
    expect(r.code).toBe(0);
    expect(present('usr/local/bin/sos-agent')).toBe(false);
    expect(present('etc/systemd/system/sos-agent.service')).toBe(false);
    expect(read('var/lib/sos-agent/outbox.db')).toBe('queued alerts');
    expect(present('etc/sos-agent/agent.yaml')).toBe(true);
    expect(r.stdout).toMatch(/not yet delivered/);
  });

  it('--uninstall --purge removes the config and the outbox too', async () => {
    const r = await install(['--uninstall', '--purge']);
    expect(r.code).toBe(0);
    expect(present('var/lib/sos-agent')).toBe(false);
    expect(present('etc/sos-agent')).toBe(false);
  });
});

describe.runIf(haveTool('systemd-analyze'))('scripts/sos-agent.service', () => {
  it('is a unit systemd accepts', async () => {
    // verify also checks that ExecStart exists, so point it at a program that does.
    const unitDir = join(dir, 'unit');
    mkdirSync(unitDir);
    const unit = join(unitDir, 'sos-agent.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/local/bin/sos-agent ', 'ExecStart=/bin/true '));
    const child = spawn('systemd-analyze', ['verify', unit], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const [code] = await once(child, 'close');
    expect(output.trim()).toBe('');
    expect(code).toBe(0);
  });

  it('asks for readiness, a watchdog and restarts, as the agent (sd-notify.ts) needs', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=all', 'Restart=always', 'User=sos-agent', 'StateDirectory=sos-agent', 'ProtectSystem=strict', 'NoNewPrivileges=yes']) {
      expect(unit).toMatch(new RegExp(`^${line}$`, 'm'));
    }
    expect(unit).toMatch(/^WatchdogSec=\d+$/m);
    expect(unit).toMatch(/^SupplementaryGroups=input gpio$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/sos-agent run --config \/etc\/sos-agent\/agent\.yaml$/m);
  });
});
