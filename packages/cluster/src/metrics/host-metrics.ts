/**
 * A ShardHost's own metrics: its workers' supervision, which no worker can
 * report about itself (a worker that is down exports nothing). Read at
 * collect time from the host's workers. The shards' own metrics come from
 * their threads (shard-metrics.ts).
 */
import { Counter, Gauge, Registry } from "@frontier/metrics";

export interface HostWorkerView {
  readonly shardId: string;
  readonly state: string;
  readonly restarts: number;
}

export function hostRegistry(workers: () => readonly HostWorkerView[]): Registry {
  const registry = new Registry();
  new Gauge({
    name: "frontier_shard_host_worker_running",
    help: "1 while the shard's worker thread runs its actor (RUNNING), else 0 (starting, restarting after a crash, stopping).",
    labelNames: ["shard"],
    registers: [registry],
    collect() {
      for (const w of workers()) this.set({ shard: w.shardId }, w.state === "RUNNING" ? 1 : 0);
    },
  });
  new Counter({
    name: "frontier_shard_host_worker_restarts_total",
    help: "Times the shard's worker thread was restarted after it ended unasked (a crash or a failed shard).",
    labelNames: ["shard"],
    registers: [registry],
    collect() {
      // The host counts restarts itself (they only grow); the counter shows its count.
      this.reset();
      for (const w of workers()) this.inc({ shard: w.shardId }, w.restarts);
    },
  });
  return registry;
}
