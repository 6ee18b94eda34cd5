/**
 * @frontier/cluster — shard actors on NATS: slot ownership in a JetStream
 * KV bucket, the actor that serves one durable shard over the wire
 * protocol and announces its frontier, a supervisor that runs N of them on
 * worker threads, and the main of a standalone shard process. This file is
 * the package's whole public face.
 */
export { EMPTY_FRONTIER, type Frontier } from "./announcer.js";
export {
  CLUSTER_IDENTITY_KEY,
  ClusterIdentityError,
  ClusterIdentityErrorCode,
  type DataIdentity,
  IDENTITY_FILE,
  readDataIdentity,
  shardKey,
} from "./cluster-identity.js";
export { JournalFollower, type JournalMessage } from "./journal-follower.js";
export {
  JournalHeader,
  JournalKind,
  JournalShippingError,
  JournalShippingErrorCode,
  JournalStream,
  type JournalStreamOptions,
  MAX_JOURNAL_MESSAGE_BYTES,
  openJournalStream,
} from "./journal-stream.js";
export { LEASE_SECRET_KEY_FILE, LeaseSecrets } from "./lease-secrets.js";
export { hostRegistry } from "./metrics/host-metrics.js";
export { ShardMetrics } from "./metrics/shard-metrics.js";
export {
  checkShardActorOptions,
  checkShardHostOptions,
  DEFAULT_ANNOUNCE_INTERVAL_MS,
  DEFAULT_ANNOUNCE_THROTTLE_MS,
  DEFAULT_CLAIM_CONCURRENCY,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_CLUSTER,
  DEFAULT_FRONTIER_POLL_MS,
  DEFAULT_KV_REPLICAS,
  DEFAULT_LEASE_REPLAY_MAX_BYTES,
  DEFAULT_LEASE_REPLAY_MAX_ENTRIES,
  DEFAULT_LEASE_REPLAY_TTL_MS,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_IDEMPOTENCY_KEYS,
  DEFAULT_MAX_LIVE_TASKS,
  DEFAULT_MAX_STORED_BYTES,
  DEFAULT_NATS_URL,
  DEFAULT_PREPARE_TTL_MS,
  DEFAULT_REPLICATION_TIMEOUT_MS,
  DEFAULT_RESTART_INITIAL_MS,
  DEFAULT_RESTART_MAX_MS,
  DEFAULT_SLOT_CHECK_INTERVAL_MS,
  DEFAULT_STABLE_AFTER_MS,
  DEFAULT_START_TIMEOUT_MS,
  hostShardId,
  isLogLevel,
  type LogLevel,
  MAX_HOST_SHARDS,
  type ResolvedShardActorOptions,
  type ResolvedShardHostOptions,
  type ShardActorOptions,
  type ShardActorTuning,
  type ShardEngineOptions,
  type ShardHostOptions,
} from "./options.js";
export { MAX_ORDER_WINDOW, type OrderWindow } from "./order-window.js";
export { planRebalance, type RebalanceOptions, type SlotMovePlan } from "./rebalance.js";
export {
  type ActorExit,
  ActorState,
  ShardActor,
  type ShardActorStats,
  startShardActor,
} from "./shard-actor.js";
export {
  ShardHost,
  type ShardHostEvent,
  type ShardWorkerStatus,
  WorkerState,
} from "./shard-host.js";
export {
  checkShardProcessOptions,
  runShardProcess,
  type ShardProcess,
  type ShardProcessOptions,
  shardProcessOptionsFromEnv,
} from "./shard-process.js";
export {
  type ClaimResult,
  DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS,
  openSlotBucket,
  SLOT_BUCKET_HISTORY,
  type SlotBucketOptions,
  type SlotChange,
  SlotMap,
  type SlotMapOptions,
  SlotOwnership,
  type SlotOwnershipOptions,
  slotBucketName,
  slotKey,
  slotOfKey,
  watchSlotMap,
} from "./slot-ownership.js";
export {
  formatSlots,
  parseSlotRanges,
  parseSlotSpec,
  type SlotAssignment,
  type SlotSpec,
  spreadSlots,
} from "./slots.js";
export {
  DEFAULT_FAILOVER_AFTER_MS,
  DEFAULT_STANDBY_CHECK_MS,
  type RestoreOptions,
  restoreFromStream,
  runStandby,
  runStandbyProcess,
  type StandbyOptions,
  type StandbyProcessOptions,
  type Takeover,
} from "./standby.js";
export { StreamReplicasError, StreamReplicasErrorCode } from "./stream-replicas.js";
