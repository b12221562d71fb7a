import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A stand-in for systemd's end of NOTIFY_SOCKET: an AF_UNIX datagram socket (a path, or "@name" for the
 * abstract namespace) that records every message. Node cannot receive datagrams on AF_UNIX, so python3 holds
 * the socket (Debian's gpsd-clients already depends on it). Like systemd, it reads each datagram whole and
 * drops any file descriptors passed with it, which is what completes systemd-notify's BARRIER=1.
 */
const LISTENER_PY = `
import json, socket, sys
address = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + address[1:] if address.startswith('@') else address)
print('"listening"', flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode('utf-8', 'replace')), flush=True)
`;

export interface NotifyMessage {
  /** The datagram as received. */
  raw: string;
  /** Its NAME=value lines. */
  fields: Record<string, string>;
  /** performance.now() when the test process got it. */
  at: number;
}

export class NotifyListener {
  readonly address: string;
  readonly messages: NotifyMessage[] = [];
  #child: ChildProcess | undefined;
  #waiters: Array<{ test: (m: NotifyMessage) => boolean; resolve: (m: NotifyMessage) => void }> = [];

  constructor(address: string) {
    this.address = address;
  }

  start(): Promise<void> {
    const child = spawn('python3', ['-c', LISTENER_PY, this.address], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#child = child;
    return new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`notify listener exited early (${code})`)));
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        const raw = JSON.parse(line) as string;
        if (raw === 'listening') {
          resolve();
          return;
        }
        const fields: Record<string, string> = {};
        for (const part of raw.split('\n')) {
          const eq = part.indexOf('=');
          if (eq > 0) fields[part.slice(0, eq)] = part.slice(eq + 1);
        }
        const message = { raw, fields, at: performance.now() };
        this.messages.push(message);
        for (const w of [...this.#waiters]) {
          if (w.test(message)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(message);
          }
        }
      });
    });
  }

  /** Messages other than systemd-notify's own BARRIER=1 handshakes. */
  payloads(): NotifyMessage[] {
    return this.messages.filter((m) => m.fields.BARRIER === undefined);
  }

  /** The first message with this field, e.g. waitFor('READY'), among those from index `from` on (past or future). */
  waitFor(field: string, from = 0): Promise<NotifyMessage> {
    const test = (m: NotifyMessage): boolean => m.fields[field] !== undefined;
    const seen = this.messages.slice(from).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    child.removeAllListeners('exit');
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }
}
