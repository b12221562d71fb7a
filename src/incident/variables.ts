import type { AlertSnapshot } from './types.ts';

/**
 * Maps what the device knows to a callflow's `variables`. Callflows define their own variable names
 * (API-NOTES.md), so each callflow may have a template in the config: any JSON value whose strings may hold
 * `{{name}}` placeholders. A string that is exactly one placeholder becomes that value (and the key is left
 * out when the value is unknown, e.g. a vehicle with no color); `{{name|number}}` keeps a number a number.
 * The default template is the seed's sample, exactly: numbers as strings, coordinates with 6 decimals.
 */
export type Template = unknown;

export const DEFAULT_TEMPLATE = {
  caller_info: { full_name: '{{caller.full_name}}', phone_number: '{{caller.phone_number}}' },
  location: { latitude: '{{location.latitude}}', longitude: '{{location.longitude}}', uncertainty: '{{location.uncertainty}}' },
  vehicle_info: {
    make: '{{vehicle.make}}',
    model: '{{vehicle.model}}',
    color: '{{vehicle.color}}',
    license_plate: '{{vehicle.license_plate}}',
    license_plate_state: '{{vehicle.license_plate_state}}',
  },
} as const;

type Value = string | number | boolean | undefined;

/** Every name a template may use, with how it is computed from the alert. */
const NAMES: Record<string, (a: AlertSnapshot) => Value> = {
  'caller.full_name': (a) => a.caller.full_name,
  'caller.phone_number': (a) => a.caller.phone_number,
  'caller.phone_e164': (a) => `+1${a.caller.phone_number}`,
  'location.latitude': (a) => a.location.latitude.toFixed(6),
  'location.longitude': (a) => a.location.longitude.toFixed(6),
  // Rounded up: an honest radius never shrinks in formatting.
  'location.uncertainty': (a) => String(Math.ceil(a.location.uncertainty_m)),
  'location.altitude': (a) => (a.location.altitude_m === undefined ? undefined : a.location.altitude_m.toFixed(1)),
  'location.fix_time': (a) => Math.floor(a.location.fix_time / 1000),
  'location.fix_time_iso': (a) => new Date(a.location.fix_time).toISOString(),
  'location.age_s': (a) => Math.round(a.location.age_ms / 1000),
  'location.stale': (a) => a.location.stale,
  'location.source': (a) => a.location.source,
  'vehicle.make': (a) => a.vehicle.make,
  'vehicle.model': (a) => a.vehicle.model,
  'vehicle.color': (a) => a.vehicle.color,
  'vehicle.license_plate': (a) => a.vehicle.license_plate,
  'vehicle.license_plate_state': (a) => a.vehicle.license_plate_state,
  'vehicle.year': (a) => a.vehicle.year,
  'vehicle.vin': (a) => a.vehicle.vin,
  'device.id': (a) => a.deviceId,
  'alert.id': (a) => a.alertId,
  'alert.created_at': (a) => Math.floor(a.createdAt / 1000),
  'alert.created_at_iso': (a) => new Date(a.createdAt).toISOString(),
  'alert.test': (a) => a.test,
  'alert.gesture': (a) => a.initiation.gesture,
};

export const TEMPLATE_NAMES = Object.keys(NAMES);

const PLACEHOLDER = /\{\{\s*([a-z0-9_.]+)(\|number)?\s*\}\}/g;
const WHOLE = /^\{\{\s*([a-z0-9_.]+)(\|number)?\s*\}\}$/;

export interface TemplateIssue {
  path: (string | number)[];
  message: string;
}

/** Lists every placeholder that names nothing, with its path in the template. */
export function templateIssues(template: Template, path: (string | number)[] = []): TemplateIssue[] {
  if (typeof template === 'string') {
    const issues: TemplateIssue[] = [];
    for (const m of template.matchAll(PLACEHOLDER)) {
      if (!(m[1]! in NAMES)) issues.push({ path, message: `unknown placeholder {{${m[1]}}}; known: ${TEMPLATE_NAMES.join(', ')}` });
    }
    return issues;
  }
  if (Array.isArray(template)) return template.flatMap((v, i) => templateIssues(v, [...path, i]));
  if (template !== null && typeof template === 'object') {
    return Object.entries(template).flatMap(([k, v]) => templateIssues(v, [...path, k]));
  }
  return [];
}

/** Renders a template for one alert. Keys whose whole-placeholder value is unknown are omitted. */
export function renderVariables(template: Template, alert: AlertSnapshot): unknown {
  return render(template, alert);
}

function render(t: Template, alert: AlertSnapshot): unknown {
  if (typeof t === 'string') {
    const whole = WHOLE.exec(t);
    if (whole) {
      const v = NAMES[whole[1]!]?.(alert);
      if (v === undefined) return undefined;
      return whole[2] ? Number(v) : v;
    }
    return t.replace(PLACEHOLDER, (_, name: string) => String(NAMES[name]?.(alert) ?? ''));
  }
  if (Array.isArray(t)) return t.map((v) => render(v, alert)).filter((v) => v !== undefined);
  if (t !== null && typeof t === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(t)) {
      const r = render(v, alert);
      if (r !== undefined) out[k] = r;
    }
    // A section with nothing known in it (no vehicle configured) is left out rather than sent empty.
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return t;
}

export function variablesFor(alert: AlertSnapshot, templates: Record<string, { variables: Template }>): Record<string, unknown> {
  const template = templates[alert.callflow]?.variables ?? DEFAULT_TEMPLATE;
  return (renderVariables(template, alert) as Record<string, unknown> | undefined) ?? {};
}
