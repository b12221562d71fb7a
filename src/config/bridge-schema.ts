import { z } from 'zod';
import { apiSchema } from './agent-schema.ts';
import { brokerUrl } from './api-base-url.ts';
import { templateIssues } from '../incident/variables.ts';

/**
 * The bridge's configuration (`sos-agent bridge --config FILE`): the single source of truth for its types,
 * defaults, JSON Schema (`sos-agent config schema bridge`) and config/bridge.example.yaml. Unknown keys are errors.
 */

const nonEmpty = z.string().trim().min(1);
const port = z.number().int().min(0).max(65535);

export const bridgeBrokerSchema = z.strictObject({
  url: brokerUrl
    .nullable()
    .default(null)
    .describe('mqtts:// or wss:// URL of the broker (plain mqtt:// or ws:// only on loopback); null = start an embedded broker (aedes) on host:port'),
  host: nonEmpty.default('127.0.0.1').describe('Embedded broker only: address to listen on'),
  port: port.default(1883).describe('Embedded broker only: port to listen on (0 = any free port)'),
  username: nonEmpty.optional(),
  password: nonEmpty.optional().describe('Better from the environment variable SOS_BRIDGE_MQTT_PASSWORD'),
  client_id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,128}$/)
    .optional()
    .describe('MQTT client id; must differ between bridges sharing a broker. Default: sos-bridge-<hostname>'),
  share_group: nonEmpty
    .nullable()
    .default('bridges')
    .describe('Shared subscription group ($share/<group>/...) so several bridges split the alerts; null = plain subscription'),
  ca_file: nonEmpty.nullable().default(null),
  cert_file: nonEmpty.nullable().default(null),
  key_file: nonEmpty.nullable().default(null),
  keepalive_s: z.number().int().positive().default(30),
});

export const bridgeApiSchema = apiSchema.extend({
  client_id: nonEmpty.describe('OAuth client id of the application'),
  client_secret: nonEmpty.describe('OAuth client secret; better from the environment variable SOS_API_CLIENT_SECRET'),
  retry: z
    .strictObject({
      base_ms: z.number().int().positive().default(500),
      cap_ms: z.number().int().positive().default(15_000),
      give_up_s: z
        .number()
        .positive()
        .default(120)
        .describe('Keep retrying transient API failures this long, then answer `failed` (the device retries later)'),
    })
    .prefault({}),
  max_in_flight: z.number().int().positive().default(256).describe('Concurrent trigger requests; more wait their turn'),
});

export const bridgeConfigSchema = z.strictObject({
  broker: bridgeBrokerSchema.prefault({}),
  api: bridgeApiSchema,
  callflow: z
    .strictObject({
      name: nonEmpty.default('company_dataconnect_v1').describe('Callflow when neither the device registry nor the alert names one'),
      test_name: nonEmpty.nullable().default(null).describe('Callflow for test alerts; test alerts are rejected when no test callflow is known'),
    })
    .prefault({}),
  // Checked here rather than on the whole object, so its issues are listed with every other wrong field.
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
  devices: z.strictObject({
    file: nonEmpty.describe('YAML map of device id → { callflow, test_callflow, caller, vehicle } (all optional); only listed devices are served'),
  }),
  dedupe: z
    .strictObject({
      path: nonEmpty.default('/var/lib/sos-agent/bridge.db'),
      lease_s: z
        .number()
        .positive()
        .default(15)
        .describe('A bridge not heard from this long is dead: alerts it held in flight are taken over'),
      retention_days: z.number().positive().default(30),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: nonEmpty.default('127.0.0.1'),
      port: port.nullable().default(9464).describe('GET /healthz and /metrics; null = no HTTP server, 0 = any free port'),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
});

export type BridgeConfigInput = z.input<typeof bridgeConfigSchema>;
export type BridgeConfig = z.output<typeof bridgeConfigSchema>;

/** Secrets the bridge may take from the environment instead of its file. */
export const BRIDGE_ENV_SECRETS: Record<string, string[]> = {
  SOS_API_CLIENT_SECRET: ['api', 'client_secret'],
  SOS_BRIDGE_MQTT_PASSWORD: ['broker', 'password'],
};
