/**
 * The coordinator's metrics, and the HTTP endpoint serving them.
 *
 * Two kinds:
 *  - the cluster's, read from every shard's stats at scrape time
 *    (`frontier_shard_*{shard}` per shard, `frontier_cluster_*` merged): tasks
 *    by state (backlog), runnable, oldest runnable age (starvation), and the
 *    correctness signals: lease timeouts, deadline misses, stale-token
 *    rejections, retries;
 *  - this coordinator's own (`frontier_coordinator_*`): requests by op and
 *    outcome, their latency, shard requests, leases granted per shard, lease
 *    resends (lost replies) by outcome, commit retries, scatters, the
 *    validation pool's queue.
 *
 * Every coordinator reports the cluster's metrics; scrape one, or keep the
 * `instance` label in mind when summing across coordinators.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type SchedulerStats, TaskState } from "@frontier/core";
import type { Logger } from "pino";
import {
  Counter,
  formatPrometheus,
  Histogram,
  type MetricFamily,
  PROMETHEUS_CONTENT_TYPE,
  type Sample,
} from "./prometheus.js";
import type { ShardStatsResult } from "./stats.js";
import type { ValidationPoolStats } from "./validation.js";

/** Latency buckets, seconds: sub-millisecond forwards up to a full long-poll. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const STATES = Object.values(TaskState);

/** What a scrape reads besides the counters. */
export interface MetricsSnapshot {
  readonly stats: ShardStatsResult;
  readonly pool: ValidationPoolStats;
  readonly slotsOwned: number;
  readonly frontierShards: number;
  readonly longPolls: number;
  readonly inflight: number;
}

export class CoordinatorMetrics {
  readonly requests = new Counter(
    "frontier_coordinator_requests_total",
    "Requests answered, by op and outcome (OK or the error code).",
  );
  readonly requestSeconds = new Histogram(
    "frontier_coordinator_request_duration_seconds",
    "Time from a request's arrival to its reply, by op (lease includes its long-poll).",
    LATENCY_BUCKETS,
  );
  readonly shardRequests = new Counter(
    "frontier_coordinator_shard_requests_total",
    "Requests to shards, by shard, op and outcome (OK or the error code).",
  );
  readonly shardRequestSeconds = new Histogram(
    "frontier_coordinator_shard_request_duration_seconds",
    "Round trip of a request to a shard, by op.",
    LATENCY_BUCKETS,
  );
  readonly leasesGranted = new Counter(
    "frontier_coordinator_leases_granted_total",
    "Leases this coordinator handed out, by the shard that granted them.",
  );
  readonly leasesDropped = new Counter(
    "frontier_coordinator_leases_dropped_total",
    "Leases granted by a shard but left out of a full reply (they expire and run again), by shard.",
  );
  readonly leaseResends = new Counter(
    "frontier_coordinator_lease_resends_total",
    "Lease requests sent again by their client (a lost or late reply), by outcome: replayed (the earlier " +
      "grant handed back), filled (none was made; granted anew), unanswered (a shard could not say; the client retries).",
  );
  readonly commitRetries = new Counter(
    "frontier_coordinator_commit_retries_total",
    "Commits of a two-phase submit sent again after a timeout or an unavailable shard, by shard.",
  );
  readonly scatters = new Counter(
    "frontier_coordinator_scatters_total",
    "Task requests without a workflowId asked of every shard because the owner did not have the task, by op.",
  );
  readonly validations = new Counter(
    "frontier_coordinator_validations_total",
    "Submitted batches validated, by where (inline or pool).",
  );
  readonly badAnnouncements = new Counter(
    "frontier_coordinator_bad_announcements_total",
    "Frontier announcements that did not decode.",
  );
  readonly strangerAnnouncements = new Counter(
    "frontier_coordinator_stranger_announcements_total",
    "Frontier announcements ignored: their shard owns no slot in the slot table.",
  );

  /** The exposition for one scrape. */
  render(snapshot: MetricsSnapshot): string {
    return formatPrometheus([...this.clusterFamilies(snapshot.stats), ...this.ownFamilies(snapshot)]);
  }

  private clusterFamilies({ merged, shards, missing }: ShardStatsResult): MetricFamily[] {
    const perShard = [...shards];
    const shardGauge = (
      name: string,
      help: string,
      type: "gauge" | "counter",
      pick: (s: SchedulerStats) => number,
    ) =>
      family(
        name,
        help,
        type,
        perShard.map(([shard, s]) => ({ labels: { shard }, value: pick(s) })),
      );
    const total = (name: string, help: string, type: "gauge" | "counter", value: number) =>
      family(name, help, type, [{ value }]);
    return [
      family("frontier_shard_up", "1 when the shard answered this scrape's stats request, else 0.", "gauge", [
        ...perShard.map(([shard]) => ({ labels: { shard }, value: 1 })),
        ...missing.map(({ shardId }) => ({ labels: { shard: shardId }, value: 0 })),
      ]),
      family(
        "frontier_shard_tasks",
        "Tasks held by the shard, by state (the backlog is WAITING + RUNNABLE + LEASED).",
        "gauge",
        perShard.flatMap(([shard, s]) =>
          STATES.map((state) => ({ labels: { shard, state }, value: s.counts[state] })),
        ),
      ),
      shardGauge("frontier_shard_runnable", "Runnable tasks on the shard.", "gauge", (s) => s.runnable),
      shardGauge("frontier_shard_leased", "Tasks under a lease on the shard.", "gauge", (s) => s.leased),
      shardGauge(
        "frontier_shard_oldest_runnable_age_seconds",
        "How long the shard's longest-waiting runnable task has waited (starvation).",
        "gauge",
        (s) => s.oldestRunnableAgeMs / 1000,
      ),
      shardGauge(
        "frontier_shard_lease_timeouts_total",
        "Leases that expired without a complete or fail (a worker died or stalled).",
        "counter",
        (s) => s.leaseTimeouts,
      ),
      shardGauge(
        "frontier_shard_deadline_misses_total",
        "Tasks dispatched after their deadline, or expired at a hard deadline before dispatch.",
        "counter",
        (s) => s.deadlineMisses,
      ),
      shardGauge(
        "frontier_shard_stale_lease_rejections_total",
        "Heartbeats, completes and fails refused for a stale fencing token (a duplicate dispatch caught).",
        "counter",
        (s) => s.staleRejections,
      ),
      shardGauge(
        "frontier_shard_retries_total",
        "Task attempts retried after a failure.",
        "counter",
        (s) => s.retries,
      ),
      family(
        "frontier_cluster_tasks",
        "Tasks held by all answering shards, by state.",
        "gauge",
        STATES.map((state) => ({ labels: { state }, value: merged.counts[state] })),
      ),
      total("frontier_cluster_runnable", "Runnable tasks, all answering shards.", "gauge", merged.runnable),
      total("frontier_cluster_leased", "Tasks under a lease, all answering shards.", "gauge", merged.leased),
      total(
        "frontier_cluster_oldest_runnable_age_seconds",
        "The longest wait of any runnable task, all answering shards (starvation).",
        "gauge",
        merged.oldestRunnableAgeMs / 1000,
      ),
      total(
        "frontier_cluster_lease_timeouts_total",
        "Lease timeouts, all answering shards.",
        "counter",
        merged.leaseTimeouts,
      ),
      total(
        "frontier_cluster_deadline_misses_total",
        "Deadline misses, all answering shards.",
        "counter",
        merged.deadlineMisses,
      ),
      total(
        "frontier_cluster_stale_lease_rejections_total",
        "Stale-token rejections, all answering shards.",
        "counter",
        merged.staleRejections,
      ),
      total("frontier_cluster_retries_total", "Retries, all answering shards.", "counter", merged.retries),
      total(
        "frontier_cluster_shards",
        "Shards known to this coordinator (slot owners and shards announcing a frontier).",
        "gauge",
        shards.size + missing.length,
      ),
      total(
        "frontier_cluster_shards_missing",
        "Known shards that did not answer this scrape's stats request.",
        "gauge",
        missing.length,
      ),
    ];
  }

  private ownFamilies(s: MetricsSnapshot): MetricFamily[] {
    const leasesTotal = this.leasesGranted.family().samples.reduce((sum, x) => sum + x.value, 0);
    return [
      this.requests.family(),
      this.requestSeconds.family(),
      this.shardRequests.family(),
      this.shardRequestSeconds.family(),
      this.leasesGranted.family(),
      family(
        "frontier_coordinator_leases_granted_all_total",
        "Leases this coordinator handed out, from all shards.",
        "counter",
        [{ value: leasesTotal }],
      ),
      this.leasesDropped.family(),
      this.leaseResends.family(),
      this.commitRetries.family(),
      this.scatters.family(),
      this.validations.family(),
      this.badAnnouncements.family(),
      this.strangerAnnouncements.family(),
      family("frontier_coordinator_validation_queue", "Batches waiting for a validation thread.", "gauge", [
        { value: s.pool.queued },
      ]),
      family(
        "frontier_coordinator_validation_pending",
        "Batches in the validation pool (being checked or waiting).",
        "gauge",
        [{ value: s.pool.pending }],
      ),
      family("frontier_coordinator_validation_threads", "Validation threads running.", "gauge", [
        { value: s.pool.threads },
      ]),
      family(
        "frontier_coordinator_validation_utilization",
        "Share of time the validation threads were busy since the pool started (0..1).",
        "gauge",
        [{ value: s.pool.utilization }],
      ),
      family("frontier_coordinator_slots_owned", "Slots with a known owner (of 1024).", "gauge", [
        { value: s.slotsOwned },
      ]),
      family(
        "frontier_coordinator_frontier_shards",
        "Shards whose frontier announcement is fresh (they take part in lease routing).",
        "gauge",
        [{ value: s.frontierShards }],
      ),
      family("frontier_coordinator_long_polls", "Lease requests waiting for runnable tasks.", "gauge", [
        { value: s.longPolls },
      ]),
      family("frontier_coordinator_inflight_requests", "Requests being handled.", "gauge", [
        { value: s.inflight },
      ]),
    ];
  }
}

function family(name: string, help: string, type: "gauge" | "counter", samples: Sample[]): MetricFamily {
  return { name, help, type, samples };
}

/**
 * Serves GET /metrics with `render()`'s text; anything else is 404 (405 for
 * another method on /metrics). A failing render answers 500 and is logged.
 */
export async function serveMetrics(
  port: number,
  host: string,
  render: () => Promise<string>,
  logger: Logger,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: try /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end();
      return;
    }
    render().then(
      (text) => {
        res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        logger.error({ err }, "metrics: render failed");
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("metrics unavailable\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { server, url: `http://${shownHost}:${address.port}/metrics` };
}
