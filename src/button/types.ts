/** A button edge as a source saw it. `at` is the injected clock's monotonic ms when it was read. */
export interface ButtonEvent {
  kind: 'down' | 'up';
  at: number;
  /** The source that produced it: evdev, gpiomon, terminal, cli, scripted. */
  source: string;
}

/**
 * Whether a source can see the button right now. `unavailable` (device unplugged, gpiomon missing, stdin not a
 * terminal) means a press would not be seen: the app shows "degraded".
 */
export type ButtonSourceStatus = 'stopped' | 'starting' | 'ready' | 'unavailable';

/**
 * A source of button edges. The constructor does no I/O; `start()` opens the device and keeps reading
 * (reopening on error) until `stop()`. It never blocks process exit.
 */
export interface ButtonSource {
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  onEvent(listener: (event: ButtonEvent) => void): () => void;
  stats(): { events: number; dropped: number };
  /** Every source in src/button has these; optional so that a one-off test double need not. */
  status?(): ButtonSourceStatus;
  onStatus?(listener: (status: ButtonSourceStatus) => void): () => void;
}
