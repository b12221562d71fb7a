import type { ButtonSource } from './types.ts';
import type { ButtonConfig, PressConfig } from '../config/agent-schema.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { EvdevButtonSource } from './evdev.ts';
import { GpiomonButtonSource } from './gpiomon.ts';
import { TerminalButtonSource, type TerminalInput } from './terminal.ts';
import { describeGestures } from '../press/describe.ts';

export interface ButtonDeps {
  clock: Clock;
  logger: Logger;
  /** For the terminal button's instructions. */
  press?: PressConfig;
  testAlerts?: boolean;
  stdin?: TerminalInput;
  stderr?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

/** The configured button source. Does no I/O: that starts with start(). */
export function createButtonSource(config: ButtonConfig, deps: ButtonDeps): ButtonSource {
  const logger = deps.logger.child({ part: 'button' });
  switch (config.source) {
    case 'evdev':
      return new EvdevButtonSource({ device: config.device, keyCode: config.key_code, layout: config.layout, clock: deps.clock, logger });
    case 'gpiomon':
      return new GpiomonButtonSource({
        chip: config.chip,
        line: config.line,
        activeLow: config.active_low,
        bias: config.bias,
        command: config.command,
        clock: deps.clock,
        logger,
        ...(deps.env ? { env: deps.env } : {}),
      });
    case 'terminal':
      return new TerminalButtonSource({
        clock: deps.clock,
        logger,
        ...(deps.stdin ? { input: deps.stdin } : {}),
        ...(deps.stderr ? { output: deps.stderr } : {}),
        ...(deps.press ? { hint: describeGestures(deps.press, deps.testAlerts ?? false) } : {}),
      });
  }
}
