import type { AgentConfig } from '../config/agent-schema.ts';
import { createGpsSource } from '../gps/create.ts';
import { FixTracker } from '../gps/fix-tracker.ts';
import type { LocationSnapshot } from '../gps/types.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * One location for a one-shot command: start the configured GPS source, wait up to `timeoutMs` for a fix,
 * else take the static fallback, else null (the caller says "waiting for location" and fails).
 */
export async function locateOnce(config: AgentConfig, deps: { clock: Clock; logger: Logger }, timeoutMs: number): Promise<LocationSnapshot | null> {
  const tracker = new FixTracker({ maxAgeMs: config.gps.max_age_s * 1000, fallback: config.gps.fallback, clock: deps.clock });
  const source = createGpsSource(config.gps, deps);
  const abort = new AbortController();
  // Wait for a real fix even when a fallback is configured: the fallback is the last resort (invariant 4).
  const firstFix = new Promise<void>((resolve) => {
    source.onFix((fix) => {
      tracker.update(fix);
      resolve();
    });
    abort.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const timer = deps.clock.setTimeout(() => abort.abort(), timeoutMs);
  try {
    await source.start();
    await firstFix;
    return tracker.snapshot();
  } finally {
    deps.clock.clearTimeout(timer);
    await source.stop();
  }
}
