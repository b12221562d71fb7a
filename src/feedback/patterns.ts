import type { AgentState } from './types.ts';

/** A light (or buzzer): steady off, steady on, or blinking by the kernel's LED `timer` trigger. */
export type LightPattern = 'off' | 'on' | { on_ms: number; off_ms: number };

export interface StatePattern {
  led: LightPattern;
  buzzer: LightPattern;
  /** The terminal line: a short word in capitals, then what it means for the person. */
  label: string;
  text: string;
}

/**
 * One distinct pattern per state: nine LED patterns for nine states, so the LED alone tells them apart. The
 * buzzer sounds only when the person must act or know at once (the countdown they can cancel, a failure), so
 * the device is silent while all is well. Steady light means "done, help has it"; darkness means "nothing
 * was sent"; everything in between blinks.
 *
 * | state            | LED                                 | buzzer                 | terminal                 |
 * |------------------|-------------------------------------|------------------------|--------------------------|
 * | armed            | blip 50 ms every 3 s                | off                    | READY                    |
 * | degraded         | slow blink 1 s on / 1 s off         | off                    | DEGRADED                 |
 * | holding          | flicker 50 / 50 ms (10 Hz)          | off                    | HOLDING                  |
 * | cancel_window    | blink 250 / 250 ms (2 Hz)           | tick 100 ms each second| ALERT CONFIRMED          |
 * | cancelled        | off                                 | off                    | CANCELLED                |
 * | waiting_location | 500 ms on / 1500 ms off             | off                    | WAITING FOR LOCATION     |
 * | queued           | on, dark 100 ms every 1 s           | off                    | SENDING                  |
 * | confirmed        | steady on                           | off                    | ALERT RECEIVED           |
 * | failed           | fast blink 100 / 100 ms             | 500 / 500 ms alarm     | ALERT FAILED             |
 */
export const PATTERNS: Readonly<Record<AgentState, StatePattern>> = {
  armed: { led: { on_ms: 50, off_ms: 2950 }, buzzer: 'off', label: 'READY', text: 'hold the SOS button to call for help' },
  degraded: {
    led: { on_ms: 1000, off_ms: 1000 },
    buzzer: 'off',
    label: 'DEGRADED',
    text: 'a press may not get through right now; call 9-1-1 another way if you can',
  },
  holding: { led: { on_ms: 50, off_ms: 50 }, buzzer: 'off', label: 'HOLDING', text: 'keep holding to send an alert' },
  cancel_window: {
    led: { on_ms: 250, off_ms: 250 },
    buzzer: { on_ms: 100, off_ms: 900 },
    label: 'ALERT CONFIRMED',
    text: 'it will be sent; press once more to cancel',
  },
  cancelled: { led: 'off', buzzer: 'off', label: 'CANCELLED', text: 'nothing was sent' },
  waiting_location: {
    led: { on_ms: 500, off_ms: 1500 },
    buzzer: 'off',
    label: 'WAITING FOR LOCATION',
    text: 'the alert goes out as soon as a position is known',
  },
  queued: { led: { on_ms: 900, off_ms: 100 }, buzzer: 'off', label: 'SENDING', text: 'your alert is saved and being sent' },
  confirmed: { led: 'on', buzzer: 'off', label: 'ALERT RECEIVED', text: 'the emergency service has your alert' },
  failed: {
    led: { on_ms: 100, off_ms: 100 },
    buzzer: { on_ms: 500, off_ms: 500 },
    label: 'ALERT FAILED',
    text: 'it was refused; call 9-1-1 another way if you can',
  },
};

export function samePattern(a: LightPattern, b: LightPattern): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.on_ms === b.on_ms && a.off_ms === b.off_ms;
}
