/**
 * Slot moves between live shard actors, against a real nats-server
 * (docs/cluster.md, "Slot movement"): a move with its tasks, DAG, leases
 * and idempotency keys; SLOT_MOVING while it runs; a target's refusal
 * undoing it; a source restarted mid-move driving its outbox to the end;
 * a target restarted between its adopt and the switch.
 */
import {
  type AdoptRequest,
  decodeRequest,
  encodeFrontier,
  encodeReply,
  type Reply,
  type Request,
  type RequestOf,
  subjectsFor,
  WireErrorCode,
} from "@frontier/protocol";
import { Shard } from "@frontier/shard";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ask, eventually, keysInSlots, ok, type TestActorOptions, TestEnv, task } from "../test/support.js";
import type { ShardActor } from "./shard-actor.js";
import { SlotOwnership } from "./slot-ownership.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const A_SLOTS = [0, 1, 2, 3];
const B_SLOTS = [10, 11];
/** The slot that moves, and workflows in it. */
const SLOT = 2;
const [WF, WF2] = keysInSlots("wf", [SLOT], 2) as [string, string];
const [STAY] = keysInSlots("stay", [0], 1) as [string];

async function startActor(
  cluster: string,
  shardId: string,
  slots: number[],
  extra: TestActorOptions = {},
): Promise<ShardActor> {
  return (await env.startActor({ cluster, shardId, slots, announceIntervalMs: 50, ...extra })).actor;
}

function errorOf(reply: Reply): string {
  if (reply.ok) throw new Error(`expected an error reply, got ${JSON.stringify(reply)}`);
  return reply.error.code;
}

/** Sends `moveSlot` to the source until it takes it (it waits to have heard from the target). */
async function move(nc: NatsConnection, cluster: string, source: string, target: string, moveId: string) {
  let reply: Reply<"moveSlot"> | undefined;
  await eventually(
    async () => {
      reply = await ask(nc, cluster, source, { op: "moveSlot", slot: SLOT, target, moveId }, 30_000);
      return reply.ok || reply.error.code !== WireErrorCode.SHARD_UNAVAILABLE;
    },
    10_000,
    `shard ${source} to hear from ${target}`,
  );
  return reply!;
}

/** A shard `shardId` that is only an `adopt` subject held by the test, and announcements. */
function fakeTarget(nc: NatsConnection, cluster: string, shardId: string) {
  const s = subjectsFor(cluster);
  const parts: { request: Uint8Array; respond: (reply: Reply<"adopt">) => void }[] = [];
  const waiting: (() => void)[] = [];
  const sub: Subscription = nc.subscribe(s.shard(shardId, "adopt"), {
    callback: (_err, msg) => {
      parts.push({ request: msg.data, respond: (reply) => msg.respond(encodeReply(reply)) });
      for (const w of waiting.splice(0)) w();
    },
  });
  let seq = 0;
  const announce = setInterval(() => {
    nc.publish(
      s.frontier,
      encodeFrontier({
        shardId,
        deadline: null,
        key: null,
        taskId: null,
        runnable: 0,
        seq: ++seq,
        at: Date.now(),
      }),
    );
  }, 20);
  return {
    parts,
    /** Resolves once a part arrived. */
    nextPart: () =>
      new Promise<void>((resolve) => {
        if (parts.length > 0) resolve();
        else waiting.push(resolve);
      }),
    stop: () => {
      clearInterval(announce);
      sub.unsubscribe();
    },
  };
}

/** A one-part `adopt` of SLOT carrying nothing, from `source`; `exportedAt` when given. */
function emptyPart(moveId: string, source: string, exportedAt?: number): RequestOf<"adopt"> {
  return {
    op: "adopt",
    moveId,
    slot: SLOT,
    source,
    part: 0,
    parts: 1,
    tasks: [],
    entries: [],
    leases: [],
    ...(exportedAt === undefined ? {} : { exportedAt }),
  };
}

/** A resend's replay-only lookup of w1's grants under `requestId`, as a coordinator makes it. */
function lookupOf(requestId: string, max: number, attempt: number): RequestOf<"lease"> {
  return { op: "lease", owner: "w1", max, leaseMs: 60_000, waitMs: 0, requestId, attempt, replayOnly: true };
}

async function load(nc: NatsConnection, cluster: string, shardId: string) {
  const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
  ok(
    await q({
      op: "submit",
      idempotencyKey: "k1",
      tasks: [
        task("p", 100, { workflowId: WF }),
        task("d", 200, { workflowId: WF, prerequisites: ["p"] }),
        task("e", 300, { workflowId: WF2, payload: { n: 1 } }),
        task("s", 50, { workflowId: STAY }),
      ],
    }),
  );
  const leases = ok(
    await q({ op: "lease", owner: "w1", max: 2, leaseMs: 60_000, waitMs: 0, requestId: "r1" }),
  ).leases;
  expect(leases.map((l) => l.taskId)).toEqual(["s", "p"]);
  return { s: leases[0]!, p: leases[1]! };
}

describe("slot moves between shard actors", () => {
  it("moves a slot's tasks, DAG, live leases and keys; the bucket and both guards follow", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const a = await startActor(cluster, "a", A_SLOTS);
    const b = await startActor(cluster, "b", B_SLOTS);
    const { s, p } = await load(nc, cluster, "a");

    expect(ok(await move(nc, cluster, "a", "b", "m1")).tasks).toBe(3);
    expect(a.owns(SLOT)).toBe(false);
    expect(b.owns(SLOT)).toBe(true);
    const ownership = await SlotOwnership.open(nc, { cluster });
    env.defer(() => ownership.close());
    expect(ownership.map.ownerOf(SLOT)).toBe("b");
    // A resend of a move that ended: nothing more to do.
    expect(
      ok(await ask(nc, cluster, "a", { op: "moveSlot", slot: SLOT, target: "b", moveId: "m1" })).tasks,
    ).toBe(0);

    const atA = <R extends Request>(r: R) => ask(nc, cluster, "a", r);
    const atB = <R extends Request>(r: R) => ask(nc, cluster, "b", r);
    // a no longer has it: a request routed by a table still naming a is told to route again, and
    // a holder's complete there is not told its lease is gone.
    expect(errorOf(await atA({ op: "getTask", taskId: "p", workflowId: WF }))).toBe(
      WireErrorCode.SLOT_NOT_OWNED,
    );
    expect(
      errorOf(await atA({ op: "complete", taskId: "p", workflowId: WF, token: p.token, secret: p.secret! })),
    ).toBe(WireErrorCode.SLOT_NOT_OWNED);
    expect(ok(await atA({ op: "getTask", taskId: "p" })).task).toBeNull();
    expect(ok(await atB({ op: "getTask", taskId: "p", workflowId: WF })).task).toMatchObject({
      state: "LEASED",
      token: p.token,
    });
    // The holder's lease, granted by a, completes at b with its secret; a forged one does not.
    expect(
      errorOf(await atB({ op: "complete", taskId: "p", workflowId: WF, token: p.token, secret: s.secret! })),
    ).toBe(WireErrorCode.STALE_LEASE);
    expect(
      ok(await atB({ op: "complete", taskId: "p", workflowId: WF, token: p.token, secret: p.secret! }))
        .duplicate,
    ).toBe(false);
    // Its dependent is unblocked at b, and b's tokens are above every adopted one.
    const next = ok(
      await atB({ op: "lease", owner: "w2", max: 5, leaseMs: 60_000, waitMs: 0, requestId: "r2" }),
    ).leases;
    expect(next.map((l) => l.taskId).sort()).toEqual(["d", "e"]);
    expect(Math.min(...next.map((l) => l.token))).toBeGreaterThan(p.token);
    expect(next.find((l) => l.taskId === "e")?.task.payload).toEqual({ n: 1 });
    // The submit's key came along: a resend of the moved part is a replay at b.
    expect(
      ok(
        await atB({
          op: "submit",
          idempotencyKey: "k1",
          tasks: [
            task("p", 100, { workflowId: WF }),
            task("d", 200, { workflowId: WF, prerequisites: ["p"] }),
          ],
        }),
      ).replayed,
    ).toBe(true);
    // What stayed is still a's.
    expect(
      ok(await atA({ op: "complete", taskId: "s", workflowId: STAY, token: s.token, secret: s.secret! }))
        .duplicate,
    ).toBe(false);
  });

  it("a move's resend after the slot came back is done, not a second move under its id (the tasks stay)", async () => {
    // The chaos suite's loss (seed 1398165979): the first move's resend, retried by its sender while
    // the slot moved back, fenced and exported the slot again under the ended move's id; the target
    // answered "adopted" (that id was adopted before) and the tasks were gone from both shards.
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const started = await env.startActor({ cluster, shardId: "a", slots: A_SLOTS, announceIntervalMs: 50 });
    let a = started.actor;
    const b = await startActor(cluster, "b", B_SLOTS);
    await load(nc, cluster, "a");
    expect(ok(await move(nc, cluster, "a", "b", "m1")).tasks).toBe(3);
    expect(ok(await move(nc, cluster, "b", "a", "m2")).tasks).toBe(3);
    expect(a.owns(SLOT)).toBe(true);

    const resend = await ask(nc, cluster, "a", { op: "moveSlot", slot: SLOT, target: "b", moveId: "m1" });
    expect(ok(resend).tasks).toBe(0);
    expect(a.owns(SLOT)).toBe(true);
    expect(b.owns(SLOT)).toBe(false);
    const atA = <R extends Request>(r: R) => ask(nc, cluster, "a", r);
    for (const id of ["p", "d", "e"])
      expect(ok(await atA({ op: "getTask", taskId: id })).task, id).not.toBeNull();
    // The id names that move, and no other: used for another slot or target, it is refused.
    expect(errorOf(await atA({ op: "moveSlot", slot: SLOT, target: "c", moveId: "m1" }))).toBe(
      WireErrorCode.INVALID_ARGUMENT,
    );
    // The target tells exports apart too: another export under an id it adopted is refused (the
    // source undoes it); a part that does not say which export it is of is answered as before.
    expect(errorOf(await ask(nc, cluster, "b", emptyPart("m1", "a", 1)))).toBe(
      WireErrorCode.INVALID_ARGUMENT,
    );
    expect(ok(await ask(nc, cluster, "b", emptyPart("m1", "a"))).adopted).toBe(true);
    // A resend that reached another shard holding the slot since: its export is from another
    // source, refused whatever it says of itself.
    expect(errorOf(await ask(nc, cluster, "b", emptyPart("m1", "c")))).toBe(WireErrorCode.INVALID_ARGUMENT);
    expect(b.owns(SLOT)).toBe(false);
    // Remembered across a restart of the source.
    await a.close();
    a = await startActor(cluster, "a", A_SLOTS, { dataDir: started.dataDir });
    await eventually(() => a.owns(SLOT), 10_000, "a to serve the slot again");
    expect(ok(await atA({ op: "moveSlot", slot: SLOT, target: "b", moveId: "m1" })).tasks).toBe(0);
    expect(b.owns(SLOT)).toBe(false);
    for (const id of ["p", "d", "e"])
      expect(ok(await atA({ op: "getTask", taskId: id })).task, id).not.toBeNull();
    // Parts of two exports under one id are never put together into one adopt.
    const half = (part: number, exportedAt: number): RequestOf<"adopt"> => ({
      ...emptyPart("m9", "z", exportedAt),
      part,
      parts: 2,
    });
    expect(ok(await ask(nc, cluster, "b", half(0, 1))).adopted).toBe(false);
    expect(ok(await ask(nc, cluster, "b", half(1, 2))).adopted).toBe(false);
    expect(ok(await ask(nc, cluster, "b", half(0, 2))).adopted).toBe(true);
  });

  it("a settle resent after its grant's slot moved says so, and the grant is found at the new shard", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    await startActor(cluster, "a", A_SLOTS);
    await startActor(cluster, "b", B_SLOTS);
    const { s } = await load(nc, cluster, "a");
    const settle = (attempt?: number): RequestOf<"settle"> => ({
      op: "settle",
      completes: [{ taskId: s.taskId, workflowId: STAY, token: s.token, secret: s.secret! }],
      lease: { owner: "w1", max: 1, leaseMs: 60_000, requestId: "sr1", ...(attempt ? { attempt } : {}) },
    });
    // The first send is granted e (in the slot that moves); its reply is taken to be lost.
    const first = ok(await ask(nc, cluster, "a", settle()));
    expect(first.leases.map((l) => l.taskId)).toEqual(["e"]);
    expect(first.grantsMoved).toBeUndefined();
    expect(ok(await move(nc, cluster, "a", "b", "m1")).tasks).toBe(3);

    // The resend at a: the complete is a duplicate, nothing is granted anew, and e went elsewhere.
    const resent = ok(await ask(nc, cluster, "a", settle(2)));
    expect(resent.results).toEqual([{ duplicate: true }]);
    expect(resent.leases).toEqual([]);
    expect(resent.grantsMoved).toBe(true);
    // The request's next send, as a coordinator's replay-only lookup makes it: a says e left (so
    // the coordinator looks again: b may have answered before it adopted e), and b has e.
    const lookup = (attempt: number) => lookupOf("sr1", 1, attempt);
    const atSource = ok(await ask(nc, cluster, "a", lookup(3)));
    expect(atSource.leases).toEqual([]);
    expect(atSource.grantsMoved).toBe(true);
    const atTarget = ok(await ask(nc, cluster, "b", lookup(3)));
    expect(atTarget.grantsMoved).toBeUndefined();
    const found = atTarget.leases;
    expect(found.map((l) => [l.taskId, l.token])).toEqual([["e", first.leases[0]!.token]]);
    // A resend whose grant stayed gets it back, and says nothing of moves.
    ok(
      await ask(nc, cluster, "a", {
        op: "submit",
        idempotencyKey: "k2",
        tasks: [task("t", 60, { workflowId: STAY })],
      }),
    );
    const stay = (attempt?: number): RequestOf<"settle"> => ({
      ...settle(),
      lease: { owner: "w1", max: 1, leaseMs: 60_000, requestId: "sr2", ...(attempt ? { attempt } : {}) },
    });
    const granted = ok(await ask(nc, cluster, "a", stay())).leases;
    expect(granted.map((l) => l.taskId)).toEqual(["t"]);
    const again = ok(await ask(nc, cluster, "a", stay(2)));
    expect(again.leases.map((l) => [l.taskId, l.token])).toEqual([["t", granted[0]!.token]]);
    expect(again.grantsMoved).toBeUndefined();
  });

  it("answers SLOT_MOVING while the tasks are on their way, and undoes a move the target refuses", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    await startActor(cluster, "a", A_SLOTS);
    const target = fakeTarget(nc, cluster, "f");
    env.defer(async () => target.stop());
    const { s, p } = await load(nc, cluster, "a");
    const moving = move(nc, cluster, "a", "f", "m1");
    await target.nextPart();

    const atA = <R extends Request>(r: R) => ask(nc, cluster, "a", r);
    const held = { taskId: "p", workflowId: WF, token: p.token, secret: p.secret! };
    expect(errorOf(await atA({ op: "complete", ...held }))).toBe(WireErrorCode.SLOT_MOVING);
    expect(errorOf(await atA({ op: "heartbeat", ...held, leaseMs: 1_000 }))).toBe(WireErrorCode.SLOT_MOVING);
    expect(errorOf(await atA({ op: "getTask", taskId: "d", workflowId: WF }))).toBe(
      WireErrorCode.SLOT_MOVING,
    );
    expect(
      errorOf(await atA({ op: "submit", idempotencyKey: "k2", tasks: [task("n", 1, { workflowId: WF })] })),
    ).toBe(WireErrorCode.SLOT_MOVING);
    const settled = ok(await atA({ op: "settle", completes: [held] })).results;
    expect(settled).toEqual([
      { error: expect.objectContaining({ code: WireErrorCode.SLOT_MOVING, retryable: true }) },
    ]);
    // A resend's lookup of r1's grants: p is on its way, held by neither shard now. Answering s
    // alone would have the resend fill anew, and p would sit leased to nobody until it expired.
    const lookup = (attempt: number) => lookupOf("r1", 2, attempt);
    expect(errorOf(await atA(lookup(2)))).toBe(WireErrorCode.SLOT_MOVING);
    // So is a settle resent with r1 as its next leases (the worker sends it again until the move
    // ends); its complete went through, and the resend finds it a duplicate.
    const settle = (attempt: number): RequestOf<"settle"> => ({
      op: "settle",
      completes: [{ taskId: s.taskId, workflowId: STAY, token: s.token, secret: s.secret! }],
      lease: { owner: "w1", max: 2, leaseMs: 60_000, requestId: "r1", attempt },
    });
    expect(errorOf(await atA(settle(3)))).toBe(WireErrorCode.SLOT_MOVING);
    expect(ok(await atA({ op: "getTask", taskId: "s", workflowId: STAY })).task?.state).toBe("COMPLETED");
    // A second move of the slot meanwhile is refused.
    expect(errorOf(await move(nc, cluster, "a", "f", "m2"))).toBe(WireErrorCode.SLOT_MOVING);
    // So is the slot coming back before this move ended (its switch could yet undo the other's).
    expect(errorOf(await atA(emptyPart("back", "f", 1)))).toBe(WireErrorCode.SLOT_MOVING);

    // The target refuses the tasks (an id it holds): the move is undone, nothing lost.
    target.parts[0]!.respond({
      ok: false,
      error: {
        code: WireErrorCode.INVALID_ARGUMENT,
        message: 'task "p" is held here already',
        retryable: false,
      },
    });
    expect(errorOf(await moving)).toBe(WireErrorCode.INVALID_ARGUMENT);
    // p is back: the lookup hands its grant back.
    const back = ok(await atA(lookup(4)));
    expect(back.leases.map((l) => [l.taskId, l.token])).toContainEqual(["p", p.token]);
    expect(ok(await atA({ op: "complete", ...held })).duplicate).toBe(false);
    expect(ok(await atA({ op: "getTask", taskId: "d", workflowId: WF })).task?.state).toBe("RUNNABLE");
  });

  it("shifts moved times by the export's time on the source's clock: a moved lease ends no earlier than at the source", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    await startActor(cluster, "a", A_SLOTS);
    const b = await env.startActor({ cluster, shardId: "b", slots: B_SLOTS, announceIntervalMs: 50 });
    const target = fakeTarget(nc, cluster, "f");
    env.defer(async () => target.stop());
    const { p } = await load(nc, cluster, "a");
    const moving = move(nc, cluster, "a", "f", "m1");
    // Every part of the export, each taken in as staged (the last one left unanswered).
    const parts: AdoptRequest[] = [];
    for (;;) {
      await eventually(async () => target.parts.length > parts.length, 10_000, "the next part");
      const part = decodeRequest(target.parts[parts.length]!.request, "adopt") as AdoptRequest;
      parts.push(part);
      if (parts.length === part.parts) break;
      target.parts[parts.length - 1]!.respond({ ok: true, op: "adopt", adopted: false });
    }
    const lease = parts.flatMap((q) => q.tasks).find((r) => r.spec.id === "p")?.status;
    expect(lease?.leaseExpiresAt).toBe(p.expiresAt);
    // The same export, as if made 10 s ago on the source's clock (a slow move, or a source whose
    // clock runs 10 s ahead): b reads p's lease as ending 10 s later on its own clock.
    let reply: Reply<"adopt"> | undefined;
    for (const part of parts)
      reply = await ask(nc, cluster, "b", { ...part, exportedAt: part.exportedAt! - 10_000 });
    expect(ok(reply!).adopted).toBe(true);
    await b.actor.close();
    const shard = await Shard.open({ dataDir: b.dataDir });
    try {
      expect(shard.getTask("p")?.leaseExpiresAt).toBeGreaterThanOrEqual(p.expiresAt + 10_000);
    } finally {
      await shard.close();
    }
    target.parts[parts.length - 1]!.respond({
      ok: false,
      error: { code: WireErrorCode.INVALID_ARGUMENT, message: "refused by the test", retryable: false },
    });
    expect(errorOf(await moving)).toBe(WireErrorCode.INVALID_ARGUMENT);
  });

  it("a source restarted mid-move drives its outbox to the end; nothing lost or doubled", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const dirA = env.freshDir();
    const a = await startActor(cluster, "a", A_SLOTS, { dataDir: dirA });
    const target = fakeTarget(nc, cluster, "b");
    const { p } = await load(nc, cluster, "a");
    const moving = move(nc, cluster, "a", "b", "m1");
    await target.nextPart();
    // The source goes away after its fence and export committed, before any adopt was answered.
    await a.close();
    expect((await moving).ok).toBe(false);
    target.stop();
    const before = decodeRequest(target.parts[0]!.request, "adopt") as AdoptRequest;
    expect(before.tasks.map((t) => t.spec.id)).toEqual(["d", "e", "p"]);

    const b = await startActor(cluster, "b", B_SLOTS);
    // The restarted source finds its outbox row and finishes the move by itself.
    const a2 = await startActor(cluster, "a", A_SLOTS, { dataDir: dirA });
    await eventually(
      () => b.owns(SLOT) && !a2.owns(SLOT) && a2.stats().shard.counts.LEASED === 1,
      10_000,
      "the move",
    );
    const atB = <R extends Request>(r: R) => ask(nc, cluster, "b", r);
    expect(
      ok(await atB({ op: "complete", taskId: "p", workflowId: WF, token: p.token, secret: p.secret! }))
        .duplicate,
    ).toBe(false);
    const counts = b.stats().shard.counts;
    expect(counts.COMPLETED + counts.RUNNABLE + counts.WAITING).toBe(3);
    expect(a2.stats().shard.counts).toMatchObject({ LEASED: 1, RUNNABLE: 0, WAITING: 0, COMPLETED: 0 });
  });

  it("a target restarted between its adopt and the switch keeps the slot, and serves it once the bucket names it", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const dirB = env.freshDir();
    const b = await startActor(cluster, "b", B_SLOTS, { dataDir: dirB });
    const a = await startActor(cluster, "a", A_SLOTS);
    await load(nc, cluster, "a");
    // The test plays the source's first two steps by hand: a's tasks of the slot, adopted at b.
    const row = await (a as unknown as { shard: import("@frontier/shard").Shard }).shard.beginMove({
      moveId: "m1",
      slot: SLOT,
      source: "a",
      target: "b",
      select: (workflowId) => workflowId === WF || workflowId === WF2,
      proofOf: (taskId, token) => `${taskId}${token}`.padEnd(22, "x").slice(0, 22),
    });
    const part: AdoptRequest = {
      op: "adopt",
      moveId: "m1",
      slot: SLOT,
      source: "a",
      part: 0,
      parts: 1,
      tasks: row.tasks,
      entries: row.idempotency.map(([key, e]) => ({ key, ...e })),
      leases: row.leases,
    };
    expect(ok(await ask(nc, cluster, "b", part)).adopted).toBe(true);
    expect(b.owns(SLOT)).toBe(false);
    await b.close();
    const b2 = await startActor(cluster, "b", B_SLOTS, { dataDir: dirB });
    expect(ok(await ask(nc, cluster, "b", part)).adopted).toBe(true);
    expect(b2.owns(SLOT)).toBe(false);
    expect(b2.stats().shard.counts.LEASED).toBe(1);
    const ownership = await SlotOwnership.open(nc, { cluster });
    env.defer(() => ownership.close());
    await ownership.transfer(SLOT, "a", "b");
    await eventually(() => b2.owns(SLOT), 5_000, "b to serve the slot");
    await b2.checkSlots();
    expect(b2.owns(SLOT)).toBe(true);
  });

  it("rebalances by itself with autoRebalanceMs: a shard that joins gets its share, with its tasks", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const a = await startActor(cluster, "a", A_SLOTS, { autoRebalanceMs: 20 });
    await load(nc, cluster, "a");
    // b joins with one slot of its own: five slots owned, so a keeps three and gives one.
    const b = await startActor(cluster, "b", [20], { autoRebalanceMs: 20 });
    await eventually(
      () => b.ownedSlots().length === 2 && a.ownedSlots().length === 3,
      15_000,
      "an even split",
    );
    const held = (actor: ShardActor) => Object.values(actor.stats().shard.counts).reduce((x, y) => x + y, 0);
    expect(held(a) + held(b)).toBe(4);
    expect(b.ownedSlots()).toContain(20);
    expect(b.ownedSlots()).toContain(20);
    // Even: nothing moves any more.
    const before = [a.ownedSlots(), b.ownedSlots()];
    await a.checkSlots();
    expect([a.ownedSlots(), b.ownedSlots()]).toEqual(before);
  });
});
