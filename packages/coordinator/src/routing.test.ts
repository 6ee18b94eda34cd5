/**
 * Requests about one task, stats, several coordinators: through the
 * coordinator against stand-in shards on a real nats-server.
 */
import type { TaskInput } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { slotOfTask, subjectsFor } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { call, ok, refused, startTestCluster, type TestCluster } from "./test-shard.fixture.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(() => server.stop());

let c: TestCluster;
afterEach(() => c?.stop());

const ownerOf = (t: TaskInput) => c.shards.find((s) => s.shardId === c.ownerOf(slotOfTask(t)))!;

/** A task of workflow `wf` whose own id routes to another shard than its workflow does. */
function misroutedTask(wf: string): TaskInput {
  for (let i = 0; ; i++) {
    const t = { id: `${wf}-task-${i}`, workflowId: wf, deadline: 100 };
    if (c.ownerOf(slotOfTask({ id: t.id })) !== c.ownerOf(slotOfTask(t))) return t;
  }
}

/** Two workflows whose slots two different shards own (for tasks of id `id`), neither of them `not`. */
function workflowsOnTwoShards(id: string, not?: string): [string, string] {
  const ownerOfWf = (w: string) => c.ownerOf(slotOfTask({ id, workflowId: w }));
  let first: string | undefined;
  for (let i = 0; ; i++) {
    const w = `wf-${id}-${i}`;
    if (ownerOfWf(w) === not) continue;
    if (first === undefined) first = w;
    else if (ownerOfWf(w) !== ownerOfWf(first)) return [first, w];
  }
}

async function leaseOne(taskId: string, requestId = `lease-${taskId}`) {
  await c.announceAll();
  const reply = await ok(c.nc, c.cluster, {
    op: "lease",
    owner: "w",
    max: 1,
    leaseMs: 30_000,
    waitMs: 0,
    requestId,
  });
  const lease = reply.leases[0]!;
  expect(lease.taskId).toBe(taskId);
  return lease;
}

/** A lease secret as a shard makes them (the stand-in shards do not check it). */
const SECRET = "AAAAAAAAAAAAAAAAAAAAAA";

describe("task requests route to the owner of slotOf(workflowId ?? taskId)", () => {
  it("heartbeat, complete, fail, cancel, updateDeadline and getTask reach the owning shard", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const a: TaskInput = { id: "a", workflowId: "wf-a", deadline: 10 };
    const b: TaskInput = { id: "b", deadline: 20 };
    await ok(c.nc, c.cluster, { op: "submit", tasks: [a, b], idempotencyKey: "k" });
    const la = await leaseOne("a");
    const hb = await ok(c.nc, c.cluster, {
      op: "heartbeat",
      taskId: "a",
      workflowId: "wf-a",
      token: la.token,
      secret: SECRET,
      leaseMs: 60_000,
    });
    expect(hb.expiresAt).toBeGreaterThan(la.expiresAt);
    expect(
      await ok(c.nc, c.cluster, {
        op: "complete",
        taskId: "a",
        workflowId: "wf-a",
        token: la.token,
        secret: SECRET,
      }),
    ).toMatchObject({ duplicate: false });
    expect(
      await ok(c.nc, c.cluster, {
        op: "complete",
        taskId: "a",
        workflowId: "wf-a",
        token: la.token,
        secret: SECRET,
      }),
    ).toMatchObject({ duplicate: true });
    await ok(c.nc, c.cluster, { op: "updateDeadline", taskId: "b", deadline: 5 });
    const lb = await leaseOne("b");
    expect(
      await ok(c.nc, c.cluster, {
        op: "fail",
        taskId: "b",
        token: lb.token,
        secret: SECRET,
        retryable: false,
        reason: "boom",
      }),
    ).toMatchObject({ state: "FAILED" });
    const viewA = await ok(c.nc, c.cluster, { op: "getTask", taskId: "a", workflowId: "wf-a" });
    expect(viewA.task).toMatchObject({ id: "a", state: "COMPLETED" });
    expect(ownerOf(a).requests("complete")).toHaveLength(2);
    // The lease's secret travels with the request: the owning shard checks it.
    expect(
      ownerOf(a)
        .requests("complete")
        .map((r) => r.secret),
    ).toEqual([SECRET, SECRET]);
    expect(ownerOf(b).requests("fail")).toHaveLength(1);
    for (const s of c.shards) if (s !== ownerOf(a)) expect(s.requests("heartbeat")).toEqual([]);
  });

  it("release reaches the owning shard, and through the scatter one named without its workflow", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const owned: TaskInput = { id: "r", workflowId: "wf-r", deadline: 10 };
    const lost = misroutedTask("wf-release");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [owned, lost], idempotencyKey: "k" });
    const lr = await leaseOne("r");
    const held = { taskId: "r", workflowId: "wf-r", token: lr.token, secret: SECRET };
    expect(await ok(c.nc, c.cluster, { op: "release", ...held })).toMatchObject({ duplicate: false });
    expect(await ok(c.nc, c.cluster, { op: "release", ...held })).toMatchObject({ duplicate: true });
    expect(
      ownerOf(owned)
        .requests("release")
        .map((r) => r.secret),
    ).toEqual([SECRET, SECRET]);
    const view = await ok(c.nc, c.cluster, { op: "getTask", taskId: "r", workflowId: "wf-r" });
    expect(view.task).toMatchObject({ state: "RUNNABLE", attempts: 0, released: true });
    // The released holder's complete is fenced.
    expect(await refused(c.nc, c.cluster, { op: "complete", ...held })).toMatchObject({
      code: "STALE_LEASE",
    });
    const again = await leaseOne("r", "lease-r-again");
    expect(again.attempt).toBe(1);
    await ok(c.nc, c.cluster, { op: "complete", ...held, token: again.token });
    const ll = await leaseOne(lost.id);
    expect(
      await ok(c.nc, c.cluster, { op: "release", taskId: lost.id, token: ll.token, secret: SECRET }),
    ).toMatchObject({ duplicate: false });
  });

  it("passes on the owner's typed errors: STALE_LEASE, INVALID_STATE", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await ok(c.nc, c.cluster, { op: "submit", tasks: [{ id: "x", deadline: 1 }], idempotencyKey: "k" });
    const stale = await refused(c.nc, c.cluster, { op: "complete", taskId: "x", token: 999, secret: SECRET });
    expect(stale).toMatchObject({ code: "STALE_LEASE", taskId: "x", retryable: false });
    await ok(c.nc, c.cluster, { op: "cancel", taskId: "x", reason: "no" });
    const state = await refused(c.nc, c.cluster, { op: "updateDeadline", taskId: "x", deadline: 2 });
    expect(state).toMatchObject({ code: "INVALID_STATE", taskId: "x" });
  });

  it("finds a task named without its workflowId by asking the other shards", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const t = misroutedTask("wf-scatter");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [t], idempotencyKey: "k" });
    const view = await ok(c.nc, c.cluster, { op: "getTask", taskId: t.id });
    expect(view.task).toMatchObject({ id: t.id, workflowId: "wf-scatter" });
    const lease = await leaseOne(t.id);
    expect(
      await ok(c.nc, c.cluster, { op: "complete", taskId: t.id, token: lease.token, secret: SECRET }),
    ).toMatchObject({
      duplicate: false,
    });
    expect(ownerOf(t).requests("complete")).toHaveLength(1);
  });

  it("answers UNKNOWN_TASK (or a null task) only after every shard said so", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const error = await refused(c.nc, c.cluster, { op: "cancel", taskId: "ghost" });
    expect(error).toMatchObject({ code: "UNKNOWN_TASK", taskId: "ghost" });
    // Every shard was asked where it is (a read); none was asked to cancel.
    expect(c.shards.every((s) => s.requests("getTask").length === 1)).toBe(true);
    expect(c.shards.every((s) => s.requests("cancel").length === 0)).toBe(true);
    expect((await ok(c.nc, c.cluster, { op: "getTask", taskId: "ghost" })).task).toBeNull();
    // With a workflowId the owner's word is final: nobody else is asked.
    expect((await ok(c.nc, c.cluster, { op: "getTask", taskId: "ghost", workflowId: "wf" })).task).toBeNull();
    expect(c.shards.map((s) => s.requests("getTask").length).sort()).toEqual([2, 2, 3]);
  });

  it("refuses a second task of an id in another workflow on another shard (DUPLICATE_ID), nothing of its batch stored", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const [first, second] = workflowsOnTwoShards("dup");
    await ok(c.nc, c.cluster, {
      op: "submit",
      tasks: [{ id: "dup", workflowId: first, deadline: 1 }],
      idempotencyKey: `k-${first}`,
    });
    const error = await refused(c.nc, c.cluster, {
      op: "submit",
      tasks: [
        { id: "dup", workflowId: second, deadline: 2 },
        { id: "dup-sibling", workflowId: second, deadline: 3 },
      ],
      idempotencyKey: `k-${second}`,
    });
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.problems).toEqual([expect.objectContaining({ taskId: "dup", code: "DUPLICATE_ID" })]);
    const holder = c.shards.find(
      (s) => s.shardId === c.ownerOf(slotOfTask({ id: "dup", workflowId: second })),
    )!;
    expect(holder.engine.getTask("dup-sibling")).toBeUndefined();
    // By id alone, the one task of the id.
    expect((await ok(c.nc, c.cluster, { op: "getTask", taskId: "dup" })).task).toMatchObject({
      workflowId: first,
    });
  });

  it("acts on a task named by id alone only when one workflow holds that id; else AMBIGUOUS_TASK, nothing changed", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    // Two workflows owned by two different shards, each with a task "dup": a cluster refuses the
    // second now (one id space), but tasks stored before it did have no claim and may share an id.
    // Such tasks are put straight into the stand-ins' engines, as such a cluster's journals hold them,
    // on the two shards that are not the id's home (a task there is the id's claim).
    const [first, second] = workflowsOnTwoShards("dup", c.ownerOf(slotOfTask({ id: "dup" })));
    for (const [w, deadline] of [
      [first, 1],
      [second, 2],
    ] as const) {
      const shard = c.shards.find((s) => s.shardId === c.ownerOf(slotOfTask({ id: "dup", workflowId: w })))!;
      shard.engine.addTasks([{ id: "dup", workflowId: w, deadline }]);
    }
    for (const op of ["cancel", "getTask", "retry"] as const) {
      const error = await refused(c.nc, c.cluster, { op, taskId: "dup" });
      expect(error).toMatchObject({ code: "AMBIGUOUS_TASK", retryable: false });
      expect(error.message).toContain("name the workflow");
      expect([...(error.workflows ?? [])].sort()).toEqual([first, second].sort());
    }
    const changed = await refused(c.nc, c.cluster, { op: "updateDeadline", taskId: "dup", deadline: 5 });
    expect(changed.code).toBe("AMBIGUOUS_TASK");
    expect(c.shards.every((s) => s.requests("cancel").length === 0)).toBe(true);
    expect(c.shards.every((s) => s.requests("updateDeadline").length === 0)).toBe(true);
    // Named with its workflow, one is cancelled and the other is untouched.
    await ok(c.nc, c.cluster, { op: "cancel", taskId: "dup", workflowId: first, reason: "mine" });
    const other = await ok(c.nc, c.cluster, { op: "getTask", taskId: "dup", workflowId: second });
    expect(other.task).toMatchObject({ state: "RUNNABLE", deadline: 2 });
  });

  it("reaches a task named by id alone in two hops: its id's home, then its shard", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const t = misroutedTask("wf-hops");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [t], idempotencyKey: "k" });
    const before = c.shards.map((s) => s.received.length);
    expect((await ok(c.nc, c.cluster, { op: "getTask", taskId: t.id })).task).toMatchObject({ id: t.id });
    await ok(c.nc, c.cluster, { op: "cancel", taskId: t.id });
    const home = c.shards.find((s) => s.shardId === c.ownerOf(slotOfTask({ id: t.id })))!;
    // Per request: one locate at the home, one request at the holder; no other shard asked.
    expect(c.shards.map((s, i) => s.received.length - before[i]!)).toEqual(
      c.shards.map((s) => (s === home ? 2 : 0) + (s === ownerOf(t) ? 2 : 0)),
    );
    expect(home.requests("locate")).toHaveLength(2);
    expect(c.shards.every((s) => s.requests("getTask").length === (s === ownerOf(t) ? 1 : 0))).toBe(true);
  });

  it("cancels a task named by id alone at the one shard holding it", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const t = misroutedTask("wf-cancel");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [t], idempotencyKey: "k" });
    await ok(c.nc, c.cluster, { op: "cancel", taskId: t.id, reason: "by id" });
    expect(c.shards.map((s) => s.requests("cancel").length)).toEqual(
      c.shards.map((s) => (s === ownerOf(t) ? 1 : 0)),
    );
    const view = await ok(c.nc, c.cluster, { op: "getTask", taskId: t.id });
    expect(view.task).toMatchObject({ state: "CANCELLED", workflowId: "wf-cancel" });
  });

  it("does not say UNKNOWN_TASK while a shard that might hold the task cannot be asked", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const t = misroutedTask("wf-down");
    await ok(c.nc, c.cluster, { op: "submit", tasks: [t], idempotencyKey: "k" });
    ownerOf(t).stop();
    const error = await refused(c.nc, c.cluster, { op: "cancel", taskId: t.id });
    expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true });
  });
});

describe("no responders vs timeout", () => {
  it("says SHARD_UNAVAILABLE when the owning shard is down and TIMEOUT when it is slow, both retryable", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator({ shardTimeoutMs: 150 });
    const shard = c.shards[0]!;
    shard.hold.set("getTask", 1);
    const slow = await refused(c.nc, c.cluster, { op: "getTask", taskId: "t", workflowId: "w" });
    expect(slow).toMatchObject({ code: "TIMEOUT", retryable: true });
    expect(slow.message).toMatch(/within 150 ms/);
    shard.stop();
    const down = await refused(c.nc, c.cluster, { op: "getTask", taskId: "t", workflowId: "w" });
    expect(down).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true });
    expect(down.message).toMatch(/no responders/);
    shard.start();
    expect((await ok(c.nc, c.cluster, { op: "getTask", taskId: "t", workflowId: "w" })).task).toBeNull();
  });

  it("passes on a shard's unreadable reply as INTERNAL, not as the client's BAD_MESSAGE", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator();
    c.shards[0]!.stop();
    const sub = c.nc.subscribe(subjectsFor(c.cluster).shardAll("s0"), {
      callback: (_e, msg) => {
        msg.respond(Uint8Array.from([0xc1]));
      },
    });
    try {
      const error = await refused(c.nc, c.cluster, { op: "getTask", taskId: "t", workflowId: "w" });
      expect(error).toMatchObject({ code: "INTERNAL" });
      expect(error.message).toMatch(/shard s0 sent an unreadable reply/);
    } finally {
      sub.unsubscribe();
    }
  });
});

describe("stats", () => {
  it("merges every shard's stats", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const tasks = Array.from({ length: 30 }, (_, i) => ({ id: `s-${i}`, deadline: 1_000 + i }));
    await ok(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey: "k" });
    const { stats, shards } = await ok(c.nc, c.cluster, { op: "stats" });
    expect(stats.runnable).toBe(30);
    expect(stats.counts.RUNNABLE).toBe(30);
    expect(stats.frontierDeadline).toBe(1_000);
    expect(shards).toEqual({ answered: ["s0", "s1", "s2"], missing: [] });
    expect(c.shards.every((s) => s.requests("stats").length === 1)).toBe(true);
  });

  it("answers with the shards that answered when some do not, and names the others", async () => {
    c = await startTestCluster(3, { server });
    const coordinator = await c.startCoordinator({ statsTimeoutMs: 150 });
    await ok(c.nc, c.cluster, { op: "submit", tasks: [{ id: "one", deadline: 1 }], idempotencyKey: "k" });
    c.shards[1]!.stop();
    c.shards[2]!.hold.set("stats", Number.POSITIVE_INFINITY);
    const { stats, shards } = await ok(c.nc, c.cluster, { op: "stats" });
    expect(stats.runnable).toBe(ownerOf({ id: "one", deadline: 1 }).shardId === "s0" ? 1 : 0);
    expect(shards).toEqual({
      answered: ["s0"],
      missing: [
        { shardId: "s1", code: "SHARD_UNAVAILABLE" },
        { shardId: "s2", code: "TIMEOUT" },
      ],
    });
    const gathered = await coordinator.clusterStats();
    expect(gathered.missing).toEqual([
      { shardId: "s1", code: "SHARD_UNAVAILABLE" },
      { shardId: "s2", code: "TIMEOUT" },
    ]);
    c.shards[0]!.stop();
    const none = await refused(c.nc, c.cluster, { op: "stats" });
    expect(none).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true });
  });
});

describe("several coordinators", () => {
  it("share the queue group: each request is answered once, by one of them", async () => {
    c = await startTestCluster(2, { server });
    const a = await c.startCoordinator({ metricsPort: 0 });
    const b = await c.startCoordinator({ metricsPort: 0 });
    const n = 60;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        ok(c.nc, c.cluster, {
          op: "submit",
          tasks: [{ id: `q-${i}`, deadline: i }],
          idempotencyKey: `q-${i}`,
        }),
      ),
    );
    expect(replies.every((r) => r.accepted === 1 && !r.replayed)).toBe(true);
    const served = async (url: string) => {
      const text = await (await fetch(url)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith('frontier_coordinator_requests_total{op="submit",code="OK"}'));
      return line === undefined ? 0 : Number(line.split(" ")[1]);
    };
    const [na, nb] = [await served(a.metricsUrl!), await served(b.metricsUrl!)];
    expect(na + nb).toBe(n);
    expect(na).toBeGreaterThan(0);
    expect(nb).toBeGreaterThan(0);
    // Closing one leaves the other serving.
    await a.close();
    expect((await ok(c.nc, c.cluster, { op: "stats" })).stats.runnable).toBe(n);
  });
});

describe("lifecycle", () => {
  it("stops answering on close; another coordinator takes over", async () => {
    c = await startTestCluster(1, { server });
    const a = await c.startCoordinator();
    await a.close();
    await a.close(); // idempotent
    await expect(call(c.nc, c.cluster, { op: "stats" }, 500)).rejects.toThrow();
    await c.startCoordinator();
    expect((await ok(c.nc, c.cluster, { op: "stats" })).stats.runnable).toBe(0);
  });
});
