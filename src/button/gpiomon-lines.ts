/**
 * libgpiod's `gpiomon`, both generations, for boards without the gpio-key overlay.
 *
 *   v1 (Debian ≤ 12):  gpiomon [--line-buffered] [--bias=pull-up] gpiochip0 17
 *                      event:  RISING EDGE offset: 17 timestamp: [     123.456789012]
 *   v2 (Debian ≥ 13):  gpiomon --chip gpiochip0 [--bias pull-up] 17
 *                      123.456789012\trising\tgpiochip0 17 "GPIO17"   (line id form varies: name, chip+offset)
 *
 * v2 flushes stdout after every batch of events. v1 flushes only with --line-buffered (1.5 and later); before
 * that its stdout into a pipe is block-buffered, so the source runs it under coreutils `stdbuf -oL`, or a press
 * would sit in a 4 KiB buffer. Which one is installed is read from `gpiomon --help`, once per start.
 *
 * Edges are reported as the pin sees them (gpiomon's own --active-low is not used); the source maps them:
 * active_low (button to ground, pull-up) → falling = down. Bias "auto" = pull-up for active_low, pull-down
 * otherwise: a floating input would otherwise chatter and count as presses.
 */

export type GpioEdge = 'rising' | 'falling';

export interface GpiomonEvent {
  edge: GpioEdge;
  /** Line offset when the line says it. */
  offset?: number;
  /** Event timestamp in seconds when numeric (monotonic on current kernels). */
  timeS?: number;
}

const V1_RE = /^event:\s+(RISING|FALLING) EDGE\s+offset:\s*(\d+)\s+timestamp:\s*\[\s*(\d+)\.(\d+)\s*\]/;
const V2_RE = /^\s*(\S+)\s+(rising|falling)(?:\s+(.*))?$/;
const V2_ID_RE = /^(\S+)\s+(\d+)(?:\s|$)/;

/** One output line → an edge, or null for anything else (banners, blank lines, noise). Never throws. */
export function parseGpiomonLine(line: string): GpiomonEvent | null {
  const v1 = V1_RE.exec(line);
  if (v1) {
    return {
      edge: v1[1] === 'RISING' ? 'rising' : 'falling',
      offset: Number(v1[2]),
      timeS: Number(`${v1[3]}.${v1[4]}`),
    };
  }
  const v2 = V2_RE.exec(line);
  if (!v2) return null;
  const event: GpiomonEvent = { edge: v2[2] as GpioEdge };
  const t = Number(v2[1]);
  if (/^\d+(\.\d+)?$/.test(v2[1] ?? '') && Number.isFinite(t)) event.timeS = t;
  else if (!/^\d{4}-\d\d-\d\dT/.test(v2[1] ?? '')) return null; // neither seconds nor --utc/--localtime
  const id = V2_ID_RE.exec(v2[3] ?? '');
  if (id) event.offset = Number(id[2]);
  return event;
}

export type GpioBias = 'auto' | 'pull-up' | 'pull-down' | 'disabled' | 'as-is';

export interface GpiomonDialect {
  version: 1 | 2;
  /** v1 only: knows --line-buffered. */
  lineBuffered: boolean;
  /** Knows --bias (v2, v1.5+). */
  bias: boolean;
}

/** Reads the dialect from `gpiomon --help` output (stdout and stderr together). */
export function detectDialect(help: string): GpiomonDialect {
  const version = /--chip\b/.test(help) ? 2 : 1;
  return { version, lineBuffered: version === 1 && help.includes('--line-buffered'), bias: help.includes('--bias') };
}

export interface GpiomonCommand {
  command: string;
  args: string[];
}

export function gpiomonCommand(
  dialect: GpiomonDialect,
  opts: { command: string; chip: string; line: number; activeLow: boolean; bias: GpioBias; stdbuf: boolean },
): GpiomonCommand {
  const bias = opts.bias === 'auto' ? (opts.activeLow ? 'pull-up' : 'pull-down') : opts.bias;
  const line = String(opts.line);
  if (dialect.version === 2) {
    const biasArgs = dialect.bias && bias !== 'as-is' ? ['--bias', bias] : [];
    return { command: opts.command, args: ['--chip', opts.chip, ...biasArgs, line] };
  }
  // v1 spells "disabled" as "disable".
  const biasArgs = dialect.bias && bias !== 'as-is' ? [`--bias=${bias === 'disabled' ? 'disable' : bias}`] : [];
  const args = [...(dialect.lineBuffered ? ['--line-buffered'] : []), ...biasArgs, opts.chip, line];
  if (!dialect.lineBuffered && opts.stdbuf) return { command: 'stdbuf', args: ['-oL', opts.command, ...args] };
  return { command: opts.command, args };
}

/** Splits a byte stream into lines; a line longer than `max` is dropped whole (counted), never buffered forever. */
export class LineSplitter {
  readonly #max: number;
  #partial = '';
  #skipping = false;
  dropped = 0;

  constructor(max = 1024) {
    this.#max = max;
  }

  push(chunk: string): string[] {
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop() ?? '';
    const out: string[] = [];
    for (const part of parts) {
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      if (part.length > this.#max) this.dropped++;
      else out.push(part.replace(/\r$/, ''));
    }
    if (this.#partial.length > this.#max) {
      if (!this.#skipping) this.dropped++;
      this.#partial = '';
      this.#skipping = true;
    }
    return out;
  }
}
