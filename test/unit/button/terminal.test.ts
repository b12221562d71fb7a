import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import { TerminalButtonSource, type TerminalInput } from '../../../src/button/terminal.ts';
import type { ButtonEvent } from '../../../src/button/types.ts';

class FakeTty extends PassThrough implements TerminalInput {
  readonly isTTY: boolean;
  isRaw = false;
  modes: boolean[] = [];
  constructor(isTTY = true) {
    super();
    this.isTTY = isTTY;
  }
  setRawMode(mode: boolean): this {
    this.isRaw = mode;
    this.modes.push(mode);
    return this;
  }
}

function setup(isTTY = true) {
  const clock = new FakeClock();
  const input = new FakeTty(isTTY);
  const output = new PassThrough();
  let text = '';
  output.on('data', (c: Buffer) => (text += c.toString()));
  let interrupts = 0;
  const source = new TerminalButtonSource({ clock, logger: silentLogger(), input, output, hint: 'Hold the button 2 s to send an alert.', onInterrupt: () => interrupts++ });
  const events: ButtonEvent[] = [];
  source.onEvent((e) => events.push(e));
  const key = (s: string) => input.write(s);
  return { clock, input, source, events, key, text: () => text, interrupts: () => interrupts };
}

describe('terminal button', () => {
  it('holding SPACE (auto-repeat) is one long press; it ends when the repeats stop', async () => {
    const t = setup();
    await t.source.start();
    t.key(' ');
    t.clock.advance(500); // the keyboard's repeat delay
    for (let i = 0; i < 60; i++) {
      t.key(' ');
      t.clock.advance(33);
    }
    expect(t.events.map((e) => e.kind)).toEqual(['down']);
    t.clock.advance(200);
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
    // Released about one repeat interval after the last repeat, not when the silence was noticed.
    expect(t.events[1]!.at).toBe(500 + 59 * 33 + 33);
    expect(t.events.every((e) => e.source === 'terminal')).toBe(true);
  });

  it('a single SPACE tap is a short press', async () => {
    const t = setup();
    await t.source.start();
    t.key(' ');
    t.clock.advance(1000);
    expect(t.events).toEqual([
      { kind: 'down', at: 0, source: 'terminal' },
      { kind: 'up', at: 80, source: 'terminal' },
    ]);
  });

  it('each ENTER is one short press (for multi-press and cancelling)', async () => {
    const t = setup();
    await t.source.start();
    for (let i = 0; i < 3; i++) {
      t.key('\r');
      t.clock.advance(300);
    }
    expect(t.events.map((e) => `${e.kind}@${e.at}`)).toEqual(['down@0', 'up@80', 'down@300', 'up@380', 'down@600', 'up@680']);
  });

  it('prints the keys and the configured gesture, sets raw mode, and restores it on stop', async () => {
    const t = setup();
    await t.source.start();
    expect(t.text()).toContain('hold SPACE');
    expect(t.text()).toContain('Hold the button 2 s');
    expect(t.input.isRaw).toBe(true);
    expect(t.source.status()).toBe('ready');
    await t.source.stop();
    expect(t.input.isRaw).toBe(false);
    expect(t.source.status()).toBe('stopped');
    t.key(' ');
    t.clock.advance(1000);
    expect(t.events).toEqual([]);
  });

  it('Ctrl-C asks the process to stop (raw mode swallows the signal); other keys do nothing', async () => {
    const t = setup();
    await t.source.start();
    t.key('abc\x1b[A\x03');
    expect(t.interrupts()).toBe(1);
    expect(t.events).toEqual([]);
  });

  it('when stdin is not a terminal it reads nothing and touches no mode', async () => {
    const t = setup(false);
    await t.source.start();
    expect(t.source.status()).toBe('unavailable');
    expect(t.input.modes).toEqual([]);
    expect(t.input.listenerCount('data')).toBe(0);
    await t.source.stop();
    expect(t.input.modes).toEqual([]);
  });
});
