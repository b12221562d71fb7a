import { z } from 'zod';

/** Hosts from RapidSOS's public sample code (see API-NOTES.md). */
export const API_ENVIRONMENTS = {
  sandbox: 'https://api-sandbox.rapidsos.com',
  staging: 'https://api-staging.rapidsos.com',
  production: 'https://api.rapidsos.com',
} as const;

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** `sandbox | staging | production | any https URL | http URL on loopback only` → the base URL without a trailing slash. */
export const apiBaseUrl = z
  .string()
  .transform((value, ctx) => {
    if (value in API_ENVIRONMENTS) return API_ENVIRONMENTS[value as keyof typeof API_ENVIRONMENTS];
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected sandbox, staging, production or an http(s) URL, got "${value}"` });
      return z.NEVER;
    }
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      ctx.addIssue({ code: 'custom', message: `plain http is allowed only on loopback (127.0.0.1, ::1, localhost); use https for ${url.hostname}` });
      return z.NEVER;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `expected an http(s) URL, got protocol ${url.protocol}` });
      return z.NEVER;
    }
    return url.toString().replace(/\/+$/, '');
  });

/**
 * A broker URL: mqtts:// or wss:// anywhere; plain mqtt:// or ws:// only on loopback, since the MQTT password,
 * the caller's name and phone and the location would otherwise cross the network in clear text (invariant 5).
 */
export const brokerUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `expected an mqtts://, wss://, mqtt:// or ws:// URL, got "${value}"` });
    return;
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) {
    ctx.addIssue({ code: 'custom', message: `expected an mqtts://, wss://, mqtt:// or ws:// URL, got protocol ${url.protocol}` });
  } else if ((url.protocol === 'mqtt:' || url.protocol === 'ws:') && !isLoopbackHost(url.hostname)) {
    ctx.addIssue({ code: 'custom', message: `plain ${url.protocol}// is allowed only on loopback; use ${url.protocol === 'mqtt:' ? 'mqtts' : 'wss'}:// for ${url.hostname}` });
  }
});
