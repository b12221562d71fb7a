import { z } from 'zod';
import { callerSchema, vehicleSchema } from '../config/agent-schema.ts';
import { parseConfig, readConfigFile } from '../config/load.ts';
import { deviceIdSchema } from '../relay/wire.ts';
import type { Caller, Vehicle } from '../incident/types.ts';

/**
 * The devices a bridge serves, from a YAML file: device id → what the bridge adds to its alerts.
 *
 *   truck-042:
 *     callflow: company_dataconnect_v1      # overrides what the device asks for
 *     test_callflow: company_test_v1
 *     caller: { full_name: Joe User, phone_number: "6615555555" }   # used when the alert has none
 *     vehicle: { make: Ford, model: Fiesta }                        # fields the alert lacks
 *   truck-043: {}                           # served, nothing added
 */
const entrySchema = z.strictObject({
  callflow: z.string().trim().min(1).optional(),
  test_callflow: z.string().trim().min(1).optional(),
  caller: callerSchema.optional(),
  vehicle: vehicleSchema.optional(),
});

export const deviceRegistrySchema = z.record(deviceIdSchema, entrySchema.nullable().transform((e) => e ?? {}));

export interface DeviceEntry {
  callflow?: string | undefined;
  test_callflow?: string | undefined;
  caller?: Caller | undefined;
  vehicle?: Vehicle | undefined;
}

export class DeviceRegistry {
  readonly #devices: Map<string, DeviceEntry>;

  constructor(devices: Record<string, DeviceEntry>) {
    this.#devices = new Map(Object.entries(devices));
  }

  /** Reads and validates the file; a bad file is a ConfigError naming every wrong entry. */
  static async load(file: string): Promise<DeviceRegistry> {
    const raw = await readConfigFile(file);
    return new DeviceRegistry(parseConfig(deviceRegistrySchema, raw ?? {}, file));
  }

  get(deviceId: string): DeviceEntry | undefined {
    return this.#devices.get(deviceId);
  }

  get size(): number {
    return this.#devices.size;
  }
}
