/**
 * Histogram bucket bounds, in seconds, shared by every process so that the
 * same kind of duration can be compared (and summed) across processes.
 */

/** Request and commit latencies: sub-millisecond up to a full long-poll. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * A task's times (queue wait, run time, dispatch of unblocked dependents,
 * handler duration): a millisecond up to six hours, since a task may wait
 * for a busy cluster or run a long job.
 */
export const TASK_TIME_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600,
];
