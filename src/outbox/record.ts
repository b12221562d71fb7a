import { z } from 'zod';
import type { AlertSnapshot } from '../incident/types.ts';

/**
 * One alert in the outbox. `queued` → `sending` → `delivered` | `rejected`; a transient failure returns it to
 * `queued` with a later `nextAttemptAt`. The snapshot is stored whole and never changed: retries resend it
 * exactly as it was at the press, with its original time.
 */
export const OUTBOX_STATES = ['queued', 'sending', 'delivered', 'rejected'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/** The last failure, as safe to show: a stable code and a message (messages never hold secrets). */
export interface LastError {
  code: string;
  message: string;
}

export interface OutboxRecord {
  alertId: string;
  /** Wall-clock UTC ms of the press (the snapshot's createdAt): the order alerts are sent in. */
  createdAt: number;
  /** When the outbox committed it. */
  enqueuedAt: number;
  alert: AlertSnapshot;
  state: OutboxState;
  /** Attempts started (each `markSending`). */
  attempts: number;
  /** When a `queued` record becomes due. */
  nextAttemptAt: number;
  lastError: LastError | null;
  /** Resends after a failure that may have reached the API (sent, no answer) or a crash mid-send. */
  ambiguousRetries: number;
  /** The API's execution id, once delivered. */
  apiId: string | null;
  /** The route of the last attempt (direct, relay). */
  route: string | null;
  updatedAt: number;
  deliveredAt: number | null;
}

/** Longest message kept in a record: enough for a reason, never a dumped response body. */
export const MAX_ERROR_MESSAGE = 500;

export function lastErrorOf(code: string, message: string): LastError {
  return { code, message: message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : message };
}

// Loose objects: a record written by a newer agent with extra fields still reads, and is resent unchanged.
const initiationSchema = z.looseObject({
  gesture: z.enum(['hold', 'multi_press', 'test_hold', 'command']),
  source: z.string(),
  press_times: z.array(z.number()),
  hold_ms: z.number(),
  confirmed_at: z.number(),
  test: z.boolean(),
});

const locationSchema = z.looseObject({
  latitude: z.number(),
  longitude: z.number(),
  uncertainty_m: z.number(),
  fix_time: z.number(),
  age_ms: z.number(),
  stale: z.boolean(),
  source: z.string(),
  altitude_m: z.number().optional(),
  speed_mps: z.number().optional(),
  heading_deg: z.number().optional(),
});

const optionalText = z.string().optional();

/** What a stored snapshot must hold to be sent; checked on every read so a damaged row is reported, not sent. */
export const alertSnapshotSchema = z.looseObject({
  alertId: z.string().min(1),
  deviceId: z.string(),
  createdAt: z.number(),
  initiation: initiationSchema,
  test: z.boolean(),
  caller: z.looseObject({ full_name: z.string(), phone_number: z.string() }),
  vehicle: z.looseObject({
    make: optionalText,
    model: optionalText,
    color: optionalText,
    license_plate: optionalText,
    license_plate_state: optionalText,
    year: optionalText,
    vin: optionalText,
  }),
  location: locationSchema,
  callflow: z.string().min(1),
});

export function parseSnapshot(json: string): AlertSnapshot {
  return alertSnapshotSchema.parse(JSON.parse(json)) as AlertSnapshot;
}
