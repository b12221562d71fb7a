import type { TokenCache, TokenHealth } from '../api/token-cache.ts';
import type { ButtonSource, ButtonSourceStatus } from '../button/types.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { RelayLink } from '../relay/link.ts';
import { probeOutboxWritable } from './health-probes.ts';
import type { FixTracker } from '../gps/fix-tracker.ts';
import type { CheckEvents, CheckResult, HealthCheck } from './supervisor.ts';

/**
 * The standard checks of "would a press get through?", one factory per part. Each polls the part's own state
 * and, where the part has events, pushes a change at once. Names are stable: they go into logs and presence.
 */

/** Token refresh succeeds (direct route). "unknown" (first fetch still running) is a warning, not a failure. */
export function tokenCheck(tokens: Pick<TokenCache, 'health' | 'on' | 'off'>): HealthCheck {
  return {
    name: 'api_token',
    run: () => tokenResult(tokens.health),
    watch: ({ report }) => {
      const listener = (h: TokenHealth) => report(tokenResult(h));
      tokens.on('health', listener);
      return () => tokens.off('health', listener);
    },
  };
}

export function tokenResult(h: TokenHealth): CheckResult {
  switch (h.state) {
    case 'ok':
      return { ok: true, detail: 'token refresh succeeds' };
    case 'unknown':
      return { ok: true, warn: true, detail: 'first token not fetched yet' };
    case 'failing':
      return { ok: false, detail: `token fetch failing (${h.error.code}, ${h.failures}×): ${h.error.message}` };
  }
}

/** Connected to the MQTT broker (relay routes). */
export function brokerCheck(link: Pick<RelayLink, 'connected' | 'onUp' | 'onDown'>): HealthCheck {
  const result = (up: boolean): CheckResult => (up ? { ok: true, detail: 'connected to the broker' } : { ok: false, detail: 'not connected to the broker' });
  return {
    name: 'broker',
    run: () => result(link.connected),
    watch: ({ report }) => {
      const offUp = link.onUp(() => report(result(true)));
      const offDown = link.onDown(() => report(result(false)));
      return () => {
        offUp();
        offDown();
      };
    },
  };
}

export interface FixCheckOptions {
  maxAgeMs: number;
  /**
   * A configured static location (`gps.fallback`): then a missing or stale fix is a warning, not a failure. An
   * alert still carries an honest location (the fallback with its configured radius, or the stale fix with its
   * true age and a grown radius, whichever is smaller), so the press gets through; the installer should still
   * hear about it. Without a fallback, an alert would wait for a location: that is "degraded".
   */
  hasFallback: boolean;
  /** Re-check when a fix arrives (e.g. `gps.onFix`), so recovery shows at once; staleness is found by the poll. */
  onFix?: ((listener: () => void) => () => void) | undefined;
}

/** A fix fresher than `max_age_s` (a static source's fix never ages). */
export function fixCheck(tracker: Pick<FixTracker, 'health' | 'snapshot'>, options: FixCheckOptions): HealthCheck {
  const { maxAgeMs, hasFallback, onFix } = options;
  const s = (ms: number) => `${Math.round(ms / 1000)} s`;
  const run = (): CheckResult => {
    const h = tracker.health();
    const snap = tracker.snapshot();
    const radius = snap ? `±${Math.round(snap.uncertainty_m)} m` : '';
    if (h.state === 'fresh') return { ok: true, detail: `fix ${s(h.lastFixAgeMs ?? 0)} old, ${radius}` };
    const why = h.lastFixAgeMs === null ? 'no fix yet' : `last fix ${s(h.lastFixAgeMs)} old (stale after ${s(maxAgeMs)})`;
    if (!hasFallback) return { ok: false, detail: h.state === 'stale' ? `${why}; alerts carry it with a grown radius (${radius})` : why };
    const carried = h.state === 'fallback' ? `the static fallback (${radius})` : `the stale fix (${radius})`;
    return { ok: true, warn: true, detail: `${why}; alerts carry ${carried}` };
  };
  return { name: 'gps_fix', run, ...(onFix ? { watch: ({ recheck }: CheckEvents) => onFix(recheck) } : {}) };
}

export interface OutboxCheckOptions {
  /** Also probe the file with a rolled-back write: finds a read-only or full disk before an alert needs it. */
  path?: string | undefined;
}

/** The outbox can take an alert durably: its store answers, nothing is held only in memory, the file is writable. */
export function outboxCheck(outbox: Pick<Outbox, 'stats' | 'onChange'>, options: OutboxCheckOptions = {}): HealthCheck {
  return {
    name: 'outbox',
    run: () => {
      const s = outbox.stats();
      if (!s.storeOk) return { ok: false, detail: `outbox store failing: ${s.storeError ?? 'unknown error'}` };
      if (s.memoryOnly > 0) return { ok: false, detail: `${s.memoryOnly} alert(s) held only in memory: a restart would lose them` };
      const probe = options.path ? probeOutboxWritable(options.path, 500) : null;
      if (probe && (!probe.ok || probe.warn)) return probe;
      return { ok: true, detail: `outbox writable, ${s.depth} alert(s) waiting` };
    },
    // Every alert event may have flipped the store's state (a failed write, or the first good write after one).
    watch: ({ recheck }) => outbox.onChange(() => recheck()),
  };
}

/** The button source can see a press. */
export function buttonCheck(source: Pick<ButtonSource, 'kind' | 'status' | 'onStatus'>): HealthCheck {
  const result = (s: ButtonSourceStatus | undefined): CheckResult => {
    if (s === undefined || s === 'ready') return { ok: true, detail: `${source.kind} button ready` };
    if (s === 'starting') return { ok: true, warn: true, detail: `${source.kind} button starting` };
    return { ok: false, detail: `${source.kind} button ${s}: a press would not be seen` };
  };
  return {
    name: 'button',
    run: () => result(source.status?.()),
    ...(source.onStatus
      ? { watch: ({ report }: CheckEvents) => source.onStatus!((s) => report(result(s))) }
      : {}),
  };
}
