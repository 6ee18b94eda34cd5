/**
 * @frontier/coordinator — the cluster's front door: takes client requests on
 * `frontier.<cluster>.coord.<op>` (queue group: any coordinator answers),
 * validates and splits submits by slot owner, routes leases across shards by
 * their published frontiers, forwards the rest to the owning shard, and
 * exports its own Prometheus metrics (`Coordinator.metrics`, `metricsPort`). This file is the package's whole public face.
 */
export {
  type Coordinator,
  type CoordinatorView,
  SHARD_ONLY_OPS,
  startCoordinator,
} from "./coordinator.js";
export {
  CoordinatorError,
  CoordinatorErrorCode,
  ShardReplyError,
  ShardsUnknownError,
  ShardTimeoutError,
  ShardUnavailableError,
  SlotUnownedError,
} from "./errors.js";
export { LEASE_REPLY_MAX_BYTES } from "./lease.js";
export { CoordinatorMetrics } from "./metrics/coordinator-metrics.js";
export {
  type CoordinatorOptions,
  DEFAULT_COMMIT_ATTEMPTS,
  DEFAULT_COMMIT_BACKOFF_MS,
  DEFAULT_FRONTIER_STALE_MS,
  DEFAULT_LEASE_REPLAY_ENTRIES,
  DEFAULT_LEASE_REPLAY_MS,
  DEFAULT_METRICS_HOST,
  DEFAULT_POOL_SIZE,
  DEFAULT_SHARD_TIMEOUT_MS,
  DEFAULT_SLOT_RETRY_MS,
  DEFAULT_STATS_TIMEOUT_MS,
  INLINE_VALIDATION_MAX_WORK,
} from "./options.js";
export { type SlotDirectory, slotBucketName } from "./slot-table.js";
export { mergeStats, type ShardStatsResult } from "./stats.js";
