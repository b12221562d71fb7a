import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.ts';
import { errorMessage } from '../shared/errors.ts';

export interface HealthReport {
  ok: boolean;
  [key: string]: unknown;
}

export interface HttpServerOptions {
  host: string;
  /** 0 = a free port (read `url` after start). */
  port: number;
  health: () => HealthReport;
  metrics: () => string;
  logger: Logger;
}

/** GET /healthz (200 when healthy, else 503, JSON either way) and GET /metrics (Prometheus text). */
export class BridgeHttpServer {
  readonly #opts: HttpServerOptions;
  #server: Server | null = null;
  #url = '';

  constructor(options: HttpServerOptions) {
    this.#opts = options;
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      try {
        if (path === '/healthz') {
          const report = this.#opts.health();
          res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(report));
        } else if (path === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
          res.end(this.#opts.metrics());
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
        }
      } catch (e) {
        this.#opts.logger.error({ err: errorMessage(e) }, 'http handler failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    this.#url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    this.#server = server;
    this.#opts.logger.info({ url: this.#url }, 'health and metrics listening');
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
