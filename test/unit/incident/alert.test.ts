import { describe, expect, it } from 'vitest';
import { createAlert } from '../../../src/incident/alert.ts';
import { commandLineInitiation, type Initiation } from '../../../src/press/initiation.ts';
import { UUIDV7_RE } from '../../../src/shared/uuidv7.ts';

const location = { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, fix_time: 1_000, age_ms: 0, stale: false, source: 'static' };
const ctx = {
  deviceId: 'truck-042',
  caller: { full_name: 'Joe User', phone_number: '6615555555' },
  vehicle: { make: 'Ford' },
  callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
};

describe('createAlert', () => {
  it('makes an alert with a UUIDv7 of the press moment and the right callflow', () => {
    const at = Date.UTC(2026, 10, 27, 9);
    const alert = createAlert(commandLineInitiation(at, false), location, ctx);
    expect(alert.alertId).toMatch(UUIDV7_RE);
    expect(parseInt(alert.alertId.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
    expect(alert.createdAt).toBe(at);
    expect(alert.callflow).toBe('company_dataconnect_v1');
    expect(alert.initiation.gesture).toBe('command');
    expect(createAlert(commandLineInitiation(at, true), location, ctx).callflow).toBe('company_test_v1');
  });

  it('refuses an initiation that no person made, even one that looks right', () => {
    const forged = { gesture: 'hold', source: 'evdev', press_times: [1], hold_ms: 2000, confirmed_at: 1, test: false } as unknown as Initiation;
    expect(() => createAlert(forged, location, ctx)).toThrow(expect.objectContaining({ code: 'ERR_SOS_NOT_HUMAN_INITIATED' }));
    const copied = { ...commandLineInitiation(1, false) } as Initiation;
    expect(() => createAlert(copied, location, ctx)).toThrow(expect.objectContaining({ code: 'ERR_SOS_NOT_HUMAN_INITIATED' }));
  });

  it('refuses a test alert when no test callflow is configured', () => {
    expect(() => createAlert(commandLineInitiation(1, true), location, { ...ctx, callflow: { name: 'x', test_name: null } })).toThrow(/test_name/);
  });
});
