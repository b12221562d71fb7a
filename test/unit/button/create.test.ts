import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import { createButtonSource } from '../../../src/button/create.ts';
import { ScriptedButtonSource, pressSteps } from '../../../src/button/scripted.ts';
import { buttonSchema } from '../../../src/config/agent-schema.ts';
import type { ButtonEvent } from '../../../src/button/types.ts';

describe('createButtonSource', () => {
  const deps = { clock: new FakeClock(), logger: silentLogger() };

  it('builds the configured source without touching any device', () => {
    const evdev = createButtonSource(buttonSchema.parse({ source: 'evdev', device: '/nonexistent/event0' }), deps);
    expect(evdev.kind).toBe('evdev');
    expect(evdev.status?.()).toBe('stopped');
    expect(createButtonSource(buttonSchema.parse({ source: 'gpiomon', line: 17, command: '/nonexistent/gpiomon' }), deps).kind).toBe('gpiomon');
    expect(createButtonSource(buttonSchema.parse({ source: 'terminal' }), deps).kind).toBe('terminal');
  });

  it('defaults the evdev key code to KEY_SOS (639), not KEY_POWER (116)', () => {
    const cfg = buttonSchema.parse({ source: 'evdev', device: '/dev/input/event0' });
    expect(cfg.source === 'evdev' && cfg.key_code).toBe(639);
  });

  it('an absent device at start is "unavailable", not a crash', async () => {
    const clock = new FakeClock();
    const source = createButtonSource(buttonSchema.parse({ source: 'evdev', device: '/nonexistent/event0' }), { clock, logger: silentLogger() });
    await source.start();
    expect(source.status?.()).toBe('unavailable');
    await source.stop();
    expect(clock.pending()).toBe(0);
  });
});

describe('ScriptedButtonSource', () => {
  it('plays its steps on the injected clock', async () => {
    const clock = new FakeClock();
    const source = new ScriptedButtonSource({ clock, steps: [...pressSteps(2500, 100), ...pressSteps(50, 300)], source: 'sim' });
    const events: ButtonEvent[] = [];
    source.onEvent((e) => events.push(e));
    await source.start();
    clock.advance(10_000);
    await source.finished();
    expect(events).toEqual([
      { kind: 'down', at: 100, source: 'sim' },
      { kind: 'up', at: 2600, source: 'sim' },
      { kind: 'down', at: 2900, source: 'sim' },
      { kind: 'up', at: 2950, source: 'sim' },
    ]);
    expect(source.stats()).toEqual({ events: 4, dropped: 0 });
  });
});
