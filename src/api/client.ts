import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { VERSION } from '../shared/version.ts';
import type { TriggerResult } from '../incident/types.ts';
import { ApiBadResponseError, ApiRejectedError, ApiTransientError } from './errors.ts';
import { tokenNetworkError, tokenOutcome, triggerNetworkError, triggerOutcome, type HttpAnswer } from './classify.ts';
import { TokenCache } from './token-cache.ts';
import type { TokenGrant } from './schemas.ts';
import { HttpTransport } from './transport.ts';

export interface EmergencyApiClientOptions {
  /** e.g. https://api-sandbox.rapidsos.com (a path prefix is kept). */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** TCP+TLS connect; short, so a dead path fails fast and unambiguously. */
  connectTimeoutMs: number;
  /** Waiting for the answer's headers, and between body chunks. */
  responseTimeoutMs: number;
  tokenMarginMs: number;
  clock: Clock;
  logger: Logger;
  /** PEM of a private CA, replacing the system roots. TLS is verified either way. */
  ca?: string | Buffer | undefined;
  /** Idle keep-alive sockets kept between requests (default 4); a caller with many requests at once passes its concurrency. */
  maxIdleSockets?: number | undefined;
}

export interface TriggerOptions {
  signal?: AbortSignal | undefined;
}

/**
 * The Emergency WorkFlow API, directly over HTTPS: OAuth client-credentials token (cached, refreshed ahead of
 * expiry) and the trigger. Every failure is a typed error the outbox can act on (see classify.ts). Neither the
 * client secret nor a token ever goes into a log line or an error message.
 *
 * The transport is node's own `node:https` (transport.ts), not undici: loading undici alone costs ~30 MB of RSS
 * (its fetch/websocket/cache code and the llhttp WebAssembly parser; measured on Node 24.21), node:http's parser
 * is native and already in the binary, and the device agent must idle under 80 MB.
 */
export class EmergencyApiClient {
  /** Subscribe to `tokens.on('health', ...)` to show "degraded" while tokens cannot be fetched. */
  readonly tokens: TokenCache;
  readonly #o: EmergencyApiClientOptions;
  readonly #log: Logger;
  readonly #url: URL;
  #transport: HttpTransport;
  #closed = false;

  constructor(options: EmergencyApiClientOptions) {
    this.#o = options;
    this.#log = options.logger.child({ part: 'api' });
    this.#url = new URL(options.baseUrl);
    this.#transport = this.#newTransport();
    this.tokens = new TokenCache({
      fetchToken: () => this.fetchToken(),
      clock: options.clock,
      marginMs: options.tokenMarginMs,
      logger: this.#log,
    });
  }

  /** Keeps a token warm from now on (first fetch in the background: a failure shows in `tokens.health`). */
  async start(): Promise<void> {
    if (this.#closed) {
      this.#transport = this.#newTransport();
      this.#closed = false;
    }
    this.tokens.start();
  }

  /** Stops refreshing and closes the connections (waiting for requests in flight). */
  async stop(): Promise<void> {
    this.tokens.stop();
    if (this.#closed) return;
    this.#closed = true;
    await this.#transport.close();
  }

  /** Resolves when a token can be had: "the way to the API is back". */
  async probe(): Promise<void> {
    await this.tokens.get();
  }

  /** One OAuth 2.0 client-credentials request, as the seed does it. Callers use `tokens.get()`. */
  async fetchToken(): Promise<TokenGrant> {
    const body = new URLSearchParams({
      client_id: this.#o.clientId,
      client_secret: this.#o.clientSecret,
      grant_type: 'client_credentials',
    }).toString();
    let answer: HttpAnswer;
    try {
      answer = await this.#post('/oauth/token', { 'content-type': 'application/x-www-form-urlencoded' }, body, undefined);
    } catch (e) {
      throw tokenNetworkError(e);
    }
    return tokenOutcome(answer, this.#o.clock.now());
  }

  /**
   * Starts `callflow`. Resolves with the API's execution id on code 0; otherwise rejects with ApiRejectedError
   * (permanent), ApiTransientError (retry; `ambiguous` if it may have started a flow), ApiBadResponseError,
   * TokenFetchError or TokenRejectedError. A 401 is answered by one retry with a fresh token.
   */
  async trigger(callflow: string, variables: Record<string, unknown>, options: TriggerOptions = {}): Promise<TriggerResult> {
    const { signal } = options;
    if (signal?.aborted) throw new ApiTransientError('trigger aborted before sending', { ambiguous: false, cause: signal.reason });
    const body = JSON.stringify({ callflow, variables });
    const started = this.#o.clock.monotonic();
    const token = await this.tokens.get();
    if (signal?.aborted) throw new ApiTransientError('trigger aborted before sending', { ambiguous: false, cause: signal.reason });
    let answer = await this.#sendTrigger(body, token, signal);
    if (answer.status === 401) {
      this.#log.info({ callflow }, 'trigger got 401: fetching a fresh token and retrying once');
      this.tokens.invalidate(token);
      const fresh = await this.tokens.get();
      answer = await this.#sendTrigger(body, fresh, signal);
      if (answer.status === 401) throw new ApiRejectedError('trigger refused (HTTP 401) even with a fresh token: the client may not trigger', { status: 401 });
    }
    try {
      const result = triggerOutcome(answer, this.#o.clock.now());
      if (result.id === '') this.#log.warn({ callflow }, 'trigger accepted (code 0) without an execution id');
      this.#log.debug({ callflow, status: answer.status, id: result.id, ms: Math.round(this.#o.clock.monotonic() - started) }, 'trigger accepted');
      return result;
    } catch (e) {
      const err = e as ApiRejectedError | ApiTransientError | ApiBadResponseError;
      this.#log.debug({ callflow, status: answer.status, code: err.code, ms: Math.round(this.#o.clock.monotonic() - started) }, 'trigger failed');
      throw e;
    }
  }

  async #sendTrigger(body: string, token: string, signal: AbortSignal | undefined): Promise<HttpAnswer> {
    try {
      return await this.#post('/v1/rem/trigger', { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body, signal);
    } catch (e) {
      throw triggerNetworkError(e);
    }
  }

  #post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<HttpAnswer> {
    return this.#transport.post(path, { ...headers, accept: 'application/json', 'user-agent': `sos-agent/${VERSION}` }, body, signal);
  }

  #newTransport(): HttpTransport {
    const { connectTimeoutMs, responseTimeoutMs, ca, maxIdleSockets } = this.#o;
    return new HttpTransport({ baseUrl: this.#url, connectTimeoutMs, responseTimeoutMs, ca, maxIdleSockets });
  }
}
