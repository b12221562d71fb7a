import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PATTERNS, samePattern } from '../../../src/feedback/patterns.ts';
import { TerminalFeedback } from '../../../src/feedback/terminal.ts';
import { createFeedback } from '../../../src/feedback/create.ts';
import { feedbackSchema } from '../../../src/config/agent-schema.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import type { AgentState } from '../../../src/feedback/types.ts';

const STATES = Object.keys(PATTERNS) as AgentState[];

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

describe('patterns', () => {
  it('covers every state, each with its own LED pattern and its own terminal label', () => {
    expect(STATES.sort()).toEqual(['armed', 'cancel_window', 'cancelled', 'confirmed', 'degraded', 'failed', 'holding', 'queued', 'waiting_location']);
    for (const a of STATES) {
      for (const b of STATES) {
        if (a === b) continue;
        expect(samePattern(PATTERNS[a].led, PATTERNS[b].led), `${a} vs ${b}`).toBe(false);
        expect(PATTERNS[a].label).not.toBe(PATTERNS[b].label);
      }
    }
  });

  it('keeps the buzzer silent unless the person must act or know at once', () => {
    const sounding = STATES.filter((s) => PATTERNS[s].buzzer !== 'off');
    expect(sounding.sort()).toEqual(['cancel_window', 'failed']);
  });
});

describe('TerminalFeedback', () => {
  it('writes one clear line per change of state, none for a repeat', () => {
    const out = capture();
    const t = new TerminalFeedback(out.stream);
    t.show('armed');
    t.show('armed');
    t.show('holding');
    t.show('cancel_window', 'sending in 5 s');
    t.show('cancel_window', 'sending in 4 s');
    expect(out.lines()).toEqual([
      'SOS READY: hold the SOS button to call for help',
      'SOS HOLDING: keep holding to send an alert',
      'SOS ALERT CONFIRMED: it will be sent; press once more to cancel (sending in 5 s)',
      'SOS ALERT CONFIRMED: it will be sent; press once more to cancel (sending in 4 s)',
    ]);
  });
});

describe('createFeedback', () => {
  it('fans out to the LED, the buzzer and the terminal', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sos-leds-'));
    try {
      for (const name of ['sos', 'beeper']) {
        mkdirSync(join(root, name));
        for (const f of ['brightness', 'trigger', 'delay_on', 'delay_off']) writeFileSync(join(root, name, f), '');
      }
      const out = capture();
      const feedback = createFeedback(feedbackSchema.parse({ leds_root: root, led: 'sos', buzzer: 'beeper' }), { logger: silentLogger(), stream: out.stream });
      expect(feedback.kind).toBe('led+buzzer+terminal');
      await feedback.start();
      feedback.show('failed');
      expect(readFileSync(join(root, 'sos', 'delay_on'), 'utf8')).toBe('100');
      expect(readFileSync(join(root, 'beeper', 'delay_on'), 'utf8')).toBe('500');
      expect(out.lines()).toEqual(['SOS ALERT FAILED: it was refused; call 9-1-1 another way if you can']);
      await feedback.stop();
      expect(readFileSync(join(root, 'sos', 'brightness'), 'utf8')).toBe('0');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('with nothing configured shows nothing and does not fail', async () => {
    const feedback = createFeedback(feedbackSchema.parse({ terminal: false }), { logger: silentLogger() });
    await feedback.start();
    expect(() => feedback.show('armed')).not.toThrow();
    expect(feedback.kind).toBe('none');
  });
});
