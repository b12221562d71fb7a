import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/shared/clock.ts';
import { TokenCache, type TokenHealth } from '../../../src/api/token-cache.ts';
import { TokenFetchError, TokenRejectedError } from '../../../src/api/errors.ts';
import type { TokenGrant } from '../../../src/api/schemas.ts';

const HOUR = 3_600_000;
const MARGIN = 120_000;

interface Pending {
  resolve: (g: TokenGrant) => void;
  reject: (e: unknown) => void;
}

/** A token endpoint under the test's control: counts requests; answers at once or when the test says. */
function endpoint(clock: FakeClock, o: { ttlMs?: number; skewMs?: number; manual?: boolean } = {}) {
  let n = 0;
  const pending: Pending[] = [];
  const grant = (): TokenGrant => ({
    accessToken: `token-${++n}`,
    tokenType: 'BearerToken',
    issuedAtMs: clock.now() + (o.skewMs ?? 0),
    expiresInMs: o.ttlMs ?? HOUR,
  });
  let failWith: unknown;
  const fetchToken = (): Promise<TokenGrant> => {
    if (failWith !== undefined) {
      n++;
      return Promise.reject(failWith);
    }
    if (!o.manual) return Promise.resolve(grant());
    return new Promise<TokenGrant>((resolve, reject) => pending.push({ resolve, reject }));
  };
  return {
    fetchToken,
    pending,
    /** Answers the oldest pending request. */
    answer() {
      const p = pending.shift();
      if (!p) throw new Error('no pending token request');
      p.resolve(grant());
    },
    failAll(e: unknown) {
      for (const p of pending.splice(0)) p.reject(e);
    },
    fail(e: unknown) {
      failWith = e;
    },
    recover() {
      failWith = undefined;
    },
    count: () => n,
  };
}

/** A wall clock that NTP can step, over a monotonic clock that never jumps. */
class SteppedClock extends FakeClock {
  #offset = 0;
  step(ms: number): void {
    this.#offset += ms;
  }
  override now(): number {
    return super.now() + this.#offset;
  }
}

function cache(clock: FakeClock, fetchToken: () => Promise<TokenGrant>, marginMs = MARGIN) {
  return new TokenCache({ fetchToken, clock, marginMs, random: () => 1 });
}

describe('TokenCache', () => {
  it('reuses a token until the margin before expiry, then fetches a new one', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    const tokens = cache(clock, api.fetchToken);
    expect(await tokens.get()).toBe('token-1');
    clock.advance(HOUR - MARGIN - 1);
    expect(await tokens.get()).toBe('token-1');
    expect(api.count()).toBe(1);
    clock.advance(1);
    expect(await tokens.get()).toBe('token-2');
    expect(api.count()).toBe(2);
  });

  it('sends one token request for 100 concurrent callers, and all get its token', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { manual: true });
    const tokens = cache(clock, api.fetchToken);
    const waiting = Array.from({ length: 100 }, () => tokens.get());
    expect(api.pending).toHaveLength(1);
    api.answer();
    const got = await Promise.all(waiting);
    expect(new Set(got)).toEqual(new Set(['token-1']));
    expect(api.count()).toBe(1);
  });

  it('gives every waiter the fetch failure as a retryable TokenFetchError, and the next call tries again', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { manual: true });
    const tokens = cache(clock, api.fetchToken);
    const waiting = Array.from({ length: 10 }, () => tokens.get().then(() => 'ok', (e: unknown) => e));
    api.failAll(new Error('socket hang up'));
    const outcomes = await Promise.all(waiting);
    for (const e of outcomes) {
      expect(e).toBeInstanceOf(TokenFetchError);
      expect((e as TokenFetchError).retryable).toBe(true);
    }
    const again = tokens.get();
    expect(api.pending).toHaveLength(1);
    api.answer();
    expect(await again).toBe('token-1');
  });

  it('passes refused credentials on as a permanent TokenRejectedError', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    api.fail(new TokenRejectedError('token endpoint refused the client credentials (HTTP 401)', { status: 401 }));
    const tokens = cache(clock, api.fetchToken);
    const e = await tokens.get().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TokenRejectedError);
    expect((e as TokenRejectedError).retryable).toBe(false);
  });

  it('invalidate() drops the current token, but not a newer one that already replaced it', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    const tokens = cache(clock, api.fetchToken);
    const first = await tokens.get();
    tokens.invalidate(first);
    const second = await tokens.get();
    expect(second).toBe('token-2');
    // A late 401 for the first token (a request that was in flight) must not throw away the second.
    tokens.invalidate(first);
    expect(await tokens.get()).toBe('token-2');
    expect(api.count()).toBe(2);
  });

  it('a 401 from many concurrent triggers with the same token causes one refresh', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { manual: true });
    const tokens = cache(clock, api.fetchToken);
    const t1 = tokens.get();
    api.answer();
    const stale = await t1;
    const retries = Array.from({ length: 20 }, () => {
      tokens.invalidate(stale);
      return tokens.get();
    });
    expect(api.pending).toHaveLength(1);
    api.answer();
    expect(new Set(await Promise.all(retries))).toEqual(new Set(['token-2']));
  });

  it('refreshes in the background ahead of expiry, so a caller never waits for a token', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    const tokens = cache(clock, api.fetchToken);
    tokens.start();
    await clock.advanceAsync(0);
    expect(api.count()).toBe(1); // warm at start
    await clock.advanceAsync(HOUR - MARGIN);
    expect(api.count()).toBe(2);
    expect(await tokens.get()).toBe('token-2');
    await clock.advanceAsync(3 * (HOUR - MARGIN));
    expect(api.count()).toBe(5);
    tokens.stop();
    expect(clock.pending()).toBe(0);
    await clock.advanceAsync(10 * HOUR);
    expect(api.count()).toBe(5);
  });

  it('retries a failed background refresh with backoff, honouring Retry-After', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    api.fail(new TokenFetchError('token endpoint failed: HTTP 503', { status: 503, retryAfterMs: 30_000 }));
    const tokens = new TokenCache({ fetchToken: api.fetchToken, clock, marginMs: MARGIN, random: () => 0, retry: { baseMs: 1000, capMs: 60_000 } });
    tokens.start();
    await clock.advanceAsync(0);
    expect(api.count()).toBe(1);
    await clock.advanceAsync(29_999);
    expect(api.count()).toBe(1);
    api.recover();
    await clock.advanceAsync(1);
    expect(api.count()).toBe(2);
    expect(tokens.health.state).toBe('ok');
    tokens.stop();
  });

  it('retries refused credentials in the background only every 5 minutes', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    api.fail(new TokenRejectedError('token endpoint refused the client credentials (HTTP 401)', { status: 401 }));
    const tokens = cache(clock, api.fetchToken);
    tokens.start();
    await clock.advanceAsync(300_000 - 1);
    expect(api.count()).toBe(1);
    await clock.advanceAsync(1);
    expect(api.count()).toBe(2);
    tokens.stop();
  });

  it('inside the margin, a failed refresh still hands out the valid token; past expiry it fails', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    const tokens = cache(clock, api.fetchToken);
    await tokens.get();
    api.fail(new TokenFetchError('token fetch failed: connection refused'));
    clock.advance(HOUR - MARGIN / 2);
    expect(await tokens.get()).toBe('token-1');
    clock.advance(MARGIN / 2);
    await expect(tokens.get()).rejects.toBeInstanceOf(TokenFetchError);
  });

  it('never uses a token past its end when the device clock is behind the API (issued_at in our future)', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { skewMs: 2 * HOUR });
    const tokens = cache(clock, api.fetchToken);
    await tokens.get();
    clock.advance(HOUR - MARGIN);
    expect(await tokens.get()).toBe('token-2');
  });

  it('does not refetch on every call when the device clock is far ahead of the API (issued_at absurdly old)', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { skewMs: -5 * HOUR });
    const tokens = cache(clock, api.fetchToken);
    await tokens.get();
    clock.advance(HOUR / 2);
    expect(await tokens.get()).toBe('token-1');
    expect(api.count()).toBe(1);
  });

  it('shortens the lifetime when the API says the token was issued a while ago', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { skewMs: -10 * 60_000 });
    const tokens = cache(clock, api.fetchToken);
    await tokens.get();
    clock.advance(HOUR - 10 * 60_000 - MARGIN);
    expect(await tokens.get()).toBe('token-2');
  });

  it('keeps the expiry on the monotonic clock: NTP stepping the wall clock back does not extend a token', async () => {
    const clock = new SteppedClock();
    const api = endpoint(clock);
    const tokens = cache(clock, api.fetchToken);
    await tokens.get();
    clock.step(-2 * HOUR);
    clock.advance(HOUR - MARGIN);
    expect(await tokens.get()).toBe('token-2');
  });

  it('still reuses a short-lived token (margin capped at half its lifetime)', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock, { ttlMs: 60_000 });
    const tokens = cache(clock, api.fetchToken);
    await tokens.get();
    clock.advance(29_999);
    expect(await tokens.get()).toBe('token-1');
    clock.advance(1);
    expect(await tokens.get()).toBe('token-2');
  });

  it('reports health changes: ok, failing with the error, ok again', async () => {
    const clock = new FakeClock();
    const api = endpoint(clock);
    const tokens = cache(clock, api.fetchToken);
    const seen: TokenHealth[] = [];
    tokens.on('health', (h) => seen.push(h));
    await tokens.get();
    tokens.invalidate('token-1');
    api.fail(new TokenFetchError('token endpoint failed: HTTP 500', { status: 500 }));
    await tokens.get().catch(() => undefined);
    await tokens.get().catch(() => undefined);
    api.recover();
    await tokens.get();
    expect(seen.map((h) => h.state)).toEqual(['ok', 'failing', 'ok']);
    const failing = seen[1];
    expect(failing?.state === 'failing' && failing.error.status).toBe(500);
  });

  it('wraps an unexpected failure of fetchToken into a TokenFetchError', async () => {
    const clock = new FakeClock();
    const tokens = cache(clock, () => Promise.reject(new TypeError('boom')));
    const e = await tokens.get().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TokenFetchError);
    expect((e as Error).message).toContain('boom');
  });
});
