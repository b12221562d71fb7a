import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { EmergencyApiClient } from '../../src/api/client.ts';
import { TokenFetchError } from '../../src/api/errors.ts';
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
        res.writeHead(200, { 'content-type': 'application/json' });
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

  const make = (ca?: string) =>
    new EmergencyApiClient({
      baseUrl: url,
      clientId: 'c',
      clientSecret: 's',
      connectTimeoutMs: 2000,
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

  it('trusts a private CA given as `ca`', async () => {
    const c = make(caPem);
    try {
      expect(await c.trigger('company_dataconnect_v1', {})).toEqual({ id: 'tls-exec', message: 'ok' });
    } finally {
      await c.stop();
    }
  });
});
