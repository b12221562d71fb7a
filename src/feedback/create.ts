import type { Feedback } from './types.ts';
import type { FeedbackConfig } from '../config/agent-schema.ts';
import type { Logger } from '../shared/logger.ts';
import { FanoutFeedback } from './fanout.ts';
import { LedFeedback } from './led.ts';
import { TerminalFeedback } from './terminal.ts';

export interface FeedbackDeps {
  logger: Logger;
  /** Where the terminal feedback writes; stderr by default (stdout carries the JSON logs). */
  stream?: NodeJS.WritableStream;
}

/** One Feedback showing each state on the configured LED, buzzer and terminal. Does no I/O until start(). */
export function createFeedback(config: FeedbackConfig, deps: FeedbackDeps): FanoutFeedback {
  const logger = deps.logger.child({ part: 'feedback' });
  const parts: Feedback[] = [];
  if (config.led) parts.push(new LedFeedback({ root: config.leds_root, name: config.led, role: 'led', logger }));
  if (config.buzzer) parts.push(new LedFeedback({ root: config.leds_root, name: config.buzzer, role: 'buzzer', logger }));
  if (config.terminal) parts.push(new TerminalFeedback(deps.stream ?? process.stderr));
  return new FanoutFeedback(parts, logger);
}
