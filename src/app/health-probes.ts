import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { errorMessage } from '../shared/errors.ts';
import type { CheckResult } from './supervisor.ts';

/**
 * One-shot probes of the things a press depends on, shared by `sos-agent doctor` and the supervisor. Each
 * answers a CheckResult whose detail names the file or address and the system's own error code, so the
 * installer knows what to fix. None of them changes anything: the outbox probe rolls its write back.
 */

/** Below this much free space the outbox cannot be trusted to take an alert (a few pages plus the WAL). */
export const OUTBOX_MIN_FREE_BYTES = 1024 * 1024;
/** Below this, say so before it becomes a failure. */
export const OUTBOX_LOW_FREE_BYTES = 16 * 1024 * 1024;

function code(e: unknown): string {
  const err = e as { code?: unknown; errcode?: unknown };
  if (typeof err.errcode === 'number') return SQLITE_CODES[err.errcode & 0xff] ?? `SQLITE_${err.errcode}`;
  return typeof err.code === 'string' ? err.code : 'ERROR';
}

// Primary result codes (https://sqlite.org/rescode.html) that an installer can act on.
const SQLITE_CODES: Record<number, string> = { 5: 'SQLITE_BUSY', 8: 'SQLITE_READONLY', 10: 'SQLITE_IOERR', 11: 'SQLITE_CORRUPT', 13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN', 26: 'SQLITE_NOTADB' };

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.floor(bytes / (1024 * 1024))} MiB` : `${Math.floor(bytes / 1024)} KiB`;
}

/** The nearest directory that exists on the way up to `path` (what would hold a file not yet created). */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

function freeSpace(dir: string): CheckResult | null {
  try {
    const fs = statfsSync(dir);
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (free < OUTBOX_MIN_FREE_BYTES) return { ok: false, detail: `only ${mib(free)} free in ${dir}` };
    if (free < OUTBOX_LOW_FREE_BYTES) return { ok: true, warn: true, detail: `only ${mib(free)} free in ${dir}` };
  } catch {
    // statfs is advisory; the write probe is what decides.
  }
  return null;
}

/**
 * Can the outbox take an alert right now? A missing file needs a directory the agent can create it in; an
 * existing one must open read-write and take a write transaction (rolled back, so nothing changes); and the
 * file system must have room. `busyTimeoutMs` bounds the wait for another process's write lock.
 */
export function probeOutboxWritable(path: string, busyTimeoutMs = 2000): CheckResult {
  const dir = dirname(path);
  if (!existsSync(path)) {
    const base = nearestExisting(dir);
    try {
      if (!statSync(base).isDirectory()) return { ok: false, detail: `cannot create ${path}: ${base} is not a directory` };
      accessSync(base, constants.W_OK | constants.X_OK);
    } catch (e) {
      return { ok: false, detail: `cannot create ${path}: ${base} is not writable (${code(e)})` };
    }
    return freeSpace(base) ?? { ok: true, detail: `no outbox yet; ${base} is writable, the agent creates ${path}` };
  }
  let db: DatabaseSync | undefined;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    accessSync(dir, constants.W_OK | constants.X_OK);
    db = new DatabaseSync(path, { timeout: busyTimeoutMs });
    db.exec('BEGIN IMMEDIATE');
    try {
      // A schema change is a real write: it fails on a file SQLite could only open read-only.
      db.exec('CREATE TABLE sos_write_probe (x INTEGER); INSERT INTO sos_write_probe VALUES (1);');
    } finally {
      db.exec('ROLLBACK');
    }
  } catch (e) {
    // Another process (the `outbox` command) holds the write lock: the agent's own write would wait for it.
    if (code(e) === 'SQLITE_BUSY') return { ok: true, warn: true, detail: `${path} is locked by another process right now` };
    return { ok: false, detail: `${path} is not writable (${code(e)}): ${errorMessage(e)}` };
  } finally {
    try {
      db?.close();
    } catch {
      // Closing a connection that failed to open has nothing to release.
    }
  }
  return freeSpace(dir) ?? { ok: true, detail: `${path} writable` };
}

/**
 * An LED class device the agent drives (LED or buzzer, see src/feedback/led.ts): `trigger` and `brightness` must
 * be writable by this user, and the kernel's `timer` trigger present for blinking. Opened for writing and closed
 * without writing, so the light does not change.
 */
export function probeLedWritable(root: string, name: string): CheckResult {
  const dir = join(root, name);
  if (!existsSync(dir)) return { ok: false, detail: `${dir} does not exist (gpio-led overlay loaded? label = "${name}"?)` };
  for (const file of ['trigger', 'brightness']) {
    const path = join(dir, file);
    try {
      closeSync(openSync(path, constants.O_WRONLY));
    } catch (e) {
      return { ok: false, detail: `${path} is not writable by this user (${code(e)})` };
    }
  }
  let triggers = '';
  try {
    triggers = readFileSync(join(dir, 'trigger'), 'utf8');
  } catch {
    // Write-only to us: the blink check is advisory.
  }
  // The file lists the available triggers, the current one in brackets: "none [timer] heartbeat".
  if (triggers && !/(^|[\s[])timer(\]|\s|$)/.test(triggers)) {
    return { ok: true, warn: true, detail: `${dir} writable, but the "timer" trigger is missing (modprobe ledtrig-timer): patterns cannot blink` };
  }
  return { ok: true, detail: `${dir} writable` };
}

/** A file or device this user must be able to read (button device, NMEA tty, replay log). */
export function probeReadable(path: string, what: string): CheckResult {
  try {
    // O_NONBLOCK: opening a FIFO or a tty must not wait for the other end.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    closeSync(fd);
    return { ok: true, detail: `${what} ${path} readable` };
  } catch (e) {
    const c = code(e);
    const hint = c === 'EACCES' || c === 'EPERM' ? ': add this user to its group (e.g. input, dialout)' : c === 'ENOENT' ? ': not present' : '';
    return { ok: false, detail: `${what} ${path} cannot be opened (${c})${hint}` };
  }
}

/** A TCP connection to host:port within `timeoutMs` (gpsd): the error code says refused, unreachable or silent. */
export function probeTcp(host: string, port: number, timeoutMs: number, what: string): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: CheckResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, detail: `${what} at ${host}:${port}: no answer within ${timeoutMs} ms` }));
    socket.once('connect', () => done({ ok: true, detail: `${what} at ${host}:${port} accepts connections` }));
    socket.once('error', (e) => {
      const c = code(e);
      const hint = c === 'ECONNREFUSED' ? ` (is it running? systemctl status ${what})` : '';
      done({ ok: false, detail: `${what} at ${host}:${port}: ${c}${hint}` });
    });
  });
}
