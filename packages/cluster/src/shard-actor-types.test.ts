/**
 * Task types at a shard actor, against a real nats-server: a lease (and a
 * settle's next leases) gets only the types it names, earliest first; a
 * parked long-poll is served only by a task of its types; the frontier is
 * announced per type, with depths.
 */
import { decodeFrontier, type FrontierAnnouncement, subjectsFor } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, ok, TestEnv, task } from "../test/support.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const startActor = () => env.startActor();

const lease = (requestId: string, types?: string[], max = 10, waitMs = 0) =>
  ({
    op: "lease",
    owner: "w",
    max,
    leaseMs: 60_000,
    waitMs,
    requestId,
    ...(types === undefined ? {} : { types }),
  }) as const;

describe("ShardActor task types", () => {
  it("leases only the named types, earliest deadline first, and a lease naming none only the default type", async () => {
    const { q, wf } = await startActor();
    const tasks = [
      task("d", 1, { workflowId: wf }),
      task("i30", 30, { workflowId: wf, type: "img" }),
      task("m20", 20, { workflowId: wf, type: "mail" }),
      task("i10", 10, { workflowId: wf, type: "img" }),
    ];
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const typed = ok(await q(lease("r1", ["img", "mail"])));
    expect(typed.leases.map((l) => [l.taskId, l.task.type])).toEqual([
      ["i10", "img"],
      ["m20", "mail"],
      ["i30", "img"],
    ]);
    // The frontier after the grant: the default type's task alone is left.
    expect(typed.frontier).toMatchObject({
      runnable: 1,
      types: [{ type: "default", taskId: "d", runnable: 1 }],
    });
    expect(ok(await q(lease("r2"))).leases.map((l) => l.taskId)).toEqual(["d"]);
  });

  it("serves a parked long-poll only with a task of its types", async () => {
    const { actor, q, wf } = await startActor();
    const img = q(lease("ri", ["img"], 1, 10_000));
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the img long-poll to park");
    const plain = q(lease("rd", undefined, 1, 10_000));
    await eventually(() => actor.stats().parkedLeases === 2, 5_000, "the default long-poll to park");
    // A task of a third type: served to neither, in the submit's own stretch (so, by its reply).
    ok(
      await q({
        op: "submit",
        tasks: [task("v", 1, { workflowId: wf, type: "video" })],
        idempotencyKey: "k1",
      }),
    );
    expect(actor.stats().parkedLeases).toBe(2);
    ok(
      await q({ op: "submit", tasks: [task("i", 2, { workflowId: wf, type: "img" })], idempotencyKey: "k2" }),
    );
    expect(ok(await img).leases.map((l) => l.taskId)).toEqual(["i"]);
    expect(actor.stats().parkedLeases).toBe(1);
    ok(await q({ op: "submit", tasks: [task("d", 3, { workflowId: wf })], idempotencyKey: "k3" }));
    expect(ok(await plain).leases.map((l) => l.taskId)).toEqual(["d"]);
    expect(actor.stats().shard.types).toEqual([
      { type: "default", runnable: 0, leased: 1 },
      { type: "img", runnable: 0, leased: 1 },
      { type: "video", runnable: 1, leased: 0 },
    ]);
  });

  it("grants a settle's next leases of the worker's types only", async () => {
    const { q, wf } = await startActor();
    const tasks = [
      task("a", 1, { workflowId: wf, type: "img" }),
      task("d", 2, { workflowId: wf }),
      task("b", 3, { workflowId: wf, type: "img" }),
    ];
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const [held] = ok(await q(lease("r", ["img"], 1))).leases;
    const settled = ok(
      await q({
        op: "settle",
        completes: [{ taskId: "a", workflowId: wf, token: held!.token, secret: held!.secret! }],
        lease: { owner: "w", max: 5, leaseMs: 60_000, requestId: "next", types: ["img"] },
      }),
    );
    expect(settled.results).toEqual([{ duplicate: false }]);
    expect(settled.leases.map((l) => l.taskId)).toEqual(["b"]);
  });

  it("announces each type's frontier in dispatch order, with its depth", async () => {
    const { nc, q, cluster, wf } = await startActor();
    const heard: FrontierAnnouncement[] = [];
    const sub = nc.subscribe(subjectsFor(cluster).frontier, {
      callback: (_err, msg) => {
        heard.push(decodeFrontier(msg.data));
      },
    });
    env.defer(async () => sub.unsubscribe());
    await nc.flush();
    const tasks = [
      task("m5", 5, { workflowId: wf, type: "mail" }),
      task("i7", 7, { workflowId: wf, type: "img" }),
      task("i8", 8, { workflowId: wf, type: "img" }),
      task("d9", 9, { workflowId: wf }),
    ];
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    await eventually(() => heard.some((a) => a.runnable === 4), 5_000, "an announcement of the four");
    const a = heard.find((x) => x.runnable === 4)!;
    expect(a.types).toEqual([
      { type: "mail", key: 5, deadline: 5, taskId: "m5", runnable: 1, depth: [5] },
      { type: "img", key: 7, deadline: 7, taskId: "i7", runnable: 2, depth: [7, 8] },
      { type: "default", key: 9, deadline: 9, taskId: "d9", runnable: 1, depth: [9] },
    ]);
    expect(a.depth).toEqual([5, 7, 8, 9]);
  });
});
