import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/shared/clock.ts';
import { PressPolicy, type PressEffect } from '../../../src/press/press-policy.ts';
import { isHumanInitiation } from '../../../src/press/initiation.ts';
import { pressSchema, type PressConfig } from '../../../src/config/agent-schema.ts';
import type { ButtonEvent } from '../../../src/button/types.ts';

function setup(overrides: Partial<PressConfig> = {}, testAlerts = false) {
  const clock = new FakeClock();
  const config = { ...pressSchema.parse({}), ...overrides };
  const policy = new PressPolicy({ config, clock, testAlerts });
  const effects: PressEffect[] = [];
  policy.onEffect((e) => effects.push(e));
  void policy.start();
  const edge = (kind: 'down' | 'up', source = 'evdev') => policy.button({ kind, at: clock.monotonic(), source });
  /** A press held `ms`, then `gap` ms of nothing. */
  const press = (ms: number, gap = 0) => {
    edge('down');
    clock.advance(ms);
    edge('up');
    clock.advance(gap);
  };
  const types = () => effects.map((e) => e.type);
  const dispatches = () => effects.filter((e) => e.type === 'dispatch');
  return { clock, policy, effects, edge, press, types, dispatches };
}

describe('hold gesture', () => {
  it('confirms while still held at hold_ms, waits out the cancel window, then dispatches once', () => {
    const t = setup({ hold_ms: 2000, cancel_window_s: 5 });
    t.edge('down');
    t.clock.advance(1999);
    expect(t.types()).toEqual(['holding']);
    t.clock.advance(1);
    expect(t.types()).toEqual(['holding', 'pending']);
    const pending = t.effects[1];
    expect(pending).toMatchObject({ type: 'pending', window_ms: 5000, deadline: 7000 });
    t.edge('up');
    t.clock.advance(4999);
    expect(t.dispatches()).toHaveLength(0);
    t.clock.advance(1);
    expect(t.dispatches()).toHaveLength(1);
    const d = t.dispatches()[0]!;
    expect(d.type === 'dispatch' && isHumanInitiation(d.initiation)).toBe(true);
    expect(d.type === 'dispatch' && d.initiation).toMatchObject({ gesture: 'hold', source: 'evdev', press_times: [0], hold_ms: 2000, test: false });
    expect(t.policy.phase()).toBe('active');
  });

  it('a hold read late (down and up in one batch after a stall) is judged as it happened: it confirms', () => {
    for (const debounce_ms of [0, 30]) {
      const t = setup({ hold_ms: 2000, cancel_window_s: 0, debounce_ms });
      const start = t.clock.monotonic();
      t.clock.advance(2600); // the event loop was stuck; no timer has run
      t.policy.button({ kind: 'down', at: start, source: 'evdev' });
      t.policy.button({ kind: 'up', at: start + 2500, source: 'evdev' });
      t.clock.advance(100);
      expect(t.dispatches(), `debounce ${debounce_ms}`).toHaveLength(1);
      expect(t.types()).not.toContain('idle');
    }
  });

  it('a press shorter than hold_ms sends nothing and says so', () => {
    const t = setup();
    t.press(1500, 60_000);
    expect(t.types()).toEqual(['holding', 'idle']);
    expect(t.effects[1]).toEqual({ type: 'idle', reason: 'released' });
  });

  it('cancel_window_s 0 dispatches at the moment the hold completes', () => {
    const t = setup({ cancel_window_s: 0 });
    t.edge('down');
    t.clock.advance(2000);
    expect(t.types()).toEqual(['holding', 'pending', 'dispatch']);
  });

  it('a button stuck down yields exactly one alert, also after the incident ends', () => {
    const t = setup();
    t.edge('down');
    t.clock.advance(60_000);
    expect(t.dispatches()).toHaveLength(1);
    t.policy.incidentEnded();
    t.clock.advance(3_600_000);
    expect(t.dispatches()).toHaveLength(1);
    // Released and pressed again for real: that is a new gesture.
    t.edge('up');
    t.clock.advance(100);
    t.edge('down');
    t.clock.advance(8000);
    expect(t.dispatches()).toHaveLength(2);
  });
});

describe('cancel window', () => {
  it('one more press cancels, and holding that press does not start a new alert', () => {
    const t = setup();
    t.press(2100, 500);
    t.edge('down');
    t.clock.advance(30); // debounce
    expect(t.effects.at(-1)).toMatchObject({ type: 'cancelled' });
    t.clock.advance(30_000);
    t.edge('up');
    t.clock.advance(30_000);
    expect(t.dispatches()).toHaveLength(0);
    expect(t.types()).toEqual(['holding', 'pending', 'cancelled']);
    expect(t.policy.phase()).toBe('idle');
  });

  it('releasing the confirming press does not cancel it', () => {
    const t = setup();
    t.press(3000, 10_000);
    expect(t.dispatches()).toHaveLength(1);
  });

  it('after a cancel, a fresh hold sends a new alert', () => {
    const t = setup();
    t.press(2000, 100);
    t.press(100, 100);
    t.press(2000, 5000);
    expect(t.types()).toEqual(['holding', 'pending', 'cancelled', 'holding', 'pending', 'dispatch']);
  });
});

describe('debounce', () => {
  it('contact bounce on press and release counts as one press', () => {
    const t = setup({ debounce_ms: 30, multi_press: { count: 2, window_ms: 2000 } });
    for (const kind of ['down', 'up', 'down', 'up', 'down'] as const) {
      t.edge(kind);
      t.clock.advance(2);
    }
    t.clock.advance(300);
    for (const kind of ['up', 'down', 'up'] as const) {
      t.edge(kind);
      t.clock.advance(3);
    }
    t.clock.advance(5000);
    // One press: not two (which would be a multi-press alert).
    expect(t.types()).toEqual(['holding', 'counting', 'idle']);
  });

  it('a glitch shorter than debounce_ms is nothing at all', () => {
    const t = setup({ debounce_ms: 30 });
    t.edge('down');
    t.clock.advance(10);
    t.edge('up');
    t.clock.advance(10_000);
    expect(t.effects).toEqual([]);
  });

  it('measures the hold from the raw edge, not from the end of the debounce', () => {
    const t = setup({ debounce_ms: 30, hold_ms: 2000 });
    t.edge('down');
    t.clock.advance(2000);
    expect(t.types()).toEqual(['holding', 'pending']);
  });

  it('a down and an up delivered together in one late batch still count as a press', () => {
    const t = setup({ debounce_ms: 30, multi_press: { count: 2, window_ms: 2000 } });
    t.clock.advance(1000);
    t.policy.button({ kind: 'down', at: 900, source: 'evdev' });
    t.policy.button({ kind: 'up', at: 980, source: 'evdev' });
    t.clock.advance(100);
    t.policy.button({ kind: 'down', at: 1050, source: 'evdev' });
    t.clock.advance(50);
    expect(t.types()).toContain('pending');
  });
});

describe('multi-press gesture', () => {
  it('N presses within the window confirm an alert with every press time', () => {
    const t = setup({ multi_press: { count: 3, window_ms: 2000 } });
    t.press(100, 300);
    t.press(100, 300);
    t.edge('down');
    t.clock.advance(30); // debounce
    const pending = t.effects.find((e) => e.type === 'pending');
    expect(pending?.type === 'pending' && pending.initiation).toMatchObject({ gesture: 'multi_press', press_times: [0, 400, 800] });
    t.edge('up');
    t.clock.advance(5000);
    expect(t.dispatches()).toHaveLength(1);
  });

  it('presses spread wider than the window do not add up', () => {
    const t = setup({ multi_press: { count: 3, window_ms: 2000 } });
    t.press(100, 1100);
    t.press(100, 1100);
    t.press(100, 10_000);
    expect(t.types()).not.toContain('pending');
    expect(t.effects.at(-1)).toEqual({ type: 'idle', reason: 'window_expired' });
  });

  it('a long hold still works while counting presses', () => {
    const t = setup({ multi_press: { count: 3, window_ms: 2000 } });
    t.press(100, 200);
    t.edge('down');
    t.clock.advance(2000);
    expect(t.effects.at(-1)).toMatchObject({ type: 'pending', initiation: { gesture: 'hold' } });
  });
});

describe('active incident', () => {
  it('a new gesture is recorded against the active incident, not a second flow', () => {
    const t = setup();
    t.press(2000, 6000);
    expect(t.dispatches()).toHaveLength(1);
    const first = t.dispatches()[0]!;
    t.press(2500, 20_000);
    expect(t.dispatches()).toHaveLength(1);
    const repeat = t.effects.find((e) => e.type === 'repeat');
    expect(repeat).toBeDefined();
    if (repeat?.type === 'repeat' && first.type === 'dispatch') {
      expect(isHumanInitiation(repeat.initiation)).toBe(true);
      expect(repeat.incident).toBe(first.initiation);
      expect(repeat.initiation.press_times).toEqual([8000]);
    }
    expect(t.effects.find((e) => e.type === 'holding' && e.during_incident)).toBeDefined();
  });

  it('after incidentEnded() the next gesture starts a new flow', () => {
    const t = setup();
    t.press(2000, 6000);
    t.policy.incidentEnded();
    t.press(2000, 6000);
    expect(t.dispatches()).toHaveLength(2);
  });
});

describe('test alert', () => {
  it('holding on to test_hold_ms turns the pending alert into a test with a fresh cancel window', () => {
    const t = setup({ hold_ms: 2000, test_hold_ms: 10_000, cancel_window_s: 5 }, true);
    t.edge('down');
    t.clock.advance(9999);
    // The real alert's window ran out at 7 s, but a testable hold is not sent while it lasts.
    expect(t.dispatches()).toHaveLength(0);
    t.clock.advance(1);
    const last = t.effects.at(-1);
    expect(last).toMatchObject({ type: 'pending', window_ms: 5000, initiation: { gesture: 'test_hold', test: true, hold_ms: 10_000 } });
    t.edge('up');
    t.clock.advance(5000);
    expect(t.dispatches()).toHaveLength(1);
    expect(t.dispatches()[0]).toMatchObject({ initiation: { test: true } });
  });

  it('releasing between hold_ms and test_hold_ms sends the real alert', () => {
    const t = setup({ hold_ms: 2000, test_hold_ms: 10_000, cancel_window_s: 5 }, true);
    t.press(8000, 30);
    // The window had run out while held: released, it goes at once.
    expect(t.dispatches()).toHaveLength(1);
    expect(t.dispatches()[0]).toMatchObject({ initiation: { test: false, gesture: 'hold' } });
  });

  it('without a test callflow no hold of any length becomes a test', () => {
    const t = setup({ hold_ms: 2000, test_hold_ms: 10_000, cancel_window_s: 5 }, false);
    t.edge('down');
    t.clock.advance(60_000);
    expect(t.dispatches()).toHaveLength(1);
    expect(t.dispatches()[0]).toMatchObject({ initiation: { test: false } });
    expect(t.effects.filter((e) => e.type === 'pending')).toHaveLength(1);
  });

  it('a stuck button with test alerts enabled still yields exactly one alert', () => {
    const t = setup({ hold_ms: 2000, test_hold_ms: 10_000, cancel_window_s: 0 }, true);
    t.edge('down');
    t.clock.advance(3_600_000);
    expect(t.dispatches()).toHaveLength(1);
  });
});

describe('lifecycle and inputs', () => {
  it('stop() during the cancel window dispatches: a shutdown never loses a confirmed press', async () => {
    const t = setup();
    t.press(2000, 1000);
    await t.policy.stop();
    expect(t.dispatches()).toHaveLength(1);
    expect(t.clock.pending()).toBe(0);
  });

  it('drops inputs that are not button events, and edges before start()', () => {
    const clock = new FakeClock();
    const policy = new PressPolicy({ config: pressSchema.parse({}), clock, testAlerts: false });
    const effects: PressEffect[] = [];
    policy.onEffect((e) => effects.push(e));
    policy.button({ kind: 'down', at: 0, source: 'evdev' });
    void policy.start();
    for (const bad of [{ kind: 'press', at: 0, source: 'x' }, { kind: 'down', at: Number.NaN, source: 'x' }, { kind: 'down', at: 0 }, null, 'down']) {
      policy.button(bad as unknown as ButtonEvent);
    }
    clock.advance(60_000);
    expect(effects).toEqual([]);
    expect(policy.stats().dropped).toBe(6);
  });

  it('a listener that throws does not break the state machine', () => {
    const clock = new FakeClock();
    const errors: unknown[] = [];
    const logger = { error: (o: unknown) => errors.push(o) } as unknown as import('../../../src/shared/logger.ts').Logger;
    const policy = new PressPolicy({ config: pressSchema.parse({}), clock, testAlerts: false, logger });
    const seen: string[] = [];
    policy.onEffect(() => {
      throw new Error('boom');
    });
    policy.onEffect((e) => seen.push(e.type));
    void policy.start();
    policy.button({ kind: 'down', at: 0, source: 'evdev' });
    clock.advance(8000);
    expect(seen).toEqual(['holding', 'pending', 'dispatch']);
    expect(errors).toHaveLength(3);
  });
});

describe('config', () => {
  it('refuses a test hold that is not longer than the alert hold, naming the field', () => {
    const r = pressSchema.safeParse({ hold_ms: 3000, test_hold_ms: 2000 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['test_hold_ms']);
  });
});
