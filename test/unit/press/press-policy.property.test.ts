import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FakeClock } from '../../../src/shared/clock.ts';
import { PressPolicy, type PressEffect } from '../../../src/press/press-policy.ts';
import { isHumanInitiation, type Initiation } from '../../../src/press/initiation.ts';
import { pressSchema, type PressConfig } from '../../../src/config/agent-schema.ts';
import type { ButtonEvent } from '../../../src/button/types.ts';

/**
 * Invariant 1 (only a human starts a call), as properties over any configuration and any input sequence.
 */

const configArb: fc.Arbitrary<PressConfig> = fc
  .record({
    hold_ms: fc.integer({ min: 200, max: 5000 }),
    extra_test_ms: fc.integer({ min: 1, max: 10_000 }),
    cancel_window_s: fc.constantFrom(0, 0.5, 5),
    debounce_ms: fc.integer({ min: 0, max: 100 }),
    multi_press: fc.option(fc.record({ count: fc.integer({ min: 2, max: 5 }), window_ms: fc.integer({ min: 300, max: 5000 }) }), { nil: null }),
  })
  .map(({ extra_test_ms, ...c }) => pressSchema.parse({ ...c, test_hold_ms: Math.max(1000, c.hold_ms + extra_test_ms) }));

/** Everything that is not a button edge from a source: time passing, clock jumps, the app, junk. */
type Other =
  | { op: 'tick'; ms: number }
  | { op: 'jump'; ms: number }
  | { op: 'incidentEnded' }
  | { op: 'restart' }
  | { op: 'junk'; value: unknown };

const otherArb: fc.Arbitrary<Other> = fc.oneof(
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 120_000 }) }),
  fc.record({ op: fc.constant('jump' as const), ms: fc.integer({ min: 1_000_000, max: 1_000_000_000 }) }),
  fc.constant({ op: 'incidentEnded' as const }),
  fc.constant({ op: 'restart' as const }),
  fc.record({
    op: fc.constant('junk' as const),
    value: fc.oneof(
      fc.anything(),
      fc.record({ kind: fc.constantFrom('press', 'hold', 'DOWN', 'dispatch', ''), at: fc.double(), source: fc.string() }),
      fc.record({ kind: fc.constantFrom('down', 'up'), at: fc.constantFrom(Number.NaN, Infinity, -Infinity), source: fc.string() }),
      fc.record({ kind: fc.constantFrom('down', 'up'), at: fc.integer() }),
      fc.record({ kind: fc.constantFrom('down', 'up'), at: fc.integer(), source: fc.constant('') }),
    ),
  }),
);

type Step = Other | { op: 'edge'; kind: 'down' | 'up' };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('edge' as const), kind: fc.constantFrom('down' as const, 'up' as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 12_000 }) }) },
  { weight: 1, arbitrary: otherArb },
);

function harness(config: PressConfig, testAlerts: boolean) {
  const clock = new FakeClock();
  const policy = new PressPolicy({ config, clock, testAlerts });
  const log: Array<{ input: ButtonEvent } | { effect: PressEffect }> = [];
  policy.onEffect((effect) => log.push({ effect }));
  void policy.start();
  const run = async (step: Step) => {
    switch (step.op) {
      case 'edge': {
        const input: ButtonEvent = { kind: step.kind, at: clock.monotonic(), source: 'evdev' };
        log.push({ input });
        policy.button(input);
        break;
      }
      case 'tick':
      case 'jump':
        clock.advance(step.ms);
        break;
      case 'incidentEnded':
        policy.incidentEnded();
        break;
      case 'restart':
        await policy.stop();
        await policy.start();
        break;
      case 'junk':
        policy.button(step.value as ButtonEvent);
        break;
    }
  };
  return { clock, policy, log, run };
}

const initiationOf = (e: PressEffect): Initiation | null =>
  e.type === 'pending' || e.type === 'dispatch' || e.type === 'repeat' || e.type === 'cancelled' ? e.initiation : null;

describe('press policy: only a human starts a call', () => {
  it('no sequence of non-button inputs produces any alert (or any effect at all)', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.boolean(), fc.array(otherArb, { maxLength: 60 }), async (config, testAlerts, steps) => {
        const h = harness(config, testAlerts);
        for (const step of steps) await h.run(step);
        h.clock.advance(10_000_000);
        expect(h.log).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('every dispatch carries a branded initiation made from down edges that came before it', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.boolean(), fc.array(stepArb, { maxLength: 80 }), async (config, testAlerts, steps) => {
        const h = harness(config, testAlerts);
        for (const step of steps) await h.run(step);
        h.clock.advance(10_000_000);
        await h.policy.stop();

        const downsSoFar = new Set<number>();
        let dispatchesSinceEnd = 0;
        for (const entry of h.log) {
          if ('input' in entry) {
            if (entry.input.kind === 'down') downsSoFar.add(entry.input.at);
            continue;
          }
          const initiation = initiationOf(entry.effect);
          if (!initiation) continue;
          expect(isHumanInitiation(initiation)).toBe(true);
          expect(initiation.press_times.length).toBeGreaterThan(0);
          for (const t of initiation.press_times) expect(downsSoFar.has(t)).toBe(true);
          expect(initiation.source).toBe('evdev');
          if (entry.effect.type === 'dispatch') dispatchesSinceEnd++;
        }
        // One flow at a time: never more dispatches than incidents the app has ended, plus the current one.
        const ended = steps.filter((s) => s.op === 'incidentEnded' || s.op === 'restart').length;
        expect(dispatchesSinceEnd).toBeLessThanOrEqual(ended + 1);
      }),
      { numRuns: 300 },
    );
  });

  it('a button stuck down, whatever else happens, yields exactly one alert', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.boolean(), fc.array(otherArb.filter((o) => o.op !== 'restart'), { maxLength: 40 }), async (config, testAlerts, steps) => {
        const h = harness(config, testAlerts);
        h.policy.button({ kind: 'down', at: 0, source: 'evdev' });
        for (const step of steps) await h.run(step);
        h.clock.advance(10_000_000);
        const dispatches = h.log.filter((e) => 'effect' in e && e.effect.type === 'dispatch');
        expect(dispatches).toHaveLength(1);
      }),
      { numRuns: 300 },
    );
  });
});
