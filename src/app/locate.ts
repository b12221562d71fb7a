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
  const now = tracker.snapshot();
  if (config.gps.source === 'static' && now) return now;
  const source = createGpsSource(config.gps, deps);
  source.onFix((fix) => tracker.update(fix));
  const abort = new AbortController();
  const timer = deps.clock.setTimeout(() => abort.abort(), timeoutMs);
  try {
    await source.start();
    return await tracker.waitForLocation(abort.signal).catch(() => tracker.snapshot());
  } finally {
    deps.clock.clearTimeout(timer);
    await source.stop();
  }
}
