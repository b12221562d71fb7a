import { z } from 'zod';
import type { AlertDraft, AlertSnapshot } from '../incident/types.ts';

/**
 * One alert in the outbox. `queued` → `sending` → `delivered` | `rejected`; a transient failure returns it to
 * `queued` with a later `nextAttemptAt`. The snapshot is stored whole and never changed once queued: retries
 * resend it exactly as it was, with its original press time.
 *
 * A confirmed press that may not be sent yet is committed as `held` (never sent, never due): while its cancel
 * window is open, or while there is no location. `release` makes it `queued` (with its location), `cancel`
 * makes it `cancelled` (the person pressed again in the window; kept for the audit trail, never sent).
 */
export const OUTBOX_STATES = ['held', 'queued', 'sending', 'delivered', 'rejected', 'cancelled'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];
/** States whose alert is final (has a location) and may be, or was, sent. */
export type SendableState = 'queued' | 'sending' | 'delivered' | 'rejected';
export type HeldState = 'held' | 'cancelled';
/** Alerts not yet answered for: what `depth` counts and `oldestPendingAt` looks at. */
export const WAITING_STATES = ['held', 'queued', 'sending'] as const satisfies readonly OutboxState[];

/** Why an alert is held: its cancel window is open, or it waits for a first location. */
export const HOLD_REASONS = ['cancel_window', 'location'] as const;
export type HoldReason = (typeof HOLD_REASONS)[number];
/** Why a held alert was cancelled: the person pressed again, or a longer hold turned it into a test alert. */
export const CANCEL_REASONS = ['person', 'superseded'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

/** The last failure, as safe to show: a stable code and a message (messages never hold secrets). */
export interface LastError {
  code: string;
  message: string;
}

interface RecordFields {
  alertId: string;
  /** Wall-clock UTC ms of the press (the snapshot's createdAt): the order alerts are sent in. */
  createdAt: number;
  /** When the outbox committed it (held or queued). */
  enqueuedAt: number;
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
  /** Why it is (or was last) held; kept after release and cancel for the audit trail. null: never held. */
  heldFor: HoldReason | null;
  /** Why it was cancelled; null unless `cancelled`. */
  cancelReason: CancelReason | null;
}

/** A record whose alert is final: it has a location and may be sent. Only these reach a route. */
export interface SendableRecord extends RecordFields {
  state: SendableState;
  alert: AlertSnapshot;
}

/** A record never to be sent as it stands: held (maybe without a location yet) or cancelled. */
export interface HeldRecord extends RecordFields {
  state: HeldState;
  alert: AlertDraft;
}

export type OutboxRecord = SendableRecord | HeldRecord;

export function isHeldRecord(r: OutboxRecord): r is HeldRecord {
  return r.state === 'held' || r.state === 'cancelled';
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

/** A held alert: the same, but its location may still be missing. */
export const alertDraftSchema = alertSnapshotSchema.extend({ location: locationSchema.nullable() });

export function parseSnapshot(json: string): AlertSnapshot {
  return alertSnapshotSchema.parse(JSON.parse(json)) as AlertSnapshot;
}

export function parseDraft(json: string): AlertDraft {
  return alertDraftSchema.parse(JSON.parse(json)) as AlertDraft;
}
