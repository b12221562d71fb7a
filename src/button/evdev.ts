import { accessSync, constants, statSync } from 'node:fs';
import type { ButtonEvent, ButtonSource, ButtonSourceStatus } from './types.ts';
import { EV_KEY, EV_SYN, InputEventDecoder, SYN_DROPPED, SYN_REPORT, recordSize, type InputEvent } from './input-event.ts';
import { Listeners } from './listeners.ts';
import { StatusCell } from './status.ts';
import { SupervisedChild, type ChildCommand } from './supervised-child.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { BackoffPolicy } from '../shared/backoff.ts';
import { errorMessage } from '../shared/errors.ts';

/**
 * The SOS button as a Linux input device, as the Raspberry Pi `gpio-key` overlay makes it. In config.txt:
 *
 *   dtoverlay=gpio-key,gpio=17,active_low=1,gpio_pull=up,keycode=639,label="SOS"
 *
 * (button between GPIO17 and GND; the device appears as /dev/input/by-path/platform-button@11-event, 0x11 =
 * 17). The overlay's default keycode is 116, KEY_POWER: systemd-logind tags such a device "power-switch" and
 * powers the Pi off on a press, so an SOS press would kill the device. The default here is 639, KEY_SOS
 * (0x27f in linux/input-event-codes.h): its meaning is ours, nothing on a Pi acts on it (logind handles only
 * power/sleep/suspend/reboot keys, acpid the same, and X11 cannot even deliver codes above 247), and any kernel
 * passes it through, named or not. The kernel's gpio-keys driver debounces (5 ms) before we see an edge.
 *
 * Reading. A plain read stream on a character device or FIFO parks a libuv worker thread in read(2), and
 * process.exit() then waits for it forever. net.Socket({fd}) would poll instead, but libuv takes a character
 * device for a file and refuses it. Polling an O_NONBLOCK fd from a timer works, but costs a wakeup per tick
 * whether or not anyone presses (measured here: 2 % of a core at 100 Hz). So the device is read by `cat`
 * (coreutils or busybox, on every system), and its stdout comes in through a pipe, which libuv polls: no
 * thread blocks, a quiet button costs no CPU, and the same code reads a character device and a FIFO (tests,
 * simulator). The child never keeps the process alive nor outlives it (see SupervisedChild).
 *
 * Faults. The device missing or unreadable, or `cat` ending (unplugged: ENODEV; hang-up; a FIFO's writer
 * closing) is reported `unavailable`, and the device is opened again with capped, jittered backoff. If the key
 * was down when contact was lost, a synthetic `up` is sent: without the EVIOCGKEY ioctl (unreachable from
 * Node) the state is unknown, and "released" can only make the person press again, never send an alert they
 * did not hold for. SYN_DROPPED (the kernel's buffer overflowed) is handled the same way, and the events up to
 * the next SYN_REPORT are ignored, as the kernel documents.
 */
export interface EvdevButtonOptions {
  device: string;
  keyCode: number;
  layout: 'auto' | '64' | '32';
  clock: Clock;
  logger: Logger;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** For `layout: auto`; defaults to process.arch. */
  arch?: string;
  /** The reader; `cat` from PATH by default. */
  cat?: string;
}

/** Kernel timestamps may move an event back by at most this much (a clock step must not invent long holds). */
const MAX_BACKDATE_MS = 1000;
/** After this many records with not one valid, the layout is probably wrong: say so once. */
const LAYOUT_HINT_AFTER = 8;

export class EvdevButtonSource implements ButtonSource {
  readonly kind = 'evdev';
  readonly #opts: EvdevButtonOptions;
  readonly #decoder: InputEventDecoder;
  readonly #filter = new KeyEdgeFilter();
  readonly #listeners: Listeners<ButtonEvent>;
  readonly #status: StatusCell;
  readonly #reader: SupervisedChild;
  #running = false;
  #lastErrorCode: string | undefined;
  #events = 0;
  #layoutHinted = false;

  constructor(options: EvdevButtonOptions) {
    this.#opts = options;
    this.#decoder = new InputEventDecoder(recordSize(options.layout, options.arch));
    const log = (e: unknown) => options.logger.error({ err: errorMessage(e) }, 'button listener failed');
    this.#listeners = new Listeners(log);
    this.#status = new StatusCell(log);
    this.#reader = new SupervisedChild({
      prepare: async () => this.#prepare(),
      onRunning: () => this.#opened(),
      onStdout: (chunk) => this.#data(chunk),
      onGone: (why) => this.#gone(why),
      clock: options.clock,
      backoff: options.backoff ?? { baseMs: 250, capMs: 5000 },
      ...(options.random ? { random: options.random } : {}),
    });
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#status.set('starting');
    this.#opts.logger.info({ device: this.#opts.device, key_code: this.#opts.keyCode, record_bytes: this.#decoder.size }, 'evdev button starting');
    await this.#reader.start();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#reader.stop();
    this.#status.set('stopped');
  }

  onEvent(listener: (event: ButtonEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  onStatus(listener: (status: ButtonSourceStatus) => void): () => void {
    return this.#status.onChange(listener);
  }

  status(): ButtonSourceStatus {
    return this.#status.get();
  }

  stats(): { events: number; dropped: number } {
    return { events: this.#events, dropped: this.#decoder.garbage };
  }

  /** Checked here, not left to `cat`, so "missing" and "no permission" are said plainly and cost no process. */
  #prepare(): ChildCommand | Error {
    const device = this.#opts.device;
    try {
      const st = statSync(device);
      if (!st.isCharacterDevice() && !st.isFIFO()) {
        return Object.assign(new Error(`${device} is not an input device (not a character device or FIFO)`), { code: 'ENOTINPUT' });
      }
      accessSync(device, constants.R_OK);
    } catch (e) {
      return e as Error;
    }
    return { command: this.#opts.cat ?? 'cat', args: ['--', device] };
  }

  #opened(): void {
    this.#decoder.reset();
    if (this.#lastErrorCode !== undefined) this.#opts.logger.info({ device: this.#opts.device }, 'button device is back');
    this.#lastErrorCode = undefined;
    this.#status.set('ready');
  }

  #data(chunk: Buffer): void {
    this.#reader.healthy();
    const records = this.#decoder.push(chunk);
    if (!this.#layoutHinted && this.#decoder.valid === 0 && this.#decoder.garbage >= LAYOUT_HINT_AFTER) {
      this.#layoutHinted = true;
      this.#opts.logger.warn(
        { device: this.#opts.device, record_bytes: this.#decoder.size, garbage: this.#decoder.garbage },
        'no valid input_event record yet: is button.layout right for this device?',
      );
    }
    if (records.length === 0) return;
    for (const edge of this.#filter.push(records, this.#opts.keyCode, this.#opts.clock.monotonic())) this.#emit(edge.kind, edge.at);
  }

  #gone(why: Error): void {
    const up = this.#filter.release(this.#opts.clock.monotonic());
    if (up) this.#emit(up.kind, up.at);
    if (!this.#running) return;
    this.#status.set('unavailable');
    const code = (why as NodeJS.ErrnoException).code ?? 'ERROR';
    // One line per kind of fault, not one per retry: an unplugged button must not flood the log.
    if (code !== this.#lastErrorCode) {
      this.#opts.logger.warn({ device: this.#opts.device, code, err: errorMessage(why) }, 'button device unavailable; retrying');
      this.#lastErrorCode = code;
    }
  }

  #emit(kind: 'down' | 'up', at: number): void {
    this.#events++;
    this.#listeners.emit({ kind, at, source: this.kind });
  }
}

/**
 * Turns input records into down/up edges of one key: value 1 = down, 0 = up, 2 = autorepeat (ignored); other
 * keys and event types are ignored; a repeated edge (up when already up) is dropped. Times: the newest record
 * of a batch is taken as read `now`, earlier ones are moved back by their kernel-timestamp distance to it
 * (at most MAX_BACKDATE_MS), never before an edge already given out.
 */
export class KeyEdgeFilter {
  #down = false;
  #dropping = false;
  #lastAt = Number.NEGATIVE_INFINITY;

  push(records: readonly InputEvent[], keyCode: number, now: number): Array<{ kind: 'down' | 'up'; at: number }> {
    const out: Array<{ kind: 'down' | 'up'; at: number }> = [];
    const newest = records[records.length - 1]?.timeMs ?? 0;
    for (const r of records) {
      if (r.type === EV_SYN) {
        if (r.code === SYN_DROPPED) {
          this.#dropping = true;
          const up = this.release(now);
          if (up) out.push(up);
        } else if (r.code === SYN_REPORT) {
          this.#dropping = false;
        }
        continue;
      }
      if (this.#dropping || r.type !== EV_KEY || r.code !== keyCode || r.value === 2) continue;
      const down = r.value === 1;
      if (down === this.#down) continue;
      this.#down = down;
      const back = Math.min(MAX_BACKDATE_MS, Math.max(0, newest - r.timeMs));
      out.push({ kind: down ? 'down' : 'up', at: this.#stamp(now - back) });
    }
    return out;
  }

  /** Contact lost: if the key was down, it is now taken as up (see EvdevButtonSource). */
  release(now: number): { kind: 'up'; at: number } | null {
    if (!this.#down) return null;
    this.#down = false;
    return { kind: 'up', at: this.#stamp(now) };
  }

  #stamp(at: number): number {
    this.#lastAt = Math.max(this.#lastAt, at);
    return this.#lastAt;
  }
}
