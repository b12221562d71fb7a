import { describe, expect, it } from 'vitest';
import { LineSplitter, detectDialect, gpiomonCommand, parseGpiomonLine } from '../../../src/button/gpiomon-lines.ts';

describe('gpiomon output lines', () => {
  it('reads libgpiod v1 lines', () => {
    expect(parseGpiomonLine('event:  RISING EDGE offset: 17 timestamp: [     123.456789012]')).toEqual({ edge: 'rising', offset: 17, timeS: 123.456789012 });
    expect(parseGpiomonLine('event: FALLING EDGE offset: 4 timestamp: [1700000000.250000000]')).toEqual({ edge: 'falling', offset: 4, timeS: 1700000000.25 });
  });

  it('reads libgpiod v2 lines in each of its line-id forms', () => {
    expect(parseGpiomonLine('1234.5678 rising gpiochip0 17')).toEqual({ edge: 'rising', offset: 17, timeS: 1234.5678 });
    expect(parseGpiomonLine('10002.907638045\tfalling\tgpiochip0 17 "GPIO17"')).toEqual({ edge: 'falling', offset: 17, timeS: 10002.907638045 });
    expect(parseGpiomonLine('10002.907638045\tfalling\t"GPIO17"')).toEqual({ edge: 'falling', timeS: 10002.907638045 });
    expect(parseGpiomonLine('2024-05-01T10:00:00.123456789Z\trising\tgpiochip0 17')).toEqual({ edge: 'rising', offset: 17 });
  });

  it('anything else is not an edge, and nothing throws', () => {
    for (const line of ['', 'Monitoring line 17...', 'rising', 'event: SIDEWAYS EDGE offset: 1 timestamp: [1.2]', 'abc rising x', '\u0000\uffff', 'x'.repeat(5000)]) {
      expect(parseGpiomonLine(line)).toBeNull();
    }
  });
});

describe('gpiomon command line', () => {
  const base = { command: 'gpiomon', chip: 'gpiochip0', line: 17, activeLow: true, bias: 'auto' as const, stdbuf: true };

  it('v2: --chip, bias pull-up for an active-low button', () => {
    const d = detectDialect('Usage: gpiomon [OPTIONS] <line>...\n  -b, --bias <bias>\n  -c, --chip <chip>\n');
    expect(d).toEqual({ version: 2, lineBuffered: false, bias: true });
    expect(gpiomonCommand(d, base)).toEqual({ command: 'gpiomon', args: ['--chip', 'gpiochip0', '--bias', 'pull-up', '17'] });
    expect(gpiomonCommand(d, { ...base, activeLow: false })).toEqual({ command: 'gpiomon', args: ['--chip', 'gpiochip0', '--bias', 'pull-down', '17'] });
    expect(gpiomonCommand(d, { ...base, bias: 'as-is' }).args).toEqual(['--chip', 'gpiochip0', '17']);
  });

  it('v1.5+: --line-buffered and v1 spelling of the bias', () => {
    const d = detectDialect('Usage: gpiomon [OPTIONS] <chip name/number> <offset 1> <offset 2> ...\n  -b, --line-buffered:\tset standard output as line buffered\n  -B, --bias=[as-is|disable|pull-down|pull-up]\n');
    expect(d).toEqual({ version: 1, lineBuffered: true, bias: true });
    expect(gpiomonCommand(d, { ...base, bias: 'disabled' })).toEqual({ command: 'gpiomon', args: ['--line-buffered', '--bias=disable', 'gpiochip0', '17'] });
  });

  it('old v1 without --line-buffered runs under stdbuf -oL, so a press is not stuck in a pipe buffer', () => {
    const d = detectDialect('Usage: gpiomon [OPTIONS] <chip name/number> <line offset>\n  -l, --active-low:\tset the line active state to low\n');
    expect(d).toEqual({ version: 1, lineBuffered: false, bias: false });
    expect(gpiomonCommand(d, base)).toEqual({ command: 'stdbuf', args: ['-oL', 'gpiomon', 'gpiochip0', '17'] });
    expect(gpiomonCommand(d, { ...base, stdbuf: false })).toEqual({ command: 'gpiomon', args: ['gpiochip0', '17'] });
  });
});

describe('LineSplitter', () => {
  it('joins lines split across chunks and strips CR', () => {
    const s = new LineSplitter();
    expect(s.push('1.0 ris')).toEqual([]);
    expect(s.push('ing gpiochip0 17\r\n2.0 fall')).toEqual(['1.0 rising gpiochip0 17']);
    expect(s.push('ing gpiochip0 17\n')).toEqual(['2.0 falling gpiochip0 17']);
  });

  it('drops an overlong line whole and carries on with the next', () => {
    const s = new LineSplitter(16);
    expect(s.push('x'.repeat(40))).toEqual([]);
    expect(s.push('y'.repeat(40))).toEqual([]);
    expect(s.push('zz\nok line\n')).toEqual(['ok line']);
    expect(s.dropped).toBe(1);
  });
});
