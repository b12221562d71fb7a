import { z } from 'zod';
import { BadInputError } from '../shared/errors.ts';
import { describeIssues } from './zod-issues.ts';

export type FaultTarget = 'trigger' | 'token';

export interface FaultSpec {
  target: FaultTarget;
  /** How many of the next requests to the target get this fault (default 1). */
  times?: number;
  /** HTTP status of the failure. Absent with `delayMs` and no `drop`: a slow but normal answer. */
  status?: number;
  /** The body's `code` (default -1, "server error"). */
  code?: number;
  /** Wait this long before answering (or dropping). */
  delayMs?: number;
  /** Close the connection without answering; a dropped trigger is not accepted. */
  drop?: boolean;
  /** Seconds, sent as a Retry-After header with the failure. */
  retryAfter?: number;
}

/** Status of a fault that names none of status, delayMs and drop: the usual "service unavailable". */
export const DEFAULT_FAULT_STATUS = 503;

export const faultSpecSchema = z.strictObject({
  target: z.enum(['trigger', 'token']),
  times: z.int().min(1).max(1_000_000).default(1),
  status: z.int().min(200).max(599).optional(),
  code: z.int().default(-1),
  delayMs: z.int().min(0).max(600_000).optional(),
  drop: z.boolean().default(false),
  retryAfter: z.int().min(0).max(86_400).optional(),
});

// The wire schema and the interface others code against must not drift apart.
const _specMatchesSchema: z.input<typeof faultSpecSchema> extends FaultSpec ? (FaultSpec extends z.input<typeof faultSpecSchema> ? true : never) : never = true;
void _specMatchesSchema;

/** What one faulted request gets. `status` undefined means: answer normally (after the delay). */
export interface FaultAction {
  status: number | undefined;
  code: number;
  delayMs: number;
  drop: boolean;
  retryAfter: number | undefined;
}

interface QueuedFault {
  action: FaultAction;
  remaining: number;
}

export function parseFaultSpec(input: unknown): { target: FaultTarget; times: number; action: FaultAction } {
  const parsed = faultSpecSchema.safeParse(input);
  if (!parsed.success) throw new BadInputError(`invalid fault: ${describeIssues(parsed.error)}`);
  const f = parsed.data;
  const status = f.status ?? (f.delayMs === undefined && !f.drop ? DEFAULT_FAULT_STATUS : undefined);
  return {
    target: f.target,
    times: f.times,
    action: { status, code: f.code, delayMs: f.delayMs ?? 0, drop: f.drop, retryAfter: f.retryAfter },
  };
}

/** Faults per endpoint, served in the order they were added, each for its number of requests. */
export class FaultQueue {
  readonly #queues: Record<FaultTarget, QueuedFault[]> = { trigger: [], token: [] };

  /** Validates like the HTTP endpoint does; throws BadInputError naming the wrong field. */
  add(input: unknown): void {
    const { target, action, times } = parseFaultSpec(input);
    this.#queues[target].push({ action, remaining: times });
  }

  /** The fault the next request to `target` gets, if any; consumes one of its `times`. */
  take(target: FaultTarget): FaultAction | undefined {
    const queue = this.#queues[target];
    const head = queue[0];
    if (head === undefined) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) queue.shift();
    return head.action;
  }

  pending(): { target: FaultTarget; remaining: number; action: FaultAction }[] {
    return (['token', 'trigger'] as const).flatMap((target) => this.#queues[target].map((q) => ({ target, remaining: q.remaining, action: q.action })));
  }

  clear(): void {
    this.#queues.trigger = [];
    this.#queues.token = [];
  }
}
