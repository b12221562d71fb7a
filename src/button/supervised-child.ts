import { spawn, type ChildProcess } from 'node:child_process';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import { fullJitterDelay, type BackoffPolicy } from '../shared/backoff.ts';

export interface ChildCommand {
  command: string;
  args: string[];
}

export interface SupervisedChildOptions {
  /** Before each launch: what to run, or why it cannot run now (retried with backoff). */
  prepare: () => Promise<ChildCommand | Error>;
  onStdout: (chunk: Buffer) => void;
  /** The child is running. */
  onRunning: () => void;
  /** The child could not start, or ended; it is started again after a backoff delay. */
  onGone: (why: Error, command: ChildCommand | null) => void;
  clock: Clock;
  env?: NodeJS.ProcessEnv | undefined;
  backoff: BackoffPolicy;
  random?: () => number;
  /** A child that ran this long counts as healthy: the backoff starts again from the bottom. */
  healthyAfterMs?: number;
  stopTimeoutMs?: number;
}

/**
 * Runs a reader process (cat on an input device, gpiomon on a GPIO line) for as long as a source runs: its
 * stdout arrives through a pipe, which libuv polls, so a quiet button costs no CPU at all and no thread ever
 * blocks in read(2). It is restarted with capped, jittered backoff whenever it ends. It never keeps the process
 * alive (child and pipes unref'd), and never outlives it: killed on stop(), and on process exit.
 */
export class SupervisedChild {
  readonly #o: SupervisedChildOptions & { healthyAfterMs: number; stopTimeoutMs: number };
  #child: ChildProcess | null = null;
  #timer: TimerHandle | undefined;
  #running = false;
  #attempt = 0;
  readonly #killOnExit = () => {
    this.#child?.kill('SIGKILL');
  };

  constructor(options: SupervisedChildOptions) {
    this.#o = { healthyAfterMs: 10_000, stopTimeoutMs: 2000, ...options };
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    process.on('exit', this.#killOnExit);
    await this.#launch();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      // Held while stopping, so that stop() resolves even when nothing else keeps the process alive.
      child.ref();
      for (const s of [child.stdout, child.stderr]) (s as unknown as { ref?: () => void } | null)?.ref?.();
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), this.#o.stopTimeoutMs);
      force.unref();
      await closed;
      clearTimeout(force);
    }
    process.off('exit', this.#killOnExit);
  }

  /** The child delivered real data: it works, so the next failure starts the backoff from the bottom. */
  healthy(): void {
    this.#attempt = 0;
  }

  pid(): number | undefined {
    return this.#child?.pid;
  }

  async #launch(): Promise<void> {
    if (!this.#running) return;
    const prepared = await this.#o.prepare();
    if (!this.#running) return;
    if (prepared instanceof Error) {
      this.#gone(prepared, null);
      return;
    }
    const started = this.#o.clock.monotonic();
    const child = spawn(prepared.command, prepared.args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.#o.env });
    this.#child = child;
    child.unref();
    for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => this.#o.onStdout(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString();
    });
    child.once('spawn', () => {
      if (this.#child === child) this.#o.onRunning();
    });
    let done = false;
    const ended = (e: Error | null, code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      if (this.#child !== child || !this.#running) return;
      this.#child = null;
      if (this.#o.clock.monotonic() - started >= this.#o.healthyAfterMs) this.#attempt = 0;
      const why =
        e ?? Object.assign(new Error(`${prepared.command} ended (${signal ?? `code ${code}`}): ${stderr.trim().slice(0, 300) || 'no message'}`), { code: signal ?? `EXIT_${code}` });
      this.#gone(why, prepared);
    };
    child.once('error', (e) => ended(e, null, null));
    // 'close', not 'exit': everything the child wrote has been read before it counts as gone.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => ended(null, code, signal));
  }

  #gone(why: Error, command: ChildCommand | null): void {
    this.#o.onGone(why, command);
    if (!this.#running) return;
    const delay = fullJitterDelay(this.#attempt++, this.#o.backoff, this.#o.random);
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#launch();
    }, delay);
  }
}
