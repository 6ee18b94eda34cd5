/**
 * One shard's metrics (`frontier_shard_*`), in its own prom-client registry
 * with the label `shard` on every series: the registry lives in the shard's
 * thread (a ShardHost worker, or the process of `frontier shard`), and the
 * process's endpoint merges it with the others' (they stay apart by `shard`).
 *
 * Counters and histograms are fed by the shard as tasks move (ShardObserver:
 * the engine calls it with the times it already holds) and by the actor per
 * request; gauges are read at collect time from `ShardGauges` (the engine's
 * stats: O(1)), so nothing is computed between scrapes.
 *
 * Deadline misses, by `kind`:
 *   dispatch    a task leased at or after its deadline (the engine's own
 *               deadline-miss count, apart from expiries)
 *   completion  a task completed after its deadline
 *   expiry      a hard-deadline task that expired while runnable (never ran)
 * One late task can count as dispatch and completion both.
 */

import { TaskState, type TypeCounts } from "@frontier/core";
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry, TASK_TIME_BUCKETS } from "@frontier/metrics";
import type { ShardObserver, ShardStats } from "@frontier/shard";

/** What the gauges read at each scrape; undefined while the shard is not open. */
export interface ShardGauges {
  stats(): ShardStats | undefined;
  /** 1 while the actor serves, else 0. */
  serving(): number;
  slotsOwned(): number;
  inflight(): number;
  prepared(): number;
  leaseReplays(): number;
}

const STATES = Object.values(TaskState);

export class ShardMetrics implements ShardObserver {
  readonly registry = new Registry();
  private gauges: ShardGauges | undefined;
  /** The stats of the scrape in progress: read once for all the gauges, forgotten after this turn. */
  private scraped: ShardStats | undefined;

  private readonly submitted = this.counter(
    "frontier_shard_tasks_submitted_total",
    "Tasks accepted by submits and commits.",
  );
  private readonly leasedTotal = this.counter(
    "frontier_shard_tasks_leased_total",
    "Leases granted (a task leased again after a failure or an expiry counts again).",
  );
  private readonly completedTotal = this.counter("frontier_shard_tasks_completed_total", "Tasks completed.");
  private readonly failed = this.counter(
    "frontier_shard_tasks_failed_total",
    "Tasks ended FAILED: attempts used up, a failure not retryable, or the last lease expired.",
  );
  private readonly cancelled = this.counter(
    "frontier_shard_tasks_cancelled_total",
    "Tasks ended CANCELLED: asked, or a prerequisite ended badly.",
  );
  private readonly retriedTotal = this.counter(
    "frontier_shard_tasks_retried_total",
    "Failed attempts that will be retried after a backoff.",
  );
  private readonly leaseTimeouts = this.counter(
    "frontier_shard_lease_timeouts_total",
    "Leases that ran out without a complete or fail (a worker died or stalled).",
  );
  private readonly releasedTotal = this.counter(
    "frontier_shard_leases_released_total",
    "Leases handed back by their holders (release): the task runnable again, the attempt not spent.",
  );
  private readonly attemptTimeouts = this.counter(
    "frontier_shard_attempt_timeouts_total",
    "Attempts ended by their task's run time limit (timeoutMs), heartbeats or not: a hung handler.",
  );
  private readonly missed = this.counterBy(
    "frontier_shard_deadline_misses_total",
    "Deadline misses, by kind: dispatch (leased at or after the deadline), completion (completed after it), expiry (a hard deadline passed while runnable).",
    "kind",
    ["dispatch", "completion", "expiry"],
  );
  private readonly staleCalls = this.counter(
    "frontier_shard_stale_calls_total",
    "Heartbeats, completes, fails and releases refused: their token no longer holds the task (a duplicate dispatch caught).",
  );
  private readonly duplicateCalls = this.counterBy(
    "frontier_shard_duplicate_calls_total",
    "Calls repeated after they took effect, answered without changing anything, by op (complete, fail, release, submit).",
    "op",
    ["complete", "fail", "release", "submit"],
  );
  private readonly settleLeases = this.counterBy(
    "frontier_shard_settle_leases_total",
    "Next leases settles asked this shard for (asked) and it granted (granted). Granted well below asked while tasks are runnable: the other shards' tasks come first, and workers lease through coordinator rounds (see --order-window).",
    "kind",
    ["asked", "granted"],
  );
  private readonly queueWait = this.histogram(
    "frontier_shard_queue_wait_seconds",
    "Time a task was runnable before it was leased (runnable → leased).",
    TASK_TIME_BUCKETS,
  );
  private readonly runTime = this.histogram(
    "frontier_shard_run_duration_seconds",
    "Time from a lease's grant to the task's completion under it (leases granted before a restart are not timed).",
    TASK_TIME_BUCKETS,
  );
  private readonly dispatchLatency = this.histogram(
    "frontier_shard_dependent_dispatch_seconds",
    "Time from a task's last prerequisite ending to the task's lease (dispatch latency of unblocked dependents).",
    TASK_TIME_BUCKETS,
  );
  private readonly commits = this.histogram(
    "frontier_shard_commit_duration_seconds",
    "Time from an append of changes to the journal until it is durable (group commit included).",
    LATENCY_BUCKETS,
  );
  private readonly requests = this.counter(
    "frontier_shard_requests_total",
    "Requests answered, by op and code (OK or the error code).",
    ["op", "code"],
  );
  private readonly requestSeconds = new Histogram({
    name: "frontier_shard_request_duration_seconds",
    help: "Time from a request's arrival to its reply, by op (a lease includes its long-poll).",
    labelNames: ["op"],
    buckets: [...LATENCY_BUCKETS],
    registers: [this.registry],
  });
  private readonly recovery = new Gauge({
    name: "frontier_shard_recovery_seconds",
    help: "How long the shard took to open its journal and rebuild its state at its last start.",
    registers: [this.registry],
  });

  constructor(shardId: string) {
    this.registry.setDefaultLabels({ shard: shardId });
    this.stateGauges();
  }

  /** The actor, once it exists: what the gauges read. */
  attach(gauges: ShardGauges): void {
    this.gauges = gauges;
  }

  recovered(seconds: number): void {
    this.recovery.set(seconds);
  }

  /** A settle's next leases: how many it asked for, how many this shard granted anew. */
  settleLeased(asked: number, granted: number): void {
    this.settleLeases.asked.inc(asked);
    this.settleLeases.granted.inc(granted);
  }

  request(op: string, code: string, seconds: number): void {
    this.requests.inc({ op, code });
    this.requestSeconds.observe({ op }, seconds);
  }

  // ------------------------------------------------------------ ShardObserver

  added(count: number): void {
    this.submitted.inc(count);
  }

  leased(waitMs: number, unblocked: boolean, late: boolean): void {
    this.leasedTotal.inc();
    this.queueWait.observe(waitMs / 1000);
    if (unblocked) this.dispatchLatency.observe(waitMs / 1000);
    if (late) this.missed.dispatch.inc();
  }

  completed(runMs: number | undefined, late: boolean): void {
    this.completedTotal.inc();
    if (runMs !== undefined) this.runTime.observe(runMs / 1000);
    if (late) this.missed.completion.inc();
  }

  retried(): void {
    this.retriedTotal.inc();
  }

  leaseExpired(): void {
    this.leaseTimeouts.inc();
  }

  released(): void {
    this.releasedTotal.inc();
  }

  attemptTimedOut(): void {
    this.attemptTimeouts.inc();
  }

  ended(state: "FAILED" | "CANCELLED" | "EXPIRED"): void {
    if (state === "FAILED") this.failed.inc();
    else if (state === "CANCELLED") this.cancelled.inc();
    else this.missed.expiry.inc();
  }

  staleRejected(): void {
    this.staleCalls.inc();
  }

  duplicate(op: "complete" | "fail" | "release"): void {
    this.duplicateCalls[op].inc();
  }

  committed(seconds: number): void {
    this.commits.observe(seconds);
  }

  duplicateSubmit(): void {
    this.duplicateCalls.submit.inc();
  }

  // -------------------------------------------------------------- internals

  private counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
  }

  /**
   * A counter labelled by `label`, one child bound per value: the values are
   * fixed, a bound child is cheaper to increment, and each is at 0 from the
   * start, so rates over them are defined before the first event.
   */
  private counterBy<V extends string>(
    name: string,
    help: string,
    label: string,
    values: readonly V[],
  ): Record<V, Counter.Internal> {
    const counter = this.counter(name, help, [label]);
    const children = {} as Record<V, Counter.Internal>;
    for (const value of values) {
      children[value] = counter.labels({ [label]: value });
      children[value].inc(0);
    }
    return children;
  }

  private histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return new Histogram({ name, help, buckets: [...buckets], registers: [this.registry] });
  }

  /**
   * The shard's stats for this scrape. prom-client calls every gauge's
   * collect in one synchronous turn, so they share one read, dropped in the
   * next microtask (a later scrape reads afresh).
   */
  private statsOfScrape(): ShardStats | undefined {
    if (this.scraped === undefined && this.gauges !== undefined) {
      this.scraped = this.gauges.stats();
      queueMicrotask(() => {
        this.scraped = undefined;
      });
    }
    return this.scraped;
  }

  /** Gauges read from the actor at collect time; absent (no sample) until it is attached and open. */
  private stateGauges(): void {
    const self = this;
    const gauge = (
      name: string,
      help: string,
      value: (g: ShardGauges, s: ShardStats | undefined) => number | undefined,
    ) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          const g = self.gauges;
          if (g === undefined) return;
          const v = value(g, self.statsOfScrape());
          if (v !== undefined) this.set(v);
        },
      });
    new Gauge({
      name: "frontier_shard_tasks",
      help: "Tasks held, by state (the backlog is WAITING + RUNNABLE + LEASED; terminal ones until retention ends).",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        this.reset();
        const stats = self.statsOfScrape();
        if (stats === undefined) return;
        for (const state of STATES) this.set({ state }, stats.counts[state]);
      },
    });
    new Gauge({
      name: "frontier_shard_tasks_by_type",
      help: `Runnable and leased tasks by task type (state RUNNABLE or LEASED): the ${METRIC_TYPES_SHOWN} busiest types by name, the rest summed under type="${OTHER_TYPES_LABEL}".`,
      labelNames: ["type", "state"],
      registers: [this.registry],
      collect() {
        this.reset();
        const stats = self.statsOfScrape();
        if (stats === undefined) return;
        for (const { type, runnable, leased } of typeSeries(stats.types ?? [])) {
          this.set({ type, state: "RUNNABLE" }, runnable);
          this.set({ type, state: "LEASED" }, leased);
        }
      },
    });
    gauge(
      "frontier_shard_oldest_runnable_age_seconds",
      "How long the longest-waiting runnable task has waited (starvation); 0 when none is runnable.",
      (_, s) => (s === undefined ? undefined : s.oldestRunnableAgeMs / 1000),
    );
    gauge("frontier_shard_live_leases", "Leases held now (tasks LEASED).", (_, s) => s?.leased);
    gauge(
      "frontier_shard_serving",
      "1 while the shard serves requests, else 0 (starting, failed, closing).",
      (g) => g.serving(),
    );
    gauge("frontier_shard_slots_owned", "Slots this shard owns.", (g) => g.slotsOwned());
    gauge("frontier_shard_inflight_requests", "Requests being handled (long-polls included).", (g) =>
      g.inflight(),
    );
    gauge(
      "frontier_shard_prepared_parts",
      "Prepared parts of multi-shard submits waiting for their commit.",
      (g) => g.prepared(),
    );
    gauge(
      "frontier_shard_lease_replay_entries",
      "Lease grants held in memory for retried lease requests.",
      (g) => g.leaseReplays(),
    );
    gauge(
      "frontier_shard_journal_pending_appends",
      "Journal appends queued but not yet durable.",
      (_, s) => s?.journal.pending,
    );
  }
}

/**
 * Task types a shard's metrics label one by one (`frontier_shard_tasks_by_type`):
 * a bound on the series a scrape carries, whatever types users submit.
 */
export const METRIC_TYPES_SHOWN = 20;
/** The `type` label of the types past METRIC_TYPES_SHOWN, summed (no task type has parentheses). */
export const OTHER_TYPES_LABEL = "(other)";

/**
 * The series of `frontier_shard_tasks_by_type`: the METRIC_TYPES_SHOWN
 * busiest types (most runnable and leased; ties by name), and the rest summed
 * under OTHER_TYPES_LABEL. O(t log t).
 */
export function typeSeries(types: readonly TypeCounts[]): TypeCounts[] {
  if (types.length <= METRIC_TYPES_SHOWN) return [...types];
  const busiest = [...types].sort(
    (a, b) => b.runnable + b.leased - (a.runnable + a.leased) || (a.type < b.type ? -1 : 1),
  );
  const other = { type: OTHER_TYPES_LABEL, runnable: 0, leased: 0 };
  for (const t of busiest.slice(METRIC_TYPES_SHOWN)) {
    other.runnable += t.runnable;
    other.leased += t.leased;
  }
  return [...busiest.slice(0, METRIC_TYPES_SHOWN), other];
}
