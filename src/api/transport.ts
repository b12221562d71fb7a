import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { HttpAnswer } from './classify.ts';

/**
 * One POST at a time over a keep-alive `node:http`/`node:https` agent, with the timeouts the outbox relies on and
 * a record of how far each failed request got: a failure before the request was fully written cannot have
 * started a flow (not ambiguous); one after it may have (ambiguous).
 */
export interface HttpTransportOptions {
  /** Origin and optional path prefix; http: or https:. */
  baseUrl: URL;
  /** From the request's start (DNS, TCP, TLS) until the socket is ready; a reused socket is ready at once. */
  connectTimeoutMs: number;
  /** From the socket being ready until the answer's headers, then between body chunks. */
  responseTimeoutMs: number;
  /** PEM of a private CA, replacing the system roots. TLS is verified either way. */
  ca?: string | Buffer | undefined;
  /**
   * Idle keep-alive sockets kept for the next requests (default DEFAULT_MAX_IDLE_SOCKETS). A caller that runs many
   * requests at once (the bridge: max_in_flight) passes its concurrency, or every burst closes and reopens sockets.
   */
  maxIdleSockets?: number | undefined;
}

/** The transport's own failure codes (beside the system's: ECONNREFUSED, ECONNRESET, CERT_HAS_EXPIRED...). */
export const TransportCodes = {
  CONNECT_TIMEOUT: 'SOS_HTTP_CONNECT_TIMEOUT',
  RESPONSE_TIMEOUT: 'SOS_HTTP_RESPONSE_TIMEOUT',
  BODY_TIMEOUT: 'SOS_HTTP_BODY_TIMEOUT',
  STOPPED: 'SOS_HTTP_STOPPED',
} as const;

/** A request that failed; `code` is the deciding code, `written` whether the whole request had left. */
export class TransportError extends Error {
  readonly code: string | undefined;
  readonly written: boolean;
  constructor(message: string, details: { code: string | undefined; written: boolean; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TransportError';
    this.code = details.code;
    this.written = details.written;
  }
}

/** Larger answers are not the API's (its answers are a few hundred bytes): a portal page or a proxy's error. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Shorter than the idle timeouts of cellular NATs (often 30 s or more), which drop a connection silently: a
 * trigger written into such a dead socket would wait out the response timeout, ambiguous. The server's
 * Keep-Alive hint (minus 1 s, node's rule) still wins when shorter.
 */
const IDLE_SOCKET_MS = 15_000;
/** Idle sockets kept after a burst by default: a device sends one alert at a time. */
export const DEFAULT_MAX_IDLE_SOCKETS = 4;

export class HttpTransport {
  readonly #o: HttpTransportOptions;
  readonly #https: boolean;
  readonly #request: typeof httpRequest;
  readonly #base: RequestOptions;
  readonly #prefix: string;
  readonly #agent: HttpAgent;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #timeoutTexts: { connect: string; response: string; body: string };
  #closed = false;

  constructor(options: HttpTransportOptions) {
    this.#o = options;
    const url = options.baseUrl;
    this.#https = url.protocol === 'https:';
    if (!this.#https && url.protocol !== 'http:') throw new TypeError(`unsupported protocol ${url.protocol}`);
    this.#request = this.#https ? httpsRequest : httpRequest;
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.#timeoutTexts = {
      connect: `connect timed out after ${options.connectTimeoutMs} ms`,
      response: `no answer within ${options.responseTimeoutMs} ms`,
      body: `answer stalled for ${options.responseTimeoutMs} ms`,
    };
    // No cap on sockets: a request queued behind busy sockets would count its wait as connect time (and undici,
    // before this, did not queue either); each caller bounds its own concurrency. `timeout` is the idle timeout of
    // free sockets (an answer may take longer). lifo: the socket used last is the least likely to be dead.
    const maxFreeSockets = options.maxIdleSockets ?? DEFAULT_MAX_IDLE_SOCKETS;
    if (!Number.isInteger(maxFreeSockets) || maxFreeSockets < 1) throw new RangeError(`maxIdleSockets must be a positive integer, got ${maxFreeSockets}`);
    const agentOptions = { keepAlive: true, timeout: IDLE_SOCKET_MS, maxFreeSockets, scheduling: 'lifo' as const };
    this.#agent = this.#https
      ? new HttpsAgent({ ...agentOptions, ...(options.ca === undefined ? {} : { ca: options.ca }) })
      : new HttpAgent(agentOptions);
    this.#base = {
      agent: this.#agent,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      ...(url.port === '' ? {} : { port: Number(url.port) }),
      method: 'POST',
    };
  }

  /** POSTs `body` to prefix + `path`; rejects with TransportError. Redirects are answers, not followed. */
  post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<HttpAnswer> {
    if (this.#closed) return Promise.reject(new TransportError('client stopped', { code: TransportCodes.STOPPED, written: false }));
    const p = this.#post(path, headers, body, signal);
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Refuses new requests, waits for those in flight (each bounded by its timeouts), then closes every socket. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inflight]);
    this.#agent.destroy();
  }

  #post(path: string, headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<HttpAnswer> {
    const { connectTimeoutMs, responseTimeoutMs } = this.#o;
    const texts = this.#timeoutTexts;
    return new Promise<HttpAnswer>((resolve, reject) => {
      let written = false;
      let settled = false;
      let req: ClientRequest | undefined;
      let timer: NodeJS.Timeout | undefined;
      // What the one timer means now (connect, answer, body): a phase change of the same length refreshes it.
      let timeoutMs = 0;
      let timeoutCode = '';
      let timeoutMessage = '';

      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (e instanceof TransportError) reject(e);
        else {
          const err = e as NodeJS.ErrnoException | undefined;
          reject(new TransportError(err?.message ?? 'request failed', { code: typeof err?.code === 'string' ? err.code : undefined, written, cause: e }));
        }
        req?.destroy();
      };
      const succeed = (answer: HttpAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answer);
      };
      const onTimeout = () => fail(new TransportError(timeoutMessage, { code: timeoutCode, written }));
      // Network timeouts run on real time, as the socket does; the injected Clock drives token expiry.
      const arm = (ms: number, code: string, message: string) => {
        timeoutCode = code;
        timeoutMessage = message;
        if (timer !== undefined && ms === timeoutMs) {
          timer.refresh();
          return;
        }
        clearTimeout(timer);
        timeoutMs = ms;
        timer = setTimeout(onTimeout, ms);
      };
      const ready = () => {
        if (!settled) arm(responseTimeoutMs, TransportCodes.RESPONSE_TIMEOUT, texts.response);
      };

      try {
        req = this.#request({
          ...this.#base,
          path: this.#prefix + path,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          ...(signal === undefined ? {} : { signal }),
        });
      } catch (e) {
        fail(e);
        return;
      }
      // The agent hands over an idle socket synchronously: such a request is connected now, so its answer is what
      // is timed. Otherwise the connect is timed first (DNS, TCP, TLS), from here.
      const reused = req.reusedSocket;
      if (reused) ready();
      else arm(connectTimeoutMs, TransportCodes.CONNECT_TIMEOUT, texts.connect);
      req.on('error', fail);
      req.on('finish', () => {
        written = true;
      });
      if (!reused) req.on('socket', (socket: Socket) => socket.once(this.#https ? 'secureConnect' : 'connect', ready));
      req.on('response', (res: IncomingMessage) => {
        if (settled) {
          res.resume();
          return;
        }
        arm(responseTimeoutMs, TransportCodes.BODY_TIMEOUT, texts.body);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          timer?.refresh();
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            succeed({ status: res.statusCode ?? 0, headers: res.headers, text: '' });
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          succeed({ status: res.statusCode ?? 0, headers: res.headers, text: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
        });
      });
      // One write: node joins the header block and a string body.
      req.end(body, 'utf8');
    });
  }
}
