import type { EmergencyApiClient } from '../api/client.ts';
import type { AlertRoute, AlertSnapshot, TriggerResult } from './types.ts';
import { variablesFor, type Template } from './variables.ts';

/** The direct path: this device holds the API credentials and triggers the callflow itself. */
export class DirectRoute implements AlertRoute {
  readonly name = 'direct';
  readonly #client: Pick<EmergencyApiClient, 'trigger'>;
  readonly #templates: Record<string, { variables: Template }>;

  /** `templates`: the config's `callflows` (per-callflow variables templates; the seed's shape by default). */
  constructor(client: Pick<EmergencyApiClient, 'trigger'>, templates: Record<string, { variables: Template }>) {
    this.#client = client;
    this.#templates = templates;
  }

  send(alert: AlertSnapshot, signal?: AbortSignal): Promise<TriggerResult> {
    return this.#client.trigger(alert.callflow, variablesFor(alert, this.#templates), { signal });
  }
}
