/**
 * Slot moves through crashes (docs/cluster.md, "Slot movement"), with shard
 * actors on a ShardHost's worker threads that the test makes die of an
 * uncaught exception (crashable-worker.ts), restarted by the host on their
 * data: the source dying after its fence and export, before its target
 * answered; the target dying between two parts of a move.
 */

import type { TaskRecord } from "@frontier/core";
import type { AdoptRequest, Request } from "@frontier/protocol";
import { decodeRequest, encodeFrontier, subjectsFor } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  CRASHABLE_WORKER,
  crashWorker,
  eventually,
  keysInSlots,
  logLevel,
  ok,
  silent,
  TestEnv,
  task,
} from "../test/support.js";
import { ShardActor } from "./shard-actor.js";
import { ShardHost, type ShardHostEvent } from "./shard-host.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const SLOT = 9;
const [WF] = keysInSlots("crashwf", [SLOT], 1) as [string];

async function host(cluster: string): Promise<{ host: ShardHost; events: ShardHostEvent[] }> {
  const h = await ShardHost.start({
    natsUrl: env.url,
    cluster,
    dataDir: env.freshDir(),
    shards: 1,
    logLevel,
    logger: silent,
    restartInitialMs: 50,
    announceIntervalMs: 50,
    workerEntry: CRASHABLE_WORKER,
  });
  env.defer(() => h.close());
  const events: ShardHostEvent[] = [];
  h.onEvent((e) => events.push(e));
  return { host: h, events };
}

const restarted = (events: readonly ShardHostEvent[], n: number) =>
  events.filter((e) => e.type === "worker:ready" && e.shardId === "shard-0").length >= n;

describe("slot moves through crashes", () => {
  it("a source that dies after its fence and export finishes the move when its host restarts it", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const { events } = await host(cluster);
    const q = <R extends Request>(r: R) => ask(nc, cluster, "shard-0", r, 30_000);
    ok(
      await q({
        op: "submit",
        idempotencyKey: "k",
        tasks: [task("p", 1, { workflowId: WF }), task("d", 2, { workflowId: WF, prerequisites: ["p"] })],
      }),
    );
    const [p] = ok(
      await q({ op: "lease", owner: "w", max: 1, leaseMs: 120_000, waitMs: 0, requestId: "r" }),
    ).leases;

    // The target is, for now, a subject the test holds: the adopt arrives and is not answered.
    const s = subjectsFor(cluster);
    const held: Uint8Array[] = [];
    const fake = nc.subscribe(s.shard("t", "adopt"), {
      callback: (_e, msg) => {
        held.push(msg.data);
      },
    });
    let seq = 0;
    const announcing = setInterval(
      () =>
        nc.publish(
          s.frontier,
          encodeFrontier({
            shardId: "t",
            deadline: null,
            key: null,
            taskId: null,
            runnable: 0,
            seq: ++seq,
            at: Date.now(),
          }),
        ),
      20,
    );
    env.defer(async () => clearInterval(announcing));
    // Asked until the source has heard the target announce; then the move waits on the held part.
    await eventually(
      async () => {
        const reply = await ask(
          nc,
          cluster,
          "shard-0",
          { op: "moveSlot", slot: SLOT, target: "t", moveId: "m1" },
          500,
        )
          .then((r) => r)
          .catch(() => undefined);
        return reply === undefined && held.length > 0;
      },
      10_000,
      "the first adopt part",
    );
    expect((decodeRequest(held[0]!, "adopt") as AdoptRequest).tasks.map((t) => t.spec.id)).toEqual([
      "d",
      "p",
    ]);

    // The source dies now: its tasks are in its outbox only.
    crashWorker("shard-0", "crash mid-move");
    await eventually(() => events.some((e) => e.type === "worker:exit"), 10_000, "the crash");
    clearInterval(announcing);
    fake.unsubscribe();
    const target = await ShardActor.start({
      natsUrl: env.url,
      cluster,
      shardId: "t",
      dataDir: env.freshDir(),
      slots: [500],
      logger: silent,
      announceIntervalMs: 50,
    });
    env.defer(() => target.close());
    await eventually(() => restarted(events, 1), 20_000, "shard-0 back");
    // Restarted, the source drives its outbox to the end by itself.
    await eventually(() => target.owns(SLOT), 20_000, "the move to end");
    expect(target.stats().shard.counts).toMatchObject({ LEASED: 1, WAITING: 1 });
    const atT = <R extends Request>(r: R) => ask(nc, cluster, "t", r);
    expect(
      ok(await atT({ op: "complete", taskId: "p", workflowId: WF, token: p!.token, secret: p!.secret! }))
        .duplicate,
    ).toBe(false);
    const [d] = ok(
      await atT({ op: "lease", owner: "w", max: 5, leaseMs: 1_000, waitMs: 0, requestId: "r2" }),
    ).leases;
    expect(d?.taskId).toBe("d");
    expect(ok(await q({ op: "getTask", taskId: "p" })).task).toBeNull();
  }, 60_000);

  it("a target that dies between two parts of a move adopts it whole once it has every part again", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const { events } = await host(cluster);
    const record = (id: string, prerequisites: string[], state: "RUNNABLE" | "WAITING"): TaskRecord => ({
      spec: {
        id,
        prerequisites,
        workflowId: WF,
        maxAttempts: 3,
        hardDeadline: false,
        onPrerequisiteFailure: "cancel",
      },
      status: {
        state,
        deadline: 5,
        attempts: 0,
        token: 0,
        ...(state === "RUNNABLE" ? { runnableSince: 1 } : {}),
      },
    });
    // Played by the test, a source "src" hands over slot 9 in two parts.
    const part = (i: number): AdoptRequest => ({
      op: "adopt",
      moveId: "m1",
      slot: SLOT,
      source: "src",
      part: i,
      parts: 2,
      tasks: i === 0 ? [record("a", [], "RUNNABLE")] : [record("b", ["a"], "WAITING")],
      entries: i === 1 ? [{ key: "k", taskIds: ["a", "b"], createdAt: 1 }] : [],
      leases: [],
    });
    const send = async (i: number) => ok(await ask(nc, cluster, "shard-0", part(i), 30_000)).adopted;
    expect(await send(0)).toBe(false);
    crashWorker("shard-0", "crash between parts");
    await eventually(() => restarted(events, 1), 20_000, "shard-0 back");
    // The part it had was in memory only: the move is not adopted until every part is in again.
    expect(await send(1)).toBe(false);
    expect(
      ok(await ask(nc, cluster, "shard-0", { op: "getTask", taskId: "a", workflowId: WF })).task,
    ).toBeNull();
    expect(await send(0)).toBe(true);
    expect(await send(1)).toBe(true);
    expect(
      ok(await ask(nc, cluster, "shard-0", { op: "getTask", taskId: "b", workflowId: WF })).task,
    ).toMatchObject({
      state: "WAITING",
      unmetPrerequisites: 1,
    });
  }, 60_000);
});
