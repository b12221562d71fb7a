import { describe, expect, it } from 'vitest';
import { completeAlert, createAlert } from '../../../src/incident/alert.ts';
import { commandLineInitiation } from '../../../src/press/initiation.ts';

const ctx = {
  deviceId: 'truck-042',
  caller: { full_name: 'Joe User', phone_number: '6615555555' },
  vehicle: { make: 'Ford' },
  callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
};
const atPress = { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, fix_time: 1_000, age_ms: 0, stale: false, source: 'gpsd' };
const later = { ...atPress, latitude: 39.3, fix_time: 6_000 };

/** A press confirmed before the location is known is a draft: it can only become an alert with a location. */
describe('alert drafts', () => {
  it('makes a draft without a location, with the alertId and press time the alert will keep', () => {
    const at = Date.UTC(2026, 10, 27, 9);
    const draft = createAlert(commandLineInitiation(at, false), null, ctx);
    expect(draft.location).toBeNull();
    expect(draft.createdAt).toBe(at);
    expect(completeAlert(draft)).toBeNull();
    const alert = completeAlert(draft, later)!;
    expect(alert).toEqual({ ...draft, location: later });
    expect(alert.alertId).toBe(draft.alertId);
  });

  it('completes a draft held with a location with that location, or a newer one when given', () => {
    const draft = createAlert(commandLineInitiation(1, false), atPress, ctx);
    expect(completeAlert(draft)?.location).toEqual(atPress);
    expect(completeAlert(draft, later)?.location).toEqual(later);
  });
});
