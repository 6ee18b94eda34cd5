import { FRONTIER_DEPTH_RANKS } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import type { ShardFrontier } from "./frontier-board.js";
import { parallelPlan } from "./lease.js";

/** A shard whose runnable keys are `keys` (ascending), announced with its depth at FRONTIER_DEPTH_RANKS. */
function shard(shardId: string, keys: readonly number[], withDepth = true): ShardFrontier {
  const depth = FRONTIER_DEPTH_RANKS.filter((rank) => rank <= keys.length).map((rank) => keys[rank - 1]!);
  return {
    shardId,
    key: keys[0] ?? null,
    taskId: keys.length > 0 ? `${shardId}-0` : null,
    deadline: keys[0] ?? null,
    runnable: keys.length,
    seq: 1,
    receivedAt: 0,
    ...(withDepth ? { depth } : {}),
  };
}

/** What the plan grants: each shard's tasks up to its maxKey, at most its max. */
function grants(plan: ReturnType<typeof parallelPlan>, keysOf: Record<string, readonly number[]>): number[] {
  return plan
    .flatMap((p) => keysOf[p.shard.shardId]!.filter((k) => k <= p.maxKey).slice(0, p.max))
    .sort((a, b) => a - b);
}

describe("parallelPlan", () => {
  it("hands out exactly the earliest tasks of interleaved shards in one round", () => {
    const keysOf = {
      a: Array.from({ length: 100 }, (_, i) => 2 * i),
      b: Array.from({ length: 100 }, (_, i) => 2 * i + 1),
    };
    const plan = parallelPlan([shard("a", keysOf.a), shard("b", keysOf.b)], 16);
    expect(plan.map((p) => p.shard.shardId)).toEqual(["a", "b"]);
    const got = grants(plan, keysOf);
    const all = [...keysOf.a, ...keysOf.b].sort((x, y) => x - y);
    // Exactly a prefix of the global order, and at most the room.
    expect(got).toEqual(all.slice(0, got.length));
    // The ranks are dense enough that one round fills most of the room.
    expect(got.length).toBeGreaterThanOrEqual(12);
    expect(plan.reduce((n, p) => n + p.max, 0)).toBeLessThanOrEqual(16);
  });

  it("is always a prefix of the global order within the room, whatever the keys", () => {
    for (let seed = 1; seed <= 200; seed++) {
      let x = seed;
      const rand = () => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return x / 2 ** 31;
      };
      const shards = 2 + Math.floor(rand() * 3);
      const keysOf: Record<string, number[]> = {};
      for (let s = 0; s < shards; s++) {
        const n = 1 + Math.floor(rand() * 600);
        keysOf[`s${s}`] = Array.from({ length: n }, () => Math.floor(rand() * 500)).sort((a, b) => a - b);
      }
      const room = 1 + Math.floor(rand() * 300);
      const candidates = Object.entries(keysOf)
        .map(([id, keys]) => shard(id, keys))
        .sort((a, b) => a.key! - b.key!);
      const plan = parallelPlan(candidates, room);
      if (plan.length === 0) continue;
      const got = grants(plan, keysOf);
      const all = Object.values(keysOf)
        .flat()
        .sort((a, b) => a - b);
      expect(got.length, `seed ${seed}`).toBeLessThanOrEqual(room);
      expect(got, `seed ${seed}`).toEqual(all.slice(0, got.length));
      // Every task up to the bound is handed out: none of them is left behind.
      const k = plan[0]!.maxKey;
      expect(got.length, `seed ${seed}`).toBe(all.filter((key) => key <= k).length);
    }
  });

  it("plans nothing for one shard, a shard without depth, or no room to share", () => {
    const a = shard("a", [1, 3, 5]);
    const b = shard("b", [2, 4, 6]);
    expect(parallelPlan([a], 10)).toEqual([]);
    expect(parallelPlan([a, shard("b", [2, 4], false)], 10)).toEqual([]);
    expect(parallelPlan([a, b], 1)).toEqual([]);
  });
});
