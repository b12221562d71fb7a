/**
 * Linux `struct input_event` (linux/input.h), as read from /dev/input/event*:
 *
 *   64-bit process (x64, arm64, ...), 24 bytes: tv_sec i64 · tv_usec i64 · type u16 · code u16 · value i32
 *   32-bit process (arm, ia32, ...),  16 bytes: tv_sec i32 · tv_usec i32 · type u16 · code u16 · value i32
 *
 * The size is `2 * sizeof(long) + 8` of the *reading process*: a 32-bit Node on a 64-bit kernel (Raspberry Pi
 * OS 32-bit on a Pi 4/5) gets the 16-byte compat layout, and the 64-bit time_t of newer 32-bit userlands does
 * not change it (the kernel keeps `__kernel_ulong_t` there). So layout `auto` follows `process.arch`'s word
 * size, which is exact. A wrong explicit layout shows up as records counted as garbage (and one warning).
 * Little-endian: every Raspberry Pi and every Node target we ship for.
 */

export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_MAX = 0x1f;
export const SYN_REPORT = 0;
export const SYN_DROPPED = 3;
/** KEY_SOS (0x27f), the default key code: see src/button/evdev.ts for why. */
export const KEY_SOS = 639;
export const KEY_MAX = 0x2ff;

export type InputEventLayout = 16 | 24;

export interface InputEvent {
  /** Kernel timestamp (CLOCK_REALTIME unless the reader asked otherwise), ms. */
  timeMs: number;
  type: number;
  code: number;
  value: number;
}

const ARCH_64 = new Set(['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'mips64']);

/** Record size for a config value; `auto` = the word size of the architecture Node runs as. */
export function recordSize(layout: 'auto' | '64' | '32', arch: string = process.arch): InputEventLayout {
  if (layout === '64') return 24;
  if (layout === '32') return 16;
  return ARCH_64.has(arch) ? 24 : 16;
}

/** Packs one record (for tests, the simulator, and anything that feeds a FIFO). */
export function packInputEvent(event: InputEvent, size: InputEventLayout): Buffer {
  const b = Buffer.alloc(size);
  const sec = Math.floor(event.timeMs / 1000);
  const usec = Math.round((event.timeMs - sec * 1000) * 1000);
  if (size === 24) {
    b.writeBigInt64LE(BigInt(sec), 0);
    b.writeBigInt64LE(BigInt(usec), 8);
  } else {
    b.writeInt32LE(sec, 0);
    b.writeInt32LE(usec, 4);
  }
  const o = size === 24 ? 16 : 8;
  b.writeUInt16LE(event.type, o);
  b.writeUInt16LE(event.code, o + 2);
  b.writeInt32LE(event.value, o + 4);
  return b;
}

/**
 * Turns a byte stream into records. Reads may split a record at any byte (a FIFO does; the kernel never
 * does), so the tail is kept for the next chunk. A record that no kernel would write (unknown type, tv_usec
 * out of range, a key value other than 0/1/2, an unknown SYN code) is counted in `garbage` and dropped.
 */
export class InputEventDecoder {
  readonly size: InputEventLayout;
  #tail: Buffer = Buffer.alloc(0);
  #garbage = 0;
  #valid = 0;

  constructor(size: InputEventLayout) {
    this.size = size;
  }

  get garbage(): number {
    return this.#garbage;
  }

  get valid(): number {
    return this.#valid;
  }

  /** Drops a partial record (after a reopen the stream starts on a record boundary again). */
  reset(): void {
    this.#tail = Buffer.alloc(0);
  }

  push(chunk: Buffer): InputEvent[] {
    const data = this.#tail.length === 0 ? chunk : Buffer.concat([this.#tail, chunk]);
    const whole = data.length - (data.length % this.size);
    const out: InputEvent[] = [];
    for (let o = 0; o < whole; o += this.size) {
      const event = this.#decode(data, o);
      if (event) {
        this.#valid++;
        out.push(event);
      } else {
        this.#garbage++;
      }
    }
    // Copy the tail: `data` may be the caller's reused read buffer.
    this.#tail = Buffer.from(data.subarray(whole));
    return out;
  }

  #decode(b: Buffer, o: number): InputEvent | null {
    let sec: number;
    let usec: number;
    let p: number;
    if (this.size === 24) {
      const s = b.readBigInt64LE(o);
      const u = b.readBigInt64LE(o + 8);
      if (s < 0n || s > BigInt(Number.MAX_SAFE_INTEGER) / 1000n || u < 0n || u >= 1_000_000n) return null;
      sec = Number(s);
      usec = Number(u);
      p = o + 16;
    } else {
      sec = b.readUInt32LE(o);
      usec = b.readInt32LE(o + 4);
      if (usec < 0 || usec >= 1_000_000) return null;
      p = o + 8;
    }
    const type = b.readUInt16LE(p);
    const code = b.readUInt16LE(p + 2);
    const value = b.readInt32LE(p + 4);
    if (type > EV_MAX) return null;
    if (type === EV_KEY && (code > KEY_MAX || value < 0 || value > 2)) return null;
    if (type === EV_SYN && code > SYN_DROPPED) return null;
    return { timeMs: sec * 1000 + usec / 1000, type, code, value };
  }
}
