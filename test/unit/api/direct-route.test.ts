import { describe, expect, it } from 'vitest';
import { DirectRoute } from '../../../src/incident/direct-route.ts';
import { createAlert } from '../../../src/incident/alert.ts';
import { commandLineInitiation } from '../../../src/press/initiation.ts';
import { ApiRejectedError } from '../../../src/api/errors.ts';
import type { TriggerOptions } from '../../../src/api/client.ts';

const NOW = Date.UTC(2026, 0, 1, 12);

function alert(test = false) {
  return createAlert(
    commandLineInitiation(NOW, test),
    { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 6.2, fix_time: NOW - 1000, age_ms: 1000, stale: false, source: 'static' },
    {
      deviceId: 'truck-042',
      caller: { full_name: 'Joe User', phone_number: '6615555555' },
      vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
      callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
    },
  );
}

function recordingClient() {
  const calls: { callflow: string; variables: Record<string, unknown>; options: TriggerOptions | undefined }[] = [];
  return {
    calls,
    trigger: async (callflow: string, variables: Record<string, unknown>, options?: TriggerOptions) => {
      calls.push({ callflow, variables, options });
      return { id: 'ex-1', message: 'started' };
    },
  };
}

describe('DirectRoute', () => {
  it("triggers the alert's callflow with the seed's variables shape and returns the API's id", async () => {
    const client = recordingClient();
    const route = new DirectRoute(client, {});
    const signal = new AbortController().signal;
    expect(route.name).toBe('direct');
    expect(await route.send(alert(), signal)).toEqual({ id: 'ex-1', message: 'started' });
    expect(client.calls).toEqual([
      {
        callflow: 'company_dataconnect_v1',
        variables: {
          caller_info: { full_name: 'Joe User', phone_number: '6615555555' },
          location: { latitude: '39.285270', longitude: '-76.612470', uncertainty: '7' },
          vehicle_info: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
        },
        options: { signal },
      },
    ]);
  });

  it("uses the configured template of the alert's callflow (a test alert goes to the test callflow)", async () => {
    const client = recordingClient();
    const route = new DirectRoute(client, {
      company_test_v1: { variables: { user: { full_name: '{{caller.full_name}}', phone_number: '{{caller.phone_e164}}' }, test: '{{alert.test}}' } },
    });
    await route.send(alert(true));
    expect(client.calls[0]?.callflow).toBe('company_test_v1');
    expect(client.calls[0]?.variables).toEqual({ user: { full_name: 'Joe User', phone_number: '+16615555555' }, test: true });
  });

  it("passes the client's typed error on unchanged, so the outbox can decide", async () => {
    const rejected = new ApiRejectedError('trigger rejected: workflow validation error (code -2)', { status: 400, apiCode: -2 });
    const route = new DirectRoute({ trigger: () => Promise.reject(rejected) }, {});
    await expect(route.send(alert())).rejects.toBe(rejected);
  });
});
