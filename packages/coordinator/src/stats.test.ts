import { type SchedulerStats, UnknownTaskError } from "@frontier/core";
import { ProtocolError } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import { byShardOf, coverageOf, gatherStats, mergeStats } from "./stats.js";

function stats(over: Partial<SchedulerStats> & { runnable?: number } = {}): SchedulerStats {
  return {
    counts: {
      WAITING: 1,
      RUNNABLE: over.runnable ?? 0,
      LEASED: 0,
      COMPLETED: 2,
      FAILED: 0,
      CANCELLED: 0,
      EXPIRED: 0,
    },
    runnable: 0,
    oldestRunnableAgeMs: 0,
    frontierDeadline: null,
    leaseTimeouts: 0,
    attemptTimeouts: 0,
    deadlineMisses: 0,
    staleRejections: 0,
    retries: 0,
    leased: 0,
    ...over,
  };
}

describe("mergeStats", () => {
  it("sums counts and counters, keeps the worst age and the earliest frontier", () => {
    const merged = mergeStats([
      stats({ runnable: 3, oldestRunnableAgeMs: 50, frontierDeadline: 200, leaseTimeouts: 1, retries: 2 }),
      stats({ runnable: 4, oldestRunnableAgeMs: 900, frontierDeadline: 100, staleRejections: 5, leased: 2 }),
      stats({ frontierDeadline: null, deadlineMisses: 7, attemptTimeouts: 4 }),
    ]);
    expect(merged).toEqual({
      counts: { WAITING: 3, RUNNABLE: 7, LEASED: 0, COMPLETED: 6, FAILED: 0, CANCELLED: 0, EXPIRED: 0 },
      runnable: 7,
      oldestRunnableAgeMs: 900,
      frontierDeadline: 100,
      leaseTimeouts: 1,
      attemptTimeouts: 4,
      deadlineMisses: 7,
      staleRejections: 5,
      retries: 2,
      leased: 2,
    });
  });

  it("merges nothing into zeros with no frontier", () => {
    const merged = mergeStats([]);
    expect(merged.runnable).toBe(0);
    expect(merged.frontierDeadline).toBeNull();
    expect(Object.values(merged.counts).every((n) => n === 0)).toBe(true);
  });
});

describe("gatherStats", () => {
  it("merges the shards that answer and names the others with their error code", async () => {
    const result = await gatherStats(["b", "a", "c", "a", "d"], async (id) => {
      if (id === "b") throw new ProtocolError("TIMEOUT", "slow");
      if (id === "c") throw new UnknownTaskError("x");
      if (id === "d") throw new ProtocolError("SHARD_UNAVAILABLE", "disk full", { detail: "STORAGE_FULL" });
      return stats({ runnable: 2 });
    });
    expect([...result.shards.keys()]).toEqual(["a"]);
    expect(result.missing).toEqual([
      { shardId: "b", code: "TIMEOUT" },
      { shardId: "c", code: "UNKNOWN_TASK" },
      // Why a shard is unavailable, as it said.
      { shardId: "d", code: "SHARD_UNAVAILABLE", detail: "STORAGE_FULL" },
    ]);
    expect(result.merged.runnable).toBe(2);
    expect(coverageOf(result)).toEqual({
      answered: ["a"],
      missing: [
        { shardId: "b", code: "TIMEOUT" },
        { shardId: "c", code: "UNKNOWN_TASK" },
        { shardId: "d", code: "SHARD_UNAVAILABLE", detail: "STORAGE_FULL" },
      ],
    });
  });

  it("names the answering shards in id order, and no missing one when all answer", async () => {
    const result = await gatherStats(["s2", "s10", "s1"], async () => stats({ runnable: 1 }));
    expect(coverageOf(result)).toEqual({ answered: ["s1", "s10", "s2"], missing: [] });
  });

  it("gives each answering shard's own stats in the same order, with the slots it owns", async () => {
    const result = await gatherStats(["s2", "s1", "s3"], async (shardId) => {
      if (shardId === "s3") throw new ProtocolError("TIMEOUT", "slow");
      return stats({ runnable: shardId === "s1" ? 1 : 2 });
    });
    // s1 owns slots 0..9, s2 the rest; s3 (missing) is left out, owner or not.
    const owners = (slot: number) => (slot < 10 ? "s1" : slot < 1020 ? "s2" : "s3");
    expect(byShardOf(result, owners)).toEqual([
      { shardId: "s1", slots: 10, stats: stats({ runnable: 1 }) },
      { shardId: "s2", slots: 1010, stats: stats({ runnable: 2 }) },
    ]);
    expect(byShardOf(result, () => undefined).map((e) => e.slots)).toEqual([0, 0]);
  });
});
