/**
 * One report per rejected batch, over real shard actors behind a real
 * coordinator: a batch with problems the coordinator sees alone (a
 * self-dependency, a cycle) and problems only its shards see (an id taken, a
 * prerequisite unknown) is refused once, with all of them, and leaves
 * nothing stored or reserved on any shard.
 */

import type { FrontierClient } from "@frontier/client";
import { type TaskInput, ValidationError } from "@frontier/core";
import { slotOfTask } from "@frontier/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "rejections" });
  client = await cluster.client();
});

afterAll(async () => {
  await cluster?.stop();
});

/** A workflow id placed on shard `index` (the harness spreads slots n mod 2). */
function workflowOn(index: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (slotOfTask({ id }) % cluster.shards.length === index) return id;
  }
}

/** Every task each shard holds, and the prepared parts it keeps. */
function held(): { tasks: number; prepared: number }[] {
  return cluster.shards.map((s) => {
    const stats = s.stats();
    return { tasks: Object.values(stats.shard.counts).reduce((a, b) => a + b, 0), prepared: stats.prepared };
  });
}

describe("a rejected batch", () => {
  it("lists the problems of every shard and of the batch itself at once, and leaves nothing behind", async () => {
    const a = workflowOn(0, "wa");
    const b = workflowOn(1, "wb");
    await client.submit([{ id: "taken", deadline: 1_000, workflowId: a }]);
    const before = held();
    const tasks: TaskInput[] = [
      { id: "fine", deadline: 1_000, workflowId: a },
      { id: "self", deadline: 1_000, workflowId: a, prerequisites: ["self"] },
      { id: "taken", deadline: 1_000, workflowId: a },
      { id: "c1", deadline: 1_000, workflowId: b, prerequisites: ["c2"] },
      { id: "c2", deadline: 1_000, workflowId: b, prerequisites: ["c1"] },
      { id: "orphan", deadline: 1_000, workflowId: b, prerequisites: ["ghost"] },
    ];
    const error = await client.submit(tasks).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    const problems = (error as ValidationError).problems;
    const cycle = problems.filter((p) => p.code === "CYCLE").map((p) => [p.taskId, p.code]);
    expect(cycle.length).toBeGreaterThan(0);
    // In batch order: shard 0's self-dependency and taken id, shard 1's cycle and unknown prerequisite.
    expect(problems.map((p) => [p.taskId, p.code])).toEqual([
      ["self", "SELF_DEPENDENCY"],
      ["taken", "DUPLICATE_ID"],
      ...cycle,
      ["orphan", "UNKNOWN_PREREQUISITE"],
    ]);
    expect(held()).toEqual(before);
    expect(before.every((h) => h.prepared === 0)).toBe(true);

    // Nothing was reserved: the same batch with its problems fixed is accepted at once.
    const fixed = tasks
      .filter((t) => t.id !== "taken")
      .map((t) => (t.id === "c2" ? t : { ...t, prerequisites: [] }));
    expect(await client.submit(fixed)).toMatchObject({ accepted: 5 });
  });
});
