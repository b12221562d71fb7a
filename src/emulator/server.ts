/**
 * An emulator of the RapidSOS Emergency WorkFlow API (seed/emergency-workflow-api.txt, API-NOTES.md), for
 * tests, the demo, benchmarks and anyone integrating without credentials. A real node:http server.
 *
 * Documented by the API, reproduced as is:
 *   POST /oauth/token      form body client_id, client_secret, grant_type=client_credentials (Content-Type
 *                          `application/x-www-form-urlencoded`, or the seed's literal `x-www-form-urlencoded`)
 *                          → {access_token, token_type:"BearerToken", issued_at, expires_in}
 *   POST /v1/rem/trigger   `Authorization: Bearer <token>`, JSON {callflow, variables}
 *                          → {code, id, message}; code 0 success, -1 server error, -2 workflow validation error
 *
 * Choices where the documentation is silent (each one configurable or stated here, so a client can be
 * tested against it and against the other plausible answer):
 *   - issued_at is UNIX seconds and both numbers are JSON numbers by default. "BearerToken" is the Apigee
 *     gateway's wording, and Apigee sends issued_at in milliseconds and every number as a string:
 *     `issuedAtUnit: 'ms'` and `numbersAsStrings: true` reproduce that; with `numbersAsStrings` the answer also
 *     carries Apigee's extra fields (status, scope, refresh_token_expires_in, refresh_count), so a client that
 *     refuses unknown fields fails here and not in production.
 *   - Token errors use OAuth 2.0 (RFC 6749 §5.2) bodies: bad or missing client credentials → 401
 *     {"error":"invalid_client"}; grant_type missing → 400 invalid_request; another grant_type → 400
 *     unsupported_grant_type; another Content-Type → 400 invalid_request.
 *   - Trigger without a valid token (missing, unknown, expired by the injected clock, or invalidated through
 *     /__emulator/tokens/expire) → 401 with Apigee's fault body
 *     {"fault":{"faultstring":...,"detail":{"errorcode":...}}} and `WWW-Authenticate: Bearer`. Clients should
 *     decide on the status, not on this body.
 *   - code -2 (workflow validation) goes with HTTP 400: unknown callflow, a required variable missing, a body
 *     that is not JSON or not {callflow: string, variables: object}, a Content-Type other than
 *     application/json. The message names exactly what is wrong. A required variable is present when it is a
 *     number or a string that is not blank.
 *   - code -1 (server error) goes with HTTP 5xx; the emulator produces it only through faults (default 503).
 *   - A body over 64 KiB → 413 {"code":-2}, and the connection is closed (the rest of the body is unread).
 *   - Success is HTTP 200 {"code":0,"id":<UUID>,"message":...}. The trigger is NOT idempotent: every accepted
 *     POST is a new execution with a new id, as we must assume of the real API.
 *
 * Faults (POST /__emulator/faults, or addFault) apply to the next `times` requests to their endpoint, in the
 * order added, before any authentication or validation:
 *   - status (default 503 when neither delayMs nor drop is given): that status with {"code":<code, default -1>,
 *     "message":...} and Retry-After when retryAfter is given; nothing is accepted.
 *   - drop: the body is read, then the connection is destroyed with no answer; nothing is accepted.
 *   - delayMs without status or drop: a slow answer. The request is processed on arrival (a trigger is
 *     accepted at once, as a slow real server would have started the flow) and the answer leaves delayMs
 *     later, so a client that gives up early has still started a flow. With status or drop: wait, then fail.
 *   Delays run on the injected clock.
 *
 * Inspection: GET/DELETE /__emulator/triggers (accepted triggers, oldest first, last 10,000 kept),
 * GET/POST/DELETE /__emulator/faults, POST /__emulator/tokens/expire, GET /__emulator/stats. These need no
 * token: the emulator binds to loopback unless told otherwise.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock, type TimerHandle } from '../shared/clock.ts';
import { silentLogger, type Logger } from '../shared/logger.ts';
import { BadInputError, errorMessage } from '../shared/errors.ts';
import { CallflowRegistry, DEFAULT_CALLFLOWS, triggerBodySchema } from './callflows.ts';
import { FaultQueue, type FaultAction, type FaultSpec, type FaultTarget } from './faults.ts';
import { BodyTooLargeError, mediaType, readBody, sendJson } from './http.ts';
import { Credentials, TokenStore } from './tokens.ts';
import { describeIssues } from './zod-issues.ts';

export type { FaultSpec } from './faults.ts';

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port; read `url` after start). */
  port?: number;
  clientId: string;
  clientSecret: string;
  /** Token lifetime in seconds (default 3600, as documented). */
  tokenTtlS?: number;
  /** Callflow name → dotted variable paths it requires. Replaces the defaults when given. */
  callflows?: Record<string, string[]>;
  issuedAtUnit?: 's' | 'ms';
  numbersAsStrings?: boolean;
  clock?: Clock;
  logger?: Logger;
}

export interface AcceptedTrigger {
  id: string;
  callflow: string;
  variables: unknown;
  /** ISO 8601, from the injected clock. */
  receivedAt: string;
}

export interface EmulatorStats {
  tokenRequests: number;
  triggerRequests: number;
  accepted: number;
}

export const BODY_LIMIT_BYTES = 64 * 1024;
export const MAX_STORED_TRIGGERS = 10_000;
const JSON_TYPE = 'application/json';
const FORM_TYPES = new Set(['application/x-www-form-urlencoded', 'x-www-form-urlencoded']);
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export class Emulator {
  readonly #host: string;
  readonly #port: number;
  readonly #credentials: Credentials;
  readonly #tokens: TokenStore;
  readonly #callflows: CallflowRegistry;
  readonly #issuedAtUnit: 's' | 'ms';
  readonly #numbersAsStrings: boolean;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #faults = new FaultQueue();
  readonly #timers = new Set<TimerHandle>();
  readonly #routes: Record<string, Partial<Record<string, Route>>>;
  #triggers: AcceptedTrigger[] = [];
  readonly #triggerListeners = new Set<(t: AcceptedTrigger) => void>();
  #stats: EmulatorStats = { tokenRequests: 0, triggerRequests: 0, accepted: 0 };
  #server: Server | undefined;
  #url: string | undefined;

  constructor(options: EmulatorOptions) {
    const ttl = options.tokenTtlS ?? 3600;
    if (!Number.isInteger(ttl) || ttl <= 0) throw new BadInputError(`tokenTtlS must be a positive whole number of seconds, got ${ttl}`);
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new BadInputError(`port must be 0..65535, got ${port}`);
    this.#host = options.host ?? '127.0.0.1';
    this.#port = port;
    this.#clock = options.clock ?? systemClock;
    this.#credentials = new Credentials(options.clientId, options.clientSecret);
    this.#tokens = new TokenStore(this.#clock, ttl);
    this.#callflows = new CallflowRegistry(options.callflows ?? DEFAULT_CALLFLOWS);
    this.#issuedAtUnit = options.issuedAtUnit ?? 's';
    this.#numbersAsStrings = options.numbersAsStrings ?? false;
    this.#log = (options.logger ?? silentLogger()).child({ part: 'emulator' });
    this.#routes = {
      '/oauth/token': { POST: (req, res) => this.#onToken(req, res) },
      '/v1/rem/trigger': { POST: (req, res) => this.#onTrigger(req, res) },
      '/__emulator/triggers': {
        GET: (_req, res) => sendJson(res, 200, this.#triggers),
        DELETE: (_req, res) => {
          this.clearTriggers();
          res.writeHead(204).end();
        },
      },
      '/__emulator/faults': {
        GET: (_req, res) => sendJson(res, 200, this.#faults.pending()),
        POST: (req, res) => this.#onAddFault(req, res),
        DELETE: (_req, res) => {
          this.clearFaults();
          res.writeHead(204).end();
        },
      },
      '/__emulator/tokens/expire': {
        POST: (_req, res) => {
          this.expireTokens();
          res.writeHead(204).end();
        },
      },
      '/__emulator/stats': { GET: (_req, res) => sendJson(res, 200, this.stats()) },
    };
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => this.#dispatch(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.#host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.#log.error({ err: errorMessage(e) }, 'emulator server error'));
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.#server = server;
    this.#url = `http://${host}:${addr.port}`;
    this.#log.debug({ url: this.#url, callflows: this.#callflows.names() }, 'emulator listening');
  }

  /** Stops listening and closes every connection, idle keep-alive ones and ones waiting on a delay alike. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    this.#log.debug('emulator stopped');
  }

  get url(): string {
    if (this.#url === undefined) throw new Error('emulator not started: url is known only after start()');
    return this.#url;
  }

  /** Access tokens issued and still known, for tests that check no token leaks. */
  issuedTokens(): string[] {
    return this.#tokens.live();
  }

  /** Called for every accepted trigger as it is accepted (the demo prints them; tests await them). */
  onTrigger(listener: (t: AcceptedTrigger) => void): () => void {
    this.#triggerListeners.add(listener);
    return () => this.#triggerListeners.delete(listener);
  }

  triggers(): AcceptedTrigger[] {
    return [...this.#triggers];
  }

  clearTriggers(): void {
    this.#triggers = [];
  }

  /** Throws BadInputError naming the wrong field, like POST /__emulator/faults answers 400. */
  addFault(f: FaultSpec): void {
    this.#faults.add(f);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  expireTokens(): void {
    this.#tokens.expireAll();
  }

  stats(): EmulatorStats {
    return { ...this.#stats };
  }

  #dispatch(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const methods = this.#routes[path];
    if (methods === undefined) {
      sendJson(res, 404, { error: 'not_found', message: `no endpoint ${path}` });
      return;
    }
    const route = methods[req.method ?? ''];
    if (route === undefined) {
      const allow = Object.keys(methods).join(', ');
      sendJson(res, 405, { error: 'method_not_allowed', message: `${req.method} ${path} is not allowed; use ${allow}` }, { allow });
      return;
    }
    try {
      const done = route(req, res);
      if (done) done.catch((e: unknown) => this.#internalError(res, e));
    } catch (e) {
      this.#internalError(res, e);
    }
  }

  #internalError(res: ServerResponse, e: unknown): void {
    this.#log.error({ err: errorMessage(e) }, 'emulator internal error');
    sendJson(res, 500, { code: -1, message: 'emulator internal error' });
  }

  /** The body, or undefined after answering 413 / giving up on a client that went away. */
  async #body(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    try {
      return await readBody(req, BODY_LIMIT_BYTES);
    } catch (e) {
      if (e instanceof BodyTooLargeError) {
        sendJson(res, 413, { code: -2, message: e.message }, { connection: 'close' });
      } else {
        res.destroy();
      }
      return undefined;
    }
  }

  #later(delayMs: number, fn: () => void): void {
    if (delayMs <= 0) {
      fn();
      return;
    }
    const handle = this.#clock.setTimeout(() => {
      this.#timers.delete(handle);
      fn();
    }, delayMs);
    this.#timers.add(handle);
  }

  /** Applies a failing fault (status or drop); false when the fault lets the request be processed. */
  #fail(target: FaultTarget, fault: FaultAction, res: ServerResponse): boolean {
    if (fault.drop) {
      this.#later(fault.delayMs, () => res.destroy());
      return true;
    }
    if (fault.status === undefined) return false;
    const status = fault.status;
    const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) };
    this.#later(fault.delayMs, () => sendJson(res, status, { code: fault.code, message: `emulated ${target} fault: HTTP ${status}` }, headers));
    return true;
  }

  async #onToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#stats.tokenRequests++;
    const fault = this.#faults.take('token');
    const body = await this.#body(req, res);
    if (body === undefined) return;
    if (fault && this.#fail('token', fault, res)) return;
    const [status, answer, headers] = this.#tokenAnswer(req, body);
    this.#later(fault?.delayMs ?? 0, () => sendJson(res, status, answer, headers));
  }

  #tokenAnswer(req: IncomingMessage, body: Buffer): [number, unknown, Record<string, string>] {
    const type = mediaType(req);
    if (!FORM_TYPES.has(type)) {
      return [400, { error: 'invalid_request', error_description: `Content-Type must be application/x-www-form-urlencoded, got "${type}"` }, NO_STORE];
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const grant = form.get('grant_type');
    if (grant === null || grant === '') return [400, { error: 'invalid_request', error_description: 'grant_type is required' }, NO_STORE];
    if (grant !== 'client_credentials') {
      return [400, { error: 'unsupported_grant_type', error_description: `grant_type must be client_credentials, got "${grant}"` }, NO_STORE];
    }
    const id = form.get('client_id');
    const secret = form.get('client_secret');
    if (id === null || secret === null || !this.#credentials.matches(id, secret)) {
      // Never echo what was sent: it may be a real secret pasted into the wrong place.
      return [401, { error: 'invalid_client', error_description: 'client authentication failed' }, NO_STORE];
    }
    const t = this.#tokens.issue();
    const issuedAt = this.#issuedAtUnit === 'ms' ? t.issuedAtMs : Math.floor(t.issuedAtMs / 1000);
    const answer = this.#numbersAsStrings
      ? {
          access_token: t.accessToken,
          token_type: 'BearerToken',
          issued_at: String(issuedAt),
          expires_in: String(t.ttlS),
          refresh_token_expires_in: '0',
          refresh_count: '0',
          scope: '',
          status: 'approved',
        }
      : { access_token: t.accessToken, token_type: 'BearerToken', issued_at: issuedAt, expires_in: t.ttlS };
    return [200, answer, NO_STORE];
  }

  async #onTrigger(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#stats.triggerRequests++;
    const fault = this.#faults.take('trigger');
    const body = await this.#body(req, res);
    if (body === undefined) return;
    if (fault && this.#fail('trigger', fault, res)) return;
    const [status, answer, headers] = this.#triggerAnswer(req, body);
    this.#later(fault?.delayMs ?? 0, () => sendJson(res, status, answer, headers));
  }

  #triggerAnswer(req: IncomingMessage, body: Buffer): [number, unknown, Record<string, string>] {
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const check = auth ? this.#tokens.check(auth[1]!) : 'unknown';
    if (check !== 'valid') {
      const fault =
        check === 'expired'
          ? { faultstring: 'Access Token expired', detail: { errorcode: 'keymanagement.service.access_token_expired' } }
          : { faultstring: 'Invalid access token', detail: { errorcode: 'oauth.v2.InvalidAccessToken' } };
      return [401, { fault }, { 'www-authenticate': `Bearer error="invalid_token"` }];
    }
    const type = mediaType(req);
    if (type !== JSON_TYPE) return [400, { code: -2, message: `Content-Type must be application/json, got "${type}"` }, {}];
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (e) {
      return [400, { code: -2, message: `request body is not valid JSON: ${errorMessage(e)}` }, {}];
    }
    const parsed = triggerBodySchema.safeParse(json);
    if (!parsed.success) return [400, { code: -2, message: `invalid trigger body: ${describeIssues(parsed.error)}` }, {}];
    const { callflow, variables } = parsed.data;
    const missing = this.#callflows.missing(callflow, variables);
    if (missing === undefined) {
      return [400, { code: -2, message: `unknown callflow "${callflow}"; this emulator knows: ${this.#callflows.names().join(', ')}` }, {}];
    }
    if (missing.length > 0) {
      return [400, { code: -2, message: `callflow "${callflow}" is missing required variables: ${missing.join(', ')}` }, {}];
    }
    try {
      // JSON.parse takes nesting that JSON.stringify cannot give back; one such trigger would break the listing.
      JSON.stringify(variables);
    } catch {
      return [400, { code: -2, message: 'variables are nested too deeply' }, {}];
    }
    const id = randomUUID();
    if (this.#triggers.length >= MAX_STORED_TRIGGERS) this.#triggers.shift();
    const accepted = { id, callflow, variables, receivedAt: new Date(this.#clock.now()).toISOString() };
    this.#triggers.push(accepted);
    for (const listener of this.#triggerListeners) listener(accepted);
    this.#stats.accepted++;
    return [200, { code: 0, id, message: `callflow ${callflow} started` }, {}];
  }

  async #onAddFault(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.#body(req, res);
    if (body === undefined) return;
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (e) {
      sendJson(res, 400, { error: 'invalid_fault', message: `fault body is not valid JSON: ${errorMessage(e)}` });
      return;
    }
    try {
      this.#faults.add(json);
    } catch (e) {
      if (!(e instanceof BadInputError)) throw e;
      sendJson(res, 400, { error: 'invalid_fault', message: e.message });
      return;
    }
    sendJson(res, 201, { pending: this.#faults.pending() });
  }
}
