import { z } from 'zod';
import { phoneNumber } from './phone.ts';
import { apiBaseUrl, brokerUrl } from './api-base-url.ts';
import { templateIssues } from '../incident/variables.ts';

/**
 * The agent's configuration: the single source of truth for its types, defaults, the JSON Schema
 * (`sos-agent config schema`) and the documentation in config/agent.example.yaml. Unknown keys are errors.
 */

const nonEmpty = z.string().trim().min(1);
const latitude = z.number().min(-90).max(90);
const longitude = z.number().min(-180).max(180);
const meters = z.number().positive();

export const deviceSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-" only, 1 to 64 characters (it is an MQTT topic level)')
    .describe('Unique id of this device; the MQTT client id and topic level on the relay route.'),
});

export const callerSchema = z.strictObject({
  full_name: nonEmpty.describe('The person the 9-1-1 operator will ask for.'),
  phone_number: phoneNumber.describe('10-digit NANP number that the callflow calls back; +1 E.164 accepted.'),
});

export const vehicleSchema = z.strictObject({
  make: nonEmpty.optional(),
  model: nonEmpty.optional(),
  color: nonEmpty.optional(),
  license_plate: nonEmpty.optional(),
  license_plate_state: nonEmpty.optional(),
  year: nonEmpty.optional(),
  vin: nonEmpty.optional(),
});

export const apiSchema = z.strictObject({
  base_url: apiBaseUrl.prefault('sandbox').describe('sandbox | staging | production | an https URL | an http URL on loopback'),
  client_id: nonEmpty.optional().describe('OAuth client id of the application'),
  client_secret: nonEmpty
    .optional()
    .describe('OAuth client secret; better from the environment variable SOS_API_CLIENT_SECRET'),
  connect_timeout_ms: z.number().int().positive().default(3000).describe('TCP+TLS connect timeout; short, so a dead path fails fast'),
  response_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(15000)
    .describe('Time for the API to answer a sent request; long, because a request that timed out after sending may have started a flow'),
  token_margin_s: z.number().int().min(0).default(120).describe('Refresh the token this long before it expires'),
});

const gpsCommon = {
  max_age_s: z.number().positive().default(10).describe('A fix older than this is stale: its uncertainty grows with age'),
  fallback: z
    .strictObject({ latitude, longitude, uncertainty_m: meters })
    .nullable()
    .default(null)
    .describe('Static location used when it is better than a stale fix, or when there is no fix at all'),
};

export const gpsSchema = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('static'), latitude, longitude, uncertainty_m: meters, ...gpsCommon }),
  z.strictObject({
    source: z.literal('gpsd'),
    host: nonEmpty.default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(2947),
    ...gpsCommon,
  }),
  z.strictObject({
    source: z.literal('nmea'),
    device: nonEmpty.describe('Serial device, e.g. /dev/serial0 or /dev/ttyACM0'),
    baud: z.number().int().positive().default(9600),
    ...gpsCommon,
  }),
  z.strictObject({
    source: z.literal('replay'),
    file: nonEmpty.describe('NMEA log file to play'),
    rate: z.number().positive().default(1).describe('Playback speed: 1 = the log\'s own pace'),
    loop: z.boolean().default(true),
    ...gpsCommon,
  }),
]);

export const buttonSchema = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('terminal') }),
  z.strictObject({
    source: z.literal('evdev'),
    device: nonEmpty.describe('Input event device, e.g. /dev/input/by-path/platform-button@11-event'),
    key_code: z.number().int().min(0).max(767).default(639).describe('Linux key code the gpio-key overlay sends: 639 = KEY_SOS, which nothing else acts on (not KEY_POWER=116: systemd-logind powers the device off)'),
    layout: z.enum(['auto', '64', '32']).default('auto').describe('struct input_event size: 24 bytes (64-bit) or 16 (32-bit); auto = the word size Node runs as, which is what the kernel hands it'),
  }),
  z.strictObject({
    source: z.literal('gpiomon'),
    chip: nonEmpty.default('gpiochip0'),
    line: z.number().int().min(0).describe('GPIO line offset on the chip (BCM number on a Raspberry Pi)'),
    active_low: z.boolean().default(true).describe('True when the button pulls the line to ground'),
    bias: z
      .enum(['auto', 'pull-up', 'pull-down', 'disabled', 'as-is'])
      .default('auto')
      .describe('Line bias gpiomon requests; auto = pull-up when active_low, else pull-down (a floating line chatters)'),
    command: nonEmpty.default('gpiomon'),
  }),
]);

export const pressSchema = z.strictObject({
  hold_ms: z.number().int().min(200).max(30000).default(2000).describe('Hold this long to confirm an alert (fires while still held)'),
  multi_press: z
    .strictObject({
      count: z.number().int().min(2).max(10).default(3),
      window_ms: z.number().int().min(300).max(10000).default(2000),
    })
    .nullable()
    .default(null)
    .describe('Alternative gesture: N short presses within a window; null disables it'),
  test_hold_ms: z.number().int().min(1000).default(10000).describe('Keep holding this long to turn the alert into a test alert (test callflow); only when callflow.test_name is set'),
  cancel_window_s: z.number().min(0).max(60).default(5).describe('Seconds to cancel with one more press; 0 sends at once'),
  debounce_ms: z.number().int().min(0).max(500).default(30),
  incident_active_s: z
    .number()
    .min(0)
    .default(900)
    .describe('After the API confirms, presses for this long are recorded against the same incident, not a new call'),
}).refine((p) => p.test_hold_ms > p.hold_ms, { path: ['test_hold_ms'], message: 'must be longer than hold_ms (a test hold continues an alert hold)' });

export const feedbackSchema = z.strictObject({
  leds_root: nonEmpty.default('/sys/class/leds'),
  led: nonEmpty.nullable().default(null).describe('LED class device name under leds_root, e.g. "sos"'),
  buzzer: nonEmpty.nullable().default(null).describe('Buzzer driven as an LED class device (gpio-led overlay)'),
  terminal: z.boolean().default(true).describe('Also show every state on stderr'),
});

export const outboxSchema = z.strictObject({
  path: nonEmpty.default('/var/lib/sos-agent/outbox.db'),
  max_backoff_s: z.number().positive().default(30),
  alert_max_age_s: z.number().positive().default(3600).describe('Older alerts are still sent, with their original time, and logged as late'),
});

export const relaySchema = z.strictObject({
  broker_url: brokerUrl.describe('mqtts:// or wss:// URL of the broker (plain mqtt:// or ws:// only on loopback)'),
  username: nonEmpty.optional(),
  password: nonEmpty.optional().describe('Better from the environment variable SOS_RELAY_PASSWORD'),
  ca_file: nonEmpty.nullable().default(null),
  cert_file: nonEmpty.nullable().default(null),
  key_file: nonEmpty.nullable().default(null),
  ack_timeout_s: z.number().positive().default(15),
  keepalive_s: z.number().int().positive().default(30),
});

export const agentConfigSchema = z
  .strictObject({
    device: deviceSchema,
    caller: callerSchema,
    vehicle: vehicleSchema.prefault({}),
    api: apiSchema.prefault({}),
    callflow: z.strictObject({
      name: nonEmpty.default('company_dataconnect_v1'),
      test_name: nonEmpty.nullable().default(null).describe('Callflow for test alerts; test alerts are refused when null'),
    }).prefault({}),
    callflows: z
      .record(z.string(), z.strictObject({ variables: z.record(z.string(), z.unknown()) }))
      .superRefine((flows, ctx) => {
        for (const [name, flow] of Object.entries(flows)) {
          for (const issue of templateIssues(flow.variables)) {
            ctx.addIssue({ code: 'custom', path: [name, 'variables', ...issue.path], message: issue.message });
          }
        }
      })
      .default({})
      .describe('Per callflow: a template of its variables with {{path}} placeholders; default = the seed sample shape'),
    gps: gpsSchema,
    button: buttonSchema.prefault({ source: 'terminal' }),
    press: pressSchema.prefault({}),
    feedback: feedbackSchema.prefault({}),
    outbox: outboxSchema.prefault({}),
    route: z.enum(['direct', 'relay', 'relay_then_direct', 'direct_then_relay']).default('direct'),
    relay: relaySchema.nullable().default(null),
    log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
  })
  .refine((cfg) => cfg.route === 'direct' || cfg.relay !== null, {
    path: ['relay'],
    message: 'this route needs a relay section with broker_url',
    // Checked even when other fields are wrong, so one run lists every problem.
    when: (payload) => {
      const v = payload.value as { route?: unknown; relay?: unknown } | undefined;
      return typeof v === 'object' && v !== null && typeof v.route === 'string' && v.route !== 'direct';
    },
  });

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;
export type GpsConfig = AgentConfig['gps'];
export type ButtonConfig = AgentConfig['button'];
export type PressConfig = AgentConfig['press'];
export type FeedbackConfig = AgentConfig['feedback'];
export type OutboxConfig = AgentConfig['outbox'];
export type ApiConfig = AgentConfig['api'];
export type RelayConfig = NonNullable<AgentConfig['relay']>;
