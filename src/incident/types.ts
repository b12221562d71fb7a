import type { LocationSnapshot } from '../gps/types.ts';
import type { InitiationRecord } from '../press/initiation.ts';

export interface Caller {
  full_name: string;
  /** 10-digit NANP, normalized (see src/config/phone.ts). */
  phone_number: string;
}

export interface Vehicle {
  make?: string | undefined;
  model?: string | undefined;
  color?: string | undefined;
  license_plate?: string | undefined;
  license_plate_state?: string | undefined;
  year?: string | undefined;
  vin?: string | undefined;
}

/**
 * Everything an alert carries, frozen at the press. This is what the outbox stores, what the relay sends to
 * the bridge, and what the variables mapping turns into a callflow's `variables`. Retries reuse it unchanged.
 */
export interface AlertSnapshot {
  /** UUIDv7 made at the press; the idempotency key end to end. */
  alertId: string;
  deviceId: string;
  /** Wall-clock UTC ms of the confirmed press. */
  createdAt: number;
  initiation: InitiationRecord;
  test: boolean;
  caller: Caller;
  vehicle: Vehicle;
  location: LocationSnapshot;
  /** The callflow to trigger (the test callflow for test alerts). */
  callflow: string;
}

/**
 * An alert committed before it may be sent: its cancel window is still open, or there is no location yet. The
 * outbox holds it and never sends it; only `completeAlert` (src/incident/alert.ts) makes it an AlertSnapshot,
 * and only with a location, so nothing downstream (variables, relay wire, bridge) ever sees a missing one.
 */
export interface AlertDraft extends Omit<AlertSnapshot, 'location'> {
  /** The snapshot when the alert was held; null while the device has neither a fix nor a fallback. */
  location: LocationSnapshot | null;
}

/** What the API said when it accepted a trigger. */
export interface TriggerResult {
  /** The API's id of the workflow execution. */
  id: string;
  message: string;
}

/**
 * One way to get an alert to the API: direct (API client) or relay (MQTT to the bridge). Resolves when the
 * API has accepted it; rejects with a SosError whose `retryable` says whether the outbox should try again.
 */
export interface AlertRoute {
  readonly name: string;
  send(alert: AlertSnapshot, signal?: AbortSignal): Promise<TriggerResult>;
}
