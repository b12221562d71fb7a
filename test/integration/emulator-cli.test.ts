import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../support/fixtures.ts';

const SEED_BODY =
  '{"callflow":"company_dataconnect_v1","variables":{"caller_info":{"full_name":"Joe User","phone_number":"6615555555"},"location":{"latitude":"39.285270","longitude":"-76.61247","uncertainty":"7"},"vehicle_info":{"make":"Ford","model":"Fiesta","color":"Red","license_plate":"ABC","license_plate_state":"MN"}}}';

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** The checkout's command as a user runs it: bin/sos-agent.js on the project's pinned Node. */
function sosAgent(args: string[]): ChildProcess {
  const env = { ...process.env, PATH: `${resolve(REPO_ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}` };
  return spawn('node', ['bin/sos-agent.js', ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function listeningUrl(proc: ChildProcess): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^emulator listening on (\S+)$/m.exec(out);
      if (m) resolveUrl(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`emulator exited with ${code} before listening; stdout: ${out}`)));
  });
}

describe('sos-agent emulator (a real process)', () => {
  it('listens on a free port, serves the seed flow, and stops cleanly on SIGTERM', async () => {
    child = sosAgent(['emulator', '--port', '0', '--client-id', 'cli-client', '--client-secret', 'cli-secret']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await listeningUrl(child);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const tokenRes = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'x-www-form-urlencoded' },
      body: 'client_id=cli-client&client_secret=cli-secret&grant_type=client_credentials',
    });
    const { access_token } = (await tokenRes.json()) as { access_token: string };
    const trig = await fetch(`${url}/v1/rem/trigger`, { method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: SEED_BODY });
    expect(await trig.json()).toMatchObject({ code: 0 });
    const recorded = (await (await fetch(`${url}/__emulator/triggers`)).json()) as { variables: unknown }[];
    expect(recorded.map((t) => t.variables)).toEqual([JSON.parse(SEED_BODY).variables]);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(stderr).not.toContain('cli-secret');
  });

  it('refuses a non-loopback host with exit 2', async () => {
    child = sosAgent(['emulator', '--host', '0.0.0.0', '--port', '0']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(stderr).toContain('--allow-remote');
  });
});
