import type { LocationSnapshot } from '../gps/types.ts';
import { isHumanInitiation, type Initiation } from '../press/initiation.ts';
import { ErrorCodes, SosError } from '../shared/errors.ts';
import { uuidv7 } from '../shared/uuidv7.ts';
import type { AlertDraft, AlertSnapshot, Caller, Vehicle } from './types.ts';

export interface AlertContext {
  deviceId: string;
  caller: Caller;
  vehicle: Vehicle;
  callflow: { name: string; test_name: string | null };
}

/**
 * The only way to make an alert: from a human initiation (invariant 1) and a location snapshot.
 * The alertId is a UUIDv7 of the moment the press was confirmed, kept through every retry (invariant 3).
 * Without a location yet (no fix, no fallback) it is a draft: committed and held, sent once `completeAlert`
 * gives it one.
 */
export function createAlert(initiation: Initiation, location: LocationSnapshot, ctx: AlertContext): AlertSnapshot;
export function createAlert(initiation: Initiation, location: LocationSnapshot | null, ctx: AlertContext): AlertDraft;
export function createAlert(initiation: Initiation, location: LocationSnapshot | null, ctx: AlertContext): AlertDraft {
  if (!isHumanInitiation(initiation)) {
    throw new SosError(ErrorCodes.NOT_HUMAN_INITIATED, 'refusing to create an alert that no person started (invariant 1)');
  }
  const callflow = initiation.test ? ctx.callflow.test_name : ctx.callflow.name;
  if (callflow === null) {
    throw new SosError(ErrorCodes.CONFIG_INVALID, 'a test alert needs callflow.test_name in the configuration; none is set');
  }
  return {
    alertId: uuidv7(initiation.confirmed_at),
    deviceId: ctx.deviceId,
    createdAt: initiation.confirmed_at,
    initiation: { ...initiation, press_times: [...initiation.press_times] },
    test: initiation.test,
    caller: { ...ctx.caller },
    vehicle: { ...ctx.vehicle },
    location: location === null ? null : { ...location },
    callflow,
  };
}

/** The held alert as it will be sent, and resent unchanged: `location` replaces the draft's when given. */
export function completeAlert(draft: AlertDraft, location?: LocationSnapshot): AlertSnapshot | null {
  const loc = location ?? draft.location;
  return loc === null ? null : { ...draft, location: { ...loc } };
}
