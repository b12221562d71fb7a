import type { AlertSnapshot } from '../../../src/incident/types.ts';
import { uuidv7 } from '../../../src/shared/uuidv7.ts';

/** A complete alert as a device makes it at a press; override what a test is about. */
export function sampleAlert(overrides: Partial<AlertSnapshot> = {}): AlertSnapshot {
  const now = Date.UTC(2026, 0, 1, 12);
  return {
    alertId: uuidv7(now),
    deviceId: 'truck-042',
    createdAt: now,
    initiation: { gesture: 'hold', source: 'evdev', press_times: [1000], hold_ms: 2100, confirmed_at: now, test: false },
    test: false,
    caller: { full_name: 'Joe User', phone_number: '6615555555' },
    vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
    location: { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, fix_time: now - 1000, age_ms: 1000, stale: false, source: 'gpsd' },
    callflow: 'company_dataconnect_v1',
    ...overrides,
  };
}
