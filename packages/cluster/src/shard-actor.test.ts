/**
 * The shard actor end to end against a real nats-server: every op through
 * the codec, bad input at the boundary, slot checks, the two-phase submit,
 * lease retries / maxKey / long-poll / reply budget, announcements, restart
 * on the same data, and a fenced shard.
 */
import { ProblemCode } from "@frontier/core";
import {
  encodeReply,
  encodeRequest,
  MAX_MESSAGE_BYTES,
  type Reply,
  type Request,
  SHARD_UNAVAILABLE_DETAILS,
  SLOT_COUNT,
  subjectsFor,
  WireErrorCode,
} from "@frontier/protocol";
import { Shard, ShardErrorCode } from "@frontier/shard";
import { errors as natsErrors } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  askRaw,
  eventually,
  keysInSlots,
  listenFrontier,
  silent,
  TEST_SLOTS,
  type TestActor,
  type TestActorOptions,
  TestEnv,
  task,
} from "../test/support.js";
import { checkShardActorOptions, type ShardActorOptions } from "./options.js";
import { ActorState, isNatsDown, ShardActor } from "./shard-actor.js";
import { SlotOwnership } from "./slot-ownership.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/** A lease secret in the right form that no shard made. */
const NOT_A_SECRET = "AAAAAAAAAAAAAAAAAAAAAA";

const SLOTS = TEST_SLOTS;

type Setup = TestActor;

const startActor = (extra: TestActorOptions = {}): Promise<Setup> => env.startActor(extra);

/** An actor holding one task `id`, leased to "w": its grant, and the reference a lease call names it by. */
async function withOneLease(id: string) {
  const setup = await startActor();
  const { nc, cluster, shardId, wf } = setup;
  const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
  ok(await q({ op: "submit", tasks: [task(id, 1, { workflowId: wf })], idempotencyKey: "k" }));
  const [lease] = ok(
    await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r" }),
  ).leases;
  return { ...setup, q, lease, held: { taskId: id, workflowId: wf, token: lease!.token } };
}

function expectError(reply: Reply, code: string): NonNullable<Extract<Reply, { ok: false }>["error"]> {
  if (reply.ok) throw new Error(`expected a ${code} error reply, got ${JSON.stringify(reply)}`);
  expect(reply.error.code).toBe(code);
  return reply.error;
}

function ok<R extends Reply>(reply: R): Extract<R, { ok: true }> {
  if (!reply.ok) throw new Error(`expected an ok reply, got ${JSON.stringify(reply.error)}`);
  return reply as Extract<R, { ok: true }>;
}

describe("ShardActor", () => {
  it("serves every op end to end through the codec", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const ref = (taskId: string) => ({ taskId, workflowId: wf });

    const tasks = [
      task("a", 300, { workflowId: wf, payload: { n: 1 } }),
      task("b", 100, { workflowId: wf }),
      task("c", 200, { workflowId: wf, prerequisites: ["a"] }),
      task("d", 400, { workflowId: wf, maxAttempts: 1 }),
    ];
    expect(ok(await q({ op: "submit", tasks, idempotencyKey: "k1" }))).toMatchObject({
      accepted: 4,
      replayed: false,
    });
    expect(ok(await q({ op: "submit", tasks, idempotencyKey: "k1" }))).toMatchObject({
      accepted: 4,
      replayed: true,
    });
    expect(ok(await q({ op: "getTask", ...ref("c") })).task).toMatchObject({
      id: "c",
      state: "WAITING",
      unmetPrerequisites: 1,
    });
    expect(ok(await q({ op: "getTask", ...ref("nope") })).task).toBeNull();

    const leased = ok(
      await q({ op: "lease", owner: "w1", max: 2, leaseMs: 60_000, waitMs: 0, requestId: "r1" }),
    ).leases;
    expect(leased.map((l) => l.taskId)).toEqual(["b", "a"]);
    expect(leased[1]!.task.payload).toEqual({ n: 1 });
    const [b, a] = leased as [(typeof leased)[0], (typeof leased)[0]];

    expect(a.secret).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const hb = ok(
      await q({ op: "heartbeat", ...ref("b"), token: b.token, secret: b.secret!, leaseMs: 120_000 }),
    );
    expect(hb.expiresAt).toBeGreaterThan(b.expiresAt);
    expect(ok(await q({ op: "complete", ...ref("a"), token: a.token, secret: a.secret! })).duplicate).toBe(
      false,
    );
    expect(ok(await q({ op: "complete", ...ref("a"), token: a.token, secret: a.secret! })).duplicate).toBe(
      true,
    );
    expect(
      ok(
        await q({
          op: "fail",
          ...ref("b"),
          token: b.token,
          secret: b.secret!,
          retryable: false,
          reason: "boom",
        }),
      ).state,
    ).toBe("FAILED");
    ok(await q({ op: "updateDeadline", ...ref("c"), deadline: 50 }));
    expect(ok(await q({ op: "getTask", ...ref("c") })).task).toMatchObject({
      state: "RUNNABLE",
      deadline: 50,
    });
    ok(await q({ op: "cancel", ...ref("d"), reason: "not needed" }));
    expect(ok(await q({ op: "getTask", ...ref("d") })).task?.state).toBe("CANCELLED");

    const stats = ok(await q({ op: "stats" })).stats;
    expect(stats.counts.COMPLETED).toBe(1);
    expect(stats.counts.FAILED).toBe(1);
    expect(stats.runnable).toBe(1);
    expect(stats.frontierDeadline).toBe(50);

    // The engine's errors arrive typed, with their fields.
    expect(
      expectError(await q({ op: "complete", ...ref("b"), token: 999, secret: b.secret! }), "STALE_LEASE")
        .taskId,
    ).toBe("b");
    expectError(
      await q({ op: "heartbeat", ...ref("zz"), token: 1, secret: NOT_A_SECRET, leaseMs: 1_000 }),
      "UNKNOWN_TASK",
    );
    const misrouted = expectError(
      await q({
        op: "submit",
        tasks: [task("x", 1, { workflowId: wf, prerequisites: ["y"] }), task("y", 1)],
        idempotencyKey: "k2",
      }),
      "SLOT_NOT_OWNED",
    );
    // "y" has no workflow: its own id routes it, to a slot this shard does not own.
    expect(misrouted.retryable).toBe(true);
    const problems = expectError(
      await q({
        op: "submit",
        tasks: [task("e", 1, { workflowId: wf, prerequisites: ["e"] }), task("b", 1, { workflowId: wf })],
        idempotencyKey: "k3",
      }),
      "VALIDATION_FAILED",
    ).problems;
    expect(problems?.map((p) => [p.taskId, p.code])).toEqual(
      expect.arrayContaining([
        ["e", ProblemCode.SELF_DEPENDENCY],
        ["b", ProblemCode.DUPLICATE_ID],
      ]),
    );
  });

  it("requires prerequisites in the task's own workflow", async () => {
    const { nc, cluster, shardId } = await startActor();
    const [w1, w2] = keysInSlots("flow", SLOTS, 2) as [string, string];
    ok(
      await ask(nc, cluster, shardId, {
        op: "submit",
        tasks: [task("p", 1, { workflowId: w1 })],
        idempotencyKey: "a",
      }),
    );
    const error = expectError(
      await ask(nc, cluster, shardId, {
        op: "submit",
        tasks: [task("q", 1, { workflowId: w2, prerequisites: ["p"] })],
        idempotencyKey: "b",
      }),
      "VALIDATION_FAILED",
    );
    expect(error.problems?.[0]?.code).toBe(ProblemCode.CROSS_WORKFLOW);
  });

  it("answers garbage, other versions and oversized messages with an error reply, and keeps serving", async () => {
    const { actor, nc, cluster, shardId } = await startActor();
    const subjects = subjectsFor(cluster);
    const stats = subjects.shard(shardId, "stats");

    expectError(await askRaw(nc, stats, new Uint8Array([0xc1, 0xff, 0x00, 0x13])), "BAD_MESSAGE");
    expectError(await askRaw(nc, stats, new Uint8Array(0)), "BAD_MESSAGE");
    // { v: 99, kind: "request", op: "stats" }, by hand: a peer of another version.
    const v2 = new Uint8Array([
      0x83,
      0xa1,
      0x76,
      0x63,
      0xa4,
      ...bytes("kind"),
      0xa7,
      ...bytes("request"),
      0xa2,
      ...bytes("op"),
      0xa5,
      ...bytes("stats"),
    ]);
    const version = expectError(await askRaw(nc, stats, v2), "UNSUPPORTED_VERSION");
    expect(version.message).toMatch(/version 99/);
    // Above MAX_MESSAGE_BYTES, yet under NATS's max_payload: it reaches the actor.
    const huge = new Uint8Array(MAX_MESSAGE_BYTES + 1_000);
    expectError(await askRaw(nc, stats, huge), "MESSAGE_TOO_LARGE");
    // A well-formed request on another op's subject, an unknown op, a reply sent as a request.
    expectError(
      await askRaw(nc, subjects.shard(shardId, "complete"), encodeRequest({ op: "stats" })),
      "BAD_MESSAGE",
    );
    expectError(
      await askRaw(nc, `frontier.${cluster}.shard.${shardId}.frobnicate`, encodeRequest({ op: "stats" })),
      "BAD_MESSAGE",
    );
    expectError(await askRaw(nc, stats, encodeReply({ ok: true, op: "abort" })), "BAD_MESSAGE");
    // A bad field is named.
    const bad = await askRaw(
      nc,
      subjects.shard(shardId, "lease"),
      encodeRequestUnchecked({ op: "lease", owner: "w", max: 0, leaseMs: 1, waitMs: 0, requestId: "r" }),
      "lease",
    );
    expect(expectError(bad, "BAD_MESSAGE").message).toMatch(/max/);
    // A publish with no reply subject is dropped quietly.
    nc.publish(stats, new Uint8Array([1, 2, 3]));

    expect(ok(await ask(nc, cluster, shardId, { op: "stats" })).stats.runnable).toBe(0);
    expect(actor.stats().errors).toBeGreaterThanOrEqual(8);
    expect(actor.currentState).toBe(ActorState.SERVING);
  });

  it("refuses new tasks whose slot it does not own with SLOT_NOT_OWNED", async () => {
    const { nc, cluster, shardId } = await startActor();
    // Another shard owns slot 4.
    const other = await SlotOwnership.open(await env.connect(), { cluster, logger: silent });
    env.defer(() => other.close());
    await other.claim("s1", [4]);
    const [foreign] = keysInSlots("t", [4], 1) as [string];
    const [unowned] = keysInSlots("t", [900], 1) as [string];

    const submit = () =>
      ask(nc, cluster, shardId, { op: "submit", tasks: [task(foreign, 1)], idempotencyKey: "k" });
    // The actor's map learns of s1's claim through its watcher.
    await eventually(async () => {
      const reply = await submit();
      return !reply.ok && reply.error.message.includes("shard s1 does");
    });
    const submitted = expectError(await submit(), "SLOT_NOT_OWNED");
    expect(submitted.retryable).toBe(true);
    const prepared = expectError(
      await ask(nc, cluster, shardId, { op: "prepare", tasks: [task(unowned, 1)], idempotencyKey: "k" }),
      "SLOT_NOT_OWNED",
    );
    expect(prepared.message).toMatch(/no shard owns it/);
    // Requests naming a task are answered from the shard's data, whatever the slot: a
    // coordinator asks every shard about a task named by id alone.
    expect(ok(await ask(nc, cluster, shardId, { op: "getTask", taskId: foreign }))).toMatchObject({
      task: null,
    });
    expectError(
      await ask(nc, cluster, shardId, { op: "complete", taskId: unowned, token: 1, secret: NOT_A_SECRET }),
      "UNKNOWN_TASK",
    );
  });

  it("prepares, commits and aborts the parts of a multi-shard submit", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const part = [task("a", 10, { workflowId: wf }), task("b", 20, { workflowId: wf, prerequisites: ["a"] })];

    expect(ok(await q({ op: "prepare", tasks: part, idempotencyKey: "P1" })).accepted).toBe(2);
    // Reserved, not yet there: invisible, not leasable, and no other batch may take the ids.
    expect(ok(await q({ op: "getTask", taskId: "a", workflowId: wf })).task).toBeNull();
    expect(ok(await q({ op: "stats" })).stats.runnable).toBe(0);
    const dup = expectError(
      await q({ op: "submit", tasks: [task("a", 1, { workflowId: wf })], idempotencyKey: "other" }),
      "VALIDATION_FAILED",
    );
    expect(dup.problems?.[0]).toMatchObject({ taskId: "a", code: ProblemCode.DUPLICATE_ID });
    expectError(
      await q({ op: "prepare", tasks: [task("b", 1, { workflowId: wf })], idempotencyKey: "P9" }),
      "VALIDATION_FAILED",
    );
    // A retried prepare is fine; the same key with another batch is not.
    expect(ok(await q({ op: "prepare", tasks: part, idempotencyKey: "P1" })).accepted).toBe(2);
    expectError(await q({ op: "prepare", tasks: [part[0]!], idempotencyKey: "P1" }), "BAD_MESSAGE");

    expect(ok(await q({ op: "commit", idempotencyKey: "P1" }))).toMatchObject({
      accepted: 2,
      replayed: false,
    });
    expect(ok(await q({ op: "commit", idempotencyKey: "P1" }))).toMatchObject({
      accepted: 2,
      replayed: true,
    });
    expect(ok(await q({ op: "getTask", taskId: "b", workflowId: wf })).task?.state).toBe("WAITING");
    // The client retries the whole submit: prepare says yes, commit replays, nothing is added twice.
    expect(ok(await q({ op: "prepare", tasks: part, idempotencyKey: "P1" })).accepted).toBe(2);
    expect(ok(await q({ op: "commit", idempotencyKey: "P1" }))).toMatchObject({
      accepted: 2,
      replayed: true,
    });
    // Abort after commit changes nothing.
    ok(await q({ op: "abort", idempotencyKey: "P1" }));
    expect(ok(await q({ op: "stats" })).stats.counts.WAITING).toBe(1);

    // Abort frees the ids; a commit after an abort is refused, retryably.
    ok(await q({ op: "prepare", tasks: [task("c", 5, { workflowId: wf })], idempotencyKey: "P2" }));
    ok(await q({ op: "abort", idempotencyKey: "P2" }));
    const lost = expectError(await q({ op: "commit", idempotencyKey: "P2" }), "SHARD_UNAVAILABLE");
    expect(lost.retryable).toBe(true);
    expect(lost.message).toMatch(/no prepared part/);
    ok(await q({ op: "submit", tasks: [task("c", 5, { workflowId: wf })], idempotencyKey: "P3" }));
    ok(await q({ op: "abort", idempotencyKey: "never-seen" }));
    // A part the shard's state rejects is rejected at prepare.
    expectError(
      await q({ op: "prepare", tasks: [task("c", 5, { workflowId: wf })], idempotencyKey: "P4" }),
      "VALIDATION_FAILED",
    );
  });

  it("lets a prepared part expire after prepareTtlMs", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor({ prepareTtlMs: 150 });
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    ok(await q({ op: "prepare", tasks: [task("a", 1, { workflowId: wf })], idempotencyKey: "K" }));
    expect(actor.stats().prepared).toBe(1);
    // The actor's sweep drops it once its ttl has passed.
    await eventually(() => actor.stats().prepared === 0, 5_000, "the part's expiry");
    const expired = expectError(await q({ op: "commit", idempotencyKey: "K" }), "SHARD_UNAVAILABLE");
    expect(expired.retryable).toBe(true);
    // The ids are free again.
    expect(
      ok(await q({ op: "submit", tasks: [task("a", 1, { workflowId: wf })], idempotencyKey: "K2" })).accepted,
    ).toBe(1);
  });

  it("refuses a prepare past maxPreparedParts or maxPreparedBytes as OVERLOADED, reserving nothing", async () => {
    const { nc, cluster, shardId, wf } = await startActor({ maxPreparedParts: 2, maxPreparedBytes: 4_000 });
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const part = (id: string, payload?: unknown) => [
      task(id, 1, { workflowId: wf, ...(payload === undefined ? {} : { payload }) }),
    ];
    ok(await q({ op: "prepare", tasks: part("a"), idempotencyKey: "A" }));
    ok(await q({ op: "prepare", tasks: part("b"), idempotencyKey: "B" }));
    // Preparing a held key again replaces its part: no more room needed.
    ok(await q({ op: "prepare", tasks: part("b"), idempotencyKey: "B" }));
    const full = expectError(await q({ op: "prepare", tasks: part("c"), idempotencyKey: "C" }), "OVERLOADED");
    expect(full.retryable).toBe(true);
    expect(full.message).toMatch(/2 prepared parts held/);
    // Nothing of the refused part is reserved: its id can be submitted.
    expect(ok(await q({ op: "submit", tasks: part("c"), idempotencyKey: "S" })).accepted).toBe(1);
    ok(await q({ op: "abort", idempotencyKey: "A" }));
    const big = expectError(
      await q({ op: "prepare", tasks: part("d", "x".repeat(5_000)), idempotencyKey: "D" }),
      "OVERLOADED",
    );
    expect(big.message).toMatch(/the limit is 4000/);
    ok(await q({ op: "prepare", tasks: part("e"), idempotencyKey: "E" }));
  });

  it("refuses a submit or prepare past maxLiveTasks as OVERLOADED, counting prepared parts as held, applying nothing", async () => {
    const { nc, cluster, shardId, wf } = await startActor({ maxLiveTasks: 3 });
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const part = (...ids: string[]) => ids.map((id) => task(id, 1, { workflowId: wf }));
    const stats = async () => ok(await q({ op: "stats" })).stats.counts;
    // Phase one of a submit sets its room aside: two of the three.
    ok(await q({ op: "prepare", tasks: part("a", "b"), idempotencyKey: "A" }));
    const before = await stats();
    const refused = expectError(
      await q({ op: "submit", tasks: part("c", "d"), idempotencyKey: "S" }),
      "OVERLOADED",
    );
    expect(refused.retryable).toBe(true);
    expect(refused.message).toMatch(
      /shard s0 refuses: 2 live tasks held, and this submit adds 2: that passes maxLiveTasks \(3\)/,
    );
    expectError(await q({ op: "prepare", tasks: part("c", "d"), idempotencyKey: "B" }), "OVERLOADED");
    // Nothing of either was applied or reserved: no task, no key, no part.
    expect(await stats()).toEqual(before);
    expect(ok(await q({ op: "getTask", taskId: "c", workflowId: wf })).task).toBeNull();
    expect(ok(await q({ op: "commit", idempotencyKey: "A" })).accepted).toBe(2);
    expectError(await q({ op: "commit", idempotencyKey: "B" }), "SHARD_UNAVAILABLE");
    // The same submit, sent again when it fits, is accepted as new (its key was not kept).
    expect(ok(await q({ op: "submit", tasks: part("c"), idempotencyKey: "S" }))).toMatchObject({
      accepted: 1,
      replayed: false,
    });
    expectError(await q({ op: "submit", tasks: part("d"), idempotencyKey: "T" }), "OVERLOADED");
    ok(await q({ op: "cancel", taskId: "a", workflowId: wf }));
    ok(await q({ op: "submit", tasks: part("d"), idempotencyKey: "T" }));
  });

  it("refuses past maxStoredBytes and maxIdempotencyKeys as OVERLOADED, naming the limit and its value", async () => {
    const payload = { blob: "z".repeat(1_000) };
    const { nc, cluster, shardId, wf } = await startActor({ maxStoredBytes: 2_500, maxIdempotencyKeys: 3 });
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const heavy = (id: string) => [task(id, 1, { workflowId: wf, payload })];
    ok(await q({ op: "submit", tasks: heavy("a"), idempotencyKey: "K1" }));
    ok(await q({ op: "prepare", tasks: heavy("b"), idempotencyKey: "K2" }));
    const bytes = expectError(
      await q({ op: "submit", tasks: heavy("c"), idempotencyKey: "K3" }),
      "OVERLOADED",
    );
    expect(bytes.message).toMatch(/passes maxStoredBytes \(2500\)/);
    // Light tasks still fit; then the keys run out (K1, K2's part, K3).
    ok(await q({ op: "submit", tasks: [task("light", 1, { workflowId: wf })], idempotencyKey: "K3" }));
    const keys = expectError(
      await q({ op: "submit", tasks: [task("light2", 1, { workflowId: wf })], idempotencyKey: "K4" }),
      "OVERLOADED",
    );
    expect(keys.retryable).toBe(true);
    expect(keys.message).toMatch(
      /3 idempotency keys held, and this submit adds 1: that passes maxIdempotencyKeys \(3\)/,
    );
    // A key already accepted is answered as before.
    expect(ok(await q({ op: "submit", tasks: heavy("a"), idempotencyKey: "K1" })).replayed).toBe(true);
    expect(ok(await q({ op: "commit", idempotencyKey: "K2" })).accepted).toBe(1);
  });

  it("counts what it holds again after a restart on its data, and refuses at the same point", async () => {
    const first = await startActor({ maxLiveTasks: 2 });
    const { nc, cluster, shardId, dataDir, wf } = first;
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    ok(
      await q({
        op: "submit",
        tasks: [task("a", 1, { workflowId: wf }), task("b", 2, { workflowId: wf })],
        idempotencyKey: "k",
      }),
    );
    await first.actor.close();
    await startActor({ cluster, shardId, dataDir, slots: "auto", maxLiveTasks: 2 });
    const refused = expectError(
      await q({ op: "submit", tasks: [task("c", 3, { workflowId: wf })], idempotencyKey: "k2" }),
      "OVERLOADED",
    );
    expect(refused.message).toMatch(/2 live tasks held/);
    ok(await q({ op: "cancel", taskId: "a", workflowId: wf }));
    ok(await q({ op: "submit", tasks: [task("c", 3, { workflowId: wf })], idempotencyKey: "k2" }));
  });

  it("gives a lease retried with the same request id the same grant", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = ["a", "b", "c"].map((id, i) => task(id, i, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const lease = (requestId: string, owner = "w1") =>
      q({ op: "lease", owner, max: 2, leaseMs: 60_000, waitMs: 0, requestId });

    const first = ok(await lease("r1")).leases;
    expect(first.map((l) => l.taskId)).toEqual(["a", "b"]);
    expect(ok(await lease("r1")).leases).toEqual(first);
    expect(ok(await lease("r2")).leases.map((l) => l.taskId)).toEqual(["c"]);
    // Another owner with the same request id is another request.
    expect(ok(await lease("r1", "w2")).leases).toEqual([]);
    // Retries racing the first attempt get its grant too.
    ok(await q({ op: "submit", tasks: [task("d", 9, { workflowId: wf })], idempotencyKey: "k2" }));
    const racing = await Promise.all([lease("r3"), lease("r3"), lease("r3")]);
    const grants = racing.map((r) => ok(r).leases);
    expect(grants[0]!.map((l) => l.taskId)).toEqual(["d"]);
    expect(grants[1]).toEqual(grants[0]);
    expect(grants[2]).toEqual(grants[0]);
    expect(actor.stats().shard.leased).toBe(4);
  });

  it("hands back a remembered grant only while it holds: not once it expired and the task went to another", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    ok(await q({ op: "submit", tasks: [task("a", 1, { workflowId: wf })], idempotencyKey: "k" }));
    const lease = (owner: string, leaseMs: number, extra: { attempt?: number; replayOnly?: boolean } = {}) =>
      q({ op: "lease", owner, max: 1, leaseMs, waitMs: 0, requestId: "r1", ...extra });
    // w1's grant, its reply taken to be lost; the lease runs out, and w2 is granted the task.
    const first = ok(await lease("w1", 50)).leases;
    expect(first.map((l) => l.taskId)).toEqual(["a"]);
    let second: readonly { taskId: string; token: number }[] = [];
    await eventually(
      async () => (second = ok(await lease("w2", 60_000)).leases).length === 1,
      5_000,
      "the first lease to expire",
    );
    expect(second[0]!.token).toBeGreaterThan(first[0]!.token);
    // w1's duplicate of its first send, and its resend's lookup, get nothing: the grant is gone
    // (handed back, it would have w1 run a task w2 holds).
    expect(ok(await lease("w1", 50)).leases).toEqual([]);
    expect(ok(await lease("w1", 50, { attempt: 2, replayOnly: true })).leases).toEqual([]);
  });

  it("answers a replay-only lease with the grant kept under any per-shard or attempt id, never anew", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = ["a", "b", "c", "d"].map((id, i) => task(id, i, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const lease = (
      requestId: string,
      extra: { max?: number; replayOnly?: boolean; owner?: string; ask?: number } = {},
    ) =>
      q({
        op: "lease",
        owner: extra.owner ?? "w1",
        max: extra.max ?? 2,
        leaseMs: 60_000,
        waitMs: 0,
        requestId,
        ...(extra.ask === undefined ? {} : { ask: extra.ask }),
        ...(extra.replayOnly === undefined ? {} : { replayOnly: extra.replayOnly }),
      });

    // Nothing granted under the id yet: nothing, and no grant made.
    expect(ok(await lease("r1", { replayOnly: true })).leases).toEqual([]);
    expect(actor.stats().shard.leased).toBe(0);
    // Granted by one coordinator on its second ask in one fill...
    const first = ok(await lease("r1", { ask: 2 })).leases;
    expect(first.map((l) => l.taskId)).toEqual(["a", "b"]);
    // ...found by another asking replay-only under the client's id, whatever its ask.
    expect(ok(await lease("r1", { replayOnly: true })).leases).toEqual(first);
    expect(ok(await lease("r1", { replayOnly: true, ask: 3 })).leases).toEqual(first);
    // Capped at max.
    expect(ok(await lease("r1", { replayOnly: true, max: 1 })).leases).toEqual(first.slice(0, 1));
    // Another owner, or another request id, has no grant here.
    expect(ok(await lease("r1", { replayOnly: true, owner: "w2" })).leases).toEqual([]);
    expect(ok(await lease("r2", { replayOnly: true })).leases).toEqual([]);
    // An id that looks like an old per-shard one (`<id>:<shard>`) is an id of its own now.
    expect(ok(await lease(`r1:${shardId}`, { replayOnly: true })).leases).toEqual([]);
    const direct = ok(await lease("plain", { max: 1 })).leases;
    expect(direct.map((l) => l.taskId)).toEqual(["c"]);
    expect(ok(await lease("plain", { replayOnly: true })).leases).toEqual(direct);
    expect(actor.stats().shard.leased).toBe(3);
  });

  it("grants nothing to an earlier attempt once a resend's replay-only lookup has fenced it", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = ["a", "b", "c"].map((id, i) => task(id, i, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const lease = (requestId: string, attempt: number | undefined, replayOnly = false, ask?: number) =>
      q({
        op: "lease",
        owner: "w1",
        max: 1,
        leaseMs: 60_000,
        waitMs: 0,
        requestId,
        ...(ask === undefined ? {} : { ask }),
        ...(attempt === undefined ? {} : { attempt }),
        ...(replayOnly ? { replayOnly } : {}),
      });

    // The client's first send is slow to reach this shard (its coordinator is filling it late);
    // the client resends, and the resend's coordinator looks the grants up first: there are none.
    expect(ok(await lease("r1", 2, true)).leases).toEqual([]);
    // The resend's own fill is granted.
    const resent = ok(await lease("r1", 2)).leases;
    expect(resent.map((l) => l.taskId)).toEqual(["a"]);
    // Now the first send's ask arrives, and its next ask in the same fill: they grant nothing (their
    // client gave that send up; a grant now would be stranded until it expired), and are answered
    // as a retry of the request: with what the request holds here.
    expect(ok(await lease("r1", undefined)).leases).toEqual(resent);
    expect(ok(await lease("r1", 1, false, 2)).leases).toEqual(resent);
    expect(actor.stats().shard.leased).toBe(1);
    expect(actor.stats().shard.runnable).toBe(2);
    // A later resend finds exactly the resend's grant.
    expect(ok(await lease("r1", 3, true)).leases).toEqual(resent);
  });

  it("leases only tasks up to maxKey", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = [10, 20, 30].map((d) => task(`t${d}`, d, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const lease = (requestId: string, maxKey: number) =>
      q({ op: "lease", owner: "w", max: 5, leaseMs: 60_000, waitMs: 0, requestId, maxKey });
    expect(ok(await lease("r0", 5)).leases).toEqual([]);
    expect(ok(await lease("r1", 20)).leases.map((l) => l.taskId)).toEqual(["t10", "t20"]);
    expect(ok(await lease("r2", Number.MAX_VALUE)).leases.map((l) => l.taskId)).toEqual(["t30"]);
  });

  it("breaks ties at maxKey by task id, up to maxTaskId", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = ["a", "c", "e"].map((id) => task(id, 50, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const lease = (requestId: string, maxTaskId: string) =>
      q({ op: "lease", owner: "w", max: 5, leaseMs: 60_000, waitMs: 0, requestId, maxKey: 50, maxTaskId });
    // Another shard's first task is (50, "b"): only "a" comes before it.
    expect(ok(await lease("r1", "b")).leases.map((l) => l.taskId)).toEqual(["a"]);
    expect(ok(await lease("r2", "c")).leases.map((l) => l.taskId)).toEqual(["c"]);
    expect(ok(await lease("r3", "z")).leases.map((l) => l.taskId)).toEqual(["e"]);
  });

  it("says in each lease reply what its frontier is after the grant, numbered after its announcements", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = [10, 20, 30].map((d) => task(`t${d}`, d, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const lease = async (requestId: string) =>
      ok(await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId }));
    const first = await lease("r1");
    expect(first.leases.map((l) => l.taskId)).toEqual(["t10"]);
    expect(first.frontier).toMatchObject({ shardId, key: 20, deadline: 20, taskId: "t20", runnable: 2 });
    const second = await lease("r2");
    expect(second.frontier).toMatchObject({ key: 30, runnable: 1 });
    expect(second.frontier!.seq).toBeGreaterThan(first.frontier!.seq);
    const last = await lease("r3");
    expect(last.frontier).toMatchObject({ key: null, deadline: null, taskId: null, runnable: 0 });
  });

  it("waits up to waitMs for a runnable task (long-poll)", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    expect(
      ok(await q({ op: "lease", owner: "w", max: 1, leaseMs: 1_000, waitMs: 50, requestId: "r0" })).leases,
    ).toEqual([]);
    const waiting = q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 10_000, requestId: "r1" });
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the long-poll to park");
    ok(await q({ op: "submit", tasks: [task("late", 1, { workflowId: wf })], idempotencyKey: "k" }));
    expect(ok(await waiting).leases.map((l) => l.taskId)).toEqual(["late"]);
  });

  it("takes heartbeat, complete and fail only with the lease's secret; a wrong one is STALE_LEASE and changes nothing", async () => {
    const { actor, q, wf, lease, held } = await withOneLease("s");
    // Someone who read the token (getTask shows it) but not the grant.
    expect(ok(await q({ op: "getTask", taskId: "s", workflowId: wf })).task?.token).toBe(lease!.token);
    const refused = expectError(await q({ op: "complete", ...held, secret: NOT_A_SECRET }), "STALE_LEASE");
    expect(refused.message).not.toContain(lease!.secret!);
    expectError(await q({ op: "heartbeat", ...held, secret: NOT_A_SECRET, leaseMs: 1 }), "STALE_LEASE");
    expectError(
      await q({ op: "fail", ...held, secret: NOT_A_SECRET, retryable: false, reason: "x" }),
      "STALE_LEASE",
    );
    const settled = ok(await q({ op: "settle", completes: [{ ...held, secret: NOT_A_SECRET }] }));
    expect(settled.results).toMatchObject([{ error: { code: "STALE_LEASE", taskId: "s" } }]);
    const view = ok(await q({ op: "getTask", taskId: "s", workflowId: wf })).task;
    expect(view).toMatchObject({ state: "LEASED", token: lease!.token, leaseExpiresAt: lease!.expiresAt });
    expect(actor.stats().shard.counts.COMPLETED).toBe(0);
    // The holder's own secret works.
    const done = ok(await q({ op: "settle", completes: [{ ...held, secret: lease!.secret! }] }));
    expect(done.results).toEqual([{ duplicate: false }]);
  });

  it("answers a repeat of a complete applied here as a repeat, whatever secret it shows: one resent after its slot moved carries the old shard's", async () => {
    const { actor, q, wf, lease, held } = await withOneLease("m");
    expect(ok(await q({ op: "complete", ...held, secret: lease!.secret! })).duplicate).toBe(false);
    // The same complete, as a shard the task moved to would see it: a secret it did not make.
    expect(ok(await q({ op: "complete", ...held, secret: NOT_A_SECRET })).duplicate).toBe(true);
    const settled = ok(await q({ op: "settle", completes: [{ ...held, secret: NOT_A_SECRET }] }));
    expect(settled.results).toEqual([{ duplicate: true }]);
    // Nothing changes for a call the engine refuses: a heartbeat of the ended lease, another token.
    expectError(await q({ op: "heartbeat", ...held, secret: NOT_A_SECRET, leaseMs: 1_000 }), "STALE_LEASE");
    expectError(
      await q({ op: "complete", ...held, token: held.token + 1, secret: NOT_A_SECRET }),
      "STALE_LEASE",
    );
    expect(ok(await q({ op: "getTask", taskId: "m", workflowId: wf })).task).toMatchObject({
      state: "COMPLETED",
      token: lease!.token,
    });
    expect(actor.stats().shard.counts.COMPLETED).toBe(1);
  });

  it("takes release only with the lease's secret, journals it before answering, and keeps it across a restart", async () => {
    const first = await startActor();
    const { nc, cluster, shardId, dataDir, wf } = first;
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    ok(await q({ op: "submit", tasks: [task("r", 1, { workflowId: wf })], idempotencyKey: "k" }));
    const [lease] = ok(
      await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r" }),
    ).leases;
    const held = { taskId: "r", workflowId: wf, token: lease!.token };
    // A wrong secret: STALE_LEASE, and the lease stays as it was.
    expectError(await q({ op: "release", ...held, secret: NOT_A_SECRET }), "STALE_LEASE");
    expect(ok(await q({ op: "getTask", taskId: "r", workflowId: wf })).task).toMatchObject({
      state: "LEASED",
      attempts: 1,
    });
    expect(ok(await q({ op: "release", ...held, secret: lease!.secret! }))).toEqual({
      ok: true,
      op: "release",
      duplicate: false,
    });
    await first.actor.close();

    const again = await startActor({ cluster, shardId, dataDir, slots: "auto" });
    expect(again.actor.ownedSlots()).toEqual(SLOTS);
    expect(ok(await q({ op: "getTask", taskId: "r", workflowId: wf })).task).toMatchObject({
      state: "RUNNABLE",
      attempts: 0,
      token: lease!.token,
      released: true,
    });
    // A resend after the restart: the same success; the released holder's complete: fenced.
    expect(ok(await q({ op: "release", ...held, secret: lease!.secret! })).duplicate).toBe(true);
    expectError(await q({ op: "complete", ...held, secret: lease!.secret! }), "STALE_LEASE");
    const [next] = ok(
      await q({ op: "lease", owner: "w2", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r2" }),
    ).leases;
    expect(next).toMatchObject({ taskId: "r", attempt: 1 });
    expect(next!.token).toBeGreaterThan(lease!.token);
    expectError(await q({ op: "release", ...held, secret: lease!.secret! }), "STALE_LEASE");
  });

  it("serves a parked long-poll the task a release makes runnable", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r, 15_000);
    ok(await q({ op: "submit", tasks: [task("p", 1, { workflowId: wf })], idempotencyKey: "k" }));
    const [lease] = ok(
      await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r" }),
    ).leases;
    const parked = q({ op: "lease", owner: "w2", max: 1, leaseMs: 60_000, waitMs: 10_000, requestId: "p" });
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the long-poll to park");
    const started = performance.now();
    ok(await q({ op: "release", taskId: "p", workflowId: wf, token: lease!.token, secret: lease!.secret! }));
    const [granted] = ok(await parked).leases;
    expect(granted).toMatchObject({ taskId: "p", owner: "w2", attempt: 1 });
    // With the release, not at the end of the long-poll.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("grants a settle's next leases only to a worker showing a secret this shard made", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const tasks = ["a", "b", "c"].map((id, i) => task(id, i + 1, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    const [lease] = ok(
      await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "r" }),
    ).leases;
    const held = { taskId: "a", workflowId: wf, token: lease!.token };
    const next = { owner: "w", max: 2, leaseMs: 60_000, requestId: "next" };
    // Nothing held, or only a forged secret: no leases, and nothing changes.
    expect(ok(await q({ op: "settle", completes: [], lease: next })).leases).toEqual([]);
    const forged = ok(await q({ op: "settle", completes: [{ ...held, secret: NOT_A_SECRET }], lease: next }));
    expect(forged.leases).toEqual([]);
    expect(ok(await q({ op: "getTask", taskId: "b", workflowId: wf })).task?.state).toBe("RUNNABLE");
    // The holder: its complete and the next two, with their own secrets.
    const settled = ok(
      await q({ op: "settle", completes: [{ ...held, secret: lease!.secret! }], lease: next }),
    );
    expect(settled.results).toEqual([{ duplicate: false }]);
    expect(settled.leases.map((l) => l.taskId)).toEqual(["b", "c"]);
    expect(settled.leases.every((l) => typeof l.secret === "string" && l.secret !== lease!.secret)).toBe(
      true,
    );
  });

  it("grants a parked long-poll with the submit that makes a task runnable, in no transaction of its own", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const commits = () => actor.stats().shard.journal.commits;
    // What a submit alone costs in backend transactions, once the journal is warm (its first write costs more).
    ok(await q({ op: "submit", tasks: [task("warm", 1, { workflowId: wf })], idempotencyKey: "kw" }));
    let before = commits();
    ok(await q({ op: "submit", tasks: [task("alone", 1, { workflowId: wf })], idempotencyKey: "k0" }));
    const submitAlone = commits() - before;
    ok(await q({ op: "lease", owner: "x", max: 2, leaseMs: 60_000, waitMs: 0, requestId: "r0" }));
    const waiting = q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 10_000, requestId: "r1" });
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the long-poll to park");
    before = commits();
    ok(await q({ op: "submit", tasks: [task("now", 1, { workflowId: wf })], idempotencyKey: "k" }));
    expect(ok(await waiting).leases.map((l) => l.taskId)).toEqual(["now"]);
    // The grant rides the submit's transaction.
    expect(commits() - before).toBe(submitAlone);
  });

  it("answers a forwarded long-poll as a coordinator would: each lease named with this shard, no frontier", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const base = { op: "lease", owner: "w", max: 2, leaseMs: 60_000, forwarded: true } as const;
    const waiting = q({ ...base, waitMs: 10_000, requestId: "fw" });
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the long-poll to park");
    ok(await q({ op: "submit", tasks: [task("fwd", 1, { workflowId: wf })], idempotencyKey: "kf" }));
    const granted = ok(await waiting);
    expect(granted.leases.map((l) => l.taskId)).toEqual(["fwd"]);
    expect(granted.shards).toEqual([shardId]);
    expect(granted.frontier).toBeUndefined();
    expect(typeof granted.leases[0]!.secret).toBe("string");
    // Nothing runnable, no wait: an empty answer in the same form.
    expect(ok(await q({ ...base, waitMs: 0, requestId: "fw2" }))).toEqual({
      ok: true,
      op: "lease",
      leases: [],
      shards: [],
    });
  });

  it("refuses a long-poll past maxParkedLeases as OVERLOADED (retryable), and parks one again once one ends", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor({ maxParkedLeases: 1 });
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const poll = (requestId: string) =>
      q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 10_000, requestId, forwarded: true });
    const first = poll("one");
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the first long-poll to park");
    expect(expectError(await poll("two"), "OVERLOADED").retryable).toBe(true);
    ok(await q({ op: "submit", tasks: [task("served", 1, { workflowId: wf })], idempotencyKey: "ks" }));
    expect(ok(await first).leases.map((l) => l.taskId)).toEqual(["served"]);
    const again = poll("three");
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "a long-poll to park again");
    ok(await q({ op: "submit", tasks: [task("next", 2, { workflowId: wf })], idempotencyKey: "kn" }));
    expect(ok(await again).leases.map((l) => l.taskId)).toEqual(["next"]);
  });

  it("serves parked long-polls first come, first served, each up to its max", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const first = q({ op: "lease", owner: "a", max: 2, leaseMs: 60_000, waitMs: 10_000, requestId: "ra" });
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the first long-poll to park");
    const second = q({ op: "lease", owner: "b", max: 2, leaseMs: 60_000, waitMs: 10_000, requestId: "rb" });
    await eventually(() => actor.stats().parkedLeases === 2, 5_000, "the second long-poll to park");
    const tasks = [4, 1, 3].map((d) => task(`t${d}`, d, { workflowId: wf }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    expect(ok(await first).leases.map((l) => l.taskId)).toEqual(["t1", "t3"]);
    expect(ok(await second).leases.map((l) => l.taskId)).toEqual(["t4"]);
  });

  it("ends a parked long-poll when its request id is looked up: it answers at once and grants nothing after", async () => {
    const { actor, nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const waiting = q({
      op: "lease",
      owner: "w",
      max: 1,
      leaseMs: 60_000,
      waitMs: 10_000,
      requestId: "r1",
    });
    await eventually(() => actor.stats().parkedLeases === 1, 5_000, "the long-poll to park");
    const started = Date.now();
    const lookup = ok(
      await q({
        op: "lease",
        owner: "w",
        max: 1,
        leaseMs: 60_000,
        waitMs: 0,
        requestId: "r1",
        replayOnly: true,
      }),
    );
    expect(lookup.leases).toEqual([]);
    expect(ok(await waiting).leases).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
    // Event-ordered, no wait: the long-poll has answered and left the parked leases, so nothing is
    // left for the submit to serve; a grant to a parked lease would ride the submit's own commit,
    // before its reply.
    expect(actor.stats().parkedLeases).toBe(0);
    ok(await q({ op: "submit", tasks: [task("later", 1, { workflowId: wf })], idempotencyKey: "k" }));
    expect(actor.stats().shard.leased).toBe(0);
    expect(actor.stats().shard.runnable).toBe(1);
  });

  it("keeps a lease reply under MAX_MESSAGE_BYTES, granting the rest on later requests", async () => {
    const { nc, cluster, shardId, wf } = await startActor();
    const q = <R extends Request>(r: R) => ask(nc, cluster, shardId, r);
    const payload = "x".repeat(60_000);
    const total = 40;
    for (let batch = 0; batch < total / 10; batch++) {
      const tasks = Array.from({ length: 10 }, (_, i) =>
        task(`big${batch * 10 + i}`, batch * 10 + i, { workflowId: wf, payload }),
      );
      ok(await q({ op: "submit", tasks, idempotencyKey: `k${batch}` }));
    }
    const counts: number[] = [];
    for (let got = 0, i = 0; got < total; i++) {
      const leases = ok(
        await q({ op: "lease", owner: "w", max: total, leaseMs: 60_000, waitMs: 0, requestId: `r${i}` }),
      ).leases;
      expect(leases.length).toBeGreaterThan(0);
      counts.push(leases.length);
      got += leases.length;
    }
    // ~16 leases of 60 KB fit in a reply.
    expect(counts[0]).toBeGreaterThan(10);
    expect(counts[0]).toBeLessThan(total);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(total);
  });

  it("announces its frontier on change, throttled, and on a heartbeat", async () => {
    const nc = await env.connect();
    const cluster = env.freshCluster();
    const seen = listenFrontier(nc, cluster);
    await nc.flush();
    const throttle = 50;
    const { actor, wf } = await startActor({
      cluster,
      announceThrottleMs: throttle,
      announceIntervalMs: 300,
      frontierPollMs: 20,
    });
    await eventually(() => seen.length >= 1, 5_000, "the first announcement");
    expect(seen[0]).toMatchObject({
      shardId: "s0",
      deadline: null,
      key: null,
      taskId: null,
      runnable: 0,
      seq: 0,
    });

    // A burst of changes: twenty submits, as fast as they go.
    for (let i = 0; i < 20; i++) {
      ok(
        await ask(nc, cluster, "s0", {
          op: "submit",
          tasks: [task(`t${i}`, 1000 - i, { workflowId: wf })],
          idempotencyKey: `k${i}`,
        }),
      );
    }
    await eventually(() => seen.at(-1)?.runnable === 20, 5_000, "the last state announced");
    expect(seen.at(-1)).toMatchObject({ deadline: 981, key: 981, taskId: "t19", runnable: 20 });
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.seq).toBe(seen[i - 1]!.seq + 1);
      // Never two within the throttle window (1 ms of slack for clock rounding), except the first
      // runnable task after an empty frontier, which is pushed at once (waiting long-polls act on it).
      if (seen[i - 1]!.runnable > 0) {
        expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(throttle - 1);
      }
    }
    // Fewer announcements than changes: the burst was coalesced.
    expect(seen.length).toBeLessThan(21);

    // Nothing changes: heartbeats repeat the same frontier.
    const quiet = seen.length;
    await eventually(() => seen.length >= quiet + 2, 5_000, "two heartbeats");
    expect(seen.at(-1)).toMatchObject({ taskId: "t19", runnable: 20 });
    // A change no request made (a lease expiring) is seen by the poll.
    ok(
      await ask(nc, cluster, "s0", {
        op: "lease",
        owner: "w",
        max: 1,
        leaseMs: 100,
        waitMs: 0,
        requestId: "r",
      }),
    );
    await eventually(() => seen.at(-1)?.runnable === 19, 5_000, "the lease announced");
    await eventually(() => seen.at(-1)?.runnable === 20, 5_000, "the expiry announced");
    expect(actor.stats().announcements).toBe(seen.at(-1)!.seq + 1);

    // Closing announces an empty frontier.
    await actor.close();
    await eventually(() => seen.at(-1)?.runnable === 0, 5_000, "the final announcement");
    expect(seen.at(-1)).toMatchObject({ taskId: null, key: null });
  });

  it("restarts on its data with the same slots", async () => {
    const first = await startActor();
    const { nc, cluster, shardId, dataDir, wf } = first;
    ok(
      await ask(nc, cluster, shardId, {
        op: "submit",
        tasks: [task("kept", 5, { workflowId: wf })],
        idempotencyKey: "k",
      }),
    );
    const lease = ok(
      await ask(nc, cluster, shardId, {
        op: "lease",
        owner: "w",
        max: 1,
        leaseMs: 60_000,
        waitMs: 0,
        requestId: "r",
      }),
    ).leases[0]!;
    await first.actor.close();
    expect(first.actor.currentState).toBe(ActorState.CLOSED);
    expect(await first.actor.done()).toEqual({ kind: "closed" });
    await expect(ask(nc, cluster, shardId, { op: "stats" }, 500)).rejects.toThrow();

    // No explicit slots: it keeps the ones it owned (and does not grab the free ones).
    const again = await startActor({ cluster, shardId, dataDir, slots: "auto" });
    expect(again.actor.ownedSlots()).toEqual(SLOTS);
    expect(
      ok(await ask(nc, cluster, shardId, { op: "getTask", taskId: "kept", workflowId: wf })).task,
    ).toMatchObject({
      state: "LEASED",
      token: lease.token,
    });
    expect(
      ok(
        await ask(nc, cluster, shardId, {
          op: "complete",
          taskId: "kept",
          workflowId: wf,
          token: lease.token,
          // The secret of a grant made before the restart: the shard's key is kept with its data.
          secret: lease.secret!,
        }),
      ).duplicate,
    ).toBe(false);
  });

  it("replays a grant after a restart on the same data: the request id is durable in the shard", async () => {
    const first = await startActor();
    const { nc, cluster, shardId, dataDir, wf } = first;
    const tasks = ["a", "b", "c"].map((id, i) => task(id, i, { workflowId: wf }));
    ok(await ask(nc, cluster, shardId, { op: "submit", tasks, idempotencyKey: "k" }));
    const lease = (requestId: string, replayOnly?: boolean, nth?: number) =>
      ask(nc, cluster, shardId, {
        op: "lease",
        owner: "w",
        max: 2,
        leaseMs: 60_000,
        waitMs: 0,
        requestId,
        ...(nth === undefined ? {} : { ask: nth }),
        ...(replayOnly === undefined ? {} : { replayOnly }),
      });
    const granted = ok(await lease("r1", undefined, 2)).leases;
    expect(granted.map((l) => l.taskId)).toEqual(["a", "b"]);
    await first.actor.close();

    const again = await startActor({ cluster, shardId, dataDir, slots: "auto" });
    expect(again.actor.stats().leaseReplays).toBe(0);
    expect(ok(await lease("r1", true)).leases).toEqual(granted);
    // A plain retry under the same client id gets the grant too, not a new one.
    expect(ok(await lease("r1", undefined, 2)).leases).toEqual(granted);
    expect(again.actor.stats().shard.leased).toBe(2);
    expect(ok(await lease("r2", true)).leases).toEqual([]);
    // This process remembers the grant now: a new ask (the coordinator's next ask in one fill)
    // is a new grant; a replay-only lookup returns the grants under the client id (up to max).
    const next = ok(await lease("r1", undefined, 3)).leases;
    expect(next.map((l) => l.taskId)).toEqual(["c"]);
    expect(ok(await lease("r1", true)).leases.map((l) => l.taskId)).toEqual(["a", "b"]);
  });

  it("claims every free slot when it starts with none and no explicit slots", async () => {
    const cluster = env.freshCluster();
    const other = await SlotOwnership.open(await env.connect(), { cluster, logger: silent });
    env.defer(() => other.close());
    await other.claim("s1", [0, 1]);
    const { actor } = await startActor({ cluster, slots: undefined });
    expect(actor.ownedSlots().length).toBe(SLOT_COUNT - 2);
    expect(actor.owns(0)).toBe(false);
    expect(actor.owns(2)).toBe(true);
  });

  it("says why in every ShardErrorCode that makes a shard unavailable: the wire's detail list has each", () => {
    const details: readonly string[] = SHARD_UNAVAILABLE_DETAILS;
    const notFailures = new Set<string>([ShardErrorCode.LIMIT_REACHED]); // OVERLOADED: the shard serves on
    for (const code of Object.values(ShardErrorCode)) {
      if (!notFailures.has(code)) expect([code, details.includes(code)]).toEqual([code, true]);
    }
  });

  it("answers SHARD_UNAVAILABLE and reports its failure once its shard is fenced", async () => {
    const { actor, nc, cluster, shardId, dataDir, wf } = await startActor();
    // Another owner takes the directory over (as a replacement process would).
    const usurper = await Shard.open({ dataDir, takeover: true });
    env.defer(() => usurper.close());
    const error = expectError(
      await ask(nc, cluster, shardId, {
        op: "submit",
        tasks: [task("x", 1, { workflowId: wf })],
        idempotencyKey: "k",
      }),
      "SHARD_UNAVAILABLE",
    );
    expect(error.retryable).toBe(true);
    // Why, as a typed field, not only in the text.
    expect(error.detail).toBe("SHARD_FENCED");
    const exit = await actor.done();
    expect(exit.kind).toBe("failed");
    expect(actor.currentState).toBe(ActorState.FAILED);
    expect(expectError(await ask(nc, cluster, shardId, { op: "stats" }), "SHARD_UNAVAILABLE").detail).toBe(
      "RESTARTING",
    );
    await actor.close();
    expect(actor.currentState).toBe(ActorState.CLOSED);
  });

  it("once replaced, answers no read either: its memory is stale, so it fails without waiting for a write", async () => {
    const { actor, nc, cluster, shardId, dataDir, wf } = await startActor();
    ok(
      await ask(nc, cluster, shardId, {
        op: "submit",
        tasks: [task("r", 1, { workflowId: wf })],
        idempotencyKey: "k",
      }),
    );
    const usurper = await Shard.open({ dataDir, takeover: true });
    env.defer(() => usurper.close());
    expectError(await ask(nc, cluster, shardId, { op: "getTask", taskId: "r" }), "SHARD_UNAVAILABLE");
    const exit = await actor.done();
    expect(exit.kind).toBe("failed");
    expectError(await ask(nc, cluster, shardId, { op: "stats" }), "SHARD_UNAVAILABLE");
    await actor.close();
  });

  it("takes a held directory over when told to, saying first that a paused owner would keep it waiting", async () => {
    const { actor, dataDir, cluster, shardId } = await startActor();
    const warnings: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
    const successor = await ShardActor.start({
      natsUrl: env.url,
      cluster,
      shardId,
      dataDir,
      slots: [...actor.ownedSlots()],
      shard: { takeover: true },
      logger,
    });
    env.defer(() => successor.close());
    expect(warnings).toContain(
      "taking the data directory over; if its previous owner is paused in the middle of a commit, this waits until it runs again or dies",
    );
    expect(successor.ownedSlots()).toEqual(actor.ownedSlots());
    await actor.close();
  });

  it("fails to start, leaving nothing behind, on a directory another shard holds", async () => {
    const { dataDir, cluster } = await startActor();
    await expect(
      ShardActor.start({ natsUrl: env.url, cluster, shardId: "s1", dataDir, slots: [9], logger: silent }),
    ).rejects.toMatchObject({ code: "SHARD_LOCKED" });
    // It claimed nothing.
    const map = await SlotOwnership.open(await env.connect(), { cluster, logger: silent });
    env.defer(() => map.close());
    expect(map.map.ownerOf(9)).toBeUndefined();
  });
});

describe("checkShardActorOptions", () => {
  const base: ShardActorOptions = { natsUrl: "nats://x:4222", shardId: "s0", dataDir: "/tmp/x" };

  it("fills in the defaults", () => {
    const o = checkShardActorOptions(base);
    expect(o).toMatchObject({
      cluster: "default",
      slots: { kind: "auto" },
      announceThrottleMs: 20,
      maxLiveTasks: 5_000_000,
      maxStoredBytes: 1024 ** 3,
      maxIdempotencyKeys: 2_000_000,
    });
    expect(checkShardActorOptions({ ...base, slots: "0-2,5" }).slots).toEqual({
      kind: "list",
      slots: [0, 1, 2, 5],
    });
    expect(checkShardActorOptions({ ...base, slots: { index: 1, of: 3 } }).slots).toEqual({
      kind: "spread",
      index: 1,
      of: 3,
    });
  });

  it.each([
    [{ shardId: "a.b" }, /"shardId"/],
    [{ cluster: "" }, /"cluster"/],
    [{ dataDir: "" }, /"dataDir"/],
    [{ announceThrottleMs: -1 }, /"announceThrottleMs"/],
    [{ announceIntervalMs: 5, announceThrottleMs: 10 }, /"announceIntervalMs"/],
    [{ prepareTtlMs: 1.5 }, /"prepareTtlMs"/],
    [{ slots: "5-2" }, /"slots".*backwards/],
    [{ slots: [1024] }, /"slots"/],
    [{ slots: { index: 3, of: 3 } }, /"slots"/],
    [{ logLevel: "loud" }, /"logLevel"/],
    [{ shard: { dataDir: "/elsewhere" } }, /"shard".*"dataDir"/],
    [{ maxLiveTasks: 0 }, /"maxLiveTasks"/],
    [{ maxStoredBytes: 1.5 }, /"maxStoredBytes"/],
    [{ maxIdempotencyKeys: -1 }, /"maxIdempotencyKeys"/],
    [{ shard: { maxLiveTasks: 5 } }, /"shard" cannot set "maxLiveTasks"/],
    [{ natsUrl: undefined }, /exactly one of "natsUrl" and "nc"/],
  ])("names the bad option: %j", (patch, message) => {
    expect(() => checkShardActorOptions({ ...base, ...patch } as ShardActorOptions)).toThrow(message);
    try {
      checkShardActorOptions({ ...base, ...patch } as ShardActorOptions);
    } catch (error) {
      expect((error as { code?: string }).code).toBe(WireErrorCode.INVALID_ARGUMENT);
    }
  });
});

function bytes(s: string): number[] {
  return [...new TextEncoder().encode(s)];
}

/** Encodes a request msgpack map without the codec's checks (to send what a buggy peer would). */
function encodeRequestUnchecked(fields: Record<string, unknown>): Uint8Array {
  // The codec refuses max: 0 before sending; build the bytes from a valid request and patch `max`.
  const valid = encodeRequest({ ...fields, max: 1 } as unknown as Request);
  const marker = [0xa3, ...bytes("max"), 0x01];
  const at = valid.findIndex((_, i) => marker.every((b, j) => valid[i + j] === b));
  if (at < 0) throw new Error("max not found");
  const out = new Uint8Array(valid);
  out[at + marker.length - 1] = 0x00;
  return out;
}

describe("isNatsDown", () => {
  it("tells a connection that is down for now from a request that is wrong", () => {
    expect(isNatsDown(new natsErrors.RequestError("connection disconnected"))).toBe(true);
    expect(isNatsDown(new natsErrors.TimeoutError())).toBe(true);
    expect(isNatsDown(new Error("open failed", { cause: new natsErrors.TimeoutError() }))).toBe(true);
    expect(isNatsDown(new natsErrors.RequestError("no responders"))).toBe(false);
    expect(isNatsDown(new natsErrors.PermissionViolationError("denied", "publish", "x"))).toBe(false);
    expect(isNatsDown(new Error("bucket is full"))).toBe(false);
    expect(isNatsDown("disconnected")).toBe(false);
  });
});
