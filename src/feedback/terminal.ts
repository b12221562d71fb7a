import type { AgentState, Feedback } from './types.ts';
import { PATTERNS } from './patterns.ts';

/** One clear line per change of state (or of its detail) to a stream, stderr in the agent. */
export class TerminalFeedback implements Feedback {
  readonly kind = 'terminal';
  readonly #out: NodeJS.WritableStream;
  #last = '';

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  show(state: AgentState, detail?: string): void {
    const p = PATTERNS[state];
    const line = `SOS ${p.label}: ${p.text}${detail ? ` (${detail})` : ''}`;
    if (line === this.#last) return;
    this.#last = line;
    this.#out.write(`${line}\n`);
  }
}
