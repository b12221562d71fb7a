import { z } from 'zod';

/** The seed's minimum for every call: the caller's name and phone, and a location with its uncertainty radius. */
export const SEED_REQUIRED_PATHS: readonly string[] = [
  'caller_info.full_name',
  'caller_info.phone_number',
  'location.latitude',
  'location.longitude',
  'location.uncertainty',
];

export const DEFAULT_CALLFLOWS: Readonly<Record<string, readonly string[]>> = {
  company_dataconnect_v1: SEED_REQUIRED_PATHS,
  company_test_v1: SEED_REQUIRED_PATHS,
};

export const triggerBodySchema = z.object({
  callflow: z.string().min(1, 'expected the name of a callflow'),
  variables: z.record(z.string(), z.unknown(), 'expected a JSON object'),
});
export type TriggerBody = z.infer<typeof triggerBodySchema>;

/**
 * A value counts as given when it is a number or a string with something other than blanks in it: a blank
 * name or phone number is as useless to a 9-1-1 operator as a missing one.
 */
function isPresent(value: unknown): boolean {
  return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value.trim() !== '');
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Callflows by name, each with the dotted variable paths it cannot run without. */
export class CallflowRegistry {
  readonly #required = new Map<string, string[][]>();

  constructor(callflows: Readonly<Record<string, readonly string[]>>) {
    for (const [name, paths] of Object.entries(callflows)) {
      this.#required.set(name, paths.map((p) => p.split('.')));
    }
  }

  has(name: string): boolean {
    return this.#required.has(name);
  }

  names(): string[] {
    return [...this.#required.keys()];
  }

  /** Dotted paths the callflow requires that `variables` lacks; undefined when the callflow is unknown. */
  missing(name: string, variables: unknown): string[] | undefined {
    const required = this.#required.get(name);
    if (required === undefined) return undefined;
    return required.filter((path) => !isPresent(valueAt(variables, path))).map((path) => path.join('.'));
  }
}
