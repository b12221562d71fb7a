import type { SosError } from '../shared/errors.ts';
import type { TriggerResult } from '../incident/types.ts';
import {
  ApiBadResponseError,
  ApiRejectedError,
  ApiTransientError,
  TokenFetchError,
  TokenRejectedError,
  parseRetryAfter,
} from './errors.ts';
import { oauthErrorSchema, tokenResponseSchema, triggerResponseSchema, type TokenGrant } from './schemas.ts';
import { TransportCodes, TransportError } from './transport.ts';
import type { z } from 'zod';

/**
 * Turns what came back (an HTTP answer or a network failure) into a result or a typed error. The outbox retries
 * on exactly this split, so it is kept pure and tested without a server.
 */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as text (already size-limited by the caller). */
  text: string;
}

/** Statuses that mean "this request will never pass as it is". */
const REJECT_STATUS = new Set([400, 403, 404, 422]);
/** OAuth errors that mean the credentials themselves are refused (RFC 6749 §5.2). */
const REFUSED_CREDENTIALS = new Set(['invalid_client', 'unauthorized_client']);

/** The trigger's answer (anything but the 401 the client handles itself) → result, or throws the typed error. */
export function triggerOutcome(answer: HttpAnswer, nowMs: number): TriggerResult {
  const { status } = answer;
  const parsed = triggerResponseSchema.safeParse(parseJson(answer.text));
  const body = parsed.success ? parsed.data : undefined;
  const apiCode = body?.code;
  const said = body?.message ? `: ${oneLine(body.message)}` : '';
  const retryAfterMs = parseRetryAfter(answer.headers['retry-after'], nowMs);

  if (status >= 200 && status < 300) {
    if (!body) {
      // Something answered 2xx that is not the API (a captive portal, a proxy): the request may or may not have
      // reached the API.
      throw new ApiBadResponseError(`trigger: HTTP ${status} without the API's answer (${schemaProblem(parsed.error)})`, {
        status,
        ambiguous: true,
      });
    }
    if (body.code === 0) return { id: body.id ?? '', message: body.message ?? '' };
    if (body.code === -2) throw new ApiRejectedError(`trigger rejected: workflow validation error (code -2)${said}`, { status, apiCode });
    // -1 is a server error; any other code is undocumented. Either way the flow may have started: ambiguous.
    throw new ApiTransientError(`trigger failed: API code ${body.code}${said}`, { status, apiCode, retryAfterMs, ambiguous: true });
  }
  if (status === 408 || status === 429) {
    // The server says it did not process the request.
    throw new ApiTransientError(`trigger failed: HTTP ${status}${said}`, { status, apiCode, retryAfterMs, ambiguous: false });
  }
  if (apiCode === -2 || REJECT_STATUS.has(status)) {
    throw new ApiRejectedError(`trigger rejected: HTTP ${status}${apiCode === undefined ? '' : ` code ${apiCode}`}${said}`, { status, apiCode });
  }
  if (status >= 500) {
    // 503 means "not taken in"; 500/502/504 may come after the request was acted on.
    throw new ApiTransientError(`trigger failed: HTTP ${status}${apiCode === undefined ? '' : ` code ${apiCode}`}${said}`, {
      status,
      apiCode,
      retryAfterMs,
      ambiguous: status !== 503,
    });
  }
  if (status === 401) throw new ApiRejectedError('trigger refused: HTTP 401 with a fresh token', { status, apiCode });
  if (status >= 400) throw new ApiRejectedError(`trigger rejected: HTTP ${status}${said}`, { status, apiCode });
  // 1xx/3xx: redirects are not followed (a redirect of a POST carrying a token is not something to obey blindly).
  throw new ApiBadResponseError(`trigger: unexpected HTTP ${status}`, { status, ambiguous: false });
}

/** The token endpoint's answer → grant, or throws TokenRejectedError / TokenFetchError. Never quotes the body. */
export function tokenOutcome(answer: HttpAnswer, nowMs: number): TokenGrant {
  const { status } = answer;
  const json = parseJson(answer.text);
  if (status >= 200 && status < 300) {
    const parsed = tokenResponseSchema.safeParse(json);
    if (parsed.success) return parsed.data;
    throw new TokenFetchError(`token endpoint answered HTTP ${status} without a usable token (${schemaProblem(parsed.error)})`, { status });
  }
  const oauth = oauthErrorSchema.safeParse(json);
  const error = oauth.success && /^[a-z_]{1,40}$/.test(oauth.data.error) ? oauth.data.error : undefined;
  if (status === 401 || (status === 400 && error !== undefined && REFUSED_CREDENTIALS.has(error))) {
    throw new TokenRejectedError(`token endpoint refused the client credentials (HTTP ${status}${error ? ` ${error}` : ''}); check api.client_id and the client secret`, {
      status,
    });
  }
  throw new TokenFetchError(`token endpoint failed: HTTP ${status}${error ? ` ${error}` : ''}`, {
    status,
    retryAfterMs: parseRetryAfter(answer.headers['retry-after'], nowMs),
  });
}

export interface NetworkFailure {
  /** Short, safe description: "connection refused", "no answer in time". */
  reason: string;
  /** The request may have reached the server (it was, or may have been, written before the failure). */
  ambiguous: boolean;
  /** The system code, or the transport's own (TransportCodes), that decided it, for logs. */
  code: string | undefined;
}

/** Failures that can only happen before a request byte leaves: retrying them can never start a second flow. */
const BEFORE_SENDING: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'DNS lookup failed',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  EAI_FAIL: 'DNS lookup failed',
  EAI_NONAME: 'DNS lookup failed',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  EADDRNOTAVAIL: 'no local address',
  [TransportCodes.CONNECT_TIMEOUT]: 'connect timed out',
  [TransportCodes.STOPPED]: 'client stopped',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate not trusted',
  UNABLE_TO_GET_ISSUER_CERT: 'TLS certificate not trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS certificate not trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS certificate not trusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate not trusted',
  CERT_HAS_EXPIRED: 'TLS certificate expired (or the device clock is wrong)',
  CERT_NOT_YET_VALID: 'TLS certificate not yet valid (or the device clock is wrong)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host',
  EPROTO: 'TLS handshake failed',
};

/** Failures after the request may have been written. */
const AFTER_SENDING: Record<string, string> = {
  [TransportCodes.RESPONSE_TIMEOUT]: 'no answer in time',
  [TransportCodes.BODY_TIMEOUT]: 'answer stalled',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed while sending',
  // The transport's connect timeout (seconds) ends any connect long before the kernel's (minutes): an ETIMEDOUT
  // comes from a connection that was up (retransmissions unanswered).
  ETIMEDOUT: 'connection timed out',
  ABORT_ERR: 'aborted',
};

/** What node says with ECONNRESET, told apart for the logs. */
const RESET_MESSAGES: Record<string, string> = {
  'socket hang up': 'connection closed before the answer',
  aborted: 'answer cut short',
};

export function describeNetworkError(e: unknown): NetworkFailure {
  const written = writtenFlag(e);
  const decide = (before: boolean) => written === undefined ? !before : written;
  for (const { code, message } of errorCodes(e)) {
    const before = BEFORE_SENDING[code];
    if (before !== undefined) return { reason: before, ambiguous: decide(true), code };
    const after = AFTER_SENDING[code];
    if (after !== undefined) return { reason: (code === 'ECONNRESET' ? RESET_MESSAGES[message] : undefined) ?? after, ambiguous: decide(false), code };
    if (code.startsWith('CERT_')) return { reason: 'TLS certificate not accepted', ambiguous: decide(true), code };
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return { reason: 'TLS handshake failed', ambiguous: decide(true), code };
    if (code.startsWith('HPE_')) return { reason: 'unparseable HTTP answer', ambiguous: decide(false), code };
  }
  if (e instanceof Error && e.name === 'AbortError') return { reason: 'aborted', ambiguous: decide(false), code: 'ABORT_ERR' };
  // Unknown: assume it may have gone out. Saying "ambiguous" wrongly costs a counter; the reverse could hide a duplicate.
  return { reason: 'network failure', ambiguous: decide(false), code: errorCodes(e)[0]?.code };
}

/**
 * Whether the whole request had left when it failed, as the transport saw it (undefined: not known). Nothing
 * fully written cannot have been acted on; written and then failed may have been.
 */
function writtenFlag(e: unknown, depth = 0): boolean | undefined {
  if (depth > 4 || typeof e !== 'object' || e === null) return undefined;
  if (e instanceof TransportError) return e.written;
  return writtenFlag((e as { cause?: unknown }).cause, depth + 1);
}

/** Codes on an error, its causes and (happy-eyeballs) aggregated errors, outermost first. */
function errorCodes(e: unknown, depth = 0): { code: string; message: string }[] {
  if (depth > 4 || typeof e !== 'object' || e === null) return [];
  const out: { code: string; message: string }[] = [];
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') out.push({ code, message: e instanceof Error ? e.message : '' });
  if (e instanceof AggregateError) for (const inner of e.errors) out.push(...errorCodes(inner, depth + 1));
  out.push(...errorCodes((e as { cause?: unknown }).cause, depth + 1));
  return out;
}

/** A network failure of the trigger → ApiTransientError. */
export function triggerNetworkError(e: unknown): SosError {
  const f = describeNetworkError(e);
  return new ApiTransientError(`trigger failed: ${f.reason}${f.code ? ` (${f.code})` : ''}`, { cause: e, ambiguous: f.ambiguous });
}

/** A network failure of the token request → TokenFetchError. */
export function tokenNetworkError(e: unknown): TokenFetchError {
  const f = describeNetworkError(e);
  return new TokenFetchError(`token fetch failed: ${f.reason}${f.code ? ` (${f.code})` : ''}`, { cause: e });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What was wrong, by field path only: the received values are never quoted (they may hold a token). */
function schemaProblem(error: z.ZodError | undefined): string {
  if (!error) return 'no body';
  const first = error.issues[0];
  if (!first) return 'invalid body';
  return first.path.length === 0 ? 'not a JSON object' : `field ${first.path.join('.')}: ${first.code}`;
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
