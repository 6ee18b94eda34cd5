/**
 * @frontier/shard — the engine made durable: an LMDB journal, crash-safe
 * acknowledgements, fast recovery. This file is the package's whole public
 * face. The journal conformance suite (journal-conformance.ts) is for
 * backend tests and is not exported here.
 */
export { type ClaimOf, claimRow } from "./claim-table.js";
export type { ClockSources } from "./clock.js";
export {
  CorruptDataError,
  ForeignDataError,
  IncompatibleFormatError,
  type OwnerInfo,
  ReplicationError,
  ShardClosedError,
  ShardError,
  ShardErrorCode,
  ShardFailedError,
  ShardFencedError,
  type ShardLimit,
  ShardLimitError,
  ShardLockedError,
  StorageError,
} from "./errors.js";
export {
  type AdoptedMove,
  type AppendOptions,
  DEFAULT_DURABILITY,
  type Durability,
  type EndedMove,
  type IdClaimRow,
  type IdempotencyEntry,
  type Journal,
  type JournalOpenOptions,
  type JournalRecord,
  type JournalState,
  type JournalStats,
  type LeaseProof,
  type SlotExport,
} from "./journal.js";
export {
  BASE_PART_RECORDS,
  baseRecords,
  DEFAULT_REBASE_AFTER_BYTES,
  decodeBlock,
  encodeBlock,
  type JournalReplica,
  ReplicatedJournal,
  type ReplicatedJournalOptions,
} from "./journal-replica.js";
export { FORMAT_VERSION, LmdbJournal, type LmdbJournalOptions } from "./lmdb-journal.js";
export {
  type ClaimHomes,
  DEFAULT_LEASE_REPLAY_RETENTION_MS,
  DEFAULT_MAX_IDEMPOTENCY_KEYS,
  DEFAULT_MAX_LIVE_TASKS,
  DEFAULT_MAX_STORED_BYTES,
  DEFAULT_RETENTION_MS,
  type ReplayLeaseOptions,
  Shard,
  type ShardHoldings,
  type ShardLeaseOptions,
  type ShardLimits,
  type ShardObserver,
  type ShardOptions,
  ShardState,
  type ShardStats,
  type SubmitOptions,
  type SubmitResult,
  TOKEN_RESERVATION,
} from "./shard.js";
