import type { ClusterStats } from "@frontier/client";
import { describe, expect, it } from "vitest";
import { statsLines } from "./format.js";

function clusterStats(shards: ClusterStats["shards"]): ClusterStats {
  return {
    counts: { WAITING: 1, RUNNABLE: 2, LEASED: 0, COMPLETED: 3, FAILED: 0, CANCELLED: 0, EXPIRED: 0 },
    runnable: 2,
    oldestRunnableAgeMs: 1_500,
    frontierDeadline: 1_700_000_000_000,
    leaseTimeouts: 0,
    deadlineMisses: 0,
    staleRejections: 0,
    retries: 0,
    leased: 0,
    shards,
  };
}

describe("statsLines", () => {
  it("says how many shards the numbers cover, and nothing partial when all answered", () => {
    const lines = statsLines("prod", clusterStats({ answered: ["shard-0", "shard-1"], missing: [] }));
    expect(lines[0]).toBe('cluster "prod": 6 tasks on 2 shards');
    expect(lines[1]).toBe("  WAITING 1  RUNNABLE 2  LEASED 0  COMPLETED 3  FAILED 0  CANCELLED 0  EXPIRED 0");
    expect(lines.join("\n")).not.toMatch(/partial/);
  });

  it("names the shard that did not answer, with its code, right under the first line", () => {
    const lines = statsLines(
      "prod",
      clusterStats({ answered: ["shard-0", "shard-1"], missing: [{ shardId: "shard-2", code: "TIMEOUT" }] }),
    );
    expect(lines.slice(0, 2)).toEqual([
      'cluster "prod": 6 tasks on 2 of 3 shards',
      "  partial: shard-2 did not answer (TIMEOUT); its tasks are not counted",
    ]);
  });

  it("names every shard that did not answer", () => {
    const lines = statsLines(
      "prod",
      clusterStats({
        answered: ["shard-0"],
        missing: [
          { shardId: "shard-1", code: "SHARD_UNAVAILABLE" },
          { shardId: "shard-2", code: "TIMEOUT" },
        ],
      }),
    );
    expect(lines[0]).toBe('cluster "prod": 6 tasks on 1 of 3 shards');
    expect(lines[1]).toBe(
      "  partial: 2 shards did not answer: shard-1 (SHARD_UNAVAILABLE), shard-2 (TIMEOUT); their tasks are not counted",
    );
  });

  it("leaves the shard count out when the coordinator did not say", () => {
    const lines = statsLines("prod", clusterStats({ answered: [], missing: [] }));
    expect(lines[0]).toBe('cluster "prod": 6 tasks');
    expect(lines).toHaveLength(4);
  });
});
