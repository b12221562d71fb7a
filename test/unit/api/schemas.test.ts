import { describe, expect, it } from 'vitest';
import { tokenResponseSchema, triggerResponseSchema } from '../../../src/api/schemas.ts';

const ISSUED_S = 1_767_225_600; // 2026-01-01T00:00:00Z

describe('token response', () => {
  it('reads issued_at in seconds, as the docs describe it', () => {
    const g = tokenResponseSchema.parse({ access_token: 'a', token_type: 'BearerToken', issued_at: ISSUED_S, expires_in: 3600 });
    expect(g).toEqual({ accessToken: 'a', tokenType: 'BearerToken', issuedAtMs: ISSUED_S * 1000, expiresInMs: 3_600_000 });
  });

  it('reads issued_at in milliseconds and numbers as strings, as an Apigee gateway sends them', () => {
    const apigee = {
      refresh_token_expires_in: '0',
      api_product_list: '[Emergency WorkFlow]',
      organization_name: 'rapidsos',
      'developer.email': 'dev@example.com',
      token_type: 'BearerToken',
      issued_at: String(ISSUED_S * 1000),
      client_id: 'my-client',
      access_token: 'G8AUdn3HIVG0sLZ5CYGc',
      application_name: '3f1c',
      scope: '',
      expires_in: '3599',
      refresh_count: '0',
      status: 'approved',
    };
    const g = tokenResponseSchema.parse(apigee);
    expect(g.issuedAtMs).toBe(ISSUED_S * 1000);
    expect(g.expiresInMs).toBe(3_599_000);
    expect(g.accessToken).toBe('G8AUdn3HIVG0sLZ5CYGc');
  });

  it('gives the documented default lifetime of 3600 s when expires_in is absent', () => {
    expect(tokenResponseSchema.parse({ access_token: 'a', issued_at: ISSUED_S }).expiresInMs).toBe(3_600_000);
  });

  it('accepts a response without issued_at (the cache then counts from receipt)', () => {
    expect(tokenResponseSchema.parse({ access_token: 'a', expires_in: 60 }).issuedAtMs).toBeUndefined();
  });

  it.each([
    ['no access_token', { token_type: 'BearerToken', expires_in: 3600 }],
    ['an empty access_token', { access_token: '', expires_in: 3600 }],
    ['a non-numeric expires_in', { access_token: 'a', expires_in: 'soon' }],
    ['a zero expires_in', { access_token: 'a', expires_in: 0 }],
    ['a negative issued_at', { access_token: 'a', issued_at: -5 }],
  ])('rejects %s', (_, body) => {
    expect(tokenResponseSchema.safeParse(body).success).toBe(false);
  });
});

describe('trigger response', () => {
  it('reads the documented success answer', () => {
    expect(triggerResponseSchema.parse({ code: 0, id: 'ex-1', message: 'started' })).toEqual({ code: 0, id: 'ex-1', message: 'started' });
  });

  it('reads a code sent as a numeric string and a numeric id', () => {
    expect(triggerResponseSchema.parse({ code: '-2', message: 'missing location' }).code).toBe(-2);
    expect(triggerResponseSchema.parse({ code: '0', id: 12345 }).id).toBe('12345');
  });

  it('rejects a body without a code, or with a code that is not an integer', () => {
    expect(triggerResponseSchema.safeParse({ id: 'x' }).success).toBe(false);
    expect(triggerResponseSchema.safeParse({ code: 'ok' }).success).toBe(false);
    expect(triggerResponseSchema.safeParse({ code: 0.5 }).success).toBe(false);
  });
});
