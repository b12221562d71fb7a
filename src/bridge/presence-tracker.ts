import { decodePresence, parseTopic } from '../relay/wire.ts';

/**
 * Which devices say they are online, from their retained presence messages (and Last Wills). Only devices
 * the bridge serves are tracked, so a flood of made-up ids cannot grow the map.
 */
export class PresenceTracker {
  readonly #online = new Set<string>();
  readonly #known: (deviceId: string) => boolean;
  #invalid = 0;

  constructor(isKnown: (deviceId: string) => boolean) {
    this.#known = isKnown;
  }

  handle(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t || t.kind !== 'presence' || !this.#known(t.deviceId)) return;
    // An empty retained message clears the topic: the device is gone, not online.
    if (payload.length === 0) {
      this.#online.delete(t.deviceId);
      return;
    }
    const decoded = decodePresence(payload);
    if (!decoded.ok) {
      this.#invalid++;
      return;
    }
    if (decoded.value.state === 'online') this.#online.add(t.deviceId);
    else this.#online.delete(t.deviceId);
  }

  get online(): number {
    return this.#online.size;
  }

  get invalid(): number {
    return this.#invalid;
  }
}
