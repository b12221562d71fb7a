import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { Emulator } from '../../../src/emulator/server.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { startEmulator } from '../../support/emulator.ts';
import { SEED_TRIGGER, getToken, triggerRequest } from './helpers.ts';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function started(opts: Parameters<typeof startEmulator>[0] = {}): Promise<{ emu: Emulator; token: string }> {
  emu = await startEmulator(opts);
  return { emu, token: await getToken(emu) };
}

function withVariables(variables: unknown, callflow = 'company_dataconnect_v1'): unknown {
  return { callflow, variables };
}

describe('POST /v1/rem/trigger: success', () => {
  it("accepts the seed's sample and records it with the exact variables", async () => {
    const clock = new FakeClock(Date.UTC(2026, 4, 1, 8, 30));
    const { emu, token } = await started({ clock });
    const res = await triggerRequest(emu, token);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { code: number; id: string; message: string };
    expect(body).toEqual({ code: 0, id: expect.any(String), message: expect.any(String) });
    expect(emu.triggers()).toEqual([{ id: body.id, callflow: 'company_dataconnect_v1', variables: SEED_TRIGGER.variables, receivedAt: '2026-05-01T08:30:00.000Z' }]);
    expect(emu.stats()).toEqual({ tokenRequests: 1, triggerRequests: 1, accepted: 1 });
  });

  it('gives every accepted trigger a new id: the endpoint is not idempotent', async () => {
    const { emu, token } = await started();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(((await (await triggerRequest(emu, token)).json()) as { id: string }).id);
    expect(new Set(ids).size).toBe(5);
    expect(emu.triggers().map((t) => t.id)).toEqual(ids);
  });

  it('knows company_test_v1 with the same requirements', async () => {
    const { emu, token } = await started();
    expect((await triggerRequest(emu, token, { ...SEED_TRIGGER, callflow: 'company_test_v1' })).status).toBe(200);
    expect((await triggerRequest(emu, token, { callflow: 'company_test_v1', variables: { caller_info: SEED_TRIGGER.variables.caller_info } })).status).toBe(400);
  });

  it('counts numbers as present values (other callflows send coordinates as numbers)', async () => {
    const { emu, token } = await started();
    const res = await triggerRequest(emu, token, withVariables({ caller_info: { full_name: 'Ann', phone_number: 6615555555 }, location: { latitude: 39.28527, longitude: -76.61247, uncertainty: 0 } }));
    expect(res.status).toBe(200);
  });

  it('uses the callflows it is given instead of the defaults', async () => {
    const { emu, token } = await started({ callflows: { acme_v2: ['user.phone_number', 'event_info.latitude'] } });
    expect((await triggerRequest(emu, token, withVariables({ user: { phone_number: '+16615555555' }, event_info: { latitude: '1.0' } }, 'acme_v2'))).status).toBe(200);
    const unknown = await triggerRequest(emu, token);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ code: -2, message: expect.stringContaining('unknown callflow "company_dataconnect_v1"') });
  });
});

describe('POST /v1/rem/trigger: workflow validation errors (HTTP 400, code -2)', () => {
  it('names the unknown callflow', async () => {
    const { emu, token } = await started();
    const res = await triggerRequest(emu, token, { ...SEED_TRIGGER, callflow: 'company_dataconect_v1' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: -2, message: expect.stringContaining('unknown callflow "company_dataconect_v1"') });
    expect(emu.triggers()).toEqual([]);
  });

  it('names every missing variable by its dotted path, and no present one', async () => {
    const { emu, token } = await started();
    const res = await triggerRequest(emu, token, withVariables({ caller_info: { full_name: 'Joe User' }, location: { latitude: '39.285270', longitude: '-76.61247' } }));
    expect(res.status).toBe(400);
    const { code, message } = (await res.json()) as { code: number; message: string };
    expect(code).toBe(-2);
    expect(message).toContain('caller_info.phone_number, location.uncertainty');
    expect(message).not.toContain('full_name');
    expect(emu.stats()).toMatchObject({ triggerRequests: 1, accepted: 0 });
  });

  it('treats blank strings, null, objects and booleans as missing', async () => {
    const { emu, token } = await started();
    const res = await triggerRequest(
      emu,
      token,
      withVariables({ caller_info: { full_name: '  ', phone_number: null }, location: { latitude: {}, longitude: true, uncertainty: ['7'] } }),
    );
    const { message } = (await res.json()) as { message: string };
    expect(message).toContain('caller_info.full_name, caller_info.phone_number, location.latitude, location.longitude, location.uncertainty');
  });

  it('names a body that is not JSON', async () => {
    const { emu, token } = await started();
    const res = await triggerRequest(emu, token, '{"callflow":"company_dataconnect_v1",');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: -2, message: expect.stringMatching(/^request body is not valid JSON/) });
  });

  it('names the wrong field of a body of the wrong shape', async () => {
    const { emu, token } = await started();
    const noVars = await triggerRequest(emu, token, { callflow: 'company_dataconnect_v1' });
    expect(await noVars.json()).toEqual({ code: -2, message: expect.stringContaining('variables:') });
    const arrayVars = await triggerRequest(emu, token, { callflow: 'company_dataconnect_v1', variables: [] });
    expect(await arrayVars.json()).toEqual({ code: -2, message: expect.stringContaining('variables:') });
    const numberFlow = await triggerRequest(emu, token, { callflow: 7, variables: {} });
    expect(await numberFlow.json()).toEqual({ code: -2, message: expect.stringContaining('callflow:') });
    const notObject = await triggerRequest(emu, token, '"hello"');
    expect(notObject.status).toBe(400);
  });

  it('refuses variables nested too deeply to list again, and the listing keeps working', async () => {
    const { emu, token } = await started();
    const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
    const body = JSON.stringify(SEED_TRIGGER).replace(/}}$/, `,"extra":${deep}}}`);
    const res = await triggerRequest(emu, token, body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: -2, message: expect.stringContaining('nested too deeply') });
    expect((await fetch(`${emu.url}/__emulator/triggers`)).status).toBe(200);
  });

  it('requires Content-Type application/json, as documented', async () => {
    const { emu, token } = await started();
    const res = await triggerRequest(emu, token, SEED_TRIGGER, 'text/plain');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: -2, message: expect.stringContaining('application/json') });
    expect((await triggerRequest(emu, token, SEED_TRIGGER, 'application/json; charset=utf-8')).status).toBe(200);
  });

  it('refuses a body over 64 KiB with 413 and keeps serving', async () => {
    const { emu, token } = await started();
    const big = { ...SEED_TRIGGER, variables: { ...SEED_TRIGGER.variables, padding: 'x'.repeat(70 * 1024) } };
    const res = await triggerRequest(emu, token, big);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ code: -2, message: 'request body exceeds 65536 bytes' });
    expect((await triggerRequest(emu, token)).status).toBe(200);
    expect(emu.triggers()).toHaveLength(1);
  });

  it('refuses an oversized chunked body (no Content-Length) with 413', async () => {
    const { emu, token } = await started();
    const req = request(`${emu.url}/v1/rem/trigger`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    const response = once(req, 'response') as Promise<[IncomingMessage]>;
    req.write('x'.repeat(40 * 1024));
    req.end('x'.repeat(40 * 1024));
    const [res] = await response;
    expect(res.statusCode).toBe(413);
    res.resume();
  });
});

describe('POST /v1/rem/trigger: authentication (HTTP 401)', () => {
  it('refuses a missing, malformed or unknown token and accepts nothing', async () => {
    const { emu } = await started();
    for (const auth of [undefined, 'Basic dGVzdA==', 'Bearer not-a-token']) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (auth) headers.authorization = auth;
      const res = await fetch(`${emu.url}/v1/rem/trigger`, { method: 'POST', headers, body: JSON.stringify(SEED_TRIGGER) });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ fault: { faultstring: 'Invalid access token', detail: { errorcode: 'oauth.v2.InvalidAccessToken' } } });
    }
    expect(emu.triggers()).toEqual([]);
    expect(emu.stats()).toMatchObject({ triggerRequests: 3, accepted: 0 });
  });

  it('checks the token before the body', async () => {
    const { emu } = await started();
    expect((await triggerRequest(emu, 'nope', 'not json')).status).toBe(401);
  });
});

describe('inspection', () => {
  it('GET /__emulator/triggers lists accepted triggers oldest first; DELETE empties it', async () => {
    const { emu, token } = await started();
    await triggerRequest(emu, token, { ...SEED_TRIGGER, callflow: 'company_test_v1' });
    await triggerRequest(emu, token, { callflow: 'nope', variables: {} });
    await triggerRequest(emu, token);
    const listed = (await (await fetch(`${emu.url}/__emulator/triggers`)).json()) as { callflow: string; variables: unknown; id: string; receivedAt: string }[];
    expect(listed.map((t) => t.callflow)).toEqual(['company_test_v1', 'company_dataconnect_v1']);
    expect(listed[1]!.variables).toEqual(SEED_TRIGGER.variables);
    expect(listed).toEqual(emu.triggers());
    expect((await fetch(`${emu.url}/__emulator/triggers`, { method: 'DELETE' })).status).toBe(204);
    expect(await (await fetch(`${emu.url}/__emulator/triggers`)).json()).toEqual([]);
  });

  it('GET /__emulator/stats counts token requests, trigger requests and accepted triggers', async () => {
    const { emu, token } = await started();
    await triggerRequest(emu, token);
    await triggerRequest(emu, token, { callflow: 'nope', variables: {} });
    await triggerRequest(emu, undefined);
    expect(await (await fetch(`${emu.url}/__emulator/stats`)).json()).toEqual({ tokenRequests: 1, triggerRequests: 3, accepted: 1 });
  });

  it('answers 404 to an unknown path and 405 (with Allow) to a wrong method', async () => {
    const { emu } = await started();
    const missing = await fetch(`${emu.url}/v1/rem/trigger/extra`, { method: 'POST' });
    expect(missing.status).toBe(404);
    const wrong = await fetch(`${emu.url}/v1/rem/trigger`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
  });
});

describe('the server', () => {
  it('reuses a keep-alive connection, and stop() closes the idle one', async () => {
    const { emu, token } = await started();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = () =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = request(`${emu.url}/v1/rem/trigger`, { agent, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(SEED_TRIGGER));
      });
    expect(await post()).toEqual({ status: 200, reused: false });
    expect(await post()).toEqual({ status: 200, reused: true });
    const idle = Object.values(agent.freeSockets).flat()[0];
    expect(idle).toBeDefined();
    const closed = once(idle!, 'close');
    await emu.stop();
    await closed;
    agent.destroy();
  });

  it('survives garbage on the wire and keeps serving', async () => {
    const { emu, token } = await started();
    const { port } = new URL(emu.url);
    const sock = connect(Number(port), '127.0.0.1');
    sock.end('NOT HTTP AT ALL\r\n\r\n');
    let answer = '';
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    await once(sock, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect((await triggerRequest(emu, token)).status).toBe(200);
  });

  it('does no I/O in the constructor and reports its URL only once started', async () => {
    const e = new Emulator({ clientId: 'a', clientSecret: 'b' });
    expect(() => e.url).toThrow(/not started/);
    await e.start();
    expect(e.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await e.stop();
    await e.stop();
  });

  it('fails start() with the listen error when the port is taken', async () => {
    const { emu } = await started();
    const clash = new Emulator({ clientId: 'a', clientSecret: 'b', port: Number(new URL(emu.url).port) });
    await expect(clash.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
