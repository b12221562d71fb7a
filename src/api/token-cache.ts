import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { silentLogger } from '../shared/logger.ts';
import { retryDelay, type BackoffPolicy } from '../shared/backoff.ts';
import { errorMessage } from '../shared/errors.ts';
import { TokenFetchError, TokenRejectedError } from './errors.ts';
import type { TokenGrant } from './schemas.ts';

export type TokenError = TokenFetchError | TokenRejectedError;

export type TokenHealth =
  | { state: 'unknown' }
  | { state: 'ok'; since: number }
  | { state: 'failing'; since: number; failures: number; error: TokenError };

export interface TokenCacheEvents {
  /** Emitted when the state changes (unknown → ok, ok → failing, failing → ok), for the supervisor's "degraded". */
  health: [TokenHealth];
}

export interface TokenCacheOptions {
  fetchToken: () => Promise<TokenGrant>;
  clock: Clock;
  /** Refresh this long before expiry (capped at half a token's lifetime, so a short-lived token is still used). */
  marginMs: number;
  logger?: Logger;
  /** Backoff of background refreshes after a failure. A waiting caller never waits for it: it fetches at once. */
  retry?: BackoffPolicy;
  random?: () => number;
}

interface Held {
  token: string;
  /** Monotonic ms: from here on, callers wait for a fresh token. */
  refreshAt: number;
  /** Monotonic ms: past this the token is not used at all. */
  expiresAt: number;
}

const DEFAULT_RETRY: BackoffPolicy = { baseMs: 1000, capMs: 60_000 };
const REJECTED_RETRY_MS = 300_000;

/**
 * Holds one access token and refreshes it ahead of expiry; one fetch in flight however many callers wait.
 *
 * Expiry is kept on the monotonic clock: a Raspberry Pi has no RTC, and NTP stepping the wall clock after boot
 * must not make an expired token look valid. The lifetime is counted from when the request was sent, shortened
 * to `issued_at + expires_in` when the API's `issued_at` says the token is older, and never lengthened by it
 * (an `issued_at` in our future means our clock is behind; trusting it would use the token past its end). An
 * `issued_at` so old that the token would be more than half spent on arrival means our clock is ahead: the
 * receive time is used instead (should the token really be old, the 401 on trigger fetches a new one).
 */
export class TokenCache extends EventEmitter<TokenCacheEvents> {
  readonly #fetchToken: () => Promise<TokenGrant>;
  readonly #clock: Clock;
  readonly #marginMs: number;
  readonly #log: Logger;
  readonly #retry: BackoffPolicy;
  readonly #random: () => number;
  #held: Held | undefined;
  #inflight: Promise<string> | undefined;
  #timer: TimerHandle | undefined;
  #started = false;
  #failures = 0;
  #health: TokenHealth = { state: 'unknown' };

  constructor(options: TokenCacheOptions) {
    super();
    this.#fetchToken = options.fetchToken;
    this.#clock = options.clock;
    this.#marginMs = options.marginMs;
    this.#log = options.logger ?? silentLogger();
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#random = options.random ?? Math.random;
  }

  get health(): TokenHealth {
    return this.#health;
  }

  /** Keeps a token warm: fetches one now if none is held, then refreshes ahead of each expiry until stop(). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const held = this.#held;
    if (held && this.#clock.monotonic() < held.refreshAt) this.#schedule(held.refreshAt - this.#clock.monotonic());
    else void this.#refresh().catch(() => undefined);
  }

  stop(): void {
    this.#started = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A usable token: the held one, or a fresh one (rejects with TokenFetchError or TokenRejectedError). */
  get(): Promise<string> {
    const held = this.#held;
    if (held && this.#clock.monotonic() < held.refreshAt) return Promise.resolve(held.token);
    if (!held) return this.#refresh();
    // Inside the margin the old token is still valid: if the refresh fails, an SOS goes out with it anyway.
    return this.#refresh().catch((e: unknown) => {
      if (this.#held === held && this.#clock.monotonic() < held.expiresAt) {
        this.#log.warn({ code: (e as TokenError).code }, 'token refresh failed; using the current token until it expires');
        return held.token;
      }
      throw e;
    });
  }

  /** The API refused `token` (401): drop it, unless a newer one has replaced it already. */
  invalidate(token: string): void {
    if (this.#held?.token !== token) return;
    this.#held = undefined;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#started) void this.#refresh().catch(() => undefined);
  }

  #refresh(): Promise<string> {
    if (this.#inflight) return this.#inflight;
    const sentWall = this.#clock.now();
    const sentMono = this.#clock.monotonic();
    const p = (async () => {
      try {
        const grant = await this.#fetchToken();
        const held = this.#hold(grant, sentWall, sentMono);
        this.#failures = 0;
        if (this.#health.state !== 'ok') this.#setHealth({ state: 'ok', since: this.#clock.now() });
        if (this.#started) this.#schedule(held.refreshAt - this.#clock.monotonic());
        return held.token;
      } catch (e) {
        const error = asTokenError(e);
        this.#failures++;
        this.#log.warn({ code: error.code, status: error.status, failures: this.#failures }, error.message);
        const since = this.#health.state === 'failing' ? this.#health.since : this.#clock.now();
        const changed = this.#health.state !== 'failing';
        this.#health = { state: 'failing', since, failures: this.#failures, error };
        if (changed) this.emit('health', this.#health);
        if (this.#started) {
          // Refused credentials are retried slowly in the background (the account may be re-enabled), not hammered.
          const retryAfterMs = error instanceof TokenFetchError ? error.retryAfterMs : REJECTED_RETRY_MS;
          this.#schedule(retryDelay(this.#failures - 1, this.#retry, retryAfterMs, this.#random));
        }
        throw error;
      } finally {
        this.#inflight = undefined;
      }
    })();
    this.#inflight = p;
    // Every waiter gets the rejection through `p`; a background refresh with no waiter must not be unhandled.
    p.catch(() => undefined);
    return p;
  }

  #hold(grant: TokenGrant, sentWall: number, sentMono: number): Held {
    const receivedWall = this.#clock.now();
    const ttl = grant.expiresInMs;
    let lifetime = ttl;
    if (grant.issuedAtMs !== undefined) {
      const skewMs = grant.issuedAtMs - receivedWall;
      if (grant.issuedAtMs + ttl / 2 > receivedWall) {
        lifetime = Math.min(ttl, grant.issuedAtMs + ttl - sentWall);
        if (skewMs > 60_000) this.#log.warn({ skew_s: Math.round(skewMs / 1000) }, 'token issued in our future: the device clock is behind the API');
      } else {
        this.#log.warn({ skew_s: Math.round(skewMs / 1000) }, 'token issued_at is absurd (device clock ahead?); counting its lifetime from receipt');
      }
    }
    const margin = Math.min(this.#marginMs, lifetime / 2);
    const held = { token: grant.accessToken, refreshAt: sentMono + lifetime - margin, expiresAt: sentMono + lifetime };
    this.#held = held;
    this.#log.info({ expires_in_s: Math.round(ttl / 1000), lifetime_s: Math.round(lifetime / 1000) }, 'token granted');
    return held;
  }

  #schedule(ms: number): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#started) void this.#refresh().catch(() => undefined);
    }, ms);
  }

  #setHealth(h: TokenHealth): void {
    this.#health = h;
    this.emit('health', h);
  }
}

function asTokenError(e: unknown): TokenError {
  if (e instanceof TokenFetchError || e instanceof TokenRejectedError) return e;
  return new TokenFetchError(`token fetch failed: ${errorMessage(e)}`, { cause: e });
}
