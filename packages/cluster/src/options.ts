/**
 * Options of the cluster package: every default as a `DEFAULT_*` constant
 * with its unit, and one function per options type that fills in the
 * defaults and checks every option, naming the bad one in its error
 * (`InvalidArgumentError`, code INVALID_ARGUMENT).
 */
import { InvalidArgumentError } from "@frontier/core";
import {
  DEFAULT_ID_SPACE,
  ID_SPACES,
  type IdSpace,
  isIdSpace,
  isValidToken,
  MAX_TOKEN_LENGTH,
  PREPARE_TTL_MS,
} from "@frontier/protocol";
import {
  DEFAULT_MAX_IDEMPOTENCY_KEYS as SHARD_MAX_IDEMPOTENCY_KEYS,
  DEFAULT_MAX_LIVE_TASKS as SHARD_MAX_LIVE_TASKS,
  DEFAULT_MAX_STORED_BYTES as SHARD_MAX_STORED_BYTES,
  type ShardOptions,
} from "@frontier/shard";
import { accessOf, type NatsAccess, NatsAccessError, natsConnectionOptions } from "@frontier/transport";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { MAX_ORDER_WINDOW, type OrderWindow } from "./order-window.js";
import { parseSlotSpec, type SlotAssignment, type SlotSpec } from "./slots.js";

/** Default wait for the journal stream's acknowledgement of a block (`replicate`), ms. */
export const DEFAULT_REPLICATION_TIMEOUT_MS = 10_000;

/** Cluster name when none is given: subjects `frontier.default.…`, bucket `frontier-default-slots`. */
export const DEFAULT_CLUSTER = "default";
/** Where a shard looks for NATS when told nothing. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
/** Longest gap between two frontier announcements of one shard, in ms (a heartbeat even when nothing changes). */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 1_000;
/** Shortest gap between two frontier announcements of one shard, in ms. */
export const DEFAULT_ANNOUNCE_THROTTLE_MS = 20;
/**
 * How often a shard looks at its frontier for changes no request caused
 * (a lease expired, a retry backoff ended), in ms. Changes a request causes
 * are seen at once.
 */
export const DEFAULT_FRONTIER_POLL_MS = 100;
/**
 * How long a prepared part of a submit keeps its ids reserved, waiting for
 * its commit or abort, in ms: the protocol's PREPARE_TTL_MS.
 */
export const DEFAULT_PREPARE_TTL_MS = PREPARE_TTL_MS;
/** How long a lease grant is kept for a retry with the same request id, in ms. */
export const DEFAULT_LEASE_REPLAY_TTL_MS = 60_000;
/** Most lease grants kept for retries; the oldest are dropped first. */
export const DEFAULT_LEASE_REPLAY_MAX_ENTRIES = 10_000;
/** Most bytes (encoded) of lease grants kept for retries. */
export const DEFAULT_LEASE_REPLAY_MAX_BYTES = 64 * 1024 * 1024;
/**
 * Most prepared parts (phase one of multi-shard submits) a shard holds at
 * once, and their encoded bytes: a prepare past either is refused as
 * OVERLOADED (retryable) before it takes memory. Parts leave on commit,
 * abort or after prepareTtlMs.
 */
export const DEFAULT_MAX_PREPARED_PARTS = 1_000;
export const DEFAULT_MAX_PREPARED_BYTES = 64 * 1024 * 1024;
/**
 * Limits of what a shard holds (the Shard's, which says why these values):
 * live tasks, payload bytes of the tasks held (live, or finished until
 * compacted), and idempotency keys remembered. A submit or prepare that would
 * pass one, counting the prepared parts' tasks, payloads and keys as held, is
 * refused whole as OVERLOADED (retryable), changing nothing.
 */
export const DEFAULT_MAX_LIVE_TASKS = SHARD_MAX_LIVE_TASKS;
export const DEFAULT_MAX_STORED_BYTES = SHARD_MAX_STORED_BYTES;
export const DEFAULT_MAX_IDEMPOTENCY_KEYS = SHARD_MAX_IDEMPOTENCY_KEYS;
/** Replicas of the slot-ownership KV bucket (1 for a single NATS server; 3 for a NATS cluster). */
export const DEFAULT_KV_REPLICAS = 1;
/** Slot claims (KV creates) in flight at once while a shard starts. */
export const DEFAULT_CLAIM_CONCURRENCY = 64;
/**
 * How often a shard checks that the slot bucket still exists and still names
 * it for its slots (slot-guard.ts), ms. Changes the watcher sees are checked
 * at once; this catches a deleted bucket, which stops no watcher.
 */
export const DEFAULT_SLOT_CHECK_INTERVAL_MS = 5_000;
/** First pause before a crashed shard worker is restarted, in ms; doubles per consecutive crash. */
export const DEFAULT_RESTART_INITIAL_MS = 100;
/** Longest pause before a crashed shard worker is restarted, in ms. */
export const DEFAULT_RESTART_MAX_MS = 10_000;
/** A worker that ran this long before it crashed restarts after the initial pause again, in ms. */
export const DEFAULT_STABLE_AFTER_MS = 10_000;
/** How long `ShardHost.start` waits for every shard to serve, in ms. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;
/** How long a clean close waits for a shard worker before terminating it, in ms. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** Log level when none is given. */
export const DEFAULT_LOG_LEVEL = "info";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Engine and storage options passed to the shard's `Shard.open`. Plain data
 * (a ShardHost sends them to worker threads). `sameWorkflowPrerequisites`
 * is always on in a cluster: a workflow's tasks share one slot, so
 * prerequisites must be in the task's workflow. `partitionOf` is the slot
 * of a task (a large workflow's tasks spread over slots), set by the actor.
 */
export type ShardEngineOptions = Omit<
  ShardOptions,
  | "dataDir"
  | "sameWorkflowPrerequisites"
  | "partitionOf"
  | "clock"
  | "openJournal"
  | "maxLiveTasks"
  | "maxStoredBytes"
  | "maxIdempotencyKeys"
>;

/** Tuning of one shard actor; plain numbers, shared by ShardActor, runShardProcess and ShardHost. */
export interface ShardActorTuning {
  /** See DEFAULT_ANNOUNCE_INTERVAL_MS. */
  readonly announceIntervalMs?: number;
  /** See DEFAULT_ANNOUNCE_THROTTLE_MS. */
  readonly announceThrottleMs?: number;
  /** See DEFAULT_FRONTIER_POLL_MS. */
  readonly frontierPollMs?: number;
  /** See DEFAULT_PREPARE_TTL_MS. */
  readonly prepareTtlMs?: number;
  /** See DEFAULT_MAX_PREPARED_PARTS. */
  readonly maxPreparedParts?: number;
  /** See DEFAULT_MAX_PREPARED_BYTES. */
  readonly maxPreparedBytes?: number;
  /** See DEFAULT_MAX_LIVE_TASKS. */
  readonly maxLiveTasks?: number;
  /** See DEFAULT_MAX_STORED_BYTES. */
  readonly maxStoredBytes?: number;
  /** See DEFAULT_MAX_IDEMPOTENCY_KEYS. */
  readonly maxIdempotencyKeys?: number;
  /** See DEFAULT_LEASE_REPLAY_TTL_MS. */
  readonly leaseReplayTtlMs?: number;
  /** See DEFAULT_LEASE_REPLAY_MAX_ENTRIES. */
  readonly leaseReplayMaxEntries?: number;
  /** See DEFAULT_LEASE_REPLAY_MAX_BYTES. */
  readonly leaseReplayMaxBytes?: number;
  /** See DEFAULT_KV_REPLICAS. */
  readonly kvReplicas?: number;
  /** See DEFAULT_CLAIM_CONCURRENCY. */
  readonly claimConcurrency?: number;
  /** See DEFAULT_SLOT_CHECK_INTERVAL_MS. */
  readonly slotCheckIntervalMs?: number;
  /**
   * Automatic rebalancing (docs/cluster.md, "Slot movement"): every this
   * many ms, a shard holding more than its share of the slots (over the
   * shards heard from lately) moves one of them to a shard below its share.
   * 0 (the default): off; `frontier rebalance` does it on demand.
   */
  readonly autoRebalanceMs?: number;
  /**
   * How far a task id is unique (@frontier/protocol id-space.ts):
   * "cluster" (the default) or "workflow". Written into the cluster when
   * its first shard starts; a shard started with another one is refused
   * (ID_SPACE_MISMATCH).
   */
  readonly idSpace?: IdSpace;
  /**
   * Every this many ms, the shard asks the shards of up to
   * CLAIM_SWEEP_ROWS of the id claims it keeps whether their tasks are
   * still held, and drops the claims of tasks gone (dropped after their
   * retention). Default DEFAULT_CLAIM_SWEEP_MS; 0: off (a claim of a task
   * gone then stays until a batch of its id takes it over).
   */
  readonly claimSweepMs?: number;
  /** See DEFAULT_MAX_PARKED_LEASES. */
  readonly maxParkedLeases?: number;
  /**
   * How far a settle's next leases may run ahead of the other shards'
   * tasks (order-window.ts): a shard grants a worker's settle its part of
   * the cluster's first `orderWindow` runnable tasks of the worker's types,
   * by the other shards' announced depths. 0 (the default): only its tasks
   * before every other shard's first, the exact order a coordinator keeps.
   * "shard": no order across shards for settles (each shard's own order;
   * coordinators' fills stay exact). Every shard of a cluster should have
   * the same.
   */
  readonly orderWindow?: OrderWindow;
}

export interface ShardActorOptions extends ShardActorTuning {
  /**
   * NATS server URL(s). The actor opens its own connection (reconnecting
   * forever) and closes it on close. Exactly one of `natsUrl` and `nc`.
   */
  readonly natsUrl?: string | readonly string[];
  /** Credentials and TLS for the connection the actor opens (@frontier/transport); none by default. */
  readonly natsAccess?: NatsAccess;
  /** An open NATS connection to use; the caller keeps it (the actor does not close it). */
  readonly nc?: NatsConnection;
  /** Wait for NATS to come up when it is not answering at start. Default false (fail at once). */
  readonly waitForNats?: boolean;
  /** Cluster name, a subject token. Default DEFAULT_CLUSTER. */
  readonly cluster?: string;
  /** This shard's id, a subject token (`shard-0`, ...). Its slots are recorded under it. */
  readonly shardId: string;
  /** The shard's LMDB directory (created if missing). Same id, same directory, across restarts. */
  readonly dataDir: string;
  /**
   * Which slots to own. Default "auto": the slots this id already owns, or,
   * when it owns none, every free slot. A list or range string ("0-511,700"),
   * or a spread "i/N" / `{ index: i, of: N }` (the slots n with n mod N == i),
   * claims those that are free and keeps any it owned before. See README
   * "Slot ownership".
   */
  readonly slots?: SlotSpec;
  /** Engine and storage options (sameWorkflowPrerequisites is always true). */
  readonly shard?: ShardEngineOptions;
  /**
   * Whether a fresh data directory may join a cluster of this name that
   * exists already (cluster-identity.ts). Default true: shards started apart
   * (`frontier shard`, a compose file) create the cluster or join it,
   * whoever comes first. A data directory of another cluster is always refused.
   */
  readonly join?: boolean;
  /**
   * The cluster identity a host checked before it started this shard: the
   * bucket must hold it, and a fresh data directory joins it. Default none.
   */
  readonly clusterId?: string;
  /**
   * Journal shipping (journal-stream.ts; docs/cluster.md, "Standby
   * shards"): every block the shard commits also goes to its JetStream
   * stream, with `kvReplicas` replicas, and a call is answered only once
   * both hold it. Default false.
   */
  readonly replicate?: boolean;
  /** With `replicate`: wait for the stream's acknowledgement of a block, ms; past it the shard stops. Default DEFAULT_REPLICATION_TIMEOUT_MS. */
  readonly replicationTimeoutMs?: number;
  /**
   * With `replicate`: bytes of blocks in the stream after its base before a
   * new base is shipped and the rest purged (and at least twice the base).
   * Default @frontier/shard's DEFAULT_REBASE_AFTER_BYTES (256 MiB).
   */
  readonly replicationRebaseBytes?: number;
  /** Logger; default a pino logger at `logLevel` on stdout. */
  readonly logger?: Logger;
  /** Level of the default logger. Default DEFAULT_LOG_LEVEL. */
  readonly logLevel?: LogLevel;
}

/** ShardActorOptions with the defaults filled in and every option checked. */
export interface ResolvedShardActorOptions {
  readonly natsUrl: readonly string[] | undefined;
  readonly natsAccess: NatsAccess;
  readonly nc: NatsConnection | undefined;
  readonly waitForNats: boolean;
  readonly cluster: string;
  readonly shardId: string;
  readonly dataDir: string;
  readonly slots: SlotAssignment;
  readonly shard: ShardEngineOptions;
  readonly join: boolean;
  readonly clusterId: string | undefined;
  readonly replicate: boolean;
  readonly replicationTimeoutMs: number;
  readonly replicationRebaseBytes: number | undefined;
  readonly logger: Logger | undefined;
  readonly logLevel: LogLevel;
  readonly announceIntervalMs: number;
  readonly announceThrottleMs: number;
  readonly frontierPollMs: number;
  readonly prepareTtlMs: number;
  readonly maxPreparedParts: number;
  readonly maxPreparedBytes: number;
  readonly maxLiveTasks: number;
  readonly maxStoredBytes: number;
  readonly maxIdempotencyKeys: number;
  readonly leaseReplayTtlMs: number;
  readonly leaseReplayMaxEntries: number;
  readonly leaseReplayMaxBytes: number;
  readonly kvReplicas: number;
  readonly claimConcurrency: number;
  readonly slotCheckIntervalMs: number;
  readonly autoRebalanceMs: number;
  readonly idSpace: IdSpace;
  readonly claimSweepMs: number;
  readonly maxParkedLeases: number;
  readonly orderWindow: OrderWindow;
}

/** Fills in and checks ShardActorOptions; throws InvalidArgumentError naming the bad option. */
export function checkShardActorOptions(options: ShardActorOptions): ResolvedShardActorOptions {
  const o = record(options, "ShardActor options");
  const where = "ShardActor option";
  const nc = o["nc"] as ResolvedShardActorOptions["nc"];
  const natsUrl = o["natsUrl"] === undefined ? undefined : urls(o["natsUrl"], `${where} "natsUrl"`);
  if ((nc === undefined) === (natsUrl === undefined)) {
    throw new InvalidArgumentError(`${where}s: give exactly one of "natsUrl" and "nc"`);
  }
  if (nc !== undefined && (typeof nc !== "object" || nc === null || typeof nc.subscribe !== "function")) {
    throw new InvalidArgumentError(`${where} "nc" must be a NATS connection`);
  }
  const natsAccess = access(o["natsAccess"], natsUrl ?? [], `${where} "natsAccess"`);
  return {
    natsUrl,
    natsAccess,
    nc,
    waitForNats: bool(o["waitForNats"], false, `${where} "waitForNats"`),
    cluster: token(o["cluster"] ?? DEFAULT_CLUSTER, `${where} "cluster"`),
    shardId: token(o["shardId"], `${where} "shardId"`),
    dataDir: path(o["dataDir"], `${where} "dataDir"`),
    slots: slotAssignment(o["slots"], `${where} "slots"`),
    shard: engineOptions(o["shard"], `${where} "shard"`),
    join: bool(o["join"], true, `${where} "join"`),
    clusterId: o["clusterId"] === undefined ? undefined : nonEmpty(o["clusterId"], `${where} "clusterId"`),
    replicate: bool(o["replicate"], false, `${where} "replicate"`),
    replicationRebaseBytes:
      o["replicationRebaseBytes"] === undefined
        ? undefined
        : int(o["replicationRebaseBytes"], undefined, 1, `${where} "replicationRebaseBytes"`),
    replicationTimeoutMs: int(
      o["replicationTimeoutMs"],
      DEFAULT_REPLICATION_TIMEOUT_MS,
      1,
      `${where} "replicationTimeoutMs"`,
    ),
    logger: logger(o["logger"], `${where} "logger"`),
    logLevel: logLevel(o["logLevel"], `${where} "logLevel"`),
    ...checkTuning(o, where),
  };
}

/** The tuning options of `o`, checked, with their defaults. */
export function checkTuning(o: Record<string, unknown>, where: string): Required<ShardActorTuning> {
  const announceThrottleMs = int(
    o["announceThrottleMs"],
    DEFAULT_ANNOUNCE_THROTTLE_MS,
    0,
    `${where} "announceThrottleMs"`,
  );
  const announceIntervalMs = int(
    o["announceIntervalMs"],
    DEFAULT_ANNOUNCE_INTERVAL_MS,
    1,
    `${where} "announceIntervalMs"`,
  );
  if (announceIntervalMs < announceThrottleMs) {
    throw new InvalidArgumentError(
      `${where} "announceIntervalMs" (${announceIntervalMs}) must be at least "announceThrottleMs" (${announceThrottleMs})`,
    );
  }
  return {
    announceIntervalMs,
    announceThrottleMs,
    frontierPollMs: int(o["frontierPollMs"], DEFAULT_FRONTIER_POLL_MS, 1, `${where} "frontierPollMs"`),
    prepareTtlMs: int(o["prepareTtlMs"], DEFAULT_PREPARE_TTL_MS, 1, `${where} "prepareTtlMs"`),
    maxPreparedParts: int(
      o["maxPreparedParts"],
      DEFAULT_MAX_PREPARED_PARTS,
      1,
      `${where} "maxPreparedParts"`,
    ),
    maxPreparedBytes: int(
      o["maxPreparedBytes"],
      DEFAULT_MAX_PREPARED_BYTES,
      1,
      `${where} "maxPreparedBytes"`,
    ),
    maxLiveTasks: int(o["maxLiveTasks"], DEFAULT_MAX_LIVE_TASKS, 1, `${where} "maxLiveTasks"`),
    maxStoredBytes: int(o["maxStoredBytes"], DEFAULT_MAX_STORED_BYTES, 1, `${where} "maxStoredBytes"`),
    maxIdempotencyKeys: int(
      o["maxIdempotencyKeys"],
      DEFAULT_MAX_IDEMPOTENCY_KEYS,
      1,
      `${where} "maxIdempotencyKeys"`,
    ),
    leaseReplayTtlMs: int(
      o["leaseReplayTtlMs"],
      DEFAULT_LEASE_REPLAY_TTL_MS,
      0,
      `${where} "leaseReplayTtlMs"`,
    ),
    leaseReplayMaxEntries: int(
      o["leaseReplayMaxEntries"],
      DEFAULT_LEASE_REPLAY_MAX_ENTRIES,
      0,
      `${where} "leaseReplayMaxEntries"`,
    ),
    leaseReplayMaxBytes: int(
      o["leaseReplayMaxBytes"],
      DEFAULT_LEASE_REPLAY_MAX_BYTES,
      0,
      `${where} "leaseReplayMaxBytes"`,
    ),
    kvReplicas: int(o["kvReplicas"], DEFAULT_KV_REPLICAS, 1, `${where} "kvReplicas"`, 5),
    claimConcurrency: int(o["claimConcurrency"], DEFAULT_CLAIM_CONCURRENCY, 1, `${where} "claimConcurrency"`),
    slotCheckIntervalMs: int(
      o["slotCheckIntervalMs"],
      DEFAULT_SLOT_CHECK_INTERVAL_MS,
      1,
      `${where} "slotCheckIntervalMs"`,
    ),
    autoRebalanceMs: int(o["autoRebalanceMs"], 0, 0, `${where} "autoRebalanceMs"`),
    idSpace: idSpaceOf(o["idSpace"], `${where} "idSpace"`),
    claimSweepMs: int(o["claimSweepMs"], DEFAULT_CLAIM_SWEEP_MS, 0, `${where} "claimSweepMs"`),
    maxParkedLeases: int(o["maxParkedLeases"], DEFAULT_MAX_PARKED_LEASES, 1, `${where} "maxParkedLeases"`),
    orderWindow: orderWindowOf(o["orderWindow"], `${where} "orderWindow"`),
  };
}

// ------------------------------------------------------------ ShardHost

export interface ShardHostOptions extends ShardActorTuning {
  /** NATS server URL(s); every worker opens its own connection. Default DEFAULT_NATS_URL. */
  readonly natsUrl?: string | readonly string[];
  /** Credentials and TLS for the workers' connections (plain data: file paths and strings). */
  readonly natsAccess?: NatsAccess;
  /**
   * A cluster credentials directory (@frontier/transport `ensureCredentials`):
   * each shard connects as itself, with `shards/<id>.nk` and its own inbox
   * prefix. `natsAccess` may then add TLS, not other credentials.
   */
  readonly credentialsDir?: string;
  /** Cluster name. Default DEFAULT_CLUSTER. */
  readonly cluster?: string;
  /** Parent of the shards' directories: shard i keeps its data in `<dataDir>/shard-<i>`. */
  readonly dataDir: string;
  /**
   * Number of shard actors (worker threads), ids `shard-<F>` … `shard-<F+N-1>`
   * with F = `firstShard`; the i-th owns the slots n with n mod N == i.
   */
  readonly shards: number;
  /** Index of the first shard's id. Default 0. A host that joins a cluster needs ids of its own. */
  readonly firstShard?: number;
  /**
   * Whether this host may join a cluster of this name that exists already
   * with fresh data directories (cluster-identity.ts). Default false: a
   * second `frontier start` under a cluster's name is refused, not merged.
   */
  readonly join?: boolean;
  /** Engine and storage options for every shard (plain data). */
  readonly shard?: ShardEngineOptions;
  /** Journal shipping for every shard (ShardActorOptions `replicate`). Default false. */
  readonly replicate?: boolean;
  /** Log level of the host and its workers. Default DEFAULT_LOG_LEVEL. */
  readonly logLevel?: LogLevel;
  /** Logger of the host itself (workers log with their own pino at `logLevel`). */
  readonly logger?: Logger;
  /** See DEFAULT_RESTART_INITIAL_MS. */
  readonly restartInitialMs?: number;
  /** See DEFAULT_RESTART_MAX_MS. */
  readonly restartMaxMs?: number;
  /** See DEFAULT_STABLE_AFTER_MS. */
  readonly stableAfterMs?: number;
  /** See DEFAULT_START_TIMEOUT_MS. */
  readonly startTimeoutMs?: number;
  /** See DEFAULT_CLOSE_TIMEOUT_MS. */
  readonly closeTimeoutMs?: number;
  /**
   * The module each worker thread runs: by default this package's
   * shard-worker. A module that imports it may add to a worker (the tests'
   * fault injection does: packages/cluster/test/crashable-worker.ts). A .ts
   * module runs under tsx, as the default does from the sources.
   */
  readonly workerEntry?: URL | string;
}

export interface ResolvedShardHostOptions extends Required<ShardActorTuning> {
  readonly natsUrl: readonly string[];
  /** Of each shard, by index: `natsAccess`, or with `credentialsDir` its own seed and inbox. */
  readonly shardAccess: readonly NatsAccess[];
  readonly cluster: string;
  readonly dataDir: string;
  readonly shards: number;
  readonly firstShard: number;
  readonly join: boolean;
  readonly shard: ShardEngineOptions;
  readonly replicate: boolean;
  readonly logLevel: LogLevel;
  readonly logger: Logger | undefined;
  readonly restartInitialMs: number;
  readonly restartMaxMs: number;
  readonly stableAfterMs: number;
  readonly startTimeoutMs: number;
  readonly closeTimeoutMs: number;
  /** The worker module's URL, when not the default. */
  readonly workerEntry: string | undefined;
}

/** Most shards one host runs (each is a worker thread with its own NATS connection and LMDB environment). */
export const MAX_HOST_SHARDS = 256;

/** Fills in and checks ShardHostOptions; throws InvalidArgumentError naming the bad option. */
export function checkShardHostOptions(options: ShardHostOptions): ResolvedShardHostOptions {
  const o = record(options, "ShardHost options");
  const where = "ShardHost option";
  const restartInitialMs = int(
    o["restartInitialMs"],
    DEFAULT_RESTART_INITIAL_MS,
    0,
    `${where} "restartInitialMs"`,
  );
  const restartMaxMs = int(o["restartMaxMs"], DEFAULT_RESTART_MAX_MS, 0, `${where} "restartMaxMs"`);
  if (restartMaxMs < restartInitialMs) {
    throw new InvalidArgumentError(
      `${where} "restartMaxMs" (${restartMaxMs}) must be at least "restartInitialMs" (${restartInitialMs})`,
    );
  }
  const shard = engineOptions(o["shard"], `${where} "shard"`);
  try {
    structuredClone(shard);
  } catch {
    throw new InvalidArgumentError(`${where} "shard" must be plain data (it is sent to worker threads)`);
  }
  const natsUrl = urls(o["natsUrl"] ?? DEFAULT_NATS_URL, `${where} "natsUrl"`);
  const natsAccess = access(o["natsAccess"], natsUrl, `${where} "natsAccess"`);
  const cluster = token(o["cluster"] ?? DEFAULT_CLUSTER, `${where} "cluster"`);
  const shards = int(o["shards"], undefined, 1, `${where} "shards"`, MAX_HOST_SHARDS);
  const firstShard = int(o["firstShard"], 0, 0, `${where} "firstShard"`, 1_000_000);
  const credentialsDir =
    o["credentialsDir"] === undefined ? undefined : path(o["credentialsDir"], `${where} "credentialsDir"`);
  const shardAccess = Array.from({ length: shards }, (_, index): NatsAccess => {
    if (credentialsDir === undefined) return natsAccess;
    const own = {
      ...natsAccess,
      ...credentialsAccess(
        credentialsDir,
        cluster,
        hostShardId(firstShard + index),
        `${where} "credentialsDir"`,
      ),
    };
    return access(own, natsUrl, `${where} "natsAccess" with "credentialsDir"`);
  });
  return {
    natsUrl,
    shardAccess,
    cluster,
    dataDir: path(o["dataDir"], `${where} "dataDir"`),
    shards,
    firstShard,
    join: bool(o["join"], false, `${where} "join"`),
    shard,
    replicate: bool(o["replicate"], false, `${where} "replicate"`),
    logLevel: logLevel(o["logLevel"], `${where} "logLevel"`),
    logger: logger(o["logger"], `${where} "logger"`),
    restartInitialMs,
    restartMaxMs,
    stableAfterMs: int(o["stableAfterMs"], DEFAULT_STABLE_AFTER_MS, 0, `${where} "stableAfterMs"`),
    startTimeoutMs: int(o["startTimeoutMs"], DEFAULT_START_TIMEOUT_MS, 1, `${where} "startTimeoutMs"`),
    closeTimeoutMs: int(o["closeTimeoutMs"], DEFAULT_CLOSE_TIMEOUT_MS, 1, `${where} "closeTimeoutMs"`),
    workerEntry: workerEntry(o["workerEntry"], `${where} "workerEntry"`),
    ...checkTuning(o, where),
  };
}

// ----------------------------------------------------------- helpers

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError(`${what} must be an object`);
  }
  return v as Record<string, unknown>;
}

function int(v: unknown, fallback: number | undefined, min: number, name: string, max?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const upper = max ?? Number.MAX_SAFE_INTEGER;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > upper) {
    throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max ?? "∞"}, got ${describe(v)}`);
  }
  return v;
}

function bool(v: unknown, fallback: boolean, name: string): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw new InvalidArgumentError(`${name} must be a boolean, got ${describe(v)}`);
  return v;
}

function token(v: unknown, name: string): string {
  if (!isValidToken(v)) {
    throw new InvalidArgumentError(
      `${name} must be 1..${MAX_TOKEN_LENGTH} characters of A-Z a-z 0-9 _ -, got ${describe(v)}`,
    );
  }
  return v;
}

function nonEmpty(v: unknown, name: string): string {
  if (typeof v !== "string" || v.length === 0) {
    throw new InvalidArgumentError(`${name} must be a non-empty string, got ${describe(v)}`);
  }
  return v;
}

function path(v: unknown, name: string): string {
  if (typeof v !== "string" || v.length === 0) {
    throw new InvalidArgumentError(`${name} must be a non-empty path, got ${describe(v)}`);
  }
  return v;
}

function urls(v: unknown, name: string): readonly string[] {
  const list = typeof v === "string" ? v.split(",").map((s) => s.trim()) : v;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    !list.every((u): u is string => typeof u === "string" && u.length > 0)
  ) {
    throw new InvalidArgumentError(
      `${name} must be a server URL (or a list of them), like nats://127.0.0.1:4222; got ${describe(v)}`,
    );
  }
  return list;
}

function slotAssignment(v: unknown, name: string): SlotAssignment {
  try {
    return parseSlotSpec(v as SlotSpec | undefined);
  } catch (error) {
    throw new InvalidArgumentError(`${name}: ${(error as Error).message}`);
  }
}

function engineOptions(v: unknown, name: string): ShardEngineOptions {
  if (v === undefined) return {};
  const o = record(v, name);
  for (const forbidden of ["dataDir", "sameWorkflowPrerequisites", "partitionOf", "clock", "openJournal"]) {
    if (o[forbidden] !== undefined) {
      throw new InvalidArgumentError(`${name} cannot set "${forbidden}" (the actor sets it)`);
    }
  }
  // One place for each limit: the actor counts its prepared parts against them too.
  for (const limit of ["maxLiveTasks", "maxStoredBytes", "maxIdempotencyKeys"]) {
    if (o[limit] !== undefined) {
      throw new InvalidArgumentError(`${name} cannot set "${limit}": it is an option of its own`);
    }
  }
  return o as ShardEngineOptions;
}

function logger(v: unknown, name: string): Logger | undefined {
  if (v === undefined) return undefined;
  const l = v as Partial<Logger>;
  if (typeof l !== "object" || l === null || typeof l.child !== "function" || typeof l.info !== "function") {
    throw new InvalidArgumentError(`${name} must be a pino logger`);
  }
  return v as Logger;
}

function logLevel(v: unknown, name: string): LogLevel {
  if (v === undefined) return DEFAULT_LOG_LEVEL;
  if (typeof v !== "string" || !(LOG_LEVELS as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`${name} must be one of ${LOG_LEVELS.join(", ")}, got ${describe(v)}`);
  }
  return v as LogLevel;
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? `${v.slice(0, 79)}…` : v);
  if (v === null || v === undefined || typeof v !== "object") return String(v);
  return Array.isArray(v) ? "an array" : "an object";
}

/** Whether `level` is a log level this package accepts. */
export function isLogLevel(level: unknown): level is LogLevel {
  return typeof level === "string" && (LOG_LEVELS as readonly string[]).includes(level);
}

/** A module URL (a URL, or a string that parses as one), as its href. */
function workerEntry(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (v instanceof URL) return v.href;
  if (typeof v === "string" && URL.canParse(v)) return new URL(v).href;
  throw new InvalidArgumentError(`${where} must be a module URL, got ${JSON.stringify(v)}`);
}

/** The id of a host's shard `index`: `shard-<index>`. */
export function hostShardId(index: number): string {
  return `shard-${index}`;
}

/** A shard's seed file and inbox prefix in a credentials directory, or InvalidArgumentError. */
function credentialsAccess(dir: string, cluster: string, shardId: string, where: string): NatsAccess {
  try {
    return accessOf(dir, cluster, { role: "shard", shardId });
  } catch (error) {
    if (error instanceof NatsAccessError) throw new InvalidArgumentError(`${where}: ${error.message}`);
    throw error;
  }
}

/** NATS credentials and TLS, checked now (contradictions, unreadable files) against `servers`. */
function access(v: unknown, servers: readonly string[], where: string): NatsAccess {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null) throw new InvalidArgumentError(`${where} must be an object`);
  try {
    natsConnectionOptions(servers, v as NatsAccess);
  } catch (error) {
    if (error instanceof NatsAccessError) throw new InvalidArgumentError(`${where}: ${error.message}`);
    throw error;
  }
  return v as NatsAccess;
}

/**
 * Most lease long-polls a shard holds parked at once; one more is refused
 * as OVERLOADED (retryable; it granted nothing). Coordinators bound their
 * own (maxLongPolls), but a long-poll forwarded to the only shard waits
 * there uncounted by any coordinator, so the shard bounds what it holds
 * (the same bound as a coordinator's DEFAULT_MAX_LONG_POLLS).
 */
export const DEFAULT_MAX_PARKED_LEASES = 10_000;
/** How often a shard sweeps the id claims of tasks gone, ms (ShardActorTuning.claimSweepMs). */
export const DEFAULT_CLAIM_SWEEP_MS = 5_000;
/** Claim rows a sweep asks about at most: one round trip of that many `holds` in parallel. */
export const CLAIM_SWEEP_ROWS = 256;

/** An order window option: absent for 0 (exact order), else "shard" or a whole number up to MAX_ORDER_WINDOW. */
function orderWindowOf(value: unknown, what: string): OrderWindow {
  if (value === "shard") return value;
  return int(value, 0, 0, `${what} (or "shard")`, MAX_ORDER_WINDOW);
}

/** An id space option: absent for the default, else one of ID_SPACES. */
function idSpaceOf(value: unknown, what: string): IdSpace {
  if (value === undefined) return DEFAULT_ID_SPACE;
  if (isIdSpace(value)) return value;
  throw new InvalidArgumentError(
    `${what} must be one of ${ID_SPACES.join(", ")}, got ${JSON.stringify(value)}`,
  );
}
