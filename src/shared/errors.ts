/**
 * Typed errors with a stable `code`. Retry decisions read `code` and `retryable`, never the message.
 * Messages never contain a secret or a token.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'ERR_SOS_CONFIG_INVALID',
  /** The API answered and refused the request for good (code -2, 400/403/404/422, 401 with a fresh token). */
  API_REJECTED: 'ERR_SOS_API_REJECTED',
  /** The API (or the way to it) failed in a way that may pass: code -1, 5xx, 429, timeouts, resets, DNS. */
  API_TRANSIENT: 'ERR_SOS_API_TRANSIENT',
  /** The token endpoint could not give a token right now (network, 5xx): retryable. */
  TOKEN_FETCH: 'ERR_SOS_TOKEN_FETCH',
  /** The token endpoint refused the client credentials (401/400 invalid_client): permanent until reconfigured. */
  TOKEN_REJECTED: 'ERR_SOS_TOKEN_REJECTED',
  /** A response did not match its schema. Retryable: a proxy or gateway may have answered instead of the API. */
  API_BAD_RESPONSE: 'ERR_SOS_API_BAD_RESPONSE',
  OUTBOX_STORE: 'ERR_SOS_OUTBOX_STORE',
  NOT_HUMAN_INITIATED: 'ERR_SOS_NOT_HUMAN_INITIATED',
  BAD_INPUT: 'ERR_SOS_BAD_INPUT',
  RELAY_REJECTED: 'ERR_SOS_RELAY_REJECTED',
  RELAY_TIMEOUT: 'ERR_SOS_RELAY_TIMEOUT',
  /** The bridge took the alert but could not get it triggered (API down, bridge stopping): retryable. */
  RELAY_FAILED: 'ERR_SOS_RELAY_FAILED',
  /** The device is not connected to the broker right now: retryable, and a fallback route may take over. */
  RELAY_UNAVAILABLE: 'ERR_SOS_RELAY_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface SosErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

export class SosError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options: SosErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SosError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

export interface ConfigIssue {
  /** Dotted path of the wrong field, e.g. `api.base_url` or `gps.port`. */
  path: string;
  message: string;
}

export class ConfigError extends SosError {
  readonly issues: readonly ConfigIssue[];
  readonly file: string | undefined;
  constructor(issues: readonly ConfigIssue[], file?: string) {
    super(ErrorCodes.CONFIG_INVALID, `invalid configuration${file ? ` in ${file}` : ''}:\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
    this.file = file;
  }
}

/** Bad input from outside (an NMEA line, an evdev record, an MQTT payload): counted and dropped by the caller. */
export class BadInputError extends SosError {
  constructor(message: string, options: SosErrorOptions = {}) {
    super(ErrorCodes.BAD_INPUT, message, options);
    this.name = 'BadInputError';
  }
}

export function isSosError(e: unknown): e is SosError {
  return e instanceof SosError;
}

/** A message safe to log from anything thrown. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
