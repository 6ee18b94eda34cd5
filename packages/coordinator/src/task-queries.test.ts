/**
 * listTasks and getWorkflow through a coordinator: the merge of the shards'
 * pages (pure), then against TestShards (real engine, real nats-server):
 * paging in global order, ties between shards, a shard that does not
 * answer, getWorkflow at the owner only, retry by id alone.
 */
import type { TaskInput, TaskSummary } from "@frontier/core";
import type { ListCursor, ListTasksRequest, OkReply } from "@frontier/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mergePages, type ShardPage } from "./task-queries.js";
import { call, idOn, ok, refused, startTestCluster, submit, type TestCluster } from "./test-shard.fixture.js";

const summary = (id: string, deadline: number): TaskSummary => ({
  id,
  state: "RUNNABLE",
  deadline,
  attempts: 0,
  maxAttempts: 5,
});

describe("mergePages", () => {
  it("stops at the least last task of the shards with more, so no shard's task is skipped", () => {
    const pages: ShardPage[] = [
      // s0 has more after 20: its next tasks may come before s1's 30.
      {
        shardId: "s0",
        tasks: [summary("a", 10), summary("b", 20)],
        next: { deadline: 20, id: "b", shardId: "s0" },
      },
      { shardId: "s1", tasks: [summary("c", 15), summary("d", 30)], next: null },
    ];
    expect(mergePages(pages, 10)).toEqual({
      tasks: [summary("a", 10), summary("c", 15), summary("b", 20)],
      next: { deadline: 20, id: "b", shardId: "s0" },
    });
  });

  it("orders equal (deadline, id) by shard id, cuts at the limit, and ends with next null", () => {
    const pages: ShardPage[] = [
      { shardId: "s1", tasks: [summary("x", 5)], next: null },
      { shardId: "s0", tasks: [summary("x", 5), summary("y", 6)], next: null },
    ];
    expect(mergePages(pages, 2)).toEqual({
      tasks: [summary("x", 5), summary("x", 5)],
      next: { deadline: 5, id: "x", shardId: "s1" },
    });
    expect(mergePages(pages, 3).next).toBeNull();
    expect(mergePages([], 3)).toEqual({ tasks: [], next: null });
  });
});

describe("listTasks, getWorkflow and retry through a coordinator", () => {
  let c: TestCluster;
  /** A workflow id routed to each shard. */
  let wf: string[];
  const submitted: { id: string; deadline: number; shardId: string }[] = [];

  beforeAll(async () => {
    c = await startTestCluster(3);
    await c.startCoordinator();
    wf = c.shards.map((s) => idOn(s.shardId, c.ownerOf, "wf"));
    const tasks: TaskInput[] = [];
    for (let i = 0; i < 30; i++) {
      const shard = i % 3;
      const deadline = 1_000 + (i % 7) * 10;
      tasks.push({ id: `t${String(i).padStart(2, "0")}`, deadline, workflowId: wf[shard]!, maxAttempts: 1 });
      submitted.push({ id: `t${String(i).padStart(2, "0")}`, deadline, shardId: `s${shard}` });
    }
    expect((await submit(c, tasks)).ok).toBe(true);
    // The same id and deadline on two shards (two workflows): both listed, s0's first. A cluster
    // refuses a second task of an id (one id space); tasks stored before it did may share one, so
    // they are put straight into the stand-ins' engines, as such a cluster's journals hold them.
    for (const shard of [1, 0]) {
      c.shards[shard]!.engine.addTasks([{ id: "twin", deadline: 1_000, workflowId: wf[shard]! }]);
      submitted.push({ id: "twin", deadline: 1_000, shardId: `s${shard}` });
    }
  }, 30_000);
  afterAll(() => c?.stop());

  const byKey = (a: (typeof submitted)[number], b: (typeof submitted)[number]) =>
    a.deadline - b.deadline || (a.id < b.id ? -1 : a.id > b.id ? 1 : a.shardId < b.shardId ? -1 : 1);

  it("pages through every shard's tasks in (deadline, id, shard) order, each once", async () => {
    const seen: string[] = [];
    let after: ListCursor | null = null;
    let pages = 0;
    do {
      const request: ListTasksRequest =
        after === null ? { op: "listTasks", limit: 7 } : { op: "listTasks", limit: 7, after };
      const page: OkReply<"listTasks"> = await ok(c.nc, c.cluster, request);
      expect(page.shards).toEqual({ answered: ["s0", "s1", "s2"], missing: [] });
      expect(page.tasks.length).toBeLessThanOrEqual(7);
      seen.push(...page.tasks.map((t) => `${t.id}@${t.deadline}`));
      after = page.next;
      pages++;
    } while (after !== null && pages < 20);
    expect(seen).toEqual([...submitted].sort(byKey).map((t) => `${t.id}@${t.deadline}`));
  });

  it("filters by state, workflow and deadline range across shards", async () => {
    const page = await ok(c.nc, c.cluster, {
      op: "listTasks",
      states: ["RUNNABLE"],
      workflowId: wf[2]!,
      deadlineFrom: 1_010,
      deadlineTo: 1_030,
      limit: 100,
    });
    const expected = submitted
      .filter((t) => t.shardId === "s2" && t.id !== "twin" && t.deadline >= 1_010 && t.deadline < 1_030)
      .sort(byKey)
      .map((t) => t.id);
    expect(expected.length).toBeGreaterThan(0);
    expect(page.tasks.map((t) => t.id)).toEqual(expected);
    expect(page.next).toBeNull();
  });

  it("names a shard that does not answer, and lists the others", async () => {
    c.shards[2]!.hold.set("listTasks", 1);
    const page = await ok(c.nc, c.cluster, { op: "listTasks", limit: 100 }, 10_000);
    expect(page.shards).toEqual({ answered: ["s0", "s1"], missing: [{ shardId: "s2", code: "TIMEOUT" }] });
    expect(page.tasks.map((t) => t.id).sort()).toEqual(
      submitted
        .filter((t) => t.shardId !== "s2")
        .map((t) => t.id)
        .sort(),
    );
  });

  it("asks only the owner of a workflow's slot for its graph", async () => {
    const before = c.shards.map((s) => s.requests("getWorkflow").length);
    const page = await ok(c.nc, c.cluster, { op: "getWorkflow", workflowId: wf[1]!, limit: 100 });
    expect(page.tasks.map((t) => t.id).sort()).toEqual(
      submitted
        .filter((t) => t.shardId === "s1")
        .map((t) => t.id)
        .sort(),
    );
    expect(page.tasks.every((t) => Array.isArray(t.prerequisites))).toBe(true);
    expect(c.shards.map((s, i) => s.requests("getWorkflow").length - before[i]!)).toEqual([0, 1, 0]);
  });

  it("retries a failed task named by id alone (located at its id's home), and refuses a live one", async () => {
    const shard = c.shards[2]!;
    const [lease] = shard.engine.lease("w", { max: 1, leaseMs: 60_000 });
    shard.engine.fail(lease!.taskId, lease!.token, { retryable: false, reason: "boom" });
    const failed = await ok(c.nc, c.cluster, { op: "listTasks", states: ["FAILED"], limit: 10 });
    expect(failed.tasks.map((t) => [t.id, t.reason])).toEqual([
      [lease!.taskId, "failed (not retryable): boom"],
    ]);
    expect((await ok(c.nc, c.cluster, { op: "retry", taskId: lease!.taskId })).state).toBe("RUNNABLE");
    const again = await refused(c.nc, c.cluster, { op: "retry", taskId: lease!.taskId });
    expect([again.code, again.state]).toEqual(["INVALID_STATE", "RUNNABLE"]);
    const unknown = await call(c.nc, c.cluster, { op: "retry", taskId: "nope" });
    expect(unknown.ok ? "ok" : unknown.error.code).toBe("UNKNOWN_TASK");
  });
});
