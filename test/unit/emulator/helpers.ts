import type { Emulator } from '../../../src/emulator/server.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../../support/emulator.ts';

/** The seed's sample trigger, exactly. */
export const SEED_TRIGGER = {
  callflow: 'company_dataconnect_v1',
  variables: {
    caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
    location: { latitude: '39.285270', longitude: '-76.61247', uncertainty: '7' },
    vehicle_info: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
  },
};

export function tokenRequest(emu: Emulator, form: Record<string, string> = {}, contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
  const body = new URLSearchParams({ client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, grant_type: 'client_credentials', ...form });
  return fetch(`${emu.url}/oauth/token`, { method: 'POST', headers: { 'content-type': contentType }, body: body.toString() });
}

export async function getToken(emu: Emulator): Promise<string> {
  const res = await tokenRequest(emu);
  if (res.status !== 200) throw new Error(`token request failed: ${res.status}`);
  const json = (await res.json()) as { access_token: string };
  return json.access_token;
}

export function triggerRequest(emu: Emulator, token: string | undefined, body: unknown = SEED_TRIGGER, contentType = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return fetch(`${emu.url}/v1/rem/trigger`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

export async function addFault(emu: Emulator, fault: unknown): Promise<Response> {
  return fetch(`${emu.url}/__emulator/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fault) });
}
