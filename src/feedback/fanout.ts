import type { AgentState, Feedback } from './types.ts';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';

/** Shows every state on all of its parts; one part failing does not keep the others dark. */
export class FanoutFeedback implements Feedback {
  readonly kind: string;
  readonly parts: readonly Feedback[];
  readonly #logger: Logger;

  constructor(parts: readonly Feedback[], logger: Logger) {
    this.parts = parts;
    this.kind = parts.map((p) => p.kind).join('+') || 'none';
    this.#logger = logger;
  }

  async start(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.stop()));
  }

  show(state: AgentState, detail?: string): void {
    for (const part of this.parts) {
      try {
        part.show(state, detail);
      } catch (e) {
        this.#logger.error({ part: part.kind, err: errorMessage(e) }, 'feedback failed');
      }
    }
  }
}
