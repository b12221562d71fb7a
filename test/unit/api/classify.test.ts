import { describe, expect, it } from 'vitest';
import { describeNetworkError, tokenNetworkError, tokenOutcome, triggerNetworkError, triggerOutcome, type HttpAnswer } from '../../../src/api/classify.ts';
import { TransportCodes, TransportError } from '../../../src/api/transport.ts';
import {
  ApiBadResponseError,
  ApiRejectedError,
  ApiTransientError,
  TokenFetchError,
  TokenRejectedError,
  retryHints,
} from '../../../src/api/errors.ts';

const NOW = Date.UTC(2026, 0, 1);

function answer(status: number, body: unknown, headers: HttpAnswer['headers'] = {}): HttpAnswer {
  return { status, headers, text: typeof body === 'string' ? body : JSON.stringify(body) };
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('trigger answers', () => {
  it('code 0 is success with the execution id', () => {
    expect(triggerOutcome(answer(200, { code: 0, id: 'ex-1', message: 'ok' }), NOW)).toEqual({ id: 'ex-1', message: 'ok' });
  });

  it.each([
    // status, body, class, ambiguous (transient only), apiCode
    [200, { code: -2, message: 'missing location.latitude' }, ApiRejectedError, undefined, -2],
    [200, { code: '-2', message: 'x' }, ApiRejectedError, undefined, -2],
    [200, { code: -1, message: 'server error' }, ApiTransientError, true, -1],
    [200, { code: -7 }, ApiTransientError, true, -7],
    [400, { code: -2, message: 'unknown callflow' }, ApiRejectedError, undefined, -2],
    [400, 'Bad Request', ApiRejectedError, undefined, undefined],
    [403, { code: -2 }, ApiRejectedError, undefined, -2],
    [404, '', ApiRejectedError, undefined, undefined],
    [422, { code: -2 }, ApiRejectedError, undefined, -2],
    [409, '', ApiRejectedError, undefined, undefined],
    [500, { code: -1, message: 'boom' }, ApiTransientError, true, -1],
    [502, '<html>Bad gateway</html>', ApiTransientError, true, undefined],
    [503, { code: -1 }, ApiTransientError, false, -1],
    [504, '', ApiTransientError, true, undefined],
    [408, '', ApiTransientError, false, undefined],
    [429, { code: -1, message: 'slow down' }, ApiTransientError, false, -1],
  ] as const)('HTTP %i %j → %o', (status, body, cls, ambiguous, apiCode) => {
    const e = thrown(() => triggerOutcome(answer(status, body), NOW));
    expect(e).toBeInstanceOf(cls);
    const err = e as ApiTransientError;
    expect(err.retryable).toBe(cls === ApiTransientError);
    if (ambiguous !== undefined) expect(err.ambiguous).toBe(ambiguous);
    expect(err.status).toBe(status);
    expect(err.apiCode).toBe(apiCode);
  });

  it('reads Retry-After in seconds and as an HTTP date', () => {
    const s = thrown(() => triggerOutcome(answer(429, { code: -1 }, { 'retry-after': '7' }), NOW)) as ApiTransientError;
    expect(s.retryAfterMs).toBe(7000);
    const date = new Date(NOW + 12_000).toUTCString();
    const d = thrown(() => triggerOutcome(answer(503, '', { 'retry-after': date }), NOW)) as ApiTransientError;
    expect(d.retryAfterMs).toBe(12_000);
    expect(retryHints(d)).toEqual({ retryable: true, retryAfterMs: 12_000, ambiguous: false });
  });

  it('a 2xx that is not the API answer (captive portal) is a bad, ambiguous response', () => {
    const e = thrown(() => triggerOutcome(answer(200, '<html>Sign in to Wi-Fi</html>'), NOW)) as ApiBadResponseError;
    expect(e).toBeInstanceOf(ApiBadResponseError);
    expect(e.retryable).toBe(true);
    expect(retryHints(e).ambiguous).toBe(true);
  });

  it('a redirect is not followed', () => {
    expect(thrown(() => triggerOutcome(answer(302, ''), NOW))).toBeInstanceOf(ApiBadResponseError);
  });

  it('names the API message in the error, on one line', () => {
    const e = thrown(() => triggerOutcome(answer(400, { code: -2, message: 'missing variable\n caller_info.phone_number' }), NOW)) as Error;
    expect(e.message).toContain('missing variable caller_info.phone_number');
  });
});

describe('token answers', () => {
  it('a 200 with a token is a grant', () => {
    expect(tokenOutcome(answer(200, { access_token: 'tok', token_type: 'BearerToken', issued_at: 1_767_225_600, expires_in: 3600 }), NOW).accessToken).toBe('tok');
  });

  it.each([
    [401, { error: 'invalid_client' }, TokenRejectedError],
    [401, '', TokenRejectedError],
    [400, { error: 'invalid_client' }, TokenRejectedError],
    [400, { error: 'unauthorized_client' }, TokenRejectedError],
    [400, { error: 'invalid_request' }, TokenFetchError],
    [500, '', TokenFetchError],
    [503, { code: -1 }, TokenFetchError],
    [200, { token_type: 'BearerToken' }, TokenFetchError],
    [200, 'not json', TokenFetchError],
  ] as const)('HTTP %i %j → %o', (status, body, cls) => {
    const e = thrown(() => tokenOutcome(answer(status, body), NOW)) as TokenFetchError;
    expect(e).toBeInstanceOf(cls);
    expect(e.retryable).toBe(cls === TokenFetchError);
    expect(e.status).toBe(status);
  });

  it('never quotes the body of a token answer (it could echo the secret or hold a token)', () => {
    const body = { access_token: 12345678, client_secret: 'sekret-value', error: 'sekret-value' };
    for (const status of [200, 400, 401, 500]) {
      const e = thrown(() => tokenOutcome(answer(status, body), NOW)) as Error;
      expect(e.message).not.toContain('sekret');
      expect(e.message).not.toContain('12345678');
    }
  });

  it('honours Retry-After on a failing token endpoint', () => {
    const e = thrown(() => tokenOutcome(answer(503, '', { 'retry-after': '20' }), NOW)) as TokenFetchError;
    expect(e.retryAfterMs).toBe(20_000);
  });
});

describe('network failures', () => {
  const err = (code: string, message = `failed ${code}`) => Object.assign(new Error(message), { code });

  it.each([
    ['ECONNREFUSED', false],
    ['ENOTFOUND', false],
    ['EAI_AGAIN', false],
    ['EHOSTUNREACH', false],
    ['ENETUNREACH', false],
    [TransportCodes.CONNECT_TIMEOUT, false],
    [TransportCodes.STOPPED, false],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', false],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', false],
    ['CERT_HAS_EXPIRED', false],
    ['CERT_REVOKED', false],
    ['ERR_TLS_CERT_ALTNAME_INVALID', false],
    ['ERR_SSL_WRONG_VERSION_NUMBER', false],
    [TransportCodes.RESPONSE_TIMEOUT, true],
    [TransportCodes.BODY_TIMEOUT, true],
    ['ECONNRESET', true],
    ['EPIPE', true],
    ['ETIMEDOUT', true],
    ['HPE_INVALID_CONSTANT', true],
    ['ABORT_ERR', true],
    ['SOMETHING_NEW', true],
  ] as const)('%s → ambiguous %s', (code, ambiguous) => {
    expect(describeNetworkError(err(code)).ambiguous).toBe(ambiguous);
  });

  it("names node's two ECONNRESETs apart", () => {
    expect(describeNetworkError(err('ECONNRESET', 'socket hang up')).reason).toBe('connection closed before the answer');
    expect(describeNetworkError(err('ECONNRESET', 'aborted')).reason).toBe('answer cut short');
    expect(describeNetworkError(err('ECONNRESET', 'read ECONNRESET')).reason).toBe('connection reset');
  });

  it('finds the code on a cause or inside an AggregateError (happy eyeballs)', () => {
    expect(describeNetworkError(new Error('fetch failed', { cause: err('ECONNREFUSED') })).ambiguous).toBe(false);
    const agg = new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')], 'connect failed');
    expect(describeNetworkError(agg)).toMatchObject({ ambiguous: false, code: 'ECONNREFUSED' });
  });

  it('an abort may have gone out: ambiguous', () => {
    expect(describeNetworkError(new DOMException('This operation was aborted', 'AbortError')).ambiguous).toBe(true);
  });

  it("the transport's record of whether the request was fully written decides, whatever the code", () => {
    const failed = (code: string, written: boolean, message = 'x') => new TransportError(message, { code, written, cause: err(code, message) });
    // A reset or an abort before the request had left cannot have started a flow...
    expect(describeNetworkError(failed('ECONNRESET', false, 'socket hang up'))).toMatchObject({ ambiguous: false, reason: 'connection closed before the answer' });
    expect(describeNetworkError(failed('ABORT_ERR', false))).toMatchObject({ ambiguous: false, reason: 'aborted' });
    // ...a timeout of a connection that was up, after it had, may have.
    expect(describeNetworkError(failed('ETIMEDOUT', true))).toMatchObject({ ambiguous: true, reason: 'connection timed out' });
    expect(describeNetworkError(failed('ABORT_ERR', true))).toMatchObject({ ambiguous: true });
    expect(describeNetworkError(new TransportError('x', { code: undefined, written: false })).ambiguous).toBe(false);
  });

  it('the transport error reaches the typed error as its cause, and its reason as the message', () => {
    const e = triggerNetworkError(new TransportError('connect timed out after 3000 ms', { code: TransportCodes.CONNECT_TIMEOUT, written: false }));
    expect(e).toBeInstanceOf(ApiTransientError);
    expect(e).toMatchObject({ ambiguous: false, retryable: true, message: `trigger failed: connect timed out (${TransportCodes.CONNECT_TIMEOUT})` });
    const t = tokenNetworkError(new TransportError('no answer within 5000 ms', { code: TransportCodes.RESPONSE_TIMEOUT, written: true }));
    expect(t).toBeInstanceOf(TokenFetchError);
    expect(t.message).toBe(`token fetch failed: no answer in time (${TransportCodes.RESPONSE_TIMEOUT})`);
  });
});
