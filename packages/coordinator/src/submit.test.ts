/**
 * Submit through the coordinator against stand-in shards on a real
 * nats-server: forwarding to one shard, two-phase across several (nothing
 * half-accepted), commit retries, idempotent resubmits, unowned slots, and
 * validation in the thread pool while the coordinator keeps answering.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TaskInput } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { decodeReply, PROTOCOL_VERSION, slotOfTask as slotOf, subjectsFor } from "@frontier/protocol";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, idOn, ok, refused, startTestCluster, type TestCluster, until } from "./test-shard.fixture.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(() => server.stop());

const task = (id: string, extra: Partial<TaskInput> = {}): TaskInput => ({ id, deadline: 1_000, ...extra });

/** `n` tasks of their own workflows, spread over every shard. */
function spread(c: TestCluster, prefix: string, perShard: number): TaskInput[] {
  return c.shards.flatMap((s) =>
    Array.from({ length: perShard }, (_, i) =>
      task(idOn(s.shardId, c.ownerOf, `${prefix}-${s.shardId}-${i}`)),
    ),
  );
}

describe("one shard", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
  });
  afterAll(() => c.stop());

  it("forwards a batch whose tasks and ids' homes are all on one shard as a submit, under the client's key", async () => {
    // Ids homed on the shard of their workflow's slot: their claims go with the tasks.
    const owner = c.ownerOf(slotOf({ id: "x", workflowId: "wf-1" }))!;
    const a = idOn(owner, c.ownerOf, "a");
    const b = idOn(owner, c.ownerOf, "b");
    const tasks = [task(a, { workflowId: "wf-1" }), task(b, { workflowId: "wf-1", prerequisites: [a] })];
    const reply = await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "one-1" });
    expect(reply).toMatchObject({ accepted: 2, replayed: false });
    const holder = c.shards.filter((s) => s.requests("submit").length > 0);
    expect(holder).toHaveLength(1);
    expect(holder[0]!.requests("submit")[0]).toEqual({
      op: "submit",
      tasks,
      idempotencyKey: "one-1",
      claims: [
        { taskId: a, workflowId: "wf-1" },
        { taskId: b, workflowId: "wf-1" },
      ],
    });
    expect(c.shards.every((s) => s.requests("prepare").length === 0)).toBe(true);
    const again = await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "one-1" });
    expect(again).toMatchObject({ accepted: 2, replayed: true });
    expect(holder[0]!.engine.stats().counts.RUNNABLE + holder[0]!.engine.stats().counts.WAITING).toBe(2);
  });

  it("passes on the shard's rejection", async () => {
    const id = idOn("s1", c.ownerOf, "taken");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [task(id)], idempotencyKey: "taken-1" });
    const error = await refused(c.nc, c.cluster, {
      op: "submit",
      tasks: [task(id)],
      idempotencyKey: "taken-2",
    });
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.problems).toEqual([expect.objectContaining({ taskId: id, code: "DUPLICATE_ID" })]);
  });

  it("refuses an empty batch (INVALID_ARGUMENT), asking no shard", async () => {
    const before = c.shards.map((s) => s.received.length);
    // The codec refuses to encode it, so it is packed by hand, as a peer without our codec could.
    const bytes = new Packr({ useRecords: false }).pack({
      v: PROTOCOL_VERSION,
      kind: "request",
      op: "submit",
      tasks: [],
      idempotencyKey: "empty",
    });
    const reply = decodeReply(
      (await c.nc.request(subjectsFor(c.cluster).coord("submit"), bytes)).data,
      "submit",
    );
    expect(reply).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(c.shards.map((s) => s.received.length)).toEqual(before);
  });

  it("says SHARD_UNAVAILABLE (retryable) when the owning shard does not answer", async () => {
    const down = c.shards[2]!;
    down.stop();
    try {
      const error = await refused(c.nc, c.cluster, {
        op: "submit",
        tasks: [task(idOn("s2", c.ownerOf, "down"))],
        idempotencyKey: "down-1",
      });
      expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true });
      expect(error.message).toMatch(/s2/);
    } finally {
      down.start();
    }
  });
});

describe("several shards: two phases", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator({ shardTimeoutMs: 200, commitAttempts: 3, commitBackoffMs: 10 });
  });
  afterAll(() => c.stop());

  const total = () => c.shards.reduce((n, s) => n + s.engine.stats().runnable, 0);

  it("prepares every part, then commits every part", async () => {
    const tasks = spread(c, "tp", 2);
    const reply = await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "tp-1" });
    expect(reply).toMatchObject({ accepted: 6, replayed: false });
    for (const s of c.shards) {
      expect(s.requests("prepare").map((r) => r.tasks.map((t) => t.id))).toEqual([
        tasks.filter((t) => c.ownerOf(slotOf(t)) === s.shardId).map((t) => t.id),
      ]);
      expect(s.requests("commit")).toEqual([{ op: "commit", idempotencyKey: "tp-1" }]);
      expect(s.requests("submit")).toEqual([]);
      expect(s.engine.stats().runnable).toBe(2);
    }
    const again = await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "tp-1" });
    expect(again).toMatchObject({ accepted: 6, replayed: true });
    expect(total()).toBe(6);
  });

  it("rejects the whole batch when one part is rejected: nothing committed anywhere, every part aborted", async () => {
    const taken = idOn("s1", c.ownerOf, "reject-taken");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [task(taken)], idempotencyKey: "reject-0" });
    const before = c.shards.map((s) => s.engine.stats().runnable);
    const tasks = [...spread(c, "reject", 2), task(taken)];
    const error = await refused(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "reject-1" });
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.problems).toEqual([expect.objectContaining({ taskId: taken, code: "DUPLICATE_ID" })]);
    expect(c.shards.map((s) => s.engine.stats().runnable)).toEqual(before);
    for (const s of c.shards) {
      expect(s.requests("commit").filter((r) => r.idempotencyKey === "reject-1")).toEqual([]);
      expect(s.requests("abort").filter((r) => r.idempotencyKey === "reject-1")).toHaveLength(1);
      expect(s.prepared.has("reject-1")).toBe(false);
    }
  });

  it("merges the problems of every rejected part", async () => {
    const t0 = idOn("s0", c.ownerOf, "merge-taken");
    const t2 = idOn("s2", c.ownerOf, "merge-taken");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [task(t0), task(t2)], idempotencyKey: "merge-0" });
    const error = await refused(c.nc, c.cluster, {
      op: "submit",
      tasks: [...spread(c, "merge", 1), task(t0), task(t2)],
      idempotencyKey: "merge-1",
    });
    expect(error.problems?.map((p) => p.taskId).sort()).toEqual([t0, t2].sort());
  });

  it("retries a commit that times out, and the submit succeeds", async () => {
    c.shards[1]!.hold.set("commit", 1);
    const tasks = spread(c, "retry", 1);
    const reply = await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "retry-1" });
    expect(reply).toMatchObject({ accepted: 3, replayed: false });
    expect(c.shards[1]!.requests("commit").filter((r) => r.idempotencyKey === "retry-1")).toHaveLength(1);
    for (const s of c.shards)
      expect(s.engine.getTask(tasks.find((t) => c.ownerOf(slotOf(t)) === s.shardId)!.id)).toBeDefined();
  });

  it("fails retryably when a commit keeps failing, and the client's retry with the same key finishes it", async () => {
    c.shards[2]!.hold.set("commit", 3); // every attempt the coordinator makes
    const tasks = spread(c, "finish", 2);
    const error = await refused(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "finish-1" });
    expect(error).toMatchObject({ code: "TIMEOUT", retryable: true });
    expect(error.message).toMatch(/partly committed/);
    const reply = await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "finish-1" });
    expect(reply).toMatchObject({ accepted: 6, replayed: false });
    for (const t of tasks) {
      const holder = c.shards.find((s) => s.shardId === c.ownerOf(slotOf(t)))!;
      expect(holder.engine.getTask(t.id)?.state).toBe("RUNNABLE");
    }
    // Nothing added twice: a third try is a pure replay.
    expect(await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "finish-1" })).toMatchObject({
      accepted: 6,
      replayed: true,
    });
  });

  it("aborts every part when a prepare times out, and says TIMEOUT", async () => {
    c.shards[0]!.hold.set("prepare", 1);
    const error = await refused(c.nc, c.cluster, {
      op: "submit",
      tasks: spread(c, "ptime", 1),
      idempotencyKey: "ptime-1",
    });
    expect(error).toMatchObject({ code: "TIMEOUT", retryable: true });
    for (const s of c.shards) {
      expect(s.requests("abort").filter((r) => r.idempotencyKey === "ptime-1")).toHaveLength(1);
      expect(s.prepared.has("ptime-1")).toBe(false);
    }
  });
});

describe("one report per rejected batch", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator({ shardTimeoutMs: 300 });
  });
  afterAll(() => c.stop());

  /** A batch with four problems, two batch-local and two only its shards can see, over both shards. */
  async function fourProblems(prefix: string) {
    const a = idOn("s0", c.ownerOf, `${prefix}-wa`); // a workflow on s0
    const b = idOn("s1", c.ownerOf, `${prefix}-wb`); // a workflow on s1
    const taken = `${prefix}-taken`;
    await ok(c.nc, c.cluster, {
      op: "submit",
      tasks: [task(taken, { workflowId: a })],
      idempotencyKey: `${prefix}-0`,
    });
    const tasks = [
      task(`${prefix}-fine`, { workflowId: a }),
      task(`${prefix}-self`, { workflowId: a, prerequisites: [`${prefix}-self`] }),
      task(taken, { workflowId: a }),
      task(`${prefix}-c1`, { workflowId: b, prerequisites: [`${prefix}-c2`] }),
      task(`${prefix}-c2`, { workflowId: b, prerequisites: [`${prefix}-c1`] }),
      task(`${prefix}-orphan`, { workflowId: b, prerequisites: [`${prefix}-ghost`] }),
    ];
    return { a, b, taken, tasks };
  }

  const stored = () =>
    c.shards.reduce((n, s) => n + Object.values(s.engine.stats().counts).reduce((a, b) => a + b, 0), 0);

  it("lists batch-local and shard-side problems at once, in batch order, and reserves or stores nothing", async () => {
    const { a, taken, tasks } = await fourProblems("four");
    const before = stored();
    const error = await refused(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "four-1" });
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.problems?.map((p) => [p.taskId, p.code])).toEqual([
      ["four-self", "SELF_DEPENDENCY"],
      [taken, "DUPLICATE_ID"],
      ...(error.problems ?? [])
        .filter((p) => p.code === "CYCLE")
        .map((p) => [p.taskId, "CYCLE"])
        .sort(),
      ["four-orphan", "UNKNOWN_PREREQUISITE"],
    ]);
    expect(error.problems?.filter((p) => p.code === "CYCLE").length).toBeGreaterThan(0);
    expect(error.problems?.find((p) => p.code === "UNKNOWN_PREREQUISITE")?.message).toMatch(/four-ghost/);
    // Each shard was asked once, to check its own part; nothing was prepared, submitted or committed.
    for (const s of c.shards) {
      const checks = s.requests("check");
      expect(checks).toHaveLength(1);
      expect(checks[0]!.tasks.every((t) => c.ownerOf(slotOf(t)) === s.shardId)).toBe(true);
      for (const op of ["prepare", "commit", "abort"] as const) {
        expect(s.requests(op).filter((r) => r.idempotencyKey === "four-1")).toEqual([]);
      }
      expect(s.requests("submit").filter((r) => r.idempotencyKey === "four-1")).toEqual([]);
      expect(s.prepared.size).toBe(0);
    }
    expect(before).toBeGreaterThan(0);
    expect(stored()).toBe(before);
    // Nothing was reserved: the batch with its problems fixed is accepted at once.
    const fixed = [
      task("four-fine", { workflowId: a }),
      task("four-self", { workflowId: a }),
      ...tasks.slice(3, 4).map((t) => ({ ...t, prerequisites: [] })),
      tasks[4]!,
      { ...tasks[5]!, prerequisites: [] },
    ];
    expect(await ok(c.nc, c.cluster, { op: "submit", tasks: fixed, idempotencyKey: "four-2" })).toMatchObject(
      {
        accepted: 5,
      },
    );
  });

  it("sends a duplicate id to its shard once, and reports the same problem once", async () => {
    const a = idOn("s0", c.ownerOf, "dup-wa");
    const tasks = [
      task("dup-x", { workflowId: a, prerequisites: ["dup-x"] }),
      task("dup-x", { workflowId: a }),
    ];
    const checksBefore = c.shards[0]!.requests("check").length;
    const error = await refused(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "dup-1" });
    expect(error.problems?.map((p) => [p.taskId, p.code])).toEqual([
      ["dup-x", "DUPLICATE_ID"],
      ["dup-x", "SELF_DEPENDENCY"],
    ]);
    const checks = c.shards[0]!.requests("check").slice(checksBefore);
    expect(checks.map((r) => r.tasks.map((t) => t.id))).toEqual([["dup-x"]]);
  });

  it("asks no shard to check a valid batch (no extra round trip)", async () => {
    const before = c.shards.map((s) => s.requests("check").length);
    const tasks = spread(c, "valid", 2);
    expect(await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "valid-1" })).toMatchObject({
      accepted: 4,
    });
    expect(c.shards.map((s) => s.requests("check").length)).toEqual(before);
  });

  it("still rejects with what it knows when a shard does not answer the check", async () => {
    const { tasks } = await fourProblems("mute");
    c.shards[1]!.hold.set("check", 1);
    const error = await refused(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "mute-1" });
    expect(error.code).toBe("VALIDATION_FAILED");
    const codes = error.problems?.map((p) => p.code);
    // s0's part and the batch-local problems; s1's unknown prerequisite is left out.
    expect(codes).toContain("SELF_DEPENDENCY");
    expect(codes).toContain("DUPLICATE_ID");
    expect(codes).toContain("CYCLE");
    expect(codes).not.toContain("UNKNOWN_PREREQUISITE");
  });
});

describe("unowned slots", () => {
  it("rejects a batch touching an unowned slot, retryably, before any shard sees it", async () => {
    const c = await startTestCluster(1, { server, owner: (slot) => (slot % 2 === 0 ? "s0" : undefined) });
    try {
      await c.startCoordinator();
      const owned = idOn("s0", c.ownerOf, "owned");
      const unowned = idOn("nobody", (slot) => (slot % 2 === 1 ? "nobody" : undefined), "unowned");
      const error = await refused(c.nc, c.cluster, {
        op: "submit",
        tasks: [task(owned), task(unowned)],
        idempotencyKey: "u-1",
      });
      expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true });
      expect(error.message).toMatch(/no shard owns slot/);
      expect(c.shards[0]!.received).toEqual([]);
      expect(
        await ok(c.nc, c.cluster, { op: "submit", tasks: [task(owned)], idempotencyKey: "u-2" }),
      ).toMatchObject({ accepted: 1 });
    } finally {
      await c.stop();
    }
  });
});

describe("validation in the thread pool", () => {
  it("checks large batches in the pool (tsx worker from src) with the same verdicts as inline", async () => {
    const c = await startTestCluster(2, { server });
    try {
      await c.startCoordinator({ inlineValidationMaxWork: 0 });
      const cycle = await refused(c.nc, c.cluster, {
        op: "submit",
        tasks: [
          task("x", { workflowId: "w", prerequisites: ["y"] }),
          task("y", { workflowId: "w", prerequisites: ["x"] }),
          task("x", { workflowId: "w" }),
        ],
        idempotencyKey: "pool-1",
      });
      expect(cycle.code).toBe("VALIDATION_FAILED");
      expect(cycle.problems?.map((p) => p.code).sort()).toEqual(["CYCLE", "DUPLICATE_ID"]);
      const tasks = Array.from({ length: 300 }, (_, i) =>
        task(`chain-${i}`, {
          workflowId: "chain",
          prerequisites: i === 0 ? [] : [`chain-${i - 1}`],
          payload: { i },
        }),
      );
      expect(await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "pool-2" })).toMatchObject({
        accepted: 300,
      });
    } finally {
      await c.stop();
    }
  });

  it("keeps answering while a big batch is being validated", async () => {
    const dir = mkdtempSync(join(tmpdir(), "frontier-gate-"));
    const gate = join(dir, "open");
    process.env["FRONTIER_TEST_VALIDATION_GATE"] = gate;
    const c = await startTestCluster(2, { server });
    try {
      const coordinator = await c.startCoordinator({
        validationWorker: new URL("./gated-validate-worker.fixture.ts", import.meta.url),
        inlineValidationMaxWork: 100,
        shardTimeoutMs: 5_000,
      });
      const tasks = Array.from({ length: 1_000 }, (_, i) => task(`big-${i}`, { workflowId: `w${i % 50}` }));
      let settled = false;
      const pending = call(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "big-1" }, 30_000).finally(
        () => {
          settled = true;
        },
      );
      // The submit is in the coordinator's hands (held in the pool, behind the gate)...
      await until(() => coordinator.inspect().inflight === 1, "the submit to arrive");
      // ...and other requests are answered meanwhile.
      const stats = await ok(c.nc, c.cluster, { op: "stats" });
      expect(stats.stats.runnable).toBe(0);
      const small = await ok(c.nc, c.cluster, {
        op: "submit",
        tasks: [task("small")],
        idempotencyKey: "small",
      });
      expect(small.accepted).toBe(1);
      expect(settled).toBe(false);
      writeFileSync(gate, "");
      const reply = await pending;
      expect(reply).toMatchObject({ ok: true, accepted: 1_000 });
      expect(existsSync(gate)).toBe(true);
    } finally {
      await c.stop();
      delete process.env["FRONTIER_TEST_VALIDATION_GATE"];
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
