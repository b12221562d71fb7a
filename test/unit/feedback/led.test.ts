import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LedFeedback } from '../../../src/feedback/led.ts';
import { PATTERNS } from '../../../src/feedback/patterns.ts';
import type { AgentState } from '../../../src/feedback/types.ts';
import type { Logger } from '../../../src/shared/logger.ts';

const FILES = ['brightness', 'trigger', 'delay_on', 'delay_off'] as const;

function recordingLogger() {
  const warnings: unknown[] = [];
  const logger = { warn: (o: unknown) => warnings.push(o), error: () => {}, info: () => {}, child: () => logger } as unknown as Logger;
  return { logger, warnings };
}

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sos-leds-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function device(name: string, extra: Record<string, string> = {}) {
  mkdirSync(join(root, name));
  for (const f of FILES) writeFileSync(join(root, name, f), '');
  for (const [f, v] of Object.entries(extra)) writeFileSync(join(root, name, f), v);
  return (file: string) => readFileSync(join(root, name, file), 'utf8');
}

describe('LedFeedback on the Linux LED class', () => {
  it('blinks with the timer trigger and shows steady states with brightness', async () => {
    const read = device('sos', { max_brightness: '255\n' });
    const led = new LedFeedback({ root, name: 'sos', role: 'led', logger: recordingLogger().logger });
    await led.start();

    led.show('cancel_window');
    expect([read('trigger'), read('delay_on'), read('delay_off')]).toEqual(['timer', '250', '250']);

    led.show('confirmed');
    expect([read('trigger'), read('brightness')]).toEqual(['none', '255']);

    led.show('cancelled');
    expect([read('trigger'), read('brightness')]).toEqual(['none', '0']);

    led.show('armed');
    expect([read('trigger'), read('delay_on'), read('delay_off')]).toEqual(['timer', '50', '2950']);
  });

  it('every state leaves the LED files in a different configuration', async () => {
    const read = device('sos');
    const led = new LedFeedback({ root, name: 'sos', role: 'led', logger: recordingLogger().logger });
    await led.start();
    const seen = new Map<string, AgentState>();
    for (const state of Object.keys(PATTERNS) as AgentState[]) {
      led.show(state);
      const trigger = read('trigger');
      const shown = trigger === 'timer' ? `timer ${read('delay_on')}/${read('delay_off')}` : `steady ${read('brightness')}`;
      expect(seen.get(shown), `${state} looks like ${seen.get(shown)}`).toBeUndefined();
      seen.set(shown, state);
    }
    expect(seen.size).toBe(9);
  });

  it('drives a buzzer from the buzzer column: silent while armed, ticking in the cancel window', async () => {
    const read = device('buzzer');
    const buzzer = new LedFeedback({ root, name: 'buzzer', role: 'buzzer', logger: recordingLogger().logger });
    await buzzer.start();
    buzzer.show('armed');
    expect([read('trigger'), read('brightness')]).toEqual(['none', '0']);
    buzzer.show('cancel_window');
    expect([read('trigger'), read('delay_on'), read('delay_off')]).toEqual(['timer', '100', '900']);
  });

  it('stop() turns it off, so a stopped agent does not look armed', async () => {
    const read = device('sos');
    const led = new LedFeedback({ root, name: 'sos', role: 'led', logger: recordingLogger().logger });
    await led.start();
    led.show('armed');
    await led.stop();
    expect([read('trigger'), read('brightness')]).toEqual(['none', '0']);
  });

  it('a missing LED is logged once per file and counted, never thrown', async () => {
    const { logger, warnings } = recordingLogger();
    const led = new LedFeedback({ root, name: 'absent', role: 'led', logger });
    await led.start();
    for (const state of ['armed', 'holding', 'armed', 'confirmed', 'armed'] as AgentState[]) expect(() => led.show(state)).not.toThrow();
    expect(led.stats().errors).toBeGreaterThanOrEqual(5);
    // trigger, delay_on, delay_off, brightness: one line each, however many times they fail.
    expect(warnings).toHaveLength(4);
  });

  it('does not rewrite a file with the value it already holds', async () => {
    device('sos');
    const led = new LedFeedback({ root, name: 'sos', role: 'led', logger: recordingLogger().logger });
    await led.start();
    led.show('armed');
    const writes = led.stats().writes;
    led.show('armed');
    expect(led.stats().writes).toBe(writes);
    // armed → holding (50/2950 → 50/50): same trigger and delay_on, so only delay_off is written.
    led.show('holding');
    expect(led.stats().writes).toBe(writes + 1);
  });
});
