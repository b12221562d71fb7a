import { describe, expect, it } from 'vitest';
import { describeGestures } from '../../../src/press/describe.ts';
import { pressSchema } from '../../../src/config/agent-schema.ts';

describe('describeGestures', () => {
  it('tells the person the default gesture and how to cancel', () => {
    expect(describeGestures(pressSchema.parse({}), false)).toBe('Hold the button 2 s to send an alert. You then have 5 s to cancel it with one more press.');
  });

  it('mentions multi-press, no cancel window, and the test hold only when it exists', () => {
    const press = pressSchema.parse({ multi_press: { count: 3, window_ms: 2000 }, cancel_window_s: 0, hold_ms: 1500 });
    expect(describeGestures(press, true)).toBe(
      'Hold the button 1.5 s to send an alert, or press it 3 times within 2 s. It is sent at once. Keep holding to 10 s to make it a TEST alert instead (no 9-1-1 call).',
    );
    expect(describeGestures(press, false)).not.toContain('TEST');
  });
});
