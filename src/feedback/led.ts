import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentState, Feedback } from './types.ts';
import { PATTERNS, type LightPattern } from './patterns.ts';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';

export interface LedFeedbackOptions {
  /** Usually /sys/class/leds. */
  root: string;
  /** The LED class device, e.g. "sos" from `dtoverlay=gpio-led,gpio=27,label=sos`. */
  name: string;
  /** Which column of the pattern table this device shows. */
  role: 'led' | 'buzzer';
  logger: Logger;
}

/**
 * An LED (or a buzzer wired as one) through the Linux LED class: `{root}/{name}/trigger` = `timer` with
 * `delay_on`/`delay_off` in ms for a blink (the kernel keeps blinking with no help from us), or `none` plus
 * `brightness` for steady on/off. Values already written are not written again, except that a trigger
 * change makes the kernel reset the other files, so they are written afresh after one.
 *
 * A write that fails (file missing: wrong name, overlay not loaded; permission) is counted and logged once per
 * file, never thrown: a dead LED must not stop an alert.
 */
export class LedFeedback implements Feedback {
  readonly kind: 'led' | 'buzzer';
  readonly #dir: string;
  readonly #role: 'led' | 'buzzer';
  readonly #logger: Logger;
  readonly #written = new Map<string, string>();
  readonly #complained = new Set<string>();
  #max = '1';
  #writes = 0;
  #errors = 0;

  constructor(options: LedFeedbackOptions) {
    this.kind = options.role;
    this.#dir = join(options.root, options.name);
    this.#role = options.role;
    this.#logger = options.logger;
  }

  async start(): Promise<void> {
    try {
      const max = readFileSync(join(this.#dir, 'max_brightness'), 'utf8').trim();
      if (/^[1-9]\d*$/.test(max)) this.#max = max;
    } catch {
      // No max_brightness (not a real LED class device): "1" is on for any LED.
    }
  }

  async stop(): Promise<void> {
    // A stopped agent must not look armed.
    this.#apply('off');
  }

  show(state: AgentState): void {
    this.#apply(PATTERNS[state][this.#role]);
  }

  stats(): { writes: number; errors: number } {
    return { writes: this.#writes, errors: this.#errors };
  }

  #apply(pattern: LightPattern): void {
    if (pattern === 'off' || pattern === 'on') {
      this.#write('trigger', 'none');
      this.#write('brightness', pattern === 'on' ? this.#max : '0');
    } else {
      this.#write('trigger', 'timer');
      this.#write('delay_on', String(pattern.on_ms));
      this.#write('delay_off', String(pattern.off_ms));
    }
  }

  #write(file: string, value: string): void {
    if (this.#written.get(file) === value) return;
    if (file === 'trigger') this.#written.clear();
    try {
      writeFileSync(join(this.#dir, file), value);
      this.#written.set(file, value);
      this.#writes++;
    } catch (e) {
      this.#errors++;
      this.#written.delete(file);
      if (!this.#complained.has(file)) {
        this.#complained.add(file);
        this.#logger.warn({ file: join(this.#dir, file), code: (e as NodeJS.ErrnoException).code, err: errorMessage(e) }, `cannot drive the ${this.#role}`);
      }
    }
  }
}
