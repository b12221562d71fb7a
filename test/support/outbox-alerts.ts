import { createAlert } from '../../src/incident/alert.ts';
import type { AlertSnapshot } from '../../src/incident/types.ts';
import { commandLineInitiation } from '../../src/press/initiation.ts';

/** A real alert, made the only way alerts are made (a person's initiation), pressed at `pressedAt`. */
export function makeAlert(pressedAt: number, options: { test?: boolean; callflow?: string } = {}): AlertSnapshot {
  const initiation = commandLineInitiation(pressedAt, options.test ?? false);
  return createAlert(
    initiation,
    { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7, fix_time: pressedAt - 1000, age_ms: 1000, stale: false, source: 'static' },
    {
      deviceId: 'dev-1',
      caller: { full_name: 'Joe User', phone_number: '6615555555' },
      vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
      callflow: { name: options.callflow ?? 'company_dataconnect_v1', test_name: 'company_test_v1' },
    },
  );
}
