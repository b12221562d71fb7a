import { pino, type Logger } from 'pino';
import type { AlertRoute, AlertSnapshot, TriggerResult } from '../../../src/incident/types.ts';
import type { Clock } from '../../../src/shared/clock.ts';

export interface RouteCall {
  alertId: string;
  alert: AlertSnapshot;
  at: number;
  signal: AbortSignal | undefined;
}

/** How the fake API answers one call: `n` is the 1-based attempt number for that alert. */
export type Answer = (alert: AlertSnapshot, n: number, signal: AbortSignal | undefined) => Promise<TriggerResult> | TriggerResult;

/** An AlertRoute at the edge of the outbox's unit tests: records every call and answers by script. */
export class ScriptedRoute implements AlertRoute {
  readonly name = 'direct';
  readonly calls: RouteCall[] = [];
  answer: Answer;
  readonly #clock: Clock;

  constructor(clock: Clock, answer: Answer = (a) => ({ id: `exec-${a.alertId}`, message: 'ok' })) {
    this.#clock = clock;
    this.answer = answer;
  }

  async send(alert: AlertSnapshot, signal?: AbortSignal): Promise<TriggerResult> {
    this.calls.push({ alertId: alert.alertId, alert: structuredClone(alert), at: this.#clock.now(), signal });
    const n = this.calls.filter((c) => c.alertId === alert.alertId).length;
    return this.answer(alert, n, signal);
  }

  callsFor(alertId: string): RouteCall[] {
    return this.calls.filter((c) => c.alertId === alertId);
  }
}

/** An answer that never comes, except as an abort. */
export function hang(signal: AbortSignal | undefined): Promise<TriggerResult> {
  return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

/** A logger whose JSON lines land in `lines`, to assert what an installer would read. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}
