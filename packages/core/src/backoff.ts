/** Retry backoff: exponential in the attempt number, capped, with jitter. */
export interface BackoffPolicy {
  /** Delay after the first failed attempt. */
  readonly baseMs: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
  /**
   * Fraction of the delay that is randomized, in [0, 1]: the delay is drawn
   * uniformly from [d·(1 − jitter), d]. Spreads retries of tasks that failed
   * together (a shared dependency went down) so they do not return in a herd.
   */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 5 * 60_000, jitter: 0.2 };

/** Delay before attempt `failedAttempts + 1`; `random` returns [0, 1). */
export function backoffDelay(policy: BackoffPolicy, failedAttempts: number, random: () => number): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 52);
  const delay = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(delay * (1 - policy.jitter * random()));
}
