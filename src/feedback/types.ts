/** Every state the person can be shown. Each has one distinct LED/buzzer/terminal pattern. */
export type AgentState =
  | 'armed' // healthy, waiting for a press
  | 'degraded' // a press would not get through right now (no fix, no network, API auth failing, store failing)
  | 'holding' // button held, gesture not yet complete
  | 'cancel_window' // alert confirmed, will be sent unless pressed again
  | 'cancelled'
  | 'waiting_location' // alert confirmed, no fix and no fallback yet
  | 'queued' // committed to the outbox; being sent
  | 'confirmed' // the API accepted it (code 0)
  | 'failed'; // the API rejected it for good

export interface Feedback {
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  show(state: AgentState, detail?: string): void;
}
