import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fullJitterDelay, retryDelay } from '../../../src/shared/backoff.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { UUIDV7_RE, uuidv7 } from '../../../src/shared/uuidv7.ts';
import { VERSION } from '../../../src/shared/version.ts';
import { REPO_ROOT } from '../../support/fixtures.ts';

describe('shared basics', () => {
  it('uuidv7 is valid, carries its time and sorts by creation', () => {
    const a = uuidv7(Date.UTC(2026, 0, 1));
    const b = uuidv7(Date.UTC(2026, 0, 1) + 1);
    expect(a).toMatch(UUIDV7_RE);
    expect(parseInt(a.replace(/-/g, '').slice(0, 12), 16)).toBe(Date.UTC(2026, 0, 1));
    expect(a < b).toBe(true);
  });

  it('full jitter stays within the capped exponential ceiling and honours Retry-After', () => {
    const policy = { baseMs: 500, capMs: 30_000 };
    expect(fullJitterDelay(0, policy, () => 0.999)).toBe(499);
    expect(fullJitterDelay(3, policy, () => 0.5)).toBe(2000);
    expect(fullJitterDelay(20, policy, () => 0.999)).toBe(29_970);
    expect(fullJitterDelay(20, policy, () => 0)).toBe(0);
    expect(retryDelay(0, policy, 10_000, () => 0.1)).toBe(10_000);
  });

  it('FakeClock fires timers in order, only when advanced', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b'), 200);
    const h = clock.setTimeout(() => fired.push('x'), 150);
    clock.setTimeout(() => {
      fired.push('a');
      clock.setTimeout(() => fired.push('c'), 100);
    }, 100);
    clock.clearTimeout(h);
    clock.advance(199);
    expect(fired).toEqual(['a']);
    clock.advance(1);
    expect(fired).toEqual(['a', 'b', 'c']); // same instant: in the order they were set
    expect(clock.now()).toBe(200);
    expect(clock.pending()).toBe(0);
  });

  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
