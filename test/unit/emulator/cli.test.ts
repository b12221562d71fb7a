import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { command, parseCallflowArg } from '../../../src/cli/emulator.ts';
import { ExitCode, type CommandIo } from '../../../src/cli/io.ts';

interface Run {
  io: CommandIo;
  stop: () => void;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the URL from the "emulator listening on" line. */
  listening: Promise<string>;
}

function fakeIo(env: NodeJS.ProcessEnv = {}): Run {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  let stop!: () => void;
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => (stop = () => resolve('SIGTERM')));
  const listening = new Promise<string>((resolve) => {
    stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^emulator listening on (\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
  });
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdout, stderr, env, stopSignal }, stop, stdout: () => out, stderr: () => err, listening };
}

describe('sos-agent emulator: arguments', () => {
  it.each([
    [['--port', 'eighty'], '--port'],
    [['--port', '70000'], '--port'],
    [['--token-ttl', '0'], '--token-ttl'],
    [['--callflow', ':a.b'], '--callflow'],
    [['--callflow', 'x:a..b'], 'a..b'],
    [['--colour'], '--colour'],
    [['--port'], '--port'],
    [['extra'], 'extra'],
    [['--host', '0.0.0.0'], '--allow-remote'],
    [['--host', '192.168.1.5'], 'not a loopback address'],
  ])('%j → exit 2 naming %s', async (argv, named) => {
    const run = fakeIo();
    expect(await command(argv, run.io)).toBe(ExitCode.USAGE);
    expect(run.stderr()).toContain(named);
    expect(run.stdout()).toBe('');
  });

  it('--help prints usage and exits 0', async () => {
    const run = fakeIo();
    expect(await command(['--help'], run.io)).toBe(ExitCode.OK);
    expect(run.stdout()).toContain('--client-secret');
  });

  it('parses NAME:path,path and a bare NAME', () => {
    expect(parseCallflowArg('acme_v2:user.full_name, event_info.latitude')).toEqual(['acme_v2', ['user.full_name', 'event_info.latitude']]);
    expect(parseCallflowArg('open_v1')).toEqual(['open_v1', []]);
    expect(parseCallflowArg('open_v1:')).toEqual(['open_v1', []]);
  });
});

describe('sos-agent emulator: serving', () => {
  it('serves with the given options until stopSignal, then exits 0', async () => {
    const run = fakeIo({ SOS_EMULATOR_CLIENT_SECRET: 'from-env' });
    const done = command(['--port', '0', '--client-id', 'cli-id', '--token-ttl', '120', '--callflow', 'acme_v2:user.phone_number', '--issued-at-ms', '--numbers-as-strings'], run.io);
    const url = await run.listening;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const form = (secret: string) => `client_id=cli-id&client_secret=${secret}&grant_type=client_credentials`;
    const post = (secret: string) => fetch(`${url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(secret) });
    expect((await post('demo-secret')).status).toBe(401);
    const token = (await (await post('from-env')).json()) as Record<string, unknown>;
    expect(token).toMatchObject({ token_type: 'BearerToken', expires_in: '120', issued_at: expect.stringMatching(/^\d{13}$/) });

    const trigger = await fetch(`${url}/v1/rem/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(token.access_token)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ callflow: 'acme_v2', variables: { user: { phone_number: '+16615555555' } } }),
    });
    expect(await trigger.json()).toMatchObject({ code: 0 });

    run.stop();
    expect(await done).toBe(ExitCode.OK);
    await expect(fetch(`${url}/__emulator/stats`)).rejects.toThrow(TypeError);
    expect(run.stdout()).not.toContain('from-env');
    expect(run.stderr()).not.toContain('from-env');
  });

  it('exits 1 with the reason when the port is taken', async () => {
    const first = fakeIo();
    const done = command(['--port', '0'], first.io);
    const port = new URL(await first.listening).port;
    const second = fakeIo();
    expect(await command(['--port', port], second.io)).toBe(ExitCode.FAILURE);
    expect(second.stderr()).toContain('EADDRINUSE');
    first.stop();
    await done;
  });
});
