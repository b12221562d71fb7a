import { z } from 'zod';
import { callerSchema, deviceSchema, vehicleSchema } from '../config/agent-schema.ts';
import { UUIDV7_RE } from '../shared/uuidv7.ts';
import type { AlertSnapshot } from '../incident/types.ts';

/**
 * The relay's wire: every topic and payload that device and bridge exchange, defined once for both sides.
 * A breaking change gets a new topic version (`sos/v2/...`); within v1, fields are only ever added (optional),
 * so payloads are parsed leniently (unknown keys stripped) and a newer device still talks to an older bridge.
 *
 *   sos/v1/{deviceId}/alert     device → bridge, QoS 1           AlertMessage
 *   sos/v1/{deviceId}/status    bridge → device, QoS 1           StatusMessage
 *   sos/v1/{deviceId}/presence  device, retained, Last Will      PresenceMessage
 */
export const WIRE_VERSION = 'v1';
export const TOPIC_ROOT = `sos/${WIRE_VERSION}`;

/** Largest payload either side accepts. A real alert is well under 2 KiB; this bounds a hostile one. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;

export const TOPIC_KINDS = ['alert', 'status', 'presence'] as const;
export type TopicKind = (typeof TOPIC_KINDS)[number];

export const deviceIdSchema = deviceSchema.shape.id;

export function alertTopic(deviceId: string): string {
  return `${TOPIC_ROOT}/${deviceId}/alert`;
}

export function statusTopic(deviceId: string): string {
  return `${TOPIC_ROOT}/${deviceId}/status`;
}

export function presenceTopic(deviceId: string): string {
  return `${TOPIC_ROOT}/${deviceId}/presence`;
}

/** What the bridge subscribes to: every device's alerts. */
export const ALL_ALERTS = `${TOPIC_ROOT}/+/alert`;
export const ALL_PRESENCE = `${TOPIC_ROOT}/+/presence`;

/** `$share/{group}/...` spreads alerts over several bridges; null for a broker without shared subscriptions. */
export function alertSubscription(shareGroup: string | null): string {
  return shareGroup === null ? ALL_ALERTS : `$share/${shareGroup}/${ALL_ALERTS}`;
}

const TOPIC_RE = /^sos\/v1\/([A-Za-z0-9_-]{1,64})\/(alert|status|presence)$/;

export function parseTopic(topic: string): { deviceId: string; kind: TopicKind } | null {
  const m = TOPIC_RE.exec(topic);
  return m ? { deviceId: m[1]!, kind: m[2] as TopicKind } : null;
}

// --- alert: device → bridge -------------------------------------------------------------------------------

const alertIdSchema = z.string().regex(UUIDV7_RE, 'expected a lowercase UUIDv7');
const epochMs = z.number().int().min(0);

const initiationSchema = z.object({
  gesture: z.enum(['hold', 'multi_press', 'test_hold', 'command']),
  source: z.string().min(1).max(64),
  press_times: z.array(z.number()).max(32),
  hold_ms: z.number().min(0),
  confirmed_at: epochMs,
  test: z.boolean(),
});

const locationSchema = z.object({
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  uncertainty_m: z.number().positive(),
  fix_time: epochMs,
  age_ms: z.number().min(0),
  stale: z.boolean(),
  source: z.string().min(1).max(32),
  altitude_m: z.number().optional(),
  speed_mps: z.number().optional(),
  heading_deg: z.number().optional(),
});

export const alertMessageSchema = z
  .object({
    alertId: alertIdSchema,
    deviceId: deviceIdSchema,
    createdAt: epochMs,
    initiation: initiationSchema,
    test: z.boolean(),
    // Optional on the wire: the bridge's device registry may hold the caller and vehicle instead.
    caller: callerSchema.optional(),
    vehicle: vehicleSchema.optional(),
    location: locationSchema,
    callflow: z.string().trim().min(1).max(128).optional(),
  })
  .refine((a) => a.test === a.initiation.test, { message: 'test must equal initiation.test', path: ['test'] });
export type AlertMessage = z.output<typeof alertMessageSchema>;

/** The alert as the device sends it. alertId first, so a bridge can name an oversized alert without parsing it. */
export function toAlertMessage(alert: AlertSnapshot): AlertMessage {
  return {
    alertId: alert.alertId,
    deviceId: alert.deviceId,
    createdAt: alert.createdAt,
    initiation: alert.initiation,
    test: alert.test,
    caller: alert.caller,
    vehicle: alert.vehicle,
    location: alert.location,
    callflow: alert.callflow,
  };
}

// --- status: bridge → device ------------------------------------------------------------------------------

export const STATUS_STATES = ['accepted', 'triggered', 'rejected', 'failed'] as const;
export type StatusState = (typeof STATUS_STATES)[number];

/**
 * Why an alert was rejected (permanent: the device stops trying this way) or failed (the device retries).
 * Stable codes: devices and dashboards switch on them.
 */
export const REJECT_REASONS = [
  'too_large',
  'invalid_payload',
  'device_mismatch',
  'unknown_device',
  'no_caller',
  'no_test_callflow',
  'api_rejected',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export const FAIL_REASONS = ['api_unavailable', 'api_credentials', 'bridge_stopping', 'bridge_storage'] as const;
export type FailReason = (typeof FAIL_REASONS)[number];

export const statusMessageSchema = z.object({
  alertId: alertIdSchema,
  state: z.enum(STATUS_STATES),
  /** The API's execution id (triggered). */
  apiId: z.string().max(256).optional(),
  message: z.string().max(1024).optional(),
  /** A RejectReason or FailReason; a string so a newer bridge's reason still parses. */
  reason: z.string().max(64).optional(),
  at: epochMs,
});
export type StatusMessage = z.output<typeof statusMessageSchema>;

// --- presence: device, retained -------------------------------------------------------------------------

export const healthSummarySchema = z.object({
  /** Age of the latest fix, seconds; null with no fix. */
  fixAgeS: z.number().min(0).nullable(),
  /** Alerts waiting in the outbox. */
  outboxDepth: z.number().int().min(0).nullable(),
  /** Last time the device heard from the bridge or the API (UTC ms). */
  lastContactAt: epochMs.nullable(),
  version: z.string().max(32),
  /** Whether a press would get through right now (the device's supervisor), and the checks failing if not. */
  status: z.enum(['healthy', 'degraded']).optional(),
  failing: z.array(z.string().max(64)).max(16).optional(),
});
export type HealthSummary = z.output<typeof healthSummarySchema>;

export const presenceMessageSchema = z.object({
  state: z.enum(['online', 'offline']),
  at: epochMs,
  health: healthSummarySchema.optional(),
});
export type PresenceMessage = z.output<typeof presenceMessageSchema>;

// --- encoding and decoding ------------------------------------------------------------------------------

export function encode(message: AlertMessage | StatusMessage | PresenceMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

export type Decoded<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      reason: 'too_large' | 'invalid_payload';
      /** The alert's id when it could be read, so the sender can be told which alert was refused. */
      alertId: string | undefined;
      /** Safe to log: sizes and field paths, never the payload itself. */
      detail: string;
    };

// alertId is the first key our encoder writes; a hostile payload that hides it elsewhere just gets no answer.
const LEADING_ALERT_ID = /^\s*\{\s*"alertId"\s*:\s*"([0-9a-f-]{36})"/;

function decodeWith<T>(schema: z.ZodType<T>, payload: Buffer): Decoded<T> {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    const head = LEADING_ALERT_ID.exec(payload.subarray(0, 256).toString('utf8'));
    const alertId = head && UUIDV7_RE.test(head[1]!) ? head[1] : undefined;
    return { ok: false, reason: 'too_large', alertId, detail: `${payload.length} bytes > ${MAX_PAYLOAD_BYTES}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'invalid_payload', alertId: undefined, detail: 'not JSON' };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const candidate = json !== null && typeof json === 'object' ? (json as { alertId?: unknown }).alertId : undefined;
  const alertId = typeof candidate === 'string' && UUIDV7_RE.test(candidate) ? candidate : undefined;
  const detail = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return { ok: false, reason: 'invalid_payload', alertId, detail };
}

export function decodeAlert(payload: Buffer): Decoded<AlertMessage> {
  return decodeWith(alertMessageSchema, payload);
}

export function decodeStatus(payload: Buffer): Decoded<StatusMessage> {
  return decodeWith(statusMessageSchema, payload);
}

export function decodePresence(payload: Buffer): Decoded<PresenceMessage> {
  return decodeWith(presenceMessageSchema, payload);
}
