/**
 * Lease routing by task type through the coordinator against stand-in
 * shards (the real engine behind a real NATS responder): a lease naming
 * types is routed by those types' frontiers only, earliest deadline first
 * across shards, ties by task id; every ask carries the types; a long-poll
 * for a type parks and is woken only by that type's work.
 */
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { idOn, ok, startTestCluster, type TestCluster, until } from "./test-shard.fixture.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(() => server.stop());

let c: TestCluster;
afterEach(() => c?.stop());

let seq = 0;
const lease = (max: number, types?: string[], waitMs = 0, requestId = `r-${++seq}`) => ({
  op: "lease" as const,
  owner: "worker-1",
  max,
  leaseMs: 30_000,
  waitMs,
  requestId,
  ...(types === undefined ? {} : { types }),
});

/** Puts a task of `type` with `deadline` straight into shard `shardId`'s engine. */
function put(shardId: string, deadline: number, type?: string, prefix = type ?? "d"): string {
  const id = idOn(shardId, c.ownerOf, `${prefix}-${deadline}`);
  const shard = c.shards.find((s) => s.shardId === shardId)!;
  shard.engine.addTasks([{ id, deadline, ...(type === undefined ? {} : { type }) }]);
  return id;
}

describe("lease routing by task type", () => {
  it("routes by the named types' frontiers only, in global deadline order, never another type", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    // The default type comes first everywhere; the img tasks interleave across the shards.
    put("s0", 1);
    put("s1", 2);
    for (const d of [10, 30]) put("s0", d, "img");
    for (const d of [20, 40]) put("s1", d, "img");
    put("s1", 15, "mail");
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(10, ["img"], 0, "img"));
    expect(reply.leases.map((l) => [l.task.deadline, l.task.type])).toEqual([
      [10, "img"],
      [20, "img"],
      [30, "img"],
      [40, "img"],
    ]);
    // Every ask named the types, and was bounded by the other shard's first img task, not its first task.
    const asks = c.shards.flatMap((s) => s.requests("lease").filter((r) => r.requestId === "img"));
    expect(asks.every((r) => JSON.stringify(r.types) === '["img"]')).toBe(true);
    expect(c.shards[0]!.requests("lease")[0]).toMatchObject({ maxKey: 20 });
    // Two types: earliest first among them.
    put("s0", 12, "mail");
    await c.announceAll();
    const both = await ok(c.nc, c.cluster, lease(10, ["mail", "video"]));
    expect(both.leases.map((l) => l.task.deadline)).toEqual([12, 15]);
    // Naming none: the default type only.
    await c.announceAll();
    const plain = await ok(c.nc, c.cluster, lease(10));
    expect(plain.leases.map((l) => [l.task.deadline, l.task.type])).toEqual([
      [1, undefined],
      [2, undefined],
    ]);
    expect(c.shards.every((s) => s.engine.stats().runnable === 0)).toBe(true);
  });

  it("breaks ties between shards by task id within the types", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    const b = put("s0", 5, "img", "b");
    const a = put("s1", 5, "img", "a");
    put("s0", 1, undefined, "zz"); // s0's whole frontier is earlier, but not its img frontier
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(2, ["img"]));
    expect(reply.leases.map((l) => l.taskId)).toEqual([a, b].sort());
  });

  it("parks a typed long-poll while other types are runnable, and only its type's work ends it", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    put("s0", 1); // runnable, but not of the type asked for
    await c.announceAll();
    const pending = ok(c.nc, c.cluster, lease(2, ["img"], 20_000, "p"), 25_000);
    await until(() => c.shards.every((s) => s.parked.length === 1), "an ask parked at each shard");
    expect(c.shards.map((s) => s.parked[0]!.types)).toEqual([["img"], ["img"]]);
    // Another type's announcement does not end the park.
    put("s1", 3, "mail");
    await c.announceAll();
    expect(c.shards.every((s) => s.parked.length === 1)).toBe(true);
    const id = put("s1", 42, "img");
    c.shards[1]!.serveParked();
    const reply = await pending;
    expect(reply.leases.map((l) => l.taskId)).toEqual([id]);
    // One park at each shard, never ended and asked again: s1 served its ask, s0's was looked up.
    const asks = (i: number) =>
      c.shards[i]!.requests("lease")
        .filter((r) => r.requestId === "p")
        .map((r) => (r.replayOnly === true ? "lookup" : "park"));
    expect(asks(0)).toEqual(["park", "lookup"]);
    expect(asks(1)).toEqual(["park"]);
  });
});
