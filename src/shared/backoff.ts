/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 *   delay = random(0, min(cap, base * 2^attempt))
 * Full jitter spreads a fleet that lost the network at the same moment, so devices do not all retry at once.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export function fullJitterDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** The delay to wait: the jittered backoff, but never less than what the server asked for (Retry-After). */
export function retryDelay(attempt: number, policy: BackoffPolicy, retryAfterMs?: number, random?: () => number): number {
  const jittered = fullJitterDelay(attempt, policy, random);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}
