import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * A real Mosquitto (Debian `mosquitto`) on a free loopback port, with its own config, password file and ACL
 * in a temporary directory. Tests call `haveTool('mosquitto')` first. Mosquitto 2.x refuses remote clients and
 * anonymous logins unless the config says otherwise, hence the explicit `listener PORT 127.0.0.1`.
 */
export interface MosquittoOptions {
  /** user → password; written with mosquitto_passwd. */
  passwords?: Record<string, string>;
  /** ACL file contents (see config/mosquitto.example.conf). */
  acl?: string;
  allowAnonymous?: boolean;
  /** Extra config lines. */
  extra?: string[];
}

export interface RunningMosquitto {
  readonly port: number;
  readonly url: string;
  /** Stops it (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
  /** Kills it hard (SIGKILL): a broker crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same config (after stop or kill). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Everything it logged, for failure messages. */
  log(): string;
  /** The running process's id (benchmarks read its CPU time). */
  pid(): number | undefined;
  /** stop() and remove the temporary directory. */
  dispose(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<RunningMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'sos-mosquitto-'));
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${(options.allowAnonymous ?? !options.passwords) ? 'true' : 'false'}`,
    // Stay the user running the tests, so the files here stay readable.
    `user ${userInfo().username}`,
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'max_queued_messages 100000',
    'max_inflight_messages 0',
    // As config/mosquitto.example.conf: without it small messages wait for delayed ACKs (~40 ms).
    'set_tcp_nodelay true',
    ...(options.extra ?? []),
  ];
  if (options.passwords) {
    const file = join(dir, 'passwd');
    writeFileSync(file, '');
    chmodSync(file, 0o600);
    for (const [user, password] of Object.entries(options.passwords)) {
      execFileSync('mosquitto_passwd', ['-b', file, user, password], { stdio: 'ignore' });
    }
    lines.push(`password_file ${file}`);
  }
  if (options.acl !== undefined) {
    const file = join(dir, 'acl');
    writeFileSync(file, options.acl);
    chmodSync(file, 0o600);
    lines.push(`acl_file ${file}`);
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);

  let child: ChildProcess | null = null;
  let output = '';
  const launch = async (): Promise<void> => {
    const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const until = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited with ${proc.exitCode}:\n${output}`);
      if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port}:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  };
  await launch();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    start: () => (child ? Promise.resolve() : launch()),
    restart: async () => {
      await end('SIGTERM');
      await launch();
    },
    log: () => output,
    pid: () => child?.pid,
    dispose: async () => {
      await end('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
