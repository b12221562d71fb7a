import { spawn } from 'node:child_process';
import { systemClock, type Clock, type TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';

/*
 * sd_notify(3) without native modules.
 *
 * NOTIFY_SOCKET is an AF_UNIX datagram socket, and Node cannot send on one (dgram is UDP only, net is
 * stream only). Each message is therefore sent by systemd's own `systemd-notify`: it exists wherever systemd
 * set NOTIFY_SOCKET, it handles every address form (a path, "@abstract", vsock on newer systemd), and since
 * systemd 246 it waits in sd_notify_barrier() until the manager has taken the message, so the message is
 * attributed to our unit although its sender exits at once. The price: the sender is not the main PID, so the
 * unit needs NotifyAccess=all, and each message costs one short-lived process (a few ms, once per
 * WatchdogSec/2 for the watchdog).
 * Not chosen: a native addon (none in the single binary); a long-lived python3 or socat helper (neither is on
 * every Raspberry Pi OS image, and it would be one more process to supervise).
 */

/** Names systemd accepts as message fields. */
const FIELD_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** One line of the journal's STATUS; longer texts are cut rather than refused. */
const MAX_VALUE_LENGTH = 400;
/** systemd-notify gives up on its barrier after 5 s; past this we kill it. */
const DEFAULT_TIMEOUT_MS = 10_000;

export interface SdNotifierOptions {
  logger: Logger;
  /** Where NOTIFY_SOCKET and PATH come from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** The sender program; defaults to `systemd-notify` on PATH. */
  command?: string;
  /** A sender still running after this long is killed and its message counted as failed. */
  timeoutMs?: number;
  clock?: Clock;
}

/** The part of SdNotifier that the watchdog pinger needs. */
export interface WatchdogNotifier {
  watchdog(): Promise<boolean>;
}

/**
 * Tells systemd about readiness, status, liveness and shutdown. Without NOTIFY_SOCKET every call is a no-op
 * that resolves false. Messages go out one at a time in call order; each call resolves true once systemd
 * has the message, false if it could not be sent (logged, never thrown: a failed notification must not take
 * the agent down).
 */
export class SdNotifier implements WatchdogNotifier {
  readonly enabled: boolean;
  readonly #socket: string | undefined;
  readonly #path: string | undefined;
  readonly #logger: Logger;
  readonly #command: string;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  #tail: Promise<unknown> = Promise.resolve();
  #queuedWatchdog: Promise<boolean> | null = null;
  #missingReported = false;

  constructor(options: SdNotifierOptions) {
    const env = options.env ?? process.env;
    this.#logger = options.logger;
    this.#command = options.command ?? 'systemd-notify';
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#clock = options.clock ?? systemClock;
    this.#path = env.PATH;
    const socket = env.NOTIFY_SOCKET;
    if (socket === undefined || socket === '') {
      this.#socket = undefined;
    } else if (/^(\/|@|vsock:)/.test(socket)) {
      this.#socket = socket;
    } else {
      this.#socket = undefined;
      this.#logger.warn({ notifySocket: socket }, 'NOTIFY_SOCKET is not a path, @abstract name or vsock address: systemd notifications disabled');
    }
    this.enabled = this.#socket !== undefined;
  }

  /** READY=1: the agent is armed (a press would be taken and kept). */
  ready(status?: string): Promise<boolean> {
    return this.notify(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status });
  }

  /** STATUS=…: one line shown by `systemctl status`. */
  status(text: string): Promise<boolean> {
    return this.notify({ STATUS: text });
  }

  /** WATCHDOG=1. Calls made while an earlier ping still waits its turn share that ping. */
  watchdog(): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    this.#queuedWatchdog ??= this.#enqueue(['WATCHDOG=1'], () => {
      this.#queuedWatchdog = null;
    });
    return this.#queuedWatchdog;
  }

  /** STOPPING=1: an orderly stop has begun, so systemd does not count it as a failure. */
  stopping(status?: string): Promise<boolean> {
    return this.notify(status === undefined ? { STOPPING: '1' } : { STOPPING: '1', STATUS: status });
  }

  /**
   * Sends the fields as one message. Values are flattened to one line: a newline in a STATUS text must not
   * become a second field (a status quoting an error could otherwise say READY=1).
   */
  notify(fields: Readonly<Record<string, string>>): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    const args: string[] = [];
    for (const [name, value] of Object.entries(fields)) {
      if (!FIELD_NAME.test(name)) throw new TypeError(`not a notification field name: ${JSON.stringify(name)}`);
      args.push(`${name}=${oneLine(value)}`);
    }
    if (args.length === 0) return Promise.resolve(true);
    return this.#enqueue(args);
  }

  /** Resolves once every message asked for so far has been sent or has failed (e.g. before exit). */
  async drain(): Promise<void> {
    await this.#tail;
  }

  #enqueue(args: string[], onStart?: () => void): Promise<boolean> {
    const sent = this.#tail.then(() => {
      onStart?.();
      return this.#send(args);
    });
    this.#tail = sent;
    return sent;
  }

  #send(args: string[]): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: this.#socket };
      if (this.#path !== undefined) env.PATH = this.#path;
      let stderr = '';
      let settled = false;
      const child = spawn(this.#command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
      const timer = this.#clock.setTimeout(() => {
        this.#logger.warn({ fields: names(args), timeoutMs: this.#timeoutMs }, 'systemd notification timed out');
        child.kill('SIGKILL');
        finish(false);
      }, this.#timeoutMs);
      const finish = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        this.#clock.clearTimeout(timer);
        resolve(ok);
      };
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        if (stderr.length < 1000) stderr += chunk;
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') {
          if (!this.#missingReported) {
            this.#missingReported = true;
            this.#logger.error({ command: this.#command }, 'cannot notify systemd: command not found (package systemd); readiness and watchdog pings are lost');
          }
        } else {
          this.#logger.warn({ err: e.message, fields: names(args) }, 'cannot start the systemd notification sender');
        }
        finish(false);
      });
      child.on('close', (code, signal) => {
        if (code !== 0 && !settled) {
          this.#logger.warn({ code, signal, stderr: stderr.trim(), fields: names(args) }, 'systemd notification failed');
        }
        finish(code === 0);
      });
    });
  }
}

function oneLine(value: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = value.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > MAX_VALUE_LENGTH ? `${flat.slice(0, MAX_VALUE_LENGTH - 1)}…` : flat;
}

function names(args: string[]): string[] {
  return args.map((a) => a.slice(0, a.indexOf('=')));
}

/**
 * The watchdog timeout systemd set for this process (WatchdogSec=), in ms; null when there is none or it is
 * meant for another process (WATCHDOG_PID names a different PID, e.g. inherited from a parent).
 */
export function watchdogTimeoutMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec)) return null;
  const value = Number(usec);
  if (!Number.isSafeInteger(value) || value <= 0) return null;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== '' && (!/^\d+$/.test(forPid) || Number(forPid) !== pid)) return null;
  return value / 1000;
}

/** How often to send WATCHDOG=1: half the timeout, as sd_watchdog_enabled(3) advises; null without a watchdog. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | null {
  const timeout = watchdogTimeoutMs(env, pid);
  return timeout === null ? null : Math.max(1, Math.floor(timeout / 2));
}

export interface WatchdogPingerOptions {
  notifier: WatchdogNotifier;
  intervalMs: number;
  logger: Logger;
  clock?: Clock;
  /**
   * Asked before every ping. False, a throw or a promise that never settles withholds the ping, so systemd
   * restarts an agent whose event loop or outbox is stuck instead of trusting a loop that merely still ticks.
   */
  isAlive?: () => boolean | Promise<boolean>;
}

/** Sends WATCHDOG=1 every interval while the agent is alive; one check at a time, never overlapping. */
export class WatchdogPinger {
  readonly #options: WatchdogPingerOptions;
  readonly #clock: Clock;
  #timer: TimerHandle | undefined;
  #running = false;
  #withheld = false;

  constructor(options: WatchdogPingerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#tick();
  }

  stop(): void {
    this.#running = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    if (!this.#running) return;
    let alive: boolean;
    try {
      alive = await (this.#options.isAlive?.() ?? true);
    } catch (e) {
      this.#options.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'liveness check threw');
      alive = false;
    }
    if (!this.#running) return;
    if (alive) {
      if (this.#withheld) this.#options.logger.info('alive again: watchdog pings resumed');
      this.#withheld = false;
      void this.#options.notifier.watchdog();
    } else if (!this.#withheld) {
      this.#withheld = true;
      this.#options.logger.error('not alive: watchdog pings withheld, systemd will restart the agent');
    }
    this.#timer = this.#clock.setTimeout(() => void this.#tick(), this.#options.intervalMs);
  }
}
