import type { ClusterStats } from "@frontier/client";
import { Scheduler } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { statsLines, taskLines } from "./format.js";

function clusterStats(shards: ClusterStats["shards"]): ClusterStats {
  return {
    counts: { WAITING: 1, RUNNABLE: 2, LEASED: 0, COMPLETED: 3, FAILED: 0, CANCELLED: 0, EXPIRED: 0 },
    runnable: 2,
    oldestRunnableAgeMs: 1_500,
    frontierDeadline: 1_700_000_000_000,
    leaseTimeouts: 0,
    attemptTimeouts: 0,
    deadlineMisses: 0,
    staleRejections: 0,
    retries: 0,
    leased: 0,
    shards,
    byShard: [],
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
          { shardId: "shard-1", code: "SHARD_UNAVAILABLE", detail: "STORAGE_FULL" },
          { shardId: "shard-2", code: "TIMEOUT" },
        ],
      }),
    );
    expect(lines[0]).toBe('cluster "prod": 6 tasks on 1 of 3 shards');
    expect(lines[1]).toBe(
      "  partial: 2 shards did not answer: shard-1 (SHARD_UNAVAILABLE: STORAGE_FULL), shard-2 (TIMEOUT); their tasks are not counted",
    );
  });

  it("leaves the shard count out when the coordinator did not say", () => {
    const lines = statsLines("prod", clusterStats({ answered: [], missing: [] }));
    expect(lines[0]).toBe('cluster "prod": 6 tasks');
    expect(lines).toHaveLength(4);
  });
});

describe("taskLines", () => {
  // Views from the real engine: b depends on a; cancelling a cancels b.
  function views() {
    const engine = new Scheduler();
    engine.addTasks([
      { id: "a", deadline: 1, workflowId: "w" },
      { id: "b", deadline: 2, workflowId: "w", prerequisites: ["a"] },
    ]);
    const waiting = engine.getTask("b")!;
    engine.cancel("a");
    return { waiting, cancelled: engine.getTask("b")! };
  }

  it("shows each prerequisite's state: a cancelled one reads CANCELLED, not '0 not completed'", () => {
    const { cancelled } = views();
    expect(cancelled).toMatchObject({ state: "CANCELLED", unmetPrerequisites: 0 });
    const lines = taskLines(cancelled, new Map([["a", "CANCELLED"]]));
    expect(lines).toContain("  prerequisites  a (CANCELLED)");
    expect(lines.join("\n")).not.toMatch(/not completed/);
    expect(taskLines(cancelled, new Map([["a", null]]))).toContain("  prerequisites  a (not found)");
  });

  it("shows a delayed start, the run time limit, and when a leased attempt times out", () => {
    const engine = new Scheduler({ now: () => 1_700_000_000_000 });
    engine.addTasks([
      { id: "later", deadline: 1_800_000_000_000, notBefore: 1_700_000_060_000 },
      { id: "bounded", deadline: 1_800_000_000_000, timeoutMs: 90_000 },
    ]);
    const waiting = taskLines(engine.getTask("later")!).join("\n");
    expect(waiting).toMatch(/state +WAITING/);
    expect(waiting).toMatch(/not before +.*2023-11-14T22:14:20/);
    engine.lease("w", { leaseMs: 30_000 });
    const leased = taskLines(engine.getTask("bounded")!).join("\n");
    expect(leased).toMatch(/timeout +90000 ms per attempt/);
    expect(leased).toMatch(/times out +.*2023-11-14T22:14:50/);
  });

  it("says a task's token is that of a lease released unstarted, until the next grant", () => {
    const engine = new Scheduler();
    engine.addTasks([{ id: "r", deadline: 1 }]);
    const [lease] = engine.lease("w");
    engine.release("r", lease!.token);
    const released = taskLines(engine.getTask("r")!).join("\n");
    expect(released).toMatch(/attempts +0 of 5/);
    expect(released).toMatch(new RegExp(`token +${lease!.token} \\(released unstarted\\)`));
    engine.lease("w");
    expect(taskLines(engine.getTask("r")!).join("\n")).not.toMatch(/released/);
  });

  it("counts what a waiting task still waits for, and names only the first 20 prerequisites", () => {
    const { waiting } = views();
    expect(taskLines(waiting, new Map([["a", "RUNNABLE"]]))).toContain(
      "  prerequisites  a (RUNNABLE) — 1 not completed",
    );
    const many = { ...waiting, prerequisites: Array.from({ length: 23 }, (_, i) => `p${i}`) };
    const states = new Map(many.prerequisites.slice(0, 20).map((id) => [id, "COMPLETED" as const]));
    const row = taskLines(many, states).find((l) => l.includes("prerequisites")) ?? "";
    expect(row).toMatch(/p19 \(COMPLETED\), and 3 more — 1 not completed$/);
    expect(row).not.toMatch(/p20/);
  });
});

describe("task types in the output", () => {
  it("status lists runnable/leased per type once a task of another type than the default is there", () => {
    const plain = statsLines("prod", {
      ...clusterStats({ answered: ["shard-0"], missing: [] }),
      types: [{ type: "default", runnable: 2, leased: 0 }],
    });
    expect(plain.join("\n")).not.toMatch(/types/);
    const typed = statsLines("prod", {
      ...clusterStats({ answered: ["shard-0"], missing: [] }),
      types: [
        { type: "default", runnable: 1, leased: 0 },
        { type: "img", runnable: 1, leased: 2 },
      ],
      typesOmitted: 3,
    });
    expect(typed.at(-1)).toBe("  types (runnable/leased): default 1/0  img 1/2  and 3 more");
  });

  it("show names a task's type, and leaves the default out", () => {
    const s = new Scheduler({ now: () => 0 });
    s.addTasks([
      { id: "a", deadline: 1, type: "img" },
      { id: "b", deadline: 1 },
    ]);
    expect(taskLines(s.getTask("a")!)).toContain("  type      img");
    expect(taskLines(s.getTask("b")!).join("\n")).not.toMatch(/type/);
  });
});
