/**
 * A coordinator's own metrics (`frontier_coordinator_*`), in its own
 * prom-client registry: what passes through this coordinator (requests,
 * asks to shards, leases routed, resends, commit retries, scatters,
 * validations, announcements) and what it holds now (long-polls, requests in
 * flight, the validation pool, the slot table, fresh frontiers). Nothing
 * about the cluster's tasks: each shard exports its own (frontier_shard_*),
 * so a sum over the cluster is Prometheus's to take and never drops when one
 * process misses a scrape.
 *
 * Counters and histograms are updated where the event happens; gauges read
 * their value at collect time from `CoordinatorGauges`, so holding them
 * costs nothing between scrapes.
 */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry } from "@frontier/metrics";
import type { ValidationPoolStats } from "../validation.js";

/** What the gauges read at each scrape. */
export interface CoordinatorGauges {
  pool(): ValidationPoolStats;
  slotsOwned(): number;
  frontierShards(): number;
  longPolls(): number;
  inflight(): number;
}

/**
 * What became of one lease request: leases handed out, none (the long-poll
 * ran out), an error reply, or a long-poll handed to the only shard, which
 * answers the worker itself.
 */
export type LeaseOutcome = "granted" | "empty" | "refused" | "forwarded";

export class CoordinatorMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: "frontier_coordinator_requests_total",
    help: "Requests answered, by op and code (OK or the error code).",
    labelNames: ["op", "code"],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: "frontier_coordinator_request_duration_seconds",
    help: "Time from a request's arrival to its reply, by op (a lease includes its long-poll).",
    labelNames: ["op"],
    buckets: [...LATENCY_BUCKETS],
    registers: [this.registry],
  });
  readonly shardRequests = new Counter({
    name: "frontier_coordinator_shard_requests_total",
    help: "Requests to shards, by shard, op and code (OK or the error code).",
    labelNames: ["shard", "op", "code"],
    registers: [this.registry],
  });
  readonly shardRequestSeconds = new Histogram({
    name: "frontier_coordinator_shard_request_duration_seconds",
    help: "Round trip of a request to a shard, by op.",
    labelNames: ["op"],
    buckets: [...LATENCY_BUCKETS],
    registers: [this.registry],
  });
  readonly leaseOutcomes = new Counter({
    name: "frontier_coordinator_lease_requests_total",
    help: "Lease requests answered, by outcome: granted (leases handed out), empty (none runnable before waitMs ran out), refused (an error reply), forwarded (a long-poll handed to the only shard, which answers the worker itself).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly leasesGranted = new Counter({
    name: "frontier_coordinator_leases_granted_total",
    help: "Leases this coordinator handed out, by the shard that granted them (not those a shard sent a worker itself, for a forwarded long-poll: the shard's frontier_shard_tasks_leased_total counts every grant).",
    labelNames: ["shard"],
    registers: [this.registry],
  });
  readonly leasesDropped = new Counter({
    name: "frontier_coordinator_leases_dropped_total",
    help: "Leases granted by a shard but left out of a full reply (they expire and run again), by shard.",
    labelNames: ["shard"],
    registers: [this.registry],
  });
  readonly leaseResends = new Counter({
    name: "frontier_coordinator_lease_resends_total",
    help:
      "Lease requests sent again by their client (a lost or late reply), by outcome: replayed (the earlier " +
      "grant handed back), filled (none was made; granted anew), unanswered (a shard could not say; the client retries).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly commitRetries = new Counter({
    name: "frontier_coordinator_commit_retries_total",
    help: "Commits of a two-phase submit sent again after a timeout or an unavailable shard, by shard.",
    labelNames: ["shard"],
    registers: [this.registry],
  });
  readonly scatters = new Counter({
    name: "frontier_coordinator_scatters_total",
    help: "Task requests without a workflowId asked of every shard because the owner did not have the task, by op.",
    labelNames: ["op"],
    registers: [this.registry],
  });
  readonly validations = new Counter({
    name: "frontier_coordinator_validations_total",
    help: "Submitted batches validated, by mode (inline or pool).",
    labelNames: ["mode"],
    registers: [this.registry],
  });
  readonly announcements = new Counter({
    name: "frontier_coordinator_announcements_total",
    help: "Frontier announcements received, by outcome: accepted (they route leases), undecodable, stranger (their shard owns no slot).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });

  constructor(gauges: CoordinatorGauges) {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge("frontier_coordinator_long_polls", "Lease requests waiting for runnable tasks.", gauges.longPolls);
    gauge(
      "frontier_coordinator_inflight_requests",
      "Requests being handled (long-polls included).",
      gauges.inflight,
    );
    gauge(
      "frontier_coordinator_slots_owned",
      "Slots with a known owner in this coordinator's slot table (of 1024).",
      gauges.slotsOwned,
    );
    gauge(
      "frontier_coordinator_frontier_shards",
      "Shards whose frontier announcement is fresh (they take part in lease routing).",
      gauges.frontierShards,
    );
    gauge(
      "frontier_coordinator_validation_queue",
      "Batches waiting for a validation thread.",
      () => gauges.pool().queued,
    );
    gauge(
      "frontier_coordinator_validation_pending",
      "Batches in the validation pool (being checked or waiting).",
      () => gauges.pool().pending,
    );
    gauge(
      "frontier_coordinator_validation_threads",
      "Validation threads running.",
      () => gauges.pool().threads,
    );
    gauge(
      "frontier_coordinator_validation_utilization",
      "Share of time the validation threads were busy since the pool started (0..1).",
      () => gauges.pool().utilization,
    );
    // Every outcome from the start, so a rate over them is defined before the first of each.
    for (const outcome of ["granted", "empty", "refused", "forwarded"] satisfies LeaseOutcome[])
      this.leaseOutcomes.inc({ outcome }, 0);
    for (const outcome of ["accepted", "undecodable", "stranger"]) this.announcements.inc({ outcome }, 0);
  }
}
