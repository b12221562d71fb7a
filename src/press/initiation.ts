/**
 * Invariant 1, as a type: only a human starts a call. An `Initiation` can only be made by `PressPolicy`
 * (from a button source's events) or by `commandLineInitiation` (a person running `sos-agent trigger` at a
 * terminal). The brand is a module-private symbol, so no other code can build one without a cast, and
 * `assertHumanInitiation` checks at run time that the value came from here.
 */
declare const initiationBrand: unique symbol;

export type Gesture = 'hold' | 'multi_press' | 'test_hold' | 'command';

export interface InitiationRecord {
  gesture: Gesture;
  /** The button source that saw the press: evdev, gpiomon, terminal, cli. */
  source: string;
  /** Monotonic press times (ms) of the presses that made the gesture. */
  press_times: number[];
  /** How long the decisive press was held, ms (0 for a command). */
  hold_ms: number;
  /** Wall-clock time the gesture was confirmed (UTC ms). */
  confirmed_at: number;
  /** True for a test alert (test callflow; never reaches a real answering point). */
  test: boolean;
}

export type Initiation = Readonly<InitiationRecord> & { readonly [initiationBrand]: true };

const issued = new WeakSet<object>();

/** Only for src/press/: makes the branded value. Not re-exported anywhere else. */
export function issueInitiation(record: InitiationRecord): Initiation {
  const value = Object.freeze({ ...record, press_times: [...record.press_times] });
  issued.add(value);
  return value as Initiation;
}

/** A person ran `sos-agent trigger` at a terminal: that command is their press. */
export function commandLineInitiation(nowMs: number, test: boolean): Initiation {
  return issueInitiation({ gesture: 'command', source: 'cli', press_times: [], hold_ms: 0, confirmed_at: nowMs, test });
}

export function isHumanInitiation(value: unknown): value is Initiation {
  return typeof value === 'object' && value !== null && issued.has(value);
}
