import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { EmergencyApiClient } from '../../src/api/client.ts';
import { ApiTransientError, TokenFetchError } from '../../src/api/errors.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { haveTool } from '../support/tools.ts';

/** A loopback HTTPS "API" with a certificate from a private CA the system does not trust. */
describe.runIf(haveTool('openssl'))('TLS to the API', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let caPem: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-api-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'srv.key', '-out', 'srv.csr');
    writeFileSync(join(dir, 'srv.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'srv.ext', '-out', 'srv.pem');
    caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
    server = createServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) }, (req, res) => {
      req.resume();
      req.on('end', () => {
        // Connection: close, so each request below is a new TLS handshake (the gate below decides its fate).
        res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify(req.url === '/oauth/token' ? { access_token: 'tls-token', expires_in: 3600 } : { code: 0, id: 'tls-exec', message: 'ok' }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const make = (ca?: string, baseUrl = url, connectTimeoutMs = 2000) =>
    new EmergencyApiClient({
      baseUrl,
      clientId: 'c',
      clientSecret: 's',
      connectTimeoutMs,
      responseTimeoutMs: 2000,
      tokenMarginMs: 1000,
      clock: systemClock,
      logger: silentLogger(),
      ca,
    });

  it('refuses a server whose certificate is not trusted (TLS is verified), before sending anything', async () => {
    const c = make();
    try {
      const e = await c.probe().then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(TokenFetchError);
      expect((e as Error).message).toContain('TLS certificate not trusted');
    } finally {
      await c.stop();
    }
  });

  /** A port whose first connection reaches the TLS server and whose later ones are accepted, then never answered. */
  async function gate(): Promise<{ url: string; held: Promise<Socket>; close(): Promise<void> }> {
    const sockets: Socket[] = [];
    let heldSocket: (s: Socket) => void = () => undefined;
    const held = new Promise<Socket>((r) => (heldSocket = r));
    const g = createNetServer((socket) => {
      sockets.push(socket);
      if (sockets.length === 1) server.emit('connection', socket);
      else heldSocket(socket);
    });
    g.listen(0, '127.0.0.1');
    await once(g, 'listening');
    return {
      url: `https://127.0.0.1:${(g.address() as AddressInfo).port}`,
      held,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => g.close(() => r()));
      },
    };
  }

  it('a TLS handshake that never completes → connect timeout; the trigger is NOT ambiguous (nothing was sent)', async () => {
    const g = await gate();
    const c = make(caPem, g.url, 300);
    try {
      await c.probe();
      const started = performance.now();
      const e = await c.trigger('company_dataconnect_v1', {}).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ ambiguous: false, retryable: true });
      expect((e as Error).message).toContain('connect timed out');
      expect(performance.now() - started).toBeLessThan(1500);
    } finally {
      await c.stop();
      await g.close();
    }
  });

  it('an abort during the TLS handshake is NOT ambiguous (nothing was sent)', async () => {
    const g = await gate();
    const c = make(caPem, g.url);
    try {
      await c.probe();
      const ac = new AbortController();
      const p = c.trigger('company_dataconnect_v1', {}, { signal: ac.signal });
      await g.held;
      ac.abort();
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ApiTransientError);
      expect(e).toMatchObject({ ambiguous: false, retryable: true });
      expect((e as Error).message).toContain('aborted');
    } finally {
      await c.stop();
      await g.close();
    }
  });

  it('trusts a private CA given as `ca`', async () => {
    const c = make(caPem);
    try {
      expect(await c.trigger('company_dataconnect_v1', {})).toEqual({ id: 'tls-exec', message: 'ok' });
    } finally {
      await c.stop();
    }
  });
});
