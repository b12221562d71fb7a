import type { PressConfig } from '../config/agent-schema.ts';

/** The configured gestures in one or two sentences, for the terminal button's instructions and `doctor`. */
export function describeGestures(press: PressConfig, testAlerts: boolean): string {
  const s = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;
  const multi = press.multi_press ? `, or press it ${press.multi_press.count} times within ${s(press.multi_press.window_ms)}` : '';
  const cancel =
    press.cancel_window_s > 0
      ? ` You then have ${s(press.cancel_window_s * 1000)} to cancel it with one more press.`
      : ' It is sent at once.';
  const test =
    testAlerts && press.test_hold_ms > press.hold_ms
      ? ` Keep holding to ${s(press.test_hold_ms)} to make it a TEST alert instead (no 9-1-1 call).`
      : '';
  return `Hold the button ${s(press.hold_ms)} to send an alert${multi}.${cancel}${test}`;
}
