import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../../src/emulator/server.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { startEmulator } from '../../support/emulator.ts';
import { getToken, tokenRequest, triggerRequest } from './helpers.ts';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

describe('POST /oauth/token', () => {
  it('issues a BearerToken with issued_at in UNIX seconds and numbers by default', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0, 750));
    emu = await startEmulator({ clock });
    const res = await tokenRequest(emu);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json();
    expect(body).toEqual({
      access_token: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
      token_type: 'BearerToken',
      issued_at: Math.floor(Date.UTC(2026, 0, 1, 12) / 1000),
      expires_in: 3600,
    });
  });

  it("accepts the seed's literal Content-Type x-www-form-urlencoded", async () => {
    emu = await startEmulator();
    const res = await tokenRequest(emu, {}, 'x-www-form-urlencoded');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { token_type: string }).token_type).toBe('BearerToken');
  });

  it('reproduces the Apigee style: issued_at in ms, numbers as strings, extra fields', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 0, 750));
    emu = await startEmulator({ clock, issuedAtUnit: 'ms', numbersAsStrings: true, tokenTtlS: 1799 });
    const body = (await (await tokenRequest(emu)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'BearerToken', issued_at: String(Date.UTC(2026, 0, 1, 12, 0, 0, 750)), expires_in: '1799', status: 'approved' });
    expect(typeof body.access_token).toBe('string');
  });

  it('issues a different token on every request, each usable', async () => {
    emu = await startEmulator();
    const tokens = await Promise.all([1, 2, 3].map(async () => ((await (await tokenRequest(emu!)).json()) as { access_token: string }).access_token));
    expect(new Set(tokens).size).toBe(3);
    for (const t of tokens) expect((await triggerRequest(emu, t)).status).toBe(200);
  });

  it('answers 401 invalid_client to a wrong secret, a wrong id, or missing credentials, without echoing them', async () => {
    emu = await startEmulator();
    const forms: Record<string, string>[] = [{ client_secret: 'wrong-secret-value' }, { client_id: 'someone-else' }, { client_secret: '' }];
    for (const form of forms) {
      const res = await tokenRequest(emu, form);
      expect(res.status).toBe(401);
      const text = await res.text();
      expect(JSON.parse(text)).toMatchObject({ error: 'invalid_client' });
      expect(text).not.toContain('wrong-secret-value');
    }
    const bare = await fetch(`${emu.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect(bare.status).toBe(401);
    expect(emu.stats().tokenRequests).toBe(4);
  });

  it('answers 400 to a wrong or missing grant_type', async () => {
    emu = await startEmulator();
    const wrong = await tokenRequest(emu, { grant_type: 'password' });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'unsupported_grant_type', error_description: expect.stringContaining('password') });
    const missing = await fetch(`${emu.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=test-client&client_secret=test-secret' });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('grant_type') });
  });

  it('answers 400 to a JSON body: the API wants a form', async () => {
    emu = await startEmulator();
    const res = await fetch(`${emu.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'test-client', client_secret: 'test-secret', grant_type: 'client_credentials' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('application/json') });
  });
});

describe('token lifetime (judged by the injected clock)', () => {
  it('accepts a token until issued_at + expires_in, then answers 401 "expired"', async () => {
    const clock = new FakeClock();
    emu = await startEmulator({ clock, tokenTtlS: 60 });
    const token = await getToken(emu);
    clock.advance(59_999);
    expect((await triggerRequest(emu, token)).status).toBe(200);
    clock.advance(1);
    const res = await triggerRequest(emu, token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await res.json()).toMatchObject({ fault: { faultstring: 'Access Token expired' } });
    expect(emu.triggers()).toHaveLength(1);
  });

  it('defaults to the documented one hour', async () => {
    const clock = new FakeClock();
    emu = await startEmulator({ clock });
    const token = await getToken(emu);
    clock.advance(3599_000);
    expect((await triggerRequest(emu, token)).status).toBe(200);
    clock.advance(1000);
    expect((await triggerRequest(emu, token)).status).toBe(401);
  });

  it('POST /__emulator/tokens/expire invalidates every issued token; a new one works', async () => {
    emu = await startEmulator();
    const a = await getToken(emu);
    const b = await getToken(emu);
    expect((await fetch(`${emu.url}/__emulator/tokens/expire`, { method: 'POST' })).status).toBe(204);
    expect((await triggerRequest(emu, a)).status).toBe(401);
    expect((await triggerRequest(emu, b)).status).toBe(401);
    const c = await getToken(emu);
    expect((await triggerRequest(emu, c)).status).toBe(200);
  });
});
