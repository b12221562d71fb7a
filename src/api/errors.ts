import { ErrorCodes, SosError } from '../shared/errors.ts';

/**
 * The API client's failures, split the way the outbox retries: permanent (retryable=false) or transient.
 * `ambiguous` marks a request that may have reached the API before it failed (sent, no answer): retrying it
 * with the same alertId is the only way the direct path can start a second flow, so such retries are counted.
 */
export interface ApiErrorDetails {
  /** HTTP status, when an answer came. */
  status?: number | undefined;
  /** The body's `code` (-1, -2), when the API said one. */
  apiCode?: number | undefined;
  cause?: unknown;
}

export class ApiRejectedError extends SosError {
  readonly status: number | undefined;
  readonly apiCode: number | undefined;
  constructor(message: string, details: ApiErrorDetails = {}) {
    super(ErrorCodes.API_REJECTED, message, { cause: details.cause, retryable: false });
    this.name = 'ApiRejectedError';
    this.status = details.status;
    this.apiCode = details.apiCode;
  }
}

export class ApiTransientError extends SosError {
  readonly status: number | undefined;
  readonly apiCode: number | undefined;
  /** What the server asked for in Retry-After, ms. */
  readonly retryAfterMs: number | undefined;
  readonly ambiguous: boolean;
  constructor(message: string, details: ApiErrorDetails & { retryAfterMs?: number | undefined; ambiguous?: boolean } = {}) {
    super(ErrorCodes.API_TRANSIENT, message, { cause: details.cause, retryable: true });
    this.name = 'ApiTransientError';
    this.status = details.status;
    this.apiCode = details.apiCode;
    this.retryAfterMs = details.retryAfterMs;
    this.ambiguous = details.ambiguous ?? false;
  }
}

export class TokenFetchError extends SosError {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, details: ApiErrorDetails & { retryAfterMs?: number | undefined } = {}) {
    super(ErrorCodes.TOKEN_FETCH, message, { cause: details.cause, retryable: true });
    this.name = 'TokenFetchError';
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The token endpoint refused the credentials: nothing will pass until someone fixes the config. */
export class TokenRejectedError extends SosError {
  readonly status: number | undefined;
  constructor(message: string, details: ApiErrorDetails = {}) {
    super(ErrorCodes.TOKEN_REJECTED, message, { cause: details.cause, retryable: false });
    this.name = 'TokenRejectedError';
    this.status = details.status;
  }
}

/** The answer did not match the documented schema (a captive portal, a proxy's error page). Transient. */
export class ApiBadResponseError extends SosError {
  readonly status: number | undefined;
  /** Something answered, but not the API as documented: whether the API acted on the request is unknown. */
  readonly ambiguous: boolean;
  constructor(message: string, details: ApiErrorDetails & { ambiguous?: boolean } = {}) {
    super(ErrorCodes.API_BAD_RESPONSE, message, { cause: details.cause, retryable: true });
    this.name = 'ApiBadResponseError';
    this.status = details.status;
    this.ambiguous = details.ambiguous ?? false;
  }
}

/** Retry-After (seconds or an HTTP date) → ms, or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** What the outbox needs to know of any failure, whatever route produced it. */
export function retryHints(e: unknown): { retryable: boolean; retryAfterMs: number | undefined; ambiguous: boolean } {
  // Refused credentials are not the API answering for this alert: keep it queued (invariant 2) until the
  // installer fixes the config; the supervisor shows "degraded" meanwhile.
  if (e instanceof TokenRejectedError) return { retryable: true, retryAfterMs: 60_000, ambiguous: false };
  if (e instanceof SosError) {
    const hinted = e as SosError & { retryAfterMs?: number; ambiguous?: boolean };
    return { retryable: e.retryable, retryAfterMs: hinted.retryAfterMs, ambiguous: hinted.ambiguous ?? false };
  }
  // Anything unexpected (a bug, a TypeError) is treated as transient: giving up on an SOS is the worse error.
  return { retryable: true, retryAfterMs: undefined, ambiguous: true };
}
