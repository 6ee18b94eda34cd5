/**
 * What the engine tells an observer as tasks move, for metrics: called
 * synchronously inside the engine call that made the move, with the times
 * the engine already holds (its injected clock), so an observer reads no
 * clock and looks nothing up. An observer must be cheap (it runs on the
 * dispatch path: increment a counter, observe a histogram) and must not
 * throw or call back into the engine.
 *
 * Durations are in the clock's unit (milliseconds with the default clock).
 * Nothing here is journaled or restored: a restored engine starts observing
 * afresh, and a lease granted before the restore has no known start.
 */
export interface SchedulerObserver {
  /** `count` tasks were added by one call (a batch). */
  added(count: number): void;
  /**
   * A task was leased. `waitMs`: how long it had been RUNNABLE (runnable →
   * leased). `unblocked`: it became runnable when its last prerequisite ended
   * (so `waitMs` is the dispatch latency of an unblocked dependent), rather
   * than on submit, after a retry backoff or a lease expiry. `late`: leased
   * at or after its deadline.
   */
  leased(waitMs: number, unblocked: boolean, late: boolean): void;
  /**
   * A leased task completed. `runMs`: since the lease that completed it was
   * granted (undefined when it was granted before the engine was restored).
   * `late`: completed after its deadline.
   */
  completed(runMs: number | undefined, late: boolean): void;
  /** A failed attempt will be retried: the task waits for its backoff. */
  retried(): void;
  /** A lease ran out without a complete or fail (the task runs again, or fails on its last attempt). */
  leaseExpired(): void;
  /**
   * A lease was handed back by its holder (`release`): the task is runnable
   * again (or EXPIRED, its hard deadline past) and the attempt not spent.
   */
  released(): void;
  /**
   * A leased attempt reached its run time limit (the task's timeoutMs),
   * heartbeats or not: it is retried after a backoff (`retried` follows) or,
   * on its last attempt, FAILED. Not a `leaseExpired`.
   */
  attemptTimedOut(): void;
  /**
   * A task ended badly: FAILED (attempts used up, not retryable, or its last
   * lease expired), CANCELLED (asked, or a prerequisite ended badly) or
   * EXPIRED (its hard deadline passed while it was runnable). Cascades
   * report every task they end.
   */
  ended(state: "FAILED" | "CANCELLED" | "EXPIRED"): void;
  /** A heartbeat, complete, fail or release was refused: its token no longer holds the task. */
  staleRejected(): void;
  /** A complete, fail or release repeated with the token that already settled the task; nothing changed. */
  duplicate(op: "complete" | "fail" | "release"): void;
  /**
   * Optional, for logs: the notable moves of one task, with its id — an
   * attempt that failed and will be retried, a lease that ran out or was
   * released by its holder, an attempt
   * that timed out, a task that ended badly, one leased or completed after
   * its deadline. Never the payload. Leave it out (metrics do) and the engine
   * builds no event at all.
   */
  taskEvent?(event: TaskEvent): void;
}

/** What `taskEvent` tells: which task, what happened, and the engine's words for why. */
export interface TaskEvent {
  readonly kind:
    | "retrying"
    | "leaseExpired"
    | "released"
    | "timedOut"
    | "ended"
    | "leasedLate"
    | "completedLate";
  readonly taskId: string;
  readonly workflowId: string | undefined;
  /** The attempt it was on. */
  readonly attempt: number;
  /** `ended`: FAILED, CANCELLED or EXPIRED. */
  readonly state?: "FAILED" | "CANCELLED" | "EXPIRED";
  /** The task's reason, as `getTask` shows it. */
  readonly reason?: string;
}
