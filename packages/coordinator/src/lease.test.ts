/**
 * Lease routing through the coordinator against stand-in shards (the real
 * engine behind a real NATS responder): global EDF across shards by their
 * announced frontiers, fills from several shards under maxKey, long-polls
 * woken by announcements, request-id retries.
 */
import type { TaskInput } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { encodeFrontier, MAX_ID_LENGTH, SLOT_COUNT } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Coordinator } from "./coordinator.js";
import type { SlotDirectory } from "./slot-table.js";
import { call, idOn, ok, refused, startTestCluster, type TestCluster, until } from "./test-shard.fixture.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(() => server.stop());

let c: TestCluster;
afterEach(() => c?.stop());

let seq = 0;
const lease = (max: number, extra: { waitMs?: number; requestId?: string } = {}) => ({
  op: "lease" as const,
  owner: "worker-1",
  max,
  leaseMs: 30_000,
  waitMs: extra.waitMs ?? 0,
  requestId: extra.requestId ?? `r-${++seq}`,
});

/** A reply's grants as [taskId, token] pairs: what a resend must hand back unchanged. */
const grants = (reply: { readonly leases: readonly { taskId: string; token: number }[] }) =>
  reply.leases.map((l) => [l.taskId, l.token]);

/** A coordinator counter by its `outcome` label, as its metrics endpoint serves it. */
async function byOutcome(coordinator: Coordinator, counter: string): Promise<Record<string, number>> {
  const text = await (await fetch(coordinator.metricsUrl!)).text();
  const counts: Record<string, number> = {};
  for (const [, outcome, n] of text.matchAll(new RegExp(`^${counter}\\{outcome="(\\w+)"\\} (\\d+)$`, "gm")))
    counts[outcome!] = Number(n);
  return counts;
}

/** The coordinator's lease resends by outcome. */
const resends = (coordinator: Coordinator) =>
  byOutcome(coordinator, "frontier_coordinator_lease_resends_total");

/** Puts a task with `deadline` straight into shard `shardId`'s engine (as if submitted earlier). */
function put(shardId: string, deadline: number, prefix = "t"): string {
  const id = idOn(shardId, c.ownerOf, `${prefix}-${deadline}`);
  const shard = c.shards.find((s) => s.shardId === shardId)!;
  shard.engine.addTasks([{ id, deadline } satisfies TaskInput]);
  return id;
}

describe("earliest deadline first across shards", () => {
  it("hands out one task at a time in global deadline order", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    const deadlines = [7, 2, 9, 4, 1, 8, 3, 6, 5];
    deadlines.forEach((d, i) => {
      put(`s${i % 3}`, d * 100);
    });
    const order: number[] = [];
    for (let i = 0; i < deadlines.length; i++) {
      await c.announceAll(); // shards announce whenever their frontier changes
      const reply = await ok(c.nc, c.cluster, lease(1));
      expect(reply.leases).toHaveLength(1);
      order.push(reply.leases[0]!.task.deadline);
    }
    expect(order).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900]);
    await c.announceAll();
    expect((await ok(c.nc, c.cluster, lease(1))).leases).toEqual([]);
  });

  it("fills one request from several shards, each asked only up to the next shard's key", async () => {
    c = await startTestCluster(3, { server });
    await c.startCoordinator();
    for (const [shard, ds] of [
      ["s0", [10, 15, 40]],
      ["s1", [20, 50]],
      ["s2", [30, 60]],
    ] as const) {
      for (const d of ds) put(shard, d);
    }
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(4, { requestId: "fill" }));
    expect(reply.leases.map((l) => l.task.deadline)).toEqual([10, 15, 20, 30]);
    const asked = c.shards.map((s) =>
      s.requests("lease").map(({ max, maxKey, requestId, ask }) => ({ max, maxKey, requestId, ask })),
    );
    expect(asked).toEqual([
      [{ max: 4, maxKey: 20, requestId: "fill", ask: undefined }],
      [{ max: 2, maxKey: 30, requestId: "fill", ask: undefined }],
      // s0's reply said its next key is 40: s2 is bounded by it.
      [{ max: 1, maxKey: 40, requestId: "fill", ask: undefined }],
    ]);
  });

  it("breaks ties between shards by task id, not by shard id", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    // Equal deadlines everywhere: the global order is by id, a < b < c, with b on s0 and a, c on s1.
    const b = put("s0", 5, "b");
    const a = put("s1", 5, "a");
    const cc = put("s1", 5, "c");
    expect([a, b, cc]).toEqual([a, b, cc].sort());
    await c.announceAll();
    const one = await ok(c.nc, c.cluster, lease(1, { requestId: "tie-1" }));
    expect(one.leases.map((l) => l.taskId)).toEqual([a]);
    await c.announceAll();
    const two = await ok(c.nc, c.cluster, lease(1, { requestId: "tie-2" }));
    expect(two.leases.map((l) => l.taskId)).toEqual([b]);
    await c.announceAll();
    const three = await ok(c.nc, c.cluster, lease(1, { requestId: "tie-3" }));
    expect(three.leases.map((l) => l.taskId)).toEqual([cc]);
  });

  it("asks a shard only up to the next shard's first task at an equal key, then the next", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    const a = put("s1", 5, "a");
    const b = put("s0", 5, "b");
    put("s1", 5, "c");
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(2, { requestId: "tie-fill" }));
    expect(reply.leases.map((l) => l.taskId)).toEqual([a, b]);
    expect(c.shards[1]!.requests("lease")[0]).toMatchObject({ maxKey: 5, maxTaskId: b });
  });

  it("goes back to a shard whose next key, learnt from its reply, comes first again", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    for (const d of [1, 5]) put("s0", d);
    for (const d of [2, 3]) put("s1", d);
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(4, { requestId: "zigzag" }));
    expect(reply.leases.map((l) => l.task.deadline)).toEqual([1, 2, 3, 5]);
    const asked = c.shards.map((s) =>
      s.requests("lease").map(({ max, maxKey, requestId, ask }) => ({ max, maxKey, requestId, ask })),
    );
    expect(asked).toEqual([
      [
        { max: 4, maxKey: 2, requestId: "zigzag", ask: undefined },
        { max: 1, maxKey: undefined, requestId: "zigzag", ask: 2 },
      ],
      [{ max: 3, maxKey: 5, requestId: "zigzag", ask: undefined }],
    ]);
  });

  it("without the shard's frontier in its reply, guesses from the grant and asks each shard once", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    for (const shard of c.shards) shard.sendsFrontier = false;
    for (const d of [1, 5]) put("s0", d);
    for (const d of [2, 3]) put("s1", d);
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(4, { requestId: "guess" }));
    // s0 gave fewer than asked under (2, s1's first task): its next lies beyond, so s1 comes
    // first; with both next tasks guessed (key 2, ids unknown) each is asked once more: s0 gives
    // nothing and is left out, s1 the rest it has. Never more than two asks of a shard.
    expect(reply.leases.map((l) => l.task.deadline)).toEqual([1, 2, 3]);
    expect(c.shards.map((s) => s.requests("lease").length)).toEqual([2, 2]);
  });

  it("asks no further shard once the request is full", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    put("s0", 1);
    put("s0", 2);
    put("s1", 3);
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(1));
    expect(reply.leases.map((l) => l.task.deadline)).toEqual([1]);
    expect(c.shards[1]!.requests("lease")).toEqual([]);
  });

  it("skips a shard that has gone (no responders) and fills from the others", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    put("s0", 1);
    put("s1", 2);
    await c.announceAll();
    c.shards[0]!.stop();
    const reply = await ok(c.nc, c.cluster, lease(2));
    expect(reply.leases.map((l) => l.task.deadline)).toEqual([2]);
    // Forgotten until it announces again.
    expect(c.coordinators[0]!.inspect().frontiers.map((f) => f.shardId)).toEqual(["s1"]);
  });

  it("leaves out shards not heard from within frontierStaleMs", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator({ frontierStaleMs: 100 });
    put("s0", 1);
    await c.announceAll();
    await until(() => c.coordinators[0]!.inspect().frontiers.length === 0, "the frontier to go stale");
    expect((await ok(c.nc, c.cluster, lease(1))).leases).toEqual([]);
    expect(c.shards[0]!.requests("lease")).toEqual([]);
    await c.announceAll();
    expect((await ok(c.nc, c.cluster, lease(1))).leases).toHaveLength(1);
  });

  it("takes announcements only from slot owners: a stranger's tiny key routes nothing to it", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator();
    const real = put("s0", 50);
    await c.announceAll();
    // Someone on the subject announces, as "intruder", a task before everyone's, and answers leases.
    let asked = 0;
    const sub = c.nc.subscribe(`frontier.${c.cluster}.shard.intruder.lease`, {
      callback: () => {
        asked++;
      },
    });
    c.nc.publish(
      `frontier.${c.cluster}.frontier`,
      encodeFrontier({
        shardId: "intruder",
        deadline: 1,
        key: 1,
        taskId: "evil",
        runnable: 1,
        seq: 1,
        at: Date.now(),
      }),
    );
    // The shards announce on the same connection, after it: once the coordinator has taken their
    // announcements in, it has taken the intruder's too.
    await c.announceAll();
    try {
      expect((await ok(c.nc, c.cluster, lease(2))).leases.map((l) => l.taskId)).toEqual([real]);
      expect(asked).toBe(0);
    } finally {
      sub.unsubscribe();
    }
  });

  it("says TIMEOUT (retryable) when the only shard asked does not answer in time", async () => {
    c = await startTestCluster(1, { server });
    // Not forwarded: a forwarded request's shard answers the worker, whose own timeout applies.
    await c.startCoordinator({ shardTimeoutMs: 150, forwardLongPolls: false });
    put("s0", 1);
    await c.announceAll();
    c.shards[0]!.hold.set("lease", 1);
    const error = await refused(c.nc, c.cluster, lease(1, { requestId: "slow" }));
    expect(error).toMatchObject({ code: "TIMEOUT", retryable: true });
    // Not kept as the answer: the retry asks again and gets the task.
    await c.announceAll();
    expect((await ok(c.nc, c.cluster, lease(1, { requestId: "slow" }))).leases).toHaveLength(1);
  });
});

describe("long-poll", () => {
  it("waits without polling and wakes on an announcement, when the request has less room than there are shards", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await c.announceAll(); // nothing runnable
    const pending = ok(c.nc, c.cluster, lease(1, { waitMs: 20_000 }), 25_000);
    await until(() => c.coordinators[0]!.inspect().inflight === 1, "the lease to arrive");
    // A window on purpose: what is under test is that nothing asks a shard while it waits (a
    // poll would within 100 ms); no event marks "did not poll".
    await new Promise((r) => setTimeout(r, 100));
    expect(c.shards.map((s) => s.requests("lease").length)).toEqual([0, 0]);
    const id = put("s1", 42);
    c.shards[1]!.announce();
    const reply = await pending;
    expect(reply.leases.map((l) => l.taskId)).toEqual([id]);
  });

  it("answers once a shard asked with no bound gave less than asked, rather than ask it again for what arrived since", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator();
    const first = put("s0", 1);
    await c.announceAll();
    // A submit lands right after each grant (a trickle): the reply's frontier shows one more runnable.
    let arrivals = 0;
    c.shards[0]!.afterLease = () => {
      if (arrivals < 3) put("s0", 10 + ++arrivals);
    };
    const reply = await ok(c.nc, c.cluster, lease(4));
    expect(reply.leases.map((l) => l.taskId)).toEqual([first]);
    expect(c.shards[0]!.requests("lease")).toHaveLength(1);
  });

  it("answers empty at the deadline", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator();
    const started = Date.now();
    const reply = await ok(c.nc, c.cluster, lease(1, { waitMs: 200 }));
    expect(reply.leases).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(c.shards[0]!.requests("lease")).toEqual([]);
  });

  it("tries again after an announcement that promised tasks another worker took", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator({ forwardLongPolls: false });
    put("s0", 1);
    await c.announceAll();
    c.shards[0]!.engine.lease("someone-else", { max: 1 }); // the announcement is now stale
    const pending = ok(c.nc, c.cluster, lease(1, { waitMs: 20_000, requestId: "stale" }), 25_000);
    // The first attempt finds nothing (the shard's reply says so), and the fill parks at the shard.
    await until(() => c.shards[0]!.parked.length === 1, "the ask to park");
    const id = put("s0", 2);
    c.shards[0]!.announce();
    expect((await pending).leases.map((l) => l.taskId)).toEqual([id]);
    expect(c.shards[0]!.requests("lease").map((r) => [r.requestId, r.ask])).toEqual([
      ["stale", undefined],
      ["stale", 2],
    ]);
  });

  it("parks at every idle shard, splitting the room; a grant reaches it with no announcement, and ends the others' asks", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await c.announceAll(); // nothing runnable
    const pending = ok(c.nc, c.cluster, lease(5, { waitMs: 20_000, requestId: "p" }), 25_000);
    await until(() => c.shards.every((s) => s.parked.length === 1), "an ask parked at each shard");
    expect(c.shards.map((s) => s.parked[0]!.max)).toEqual([3, 2]);
    expect(c.shards.map((s) => s.parked[0]!.waitMs > 19_000)).toEqual([true, true]);
    const id = put("s1", 42);
    c.shards[1]!.serveParked(); // the shard's change, not announced
    const reply = await pending;
    expect(reply.leases.map((l) => l.taskId)).toEqual([id]);
    expect(reply.shards).toEqual(["s1"]);
    // s0's parked ask was ended by a lookup of the request id, which found nothing granted there.
    expect(c.shards[0]!.parked).toEqual([]);
    expect(
      c.shards[0]!.requests("lease")
        .filter((r) => r.replayOnly === true)
        .map((r) => r.requestId),
    ).toEqual(["p"]);
  });

  it("fails a parked long-poll retryably when a shard it looks up says grants left with their slot; the resend finds them", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await c.announceAll(); // nothing runnable
    const pending = call(c.nc, c.cluster, lease(4, { waitMs: 20_000, requestId: "pm" }), 25_000);
    await until(() => c.shards.every((s) => s.parked.length === 1), "an ask parked at each shard");
    // s0 marks grants of the request as gone with their slot (to s1): the park's lookup of s0 is
    // told so, and the other shards it does not look up may hold them.
    c.shards[0]!.handOver("pm", c.shards[1]!);
    const id = put("s1", 42);
    c.shards[1]!.serveParked();
    const refusedPark = await pending;
    expect(!refusedPark.ok && refusedPark.error).toMatchObject({ code: "SLOT_MOVING", retryable: true });
    // The resend looks up every shard, in rounds, and hands the grant back; nothing granted anew.
    const resend = await ok(c.nc, c.cluster, { ...lease(4, { requestId: "pm" }), attempt: 2 });
    expect(resend.leases.map((l) => l.taskId)).toEqual([id]);
  });

  it("puts together what several parked shards granted at once, earliest first", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await c.announceAll();
    const pending = ok(c.nc, c.cluster, lease(4, { waitMs: 20_000 }), 25_000);
    await until(() => c.shards.every((s) => s.parked.length === 1), "an ask parked at each shard");
    const late = put("s0", 30);
    const early = put("s1", 10);
    c.shards[0]!.serveParked();
    c.shards[1]!.serveParked();
    const reply = await pending;
    expect(reply.leases.map((l) => l.taskId)).toEqual([early, late]);
    expect(reply.shards).toEqual(["s1", "s0"]);
  });

  it("stops parking and asks as usual when a shard announces more than its parked ask took", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await c.announceAll();
    const pending = ok(c.nc, c.cluster, lease(4, { waitMs: 20_000, requestId: "more" }), 25_000);
    await until(() => c.shards.every((s) => s.parked.length === 1), "an ask parked at each shard");
    // s1 gets tasks without serving its parked ask (a shard restarted without it, say) and announces them.
    const ids = [put("s1", 1), put("s1", 2)];
    c.shards[1]!.nc.publish(`frontier.${c.cluster}.frontier`, encodeFrontier(c.shards[1]!.frontier()));
    const reply = await pending;
    expect(reply.leases.map((l) => l.taskId)).toEqual(ids);
    expect(c.shards.map((s) => s.parked.length)).toEqual([0, 0]);
  });

  it("refuses a long-poll past maxLongPolls as OVERLOADED (retryable), and takes one again once one ends", async () => {
    c = await startTestCluster(1, { server });
    // Held here, not forwarded to the one shard (a forwarded long-poll waits there, uncounted).
    await c.startCoordinator({ maxLongPolls: 1, forwardLongPolls: false });
    await c.announceAll();
    const first = ok(c.nc, c.cluster, lease(1, { waitMs: 20_000 }), 25_000);
    await until(() => c.shards[0]!.parked.length === 1, "the first long-poll to wait");
    const second = await call(c.nc, c.cluster, lease(1, { waitMs: 20_000 }));
    expect(second).toMatchObject({ ok: false, error: { code: "OVERLOADED", retryable: true } });
    // Once the first has its grant, a long-poll is taken again.
    const id = put("s0", 5);
    c.shards[0]!.serveParked();
    expect((await first).leases.map((l) => l.taskId)).toEqual([id]);
    put("s0", 6);
    await c.announceAll();
    expect((await ok(c.nc, c.cluster, lease(1, { waitMs: 20_000 }))).leases).toHaveLength(1);
  });

  it("ends long-polls with an empty answer when the coordinator closes", async () => {
    c = await startTestCluster(1, { server });
    const coordinator = await c.startCoordinator({ forwardLongPolls: false });
    const pending = call(c.nc, c.cluster, lease(1, { waitMs: 20_000 }), 25_000);
    await until(() => coordinator.inspect().inflight === 1, "the lease to arrive");
    await coordinator.close();
    const reply = await pending;
    expect(reply).toEqual({ ok: true, op: "lease", leases: [] });
  });
});

describe("request ids", () => {
  it("answers a retry with the same grant", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    put("s0", 1);
    put("s1", 2);
    put("s1", 3);
    await c.announceAll();
    const first = await ok(c.nc, c.cluster, lease(2, { requestId: "again" }));
    expect(first.leases).toHaveLength(2);
    const second = await ok(c.nc, c.cluster, lease(2, { requestId: "again" }));
    expect(second.leases).toEqual(first.leases);
    expect(c.shards.map((s) => s.requests("lease").length)).toEqual([1, 1]);
  });

  it("joins a retry that arrives while the first is still long-polling", async () => {
    c = await startTestCluster(1, { server });
    // Long-polling here: a forwarded one is the shard's to join (its test is below).
    const coordinator = await c.startCoordinator({ forwardLongPolls: false });
    const a = ok(c.nc, c.cluster, lease(1, { waitMs: 20_000, requestId: "twice" }), 25_000);
    await until(() => coordinator.inspect().inflight === 1, "the first request");
    const b = ok(c.nc, c.cluster, lease(1, { waitMs: 20_000, requestId: "twice" }), 25_000);
    await until(() => coordinator.inspect().inflight === 2, "the retry");
    put("s0", 1);
    c.shards[0]!.announce();
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.leases).toHaveLength(1);
    expect(rb.leases).toEqual(ra.leases);
    expect(c.shards[0]!.requests("lease")).toHaveLength(1);
  });

  it("derives per-shard ids, so a retry reaching another coordinator gets the shards' first grants", async () => {
    c = await startTestCluster(2, { server });
    const a = await c.startCoordinator();
    const b = await c.startCoordinator();
    put("s0", 1);
    put("s1", 2);
    await c.announceAll();
    const first = await ok(c.nc, c.cluster, lease(2, { requestId: "lost-reply" }));
    expect(first.leases).toHaveLength(2);
    // The coordinator that answered has noted the grants on its board; the client "lost" its
    // reply, and that coordinator goes away, so the retry reaches the other one.
    const answered = a.inspect().frontiers.every((f) => f.runnable === 0) ? a : b;
    await answered.close();
    put("s0", 0); // an earlier task now exists: a fresh request would get it
    c.shards[0]!.announce();
    const other = answered === a ? b : a;
    await until(
      () => other.inspect().frontiers.find((f) => f.shardId === "s0")?.key === 0,
      "the announcement",
    );
    const retry = await ok(c.nc, c.cluster, lease(2, { requestId: "lost-reply" }));
    expect(grants(retry)).toEqual(grants(first));
  });

  it("answers a retry reaching another coordinator with the first grant, even asked in another order", async () => {
    c = await startTestCluster(2, { server });
    const a = await c.startCoordinator();
    put("s0", 1);
    put("s1", 2);
    await c.announceAll();
    // Coordinator A grants; the client loses the reply, and A goes away.
    const first = await ok(c.nc, c.cluster, lease(2, { requestId: "moved" }));
    expect(first.leases.map((l) => l.task.deadline)).toEqual([1, 2]);
    await a.close();
    const b = await c.startCoordinator();
    // Meanwhile the shards' frontiers changed: B would ask s1 first, under other ids.
    put("s1", 0);
    put("s0", 5);
    for (const shard of c.shards) shard.announce();
    await until(
      () =>
        c.shards.every((s) => b.inspect().frontiers.find((f) => f.shardId === s.shardId)?.seq === s.seq) &&
        b.inspect().frontiers.find((f) => f.shardId === "s1")?.key === 0,
      "the announcements",
    );
    const retry = await ok(c.nc, c.cluster, { ...lease(2, { requestId: "moved" }), attempt: 2 });
    expect(grants(retry)).toEqual(grants(first));
    // Nothing was granted anew: the replay-only asks granted nothing.
    expect(c.shards.flatMap((s) => s.requests("lease").filter((q) => q.replayOnly !== true))).toHaveLength(2);
    // A third coordinator, asked for fewer than were granted, replays no more than asked for.
    await b.close();
    await c.startCoordinator();
    const capped = await ok(c.nc, c.cluster, { ...lease(1, { requestId: "moved" }), attempt: 3 });
    expect(capped.leases.map((l) => l.taskId)).toEqual([first.leases[0]!.taskId]);
  });

  it("fails a retry retryably, granting nothing anew, while a shard that may hold the first grant does not answer", async () => {
    c = await startTestCluster(2, { server });
    const a = await c.startCoordinator();
    put("s0", 1);
    put("s1", 2);
    put("s1", 3);
    await c.announceAll();
    const first = await ok(c.nc, c.cluster, lease(2, { requestId: "lost" }));
    expect(first.leases.map((l) => l.task.deadline)).toEqual([1, 2]);
    await a.close();
    const b = await c.startCoordinator({ shardTimeoutMs: 150, metricsPort: 0 });
    for (const shard of c.shards) shard.announce();
    await until(
      () => c.shards.every((s) => b.inspect().frontiers.find((f) => f.shardId === s.shardId)?.seq === s.seq),
      "the announcements",
    );
    // s1 holds one of the grants but says nothing this time: granting anew would strand it.
    c.shards[1]!.hold.set("lease", 1);
    const error = await refused(c.nc, c.cluster, { ...lease(2, { requestId: "lost" }), attempt: 2 });
    expect(error).toMatchObject({ code: "TIMEOUT", retryable: true });
    expect(c.shards.flatMap((s) => s.requests("lease").filter((q) => q.replayOnly !== true))).toHaveLength(2);
    // Asked again, every shard answers: the first grant, whole.
    const again = await ok(c.nc, c.cluster, { ...lease(2, { requestId: "lost" }), attempt: 3 });
    expect(grants(again)).toEqual(grants(first));
    expect(await resends(b)).toEqual({ unanswered: 1, replayed: 1 });
  });

  it("fails with TIMEOUT when one shard times out, even if another granted, and the retry collects the grant", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator({ shardTimeoutMs: 150 });
    put("s0", 1);
    put("s1", 2);
    await c.announceAll();
    c.shards[1]!.hold.set("lease", 1);
    const error = await refused(c.nc, c.cluster, lease(2, { requestId: "split" }));
    expect(error).toMatchObject({ code: "TIMEOUT", retryable: true });
    // s0 granted under the client's id; the resend hands that grant back rather than stranding it.
    const granted = c.shards[0]!.engine.getTask(c.shards[0]!.engine.peekFrontier()?.id ?? "")?.state;
    expect(granted).toBeUndefined(); // s0 has nothing runnable left: its task is leased
    const retry = await ok(c.nc, c.cluster, { ...lease(2, { requestId: "split" }), attempt: 2 });
    expect(retry.leases.map((l) => l.task.deadline)).toEqual([1]);
  });

  it("fills a retry normally when no shard kept a grant for it", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    put("s0", 1);
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, { ...lease(1, { requestId: "never-granted" }), attempt: 2 });
    expect(reply.leases.map((l) => l.task.deadline)).toEqual([1]);
    const replayOnly = c.shards.flatMap((s) => s.requests("lease").filter((q) => q.replayOnly === true));
    expect(replayOnly.map((q) => q.requestId)).toEqual(["never-granted", "never-granted"]);
  });

  it("fences a slow first send off: once the resend looked up the grants, the first send's late asks grant nothing", async () => {
    c = await startTestCluster(2, { server });
    const coordinator = await c.startCoordinator({ metricsPort: 0 });
    put("s0", 1);
    put("s0", 2);
    put("s1", 3);
    await c.announceAll();
    // The first send's ask to s0 is slow to arrive (a slow coordinator or network); the client gives up on it.
    const release = c.shards[0]!.delay("lease");
    const firstSend = call(c.nc, c.cluster, lease(1, { requestId: "slow" }));
    await until(() => c.shards[0]!.waiting("lease") === 1, "the first send's ask to s0");
    const resend = await ok(c.nc, c.cluster, { ...lease(1, { requestId: "slow" }), attempt: 2 });
    expect(resend.leases.map((l) => l.task.deadline)).toEqual([1]);
    // The first send's ask arrives now: s0 grants nothing new (the client, waiting for the resend's
    // reply, would never get it, and the task would sit leased until expiry) and answers the request's
    // grant, as to any retry of it.
    release();
    const late = await firstSend;
    expect(late.ok && grants(late)).toEqual(grants(resend));
    expect(c.shards.map((s) => s.engine.stats().leased)).toEqual([1, 0]);
    // A later resend finds the resend's grant, and only it.
    const third = await ok(c.nc, c.cluster, { ...lease(1, { requestId: "slow" }), attempt: 3 });
    expect(grants(third)).toEqual(grants(resend));
    // Each resend is counted by what became of it.
    expect(await resends(coordinator)).toEqual({ filled: 1, replayed: 1 });
  });

  it("looks again when a shard says the grants left with their slot: their target may have answered before adopting them", async () => {
    c = await startTestCluster(2, { server });
    const coordinator = await c.startCoordinator({ metricsPort: 0 });
    put("s0", 1);
    await c.announceAll();
    const first = await ok(c.nc, c.cluster, lease(1, { requestId: "hop" }));
    expect(first.leases.map((l) => l.task.deadline)).toEqual([1]);
    // A task a fill anew would grant, if the resend took its first grant for lost.
    put("s1", 2);
    await c.announceAll();
    // The resend's lookup: s1, not holding the grant yet, answers at once; s0's answer is slow,
    // and meanwhile the grant's slot moves from s0 to s1 (s1 adopts it, s0 ends the move).
    const release = c.shards[0]!.delay("lease");
    const resend = call(c.nc, c.cluster, { ...lease(1, { requestId: "hop" }), attempt: 2 });
    const lookups = (shard: number) =>
      c.shards[shard]!.requests("lease").filter((q) => q.replayOnly === true && q.requestId === "hop");
    await until(() => c.shards[0]!.waiting("lease") === 1 && lookups(1).length === 1, "both lookups");
    c.shards[0]!.handOver("hop", c.shards[1]!);
    release();
    // s0 says the grant left: every shard is asked again, s1 hands it back, and nothing is granted
    // anew. (s0's mark stays, so one more round, which finds nothing new, ends the lookup.)
    const reply = await resend;
    expect(reply.ok && grants(reply)).toEqual(grants(first));
    expect(reply.ok && reply.shards).toEqual(["s1"]); // the worker settles where the grant is now
    expect(lookups(1)).toHaveLength(3);
    expect(c.shards.flatMap((s) => s.requests("lease").filter((q) => q.replayOnly !== true))).toHaveLength(1);
    // A later resend finds it at once at s1; s0's stale mark costs it one round more.
    const third = await ok(c.nc, c.cluster, { ...lease(1, { requestId: "hop" }), attempt: 3 });
    expect(grants(third)).toEqual(grants(first));
    expect(lookups(1)).toHaveLength(5);
    expect(await resends(coordinator)).toEqual({ replayed: 2 });
  });

  it("fails a resend retryably, asking no shard, until the coordinator knows every shard", async () => {
    c = await startTestCluster(2, { server });
    const a = await c.startCoordinator();
    put("s0", 1);
    await c.announceAll();
    // Coordinator A grants from s0; the client loses the reply, and A goes away.
    const first = await ok(c.nc, c.cluster, lease(1, { requestId: "early" }));
    expect(first.leases).toHaveLength(1);
    await a.close();
    // B has just started: its slot table has shown it s1 so far and is not whole yet, and s0 has
    // not announced to it.
    let loaded = false;
    const slots: SlotDirectory = {
      ownerOf: (slot) => c.ownerOf(slot),
      shards: () => (loaded ? ["s0", "s1"] : ["s1"]),
      ownedCount: () => SLOT_COUNT,
      whenLoaded: async (timeoutMs) => {
        if (!loaded) await new Promise((r) => setTimeout(r, Math.min(timeoutMs, 50)));
        return loaded;
      },
    };
    const b = await c.startCoordinator({ slots, metricsPort: 0 });
    const askedBefore = c.shards.map((s) => s.requests("lease").length);
    // Asking only the shards it knows would find nothing and grant anew, stranding the first grant.
    const error = await refused(c.nc, c.cluster, { ...lease(1, { requestId: "early" }), attempt: 2 });
    expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true });
    expect(error.message).toMatch(/has not loaded the slot table/);
    expect(c.shards.map((s) => s.requests("lease").length)).toEqual(askedBefore);
    // Once it knows every shard, the resend finds the first grant.
    loaded = true;
    const again = await ok(c.nc, c.cluster, { ...lease(1, { requestId: "early" }), attempt: 3 });
    expect(grants(again)).toEqual(grants(first));
    expect(await resends(b)).toEqual({ unanswered: 1, replayed: 1 });
  });

  it("asks each shard under the client's own id, numbering a second ask in one fill", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    // s0 holds the first and third tasks: one fill asks it twice.
    put("s0", 1);
    put("s1", 2);
    put("s0", 3);
    await c.announceAll();
    const longest = "r".repeat(MAX_ID_LENGTH); // no suffix to fit: the id goes as it is
    const reply = await ok(c.nc, c.cluster, lease(3, { requestId: longest }));
    expect(reply.leases).toHaveLength(3);
    const asks = c.shards[0]!.requests("lease");
    expect(asks.map((r) => [r.requestId, r.ask])).toEqual([
      [longest, undefined],
      [longest, 2],
    ]);
    expect(c.shards[1]!.requests("lease").map((r) => [r.requestId, r.ask])).toEqual([[longest, undefined]]);
  });
});

describe("a long-poll at the only shard goes there forwarded", () => {
  /** The coordinator's lease requests by outcome. */
  const outcomes = (coordinator: Coordinator) =>
    byOutcome(coordinator, "frontier_coordinator_lease_requests_total");

  it("the shard holds it and answers the worker itself, naming itself for each lease", async () => {
    c = await startTestCluster(1, { server });
    const coordinator = await c.startCoordinator({ metricsPort: 0 });
    await c.announceAll(); // nothing runnable
    const pending = ok(c.nc, c.cluster, lease(3, { waitMs: 20_000, requestId: "fw" }), 25_000);
    await until(() => c.shards[0]!.parked.length === 1, "the long-poll to reach the shard");
    const ask = c.shards[0]!.parked[0]!;
    expect(ask).toMatchObject({ requestId: "fw", max: 3, forwarded: true });
    expect(ask.waitMs).toBeGreaterThan(19_000);
    // Not waiting here: the coordinator's request is over, and it holds no long-poll.
    await until(() => coordinator.inspect().inflight === 0, "the coordinator to let go of it");
    const id = put("s0", 7);
    c.shards[0]!.serveParked(); // the shard's change, not announced
    const reply = await pending;
    expect(reply.leases.map((l) => l.taskId)).toEqual([id]);
    expect(reply.shards).toEqual(["s0"]);
    expect(reply).not.toHaveProperty("frontier");
    expect(await outcomes(coordinator)).toMatchObject({ forwarded: 1, granted: 0 });
  });

  it("goes there whole while the shard has runnable work: the shard grants at once, asked once", async () => {
    c = await startTestCluster(1, { server });
    const coordinator = await c.startCoordinator({ metricsPort: 0 });
    const first = put("s0", 1);
    const second = put("s0", 2);
    put("s0", 3);
    await c.announceAll();
    const reply = await ok(c.nc, c.cluster, lease(2, { waitMs: 20_000, requestId: "now" }));
    expect(reply.leases.map((l) => l.taskId)).toEqual([first, second]);
    expect(reply.shards).toEqual(["s0", "s0"]);
    // No ask from the coordinator first: the one ask the shard saw is the worker's, forwarded.
    expect(c.shards[0]!.requests("lease")).toEqual([
      expect.objectContaining({ requestId: "now", max: 2, forwarded: true }),
    ]);
    expect(await outcomes(coordinator)).toMatchObject({ forwarded: 1, granted: 0 });
  });

  it("outlives the coordinator that forwarded it", async () => {
    c = await startTestCluster(1, { server });
    const coordinator = await c.startCoordinator();
    await c.announceAll();
    const pending = ok(c.nc, c.cluster, lease(1, { waitMs: 20_000 }), 25_000);
    await until(() => c.shards[0]!.parked.length === 1, "the long-poll to reach the shard");
    await coordinator.close();
    const id = put("s0", 3);
    c.shards[0]!.serveParked();
    expect((await pending).leases.map((l) => l.taskId)).toEqual([id]);
  });

  it("a resend after the forwarded answer was lost gets the same grant through a coordinator", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator();
    await c.announceAll();
    // The first send's answer is lost: its client gave up before the shard granted.
    const lost = call(c.nc, c.cluster, lease(2, { waitMs: 20_000, requestId: "again" }), 300).catch(
      (err: unknown) => err,
    );
    await until(() => c.shards[0]!.parked.length === 1, "the long-poll to reach the shard");
    expect(await lost).toBeInstanceOf(Error);
    const id = put("s0", 9);
    c.shards[0]!.serveParked(); // granted to a reply subject nobody listens to any more
    expect(c.shards[0]!.parked).toEqual([]);
    const resend = await ok(c.nc, c.cluster, { ...lease(2, { requestId: "again" }), attempt: 2 });
    expect(resend.leases.map((l) => l.taskId)).toEqual([id]);
    expect(resend.shards).toEqual(["s0"]);
  });

  it("is not forwarded when several shards are idle: the coordinator parks and combines", async () => {
    c = await startTestCluster(2, { server });
    await c.startCoordinator();
    await c.announceAll();
    const pending = ok(c.nc, c.cluster, lease(2, { waitMs: 20_000 }), 25_000);
    await until(() => c.shards.every((s) => s.parked.length === 1), "an ask parked at each shard");
    expect(c.shards.map((s) => s.parked[0]!.forwarded)).toEqual([undefined, undefined]);
    const id = put("s1", 4);
    c.shards[1]!.serveParked();
    expect((await pending).leases.map((l) => l.taskId)).toEqual([id]);
  });

  it("refuses a client's lease that sets forwarded (a coordinator's field)", async () => {
    c = await startTestCluster(1, { server });
    await c.startCoordinator();
    const reply = await call(c.nc, c.cluster, { ...lease(1), forwarded: true });
    expect(reply).toMatchObject({ ok: false, error: { code: "BAD_MESSAGE" } });
    expect(c.shards[0]!.requests("lease")).toEqual([]);
  });
});
