/**
 * Cluster-wide stats: every shard's `SchedulerStats`, merged. Counts and
 * counters add up; the starvation signal (oldest runnable age) is the worst
 * shard's; the frontier is the earliest shard's.
 */
import { type SchedulerStats, TaskState } from "@frontier/core";
import {
  mergeTypeCounts,
  type ShardCoverage,
  type ShardStatsEntry,
  SLOT_COUNT,
  toWireError,
} from "@frontier/protocol";

const STATES = Object.values(TaskState);

/** The shards' stats as one: sums, the largest oldest-runnable age, the least frontier deadline. O(shards). */
export function mergeStats(all: Iterable<SchedulerStats>): SchedulerStats {
  const shards = [...all];
  const counts = {} as Record<TaskState, number>;
  for (const s of STATES) counts[s] = 0;
  let runnable = 0;
  let oldestRunnableAgeMs = 0;
  let frontierDeadline: number | null = null;
  let leaseTimeouts = 0;
  let attemptTimeouts = 0;
  let deadlineMisses = 0;
  let staleRejections = 0;
  let retries = 0;
  let leased = 0;
  let remoteOwed = 0;
  for (const stats of shards) {
    for (const s of STATES) counts[s] += stats.counts[s] ?? 0;
    runnable += stats.runnable;
    oldestRunnableAgeMs = Math.max(oldestRunnableAgeMs, stats.oldestRunnableAgeMs);
    if (stats.frontierDeadline !== null) {
      frontierDeadline =
        frontierDeadline === null
          ? stats.frontierDeadline
          : Math.min(frontierDeadline, stats.frontierDeadline);
    }
    leaseTimeouts += stats.leaseTimeouts;
    attemptTimeouts += stats.attemptTimeouts;
    deadlineMisses += stats.deadlineMisses;
    staleRejections += stats.staleRejections;
    retries += stats.retries;
    leased += stats.leased;
    remoteOwed += stats.remoteOwed ?? 0;
  }
  return {
    counts,
    runnable,
    oldestRunnableAgeMs,
    frontierDeadline,
    leaseTimeouts,
    attemptTimeouts,
    deadlineMisses,
    staleRejections,
    retries,
    leased,
    ...mergeTypeCounts(shards),
    ...(remoteOwed > 0 ? { remoteOwed } : {}),
  };
}

export interface ShardStatsResult {
  /** Every answering shard's stats, merged. */
  readonly merged: SchedulerStats;
  /** Each answering shard's own stats. */
  readonly shards: ReadonlyMap<string, SchedulerStats>;
  /** Shards that did not answer in time, with the error code of the failure. */
  readonly missing: ShardCoverage["missing"];
}

/** Asks every shard in `shardIds` for its stats, in parallel, each bounded by the link's timeout. */
export async function gatherStats(
  shardIds: Iterable<string>,
  ask: (shardId: string) => Promise<SchedulerStats>,
): Promise<ShardStatsResult> {
  const ids = [...new Set(shardIds)].sort();
  const settled = await Promise.allSettled(ids.map(ask));
  const shards = new Map<string, SchedulerStats>();
  const missing: ShardCoverage["missing"][number][] = [];
  settled.forEach((r, i) => {
    const shardId = ids[i]!;
    if (r.status === "fulfilled") shards.set(shardId, r.value);
    else {
      const { code, detail } = toWireError(r.reason);
      missing.push(detail === undefined ? { shardId, code } : { shardId, code, detail });
    }
  });
  return { merged: mergeStats(shards.values()), shards, missing };
}

/**
 * Which shards the merged stats cover, for the stats reply, each list in id
 * order. Names every known shard: a cluster of more than MAX_SHARDS (more
 * shards than slots) gets a reply that does not encode, INTERNAL.
 */
export function coverageOf(result: ShardStatsResult): ShardCoverage {
  return { answered: [...result.shards.keys()], missing: result.missing };
}

/**
 * Each answering shard's own stats, in `coverageOf`'s order, with the slots
 * it owns by `ownerOf` (the coordinator's slot table), without per-type
 * counts (the cluster's are in the merged stats; per shard they would let
 * MAX_SHARDS entries outgrow one message). O(SLOT_COUNT + shards).
 */
export function byShardOf(
  result: ShardStatsResult,
  ownerOf: (slot: number) => string | undefined,
): ShardStatsEntry[] {
  const slots = new Map<string, number>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const owner = ownerOf(slot);
    if (owner !== undefined) slots.set(owner, (slots.get(owner) ?? 0) + 1);
  }
  return [...result.shards].map(([shardId, { types: _types, typesOmitted: _omitted, ...stats }]) => ({
    shardId,
    slots: slots.get(shardId) ?? 0,
    stats,
  }));
}
