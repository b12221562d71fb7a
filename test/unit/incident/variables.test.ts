import { describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATE, templateIssues, variablesFor } from '../../../src/incident/variables.ts';
import type { AlertSnapshot } from '../../../src/incident/types.ts';

const alert: AlertSnapshot = {
  alertId: '01890a5d-ac96-774b-bcce-b302099a8057',
  deviceId: 'truck-042',
  createdAt: Date.UTC(2026, 10, 27, 9, 0, 0),
  initiation: { gesture: 'hold', source: 'evdev', press_times: [1000], hold_ms: 2000, confirmed_at: Date.UTC(2026, 10, 27, 9, 0, 0), test: false },
  test: false,
  caller: { full_name: 'Joe User', phone_number: '6615555555' },
  vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
  location: { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 6.2, fix_time: Date.UTC(2026, 10, 27, 8, 59, 58), age_ms: 2000, stale: false, source: 'gpsd' },
  callflow: 'company_dataconnect_v1',
};

describe('variables mapping', () => {
  it('produces exactly the seed sample shape by default, numbers as strings', () => {
    expect(variablesFor(alert, {})).toEqual({
      caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
      location: { latitude: '39.285270', longitude: '-76.612470', uncertainty: '7' },
      vehicle_info: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
    });
  });

  it('rounds the uncertainty up, never down', () => {
    const v = variablesFor({ ...alert, location: { ...alert.location, uncertainty_m: 7.01 } }, {}) as { location: { uncertainty: string } };
    expect(v.location.uncertainty).toBe('8');
  });

  it('leaves out vehicle fields, and the whole section, that are not configured', () => {
    const partial = variablesFor({ ...alert, vehicle: { make: 'Ford' } }, {});
    expect(partial.vehicle_info).toEqual({ make: 'Ford' });
    const none = variablesFor({ ...alert, vehicle: {} }, {});
    expect(Object.keys(none)).toEqual(['caller_info', 'location']);
  });

  it('uses the callflow\'s own template when configured, with numbers and interpolation', () => {
    const templates = {
      other_flow_v2: {
        variables: {
          user: { full_name: '{{caller.full_name}}', phone_number: '{{caller.phone_e164}}' },
          event_info: { time: '{{alert.created_at|number}}', note: 'device {{device.id}} pressed ({{alert.gesture}})' },
          contacts: [{ full_name: 'Ann', phone_number: '+16615550000' }],
        },
      },
    };
    expect(variablesFor({ ...alert, callflow: 'other_flow_v2' }, templates)).toEqual({
      user: { full_name: 'Joe User', phone_number: '+16615555555' },
      event_info: { time: Math.floor(alert.createdAt / 1000), note: 'device truck-042 pressed (hold)' },
      contacts: [{ full_name: 'Ann', phone_number: '+16615550000' }],
    });
  });

  it('the default template names only known placeholders', () => {
    expect(templateIssues(DEFAULT_TEMPLATE)).toEqual([]);
    expect(templateIssues({ a: ['{{nope}}'] })[0]?.path).toEqual(['a', 0]);
  });
});
