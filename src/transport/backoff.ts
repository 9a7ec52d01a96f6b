/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random), so peers that lost
 * each other at the same moment do not redial in lockstep, and a long outage costs one attempt per
 * `maxMs` at most. Pure: the random source is injected.
 */
export interface BackoffPolicy {
  /** First delay. @default 200 */
  readonly baseMs: number
  /** Largest delay. @default 5000 */
  readonly maxMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 5000 }

/** The delay before attempt number `attempt` (0 for the first retry), in [d/2, d) with d = min(max, base * 2^attempt). */
export function backoffDelay(attempt: number, rand: () => number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30))
  return ceiling / 2 + (ceiling / 2) * rand()
}
