import { ErrorCode, type TaskInput, ValidationError } from "@frontier/core";
import { Packr } from "msgpackr";
import { describe, expect, it, vi } from "vitest";
import { ShardErrorCode, ShardFailedError, ShardLimitError, StorageError } from "./errors.js";
import type { Journal } from "./journal.js";
import { LmdbJournal } from "./lmdb-journal.js";
import { Shard, type ShardObserver, ShardState } from "./shard.js";
import { useShards } from "./test-shards.fixture.js";

const { freshDir, openShard } = useShards("shard");

/** Polls `check` every 20 ms until it holds (the event it waits for happened), for at most 5 s. */
const until = (check: () => boolean | Promise<boolean>) =>
  vi.waitUntil(check, { timeout: 5_000, interval: 20 });
/** Clock sources the test moves by hand (the shard's injected clock, see clock.ts). */
function manualClock(wall = Date.now()) {
  const time = { wall, mono: 0 };
  return { time, sources: { wallNow: () => time.wall, monotonicNow: () => time.mono } };
}
const task = (
  id: string,
  deadline: number,
  prerequisites: string[] = [],
  extra: Partial<TaskInput> = {},
): TaskInput => ({
  id,
  deadline,
  prerequisites,
  ...extra,
});

async function rejection(
  promise: Promise<unknown>,
): Promise<{ code?: string; name?: string; cause?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string };
  }
  throw new Error("expected a rejection");
}

describe("Shard", () => {
  it("serves the engine's API and recovers it exactly after reopening", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    await shard.submit([task("a", 30), task("b", 10), task("c", 20, ["a", "b"]), task("d", 5, ["c"])]);
    const [first] = await shard.lease("w1", { max: 1, leaseMs: 60_000 });
    expect(first?.taskId).toBe("b");
    expect(first?.task.deadline).toBe(10);
    expect(await shard.complete("b", first!.token)).toEqual({ duplicate: false });
    const [second] = await shard.lease("w2", { max: 1, leaseMs: 60_000 });
    expect(second?.taskId).toBe("a");
    const before = { a: shard.getTask("a"), c: shard.getTask("c"), d: shard.getTask("d") };
    expect(before.c?.unmetPrerequisites).toBe(1);
    await shard.close();

    const again = await openShard({ dataDir });
    // Live lease with its original expiry and token; unmet counts rebuilt.
    expect(again.getTask("a")).toEqual(before.a);
    expect(again.getTask("c")).toEqual(before.c);
    expect(again.getTask("d")).toEqual(before.d);
    expect(await again.lease("w3", { max: 5 })).toEqual([]);
    // The pre-restart holder's complete still works and unblocks c.
    await again.complete("a", second!.token);
    const [third] = await again.lease("w3", { max: 5, leaseMs: 60_000 });
    expect(third?.taskId).toBe("c");
    // Fencing tokens keep increasing across restarts.
    expect(third!.token).toBeGreaterThan(second!.token);
    expect(again.stats().counts.COMPLETED).toBe(2);
  });

  it("journals a release before it answers: after reopening the task is runnable, the attempt not spent, the token fenced", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    await shard.submit([task("a", 1), task("b", 2, ["a"])]);
    const [first] = await shard.lease("w1", { leaseMs: 60_000, requestId: "r1" });
    expect(await shard.release("a", first!.token)).toEqual({ duplicate: false });
    // A lease request resent under the id of the released grant gets nothing back.
    expect(await shard.replayLease("w1", "r1")).toEqual([]);
    const before = shard.getTask("a");
    expect(before).toMatchObject({ state: "RUNNABLE", attempts: 0, released: true });
    await shard.close();

    const again = await openShard({ dataDir });
    expect(again.getTask("a")).toEqual(before);
    // The resend after the restart is still a duplicate; the holder's complete is refused.
    expect(await again.release("a", first!.token)).toEqual({ duplicate: true });
    expect((await rejection(again.complete("a", first!.token))).code).toBe(ErrorCode.STALE_LEASE);
    const [second] = await again.lease("w2", { leaseMs: 60_000 });
    expect(second).toMatchObject({ taskId: "a", attempt: 1 });
    expect(second!.token).toBeGreaterThan(first!.token);
    expect((await rejection(again.release("a", first!.token))).code).toBe(ErrorCode.STALE_LEASE);
    await again.complete("a", second!.token);
    expect(again.getTask("b")?.state).toBe("RUNNABLE");
  });

  it("journals each task's type: after reopening, leases by type and per-type counts are as before", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    await shard.submit([
      task("d", 10),
      task("i1", 30, [], { type: "img" }),
      task("i2", 20, [], { type: "img" }),
      task("m", 5, [], { type: "mail" }),
      task("x", 1, [], { type: "default" }),
    ]);
    const [img] = await shard.lease("w", { types: ["img"], leaseMs: 60_000 });
    expect(img?.taskId).toBe("i2");
    expect(img?.task.type).toBe("img");
    const before = shard.stats().types;
    expect(before).toEqual([
      { type: "default", runnable: 2, leased: 0 },
      { type: "img", runnable: 1, leased: 1 },
      { type: "mail", runnable: 1, leased: 0 },
    ]);
    await shard.close();

    const again = await openShard({ dataDir });
    expect(again.stats().types).toEqual(before);
    expect(again.getTask("i1")?.type).toBe("img");
    // The default type is journaled as no type at all, as every task was before types existed.
    expect(again.getTask("x")).not.toHaveProperty("type");
    expect(again.peekFrontier(["mail", "img"])?.id).toBe("m");
    expect((await again.lease("w", { max: 5 })).map((l) => l.taskId)).toEqual(["x", "d"]);
    expect((await again.lease("w", { max: 5, types: ["img", "mail"] })).map((l) => l.taskId)).toEqual([
      "m",
      "i1",
    ]);
    await again.complete("i2", img!.token);
    expect(again.frontier(4)).toMatchObject({ top: null, runnable: 0, types: [], typesOmitted: 0 });
  });

  it("rejects bad input with the engine's typed errors and changes nothing", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    await shard.submit(task("a", 1));
    const invalid = await rejection(shard.submit([task("x", 1), task("a", 2), task("y", 1, ["nope"])]));
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).problems.map((p) => p.code).sort()).toEqual([
      "DUPLICATE_ID",
      "UNKNOWN_PREREQUISITE",
    ]);
    const [lease] = await shard.lease("w", { leaseMs: 60_000 });
    expect((await rejection(shard.complete("a", lease!.token + 1))).code).toBe(ErrorCode.STALE_LEASE);
    expect((await rejection(shard.heartbeat("zzz", 1))).code).toBe(ErrorCode.UNKNOWN_TASK);
    expect(shard.getTask("x")).toBeUndefined();
    expect(shard.getTask("a")?.state).toBe("LEASED");
    await shard.close();
    const again = await openShard({ dataDir });
    expect(again.stats().counts).toMatchObject({ LEASED: 1, RUNNABLE: 0 });
  });

  it("refuses a payload that cannot be stored as a malformed task, and keeps serving", async () => {
    const shard = await openShard({ dataDir: freshDir() });
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    const error = await rejection(shard.submit([task("ok", 1), task("bad", 1, [], { payload: cyclic })]));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).problems).toEqual([
      expect.objectContaining({ taskId: "bad", code: "MALFORMED" }),
    ]);
    await shard.submit(task("ok", 1, [], { payload: { n: 1, s: "x" } }));
    expect((await shard.lease("w"))[0]?.task.payload).toEqual({ n: 1, s: "x" });
  });

  it("answers a resubmitted idempotency key with the original result, also after a restart", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    const first = await shard.submit([task("a", 1), task("b", 2)], { idempotencyKey: "req-1" });
    expect(first).toEqual({ taskIds: ["a", "b"], duplicate: false });
    // Even with different content, the key decides.
    expect(await shard.submit([task("c", 1)], { idempotencyKey: "req-1" })).toEqual({
      taskIds: ["a", "b"],
      duplicate: true,
    });
    expect(shard.getTask("c")).toBeUndefined();
    await shard.close();
    const again = await openShard({ dataDir });
    expect(await again.submit([task("a", 1), task("b", 2)], { idempotencyKey: "req-1" })).toEqual({
      taskIds: ["a", "b"],
      duplicate: true,
    });
    expect(again.stats().counts.RUNNABLE).toBe(2);
    expect((await rejection(again.submit(task("z", 1), { idempotencyKey: "" }))).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it("answers an idempotent resubmit only once the original is durable", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const shard = await openShard({
      dataDir: freshDir(),
      openJournal: async (o) => gated(await LmdbJournal.open(o), gate),
    });
    const order: string[] = [];
    const original = shard.submit(task("a", 1), { idempotencyKey: "k" }).then(() => order.push("original"));
    const repeat = shard
      .submit(task("a", 1), { idempotencyKey: "k" })
      .then((r) => order.push(`repeat:${r.duplicate}`));
    release();
    await Promise.all([original, repeat]);
    // Ordered by events, not by a wait: the original answers only once the gate lets its append
    // through, so a repeat answered from memory before that would come first here.
    expect(order).toEqual(["original", "repeat:true"]);
  });

  it("replays a lease's grant only once the grant is durable", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const dataDir = freshDir();
    const setup = await openShard({ dataDir });
    await setup.submit(task("a", 1));
    await setup.close();
    const shard = await openShard({
      dataDir,
      openJournal: async (o) => gated(await LmdbJournal.open(o), gate),
    });
    const order: string[] = [];
    const grant = shard.lease("w", { leaseMs: 60_000, requestId: "r" }).then(() => order.push("grant"));
    const replay = shard.replayLease("w", "r").then((l) => order.push(`replay:${l.map((x) => x.taskId)}`));
    // The grant is in memory but not committed until the gate opens: a crash before would forget
    // it, so the replay must not answer first (a replay from memory would come before "grant").
    release();
    await Promise.all([grant, replay]);
    expect(order).toEqual(["grant", "replay:a"]);
  });

  it("forgets idempotency keys after their retention period, on disk too", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir, idempotencyRetentionMs: 100 });
    await shard.submit(task("a", 1), { idempotencyKey: "k" });
    expect(shard.stats().idempotencyKeys).toBe(1);
    // The shard's own timer forgets it (stats() runs no key expiry).
    await until(() => shard.stats().idempotencyKeys === 0);
    await shard.close();
    const journal = await LmdbJournal.open({ dataDir });
    expect(journal.load().idempotency).toEqual([]);
    await journal.close();
  });

  it("records a lease's request id durably: replayLease after reopening, no second grant", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    await shard.submit([task("a", 1), task("b", 2), task("c", 3)]);
    const granted = await shard.lease("w", { max: 2, leaseMs: 60_000, requestId: "r1" });
    expect(granted.map((l) => l.taskId)).toEqual(["a", "b"]);
    expect(await shard.replayLease("w", "r1")).toEqual(granted);
    expect(await shard.replayLease("other", "r1")).toEqual([]);
    await shard.close();

    const again = await openShard({ dataDir });
    expect(await again.replayLease("w", "r1")).toEqual(granted);
    // The same request id again: the first grant, nothing new.
    expect(await again.lease("w", { max: 2, leaseMs: 60_000, requestId: "r1" })).toEqual(granted);
    expect(again.getTask("c")?.state).toBe("RUNNABLE");
    // extend adds a grant under the same id.
    const more = await again.lease("w", { max: 1, leaseMs: 60_000, requestId: "r1", extend: true });
    expect(more.map((l) => l.taskId)).toEqual(["c"]);
    expect((await again.replayLease("w", "r1")).map((l) => l.taskId)).toEqual(["a", "b", "c"]);
    // Only leases still held under the granted token are replayed.
    await again.complete("a", granted[0]!.token);
    expect((await again.replayLease("w", "r1")).map((l) => l.taskId)).toEqual(["b", "c"]);
  });

  it("fences earlier attempts of a request once a resend looked its grants up, durably", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir });
    await shard.submit([task("a", 1), task("b", 2), task("c", 3)]);
    // Attempt 1 granted "a" before the resend's lookup: the lookup hands it over and fences.
    const first = await shard.lease("w", { leaseMs: 60_000, requestId: "r", extend: true });
    expect(shard.leaseFence("w", "r")).toBe(1);
    expect(await shard.replayLease("w", "r", { fence: 2 })).toEqual(first);
    expect(shard.leaseFence("w", "r")).toBe(2);
    // A late grant call of attempt 1 (another coordinator's, still filling) grants nothing now.
    expect(await shard.lease("w", { leaseMs: 60_000, requestId: "r", extend: true })).toEqual([]);
    expect(shard.getTask("b")?.state).toBe("RUNNABLE");
    // A fence on an id with no grants at all shuts out its earlier attempts just the same.
    expect(await shard.replayLease("w", "q", { fence: 3 })).toEqual([]);
    await shard.close();

    const again = await openShard({ dataDir });
    expect(again.leaseFence("w", "q")).toBe(3);
    expect(await again.lease("w", { leaseMs: 60_000, requestId: "q", extend: true, attempt: 2 })).toEqual([]);
    expect(again.getTask("b")?.state).toBe("RUNNABLE");
    // The fencing attempt itself, and later ones, grant as usual, and the fence holds on.
    const third = await again.lease("w", { leaseMs: 60_000, requestId: "q", extend: true, attempt: 3 });
    expect(third.map((l) => l.taskId)).toEqual(["b"]);
    expect(await again.lease("w", { leaseMs: 60_000, requestId: "q", extend: true, attempt: 1 })).toEqual([]);
    expect((await again.replayLease("w", "q")).map((l) => l.taskId)).toEqual(["b"]);
    // A lower fence never lowers it; a bad one is refused.
    await again.replayLease("w", "q", { fence: 2 });
    expect(await again.lease("w", { leaseMs: 60_000, requestId: "q", extend: true, attempt: 2 })).toEqual([]);
    expect((await rejection(again.replayLease("w", "q", { fence: 0 }))).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(again.getTask("c")?.state).toBe("RUNNABLE");
    await again.close();
  });

  it("refuses a lease request id too long to key in LMDB, changing nothing", async () => {
    const shard = await openShard({ dataDir: freshDir() });
    await shard.submit(task("a", 1));
    const tooLong = "r".repeat(257);
    expect((await rejection(shard.lease("w", { leaseMs: 60_000, requestId: tooLong }))).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    // A request id within its length, but a long owner (3-byte characters): over the key size.
    const wide = "€".repeat(700);
    expect((await rejection(shard.lease(wide, { leaseMs: 60_000, requestId: "r" }))).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(shard.getTask("a")?.state).toBe("RUNNABLE");
    expect(shard.stats().state).toBe("OPEN");
    await shard.close();
  });

  it("forgets lease request ids after their retention period, on disk too", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir, leaseReplayRetentionMs: 100 });
    await shard.submit([task("a", 1), task("b", 2)], { idempotencyKey: "k" });
    const [lease] = await shard.lease("w", { leaseMs: 60_000, requestId: "r" });
    expect(await shard.replayLease("w", "r")).toEqual([lease]);
    expect(shard.stats().idempotencyKeys).toBe(1);
    // The lease still holds, so an empty replay means the request id was forgotten (by the shard's timer).
    await until(async () => (await shard.replayLease("w", "r")).length === 0);
    const [next] = await shard.lease("w", { leaseMs: 60_000, requestId: "r" });
    expect(next?.taskId).toBe("b");
    await until(async () => (await shard.replayLease("w", "r")).length === 0);
    await shard.close();
    const journal = await LmdbJournal.open({ dataDir });
    expect(journal.load().idempotency.map(([key]) => key)).toEqual(["k"]);
    await journal.close();
  });

  it("acknowledges a second complete with the same token without unblocking anything again", async () => {
    const shard = await openShard({ dataDir: freshDir() });
    await shard.submit([task("p1", 1), task("p2", 2), task("child", 3, ["p1", "p2"])]);
    const [l1] = await shard.lease("w", { leaseMs: 60_000 });
    await shard.complete("p1", l1!.token);
    expect(await shard.complete("p1", l1!.token)).toEqual({ duplicate: true });
    expect(shard.getTask("child")).toMatchObject({ state: "WAITING", unmetPrerequisites: 1 });
    const [l2] = await shard.lease("w", { leaseMs: 60_000 });
    await Promise.all([shard.complete("p2", l2!.token), shard.complete("p2", l2!.token)]);
    expect(shard.getTask("child")).toMatchObject({ state: "RUNNABLE", unmetPrerequisites: 0 });
  });

  it("expires leases on its own timer and journals the expiry", async () => {
    const dataDir = freshDir();
    let expired!: () => void;
    const expiry = new Promise<void>((resolve) => (expired = resolve));
    // Nothing reads the shard until the expiry is heard (a read would run the engine's due timers
    // itself), so the only thing that can expire the lease is the shard's own timer.
    const shard = await openShard({ dataDir, observer: observing({ leaseExpired: () => expired() }) });
    await shard.submit(task("a", 1));
    const [lease] = await shard.lease("w", { leaseMs: 80 });
    await expiry;
    expect(shard.getTask("a")?.state).toBe("RUNNABLE");
    expect(shard.stats().leaseTimeouts).toBe(1);
    expect((await rejection(shard.complete("a", lease!.token))).code).toBe(ErrorCode.STALE_LEASE);
    await shard.close();
    const again = await openShard({ dataDir });
    expect(again.getTask("a")?.state).toBe("RUNNABLE");
    expect(again.stats().leaseTimeouts).toBe(1);
  });

  it("measures leases on the monotonic clock: a wall-clock jump neither expires nor extends them", async () => {
    const { time, sources } = manualClock();
    const dataDir = freshDir();
    const shard = await openShard({ dataDir, clock: sources });
    await shard.submit([task("a", 1), task("b", 2)]);
    const [la] = await shard.lease("w", { leaseMs: 300 });
    time.wall += 3_600_000; // an hour forward: nothing expires (a read runs the engine's due timers)
    time.mono += 30;
    expect(shard.getTask("a")?.state).toBe("LEASED");
    expect(await shard.heartbeat("a", la!.token, { leaseMs: 300 })).toMatchObject({ taskId: "a" });
    const [lb] = await shard.lease("w", { leaseMs: 300 });
    await shard.close();

    // Restart with the wall clock an hour behind the last reading: the clock
    // resumes from the persisted high-water mark, so b's lease still ends
    // within its 300 ms instead of living an extra hour.
    time.wall -= 2 * 3_600_000;
    const again = await openShard({ dataDir, clock: sources });
    expect(again.getTask("b")).toMatchObject({ state: "LEASED", token: lb!.token });
    time.mono += 299;
    expect(again.getTask("b")?.state).toBe("LEASED");
    time.mono += 1;
    expect(again.getTask("b")?.state).toBe("RUNNABLE");
  });

  it("compacts terminal tasks after the retention period, keeping those a live dependent needs", async () => {
    const dataDir = freshDir();
    const { time, sources } = manualClock();
    const shard = await openShard({ dataDir, retentionMs: 100, clock: sources });
    await shard.submit([task("p", 1), task("q", 2), task("dep", 3, ["q"])]);
    for (const id of ["p", "q"]) {
      const [lease] = await shard.lease("w", { leaseMs: 60_000 });
      expect(lease?.taskId).toBe(id);
      await shard.complete(id, lease!.token);
    }
    // Within retention a dependent submitted later finds its prerequisite done.
    await shard.submit(task("late", 4, ["q"]));
    expect(shard.getTask("late")?.state).toBe("RUNNABLE");
    time.mono += 100; // past retention; the read runs the engine's due timers
    expect(shard.getTask("p")).toBeUndefined();
    // Live tasks still list q as a prerequisite, so it stays (a rebuilt engine must see it done).
    expect(shard.getTask("q")?.state).toBe("COMPLETED");
    await shard.close();
    const journal = await LmdbJournal.open({ dataDir });
    const ids = [...journal.load().tasks].map((t) => t.spec.id).sort();
    await journal.close();
    expect(ids).toEqual(["dep", "late", "q"]);
  });

  it("refuses submit keys in the namespace of lease records", async () => {
    const shard = await openShard({ dataDir: freshDir() });
    await expect(shard.submit(task("a", 1), { idempotencyKey: "lease:1:w:r" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(shard.getTask("a")).toBeUndefined();
    await shard.close();
  });

  it("does not grow on disk under steady load: compacted rows' pages are reused", async () => {
    const dataDir = freshDir();
    const { time, sources } = manualClock();
    const shard = await openShard({ dataDir, retentionMs: 20, clock: sources });
    const used: number[] = [];
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      const tasks = Array.from({ length: 2_000 }, (_, i) => ({
        id: `r${round}-${i}`,
        deadline: i,
        payload: "x".repeat(200),
      }));
      await shard.submit(tasks);
      const leases = await shard.lease("w", { max: 2_000, leaseMs: 60_000 });
      await Promise.all(leases.map((l) => shard.complete(l.taskId, l.token)));
      time.mono += 60; // past retention: the round's tasks are dropped
      shard.stats(); // a read: runs the engine's due timers
      await shard.lease("w").catch(() => []); // a call, so the drops are durable
      const journal = (shard as unknown as { journal: LmdbJournal }).journal;
      used.push(journal.diskUsage().usedBytes);
    }
    expect(shard.stats().counts.COMPLETED).toBe(0);
    // The first rounds size the file; later ones reuse its free pages. A leak
    // would grow with every round (8 rounds: ~4x round 2); page reuse that
    // lags behind a reader under load is tolerated up to 1.5x.
    const late = Math.max(...used.slice(rounds / 2));
    expect(late, `used bytes per round: ${used}`).toBeLessThanOrEqual(used[1]! * 1.5);
  });

  it("refuses a second open of the same directory in this process", async () => {
    const dataDir = freshDir();
    await openShard({ dataDir });
    expect((await rejection(Shard.open({ dataDir }))).code).toBe(ShardErrorCode.SHARD_LOCKED);
  });

  it("checks its options before touching the directory", async () => {
    expect((await rejection(Shard.open({ dataDir: "" }))).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect((await rejection(Shard.open({ dataDir: freshDir(), defaultMaxAttempts: 0 }))).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });
});

describe("Shard limits", () => {
  /** A payload's size as the wire counts it (msgpack without records). */
  const wireBytes = (payload: unknown) => new Packr({ useRecords: false }).pack(payload).byteLength;

  /** Everything a refused submit must leave as it was. */
  const footprint = (shard: Shard) => ({
    holdings: shard.holdings(),
    counts: shard.stats().counts,
    records: shard.stats().journal.records,
  });

  it("refuses a submit past maxLiveTasks whole, changing nothing, and takes it once tasks finish", async () => {
    const shard = await openShard({ dataDir: freshDir(), maxLiveTasks: 3 });
    await shard.submit([task("a", 1), task("b", 2)], { idempotencyKey: "k1" });
    const before = footprint(shard);
    const refused = await rejection(shard.submit([task("c", 3), task("d", 4)], { idempotencyKey: "k2" }));
    expect(refused).toBeInstanceOf(ShardLimitError);
    expect(refused).toMatchObject({
      code: "LIMIT_REACHED",
      limit: "maxLiveTasks",
      max: 3,
      held: 2,
      adding: 2,
    });
    expect((refused as Error).message).toMatch(
      /2 live tasks held, and this submit adds 2: that passes maxLiveTasks \(3\)/,
    );
    expect(footprint(shard)).toEqual(before);
    expect(shard.getTask("c")).toBeUndefined();
    expect(shard.submitted("k2")).toBeUndefined();
    // A repeated key adds nothing and answers as before, at the limit or not.
    expect(await shard.submit([task("c", 3), task("d", 4)], { idempotencyKey: "k1" })).toEqual({
      taskIds: ["a", "b"],
      duplicate: true,
    });
    // The shard serves on; a finished task makes room (cancelled here).
    await shard.cancel("a");
    expect(await shard.submit([task("c", 3), task("d", 4)], { idempotencyKey: "k2" })).toEqual({
      taskIds: ["c", "d"],
      duplicate: false,
    });
    expect(shard.holdings().liveTasks).toBe(3);
  });

  it("refuses a submit past maxStoredBytes, counting payloads as the wire does, until finished ones are compacted", async () => {
    const payload = { blob: "x".repeat(100) };
    const size = wireBytes(payload);
    const shard = await openShard({ dataDir: freshDir(), maxStoredBytes: 2 * size + 10, retentionMs: 50 });
    await shard.submit([task("a", 1, [], { payload }), task("b", 2, [], { payload })]);
    expect(shard.holdings().storedBytes).toBe(2 * size);
    expect(shard.stats().storedBytes).toBe(2 * size);
    const before = footprint(shard);
    const refused = await rejection(shard.submit(task("c", 3, [], { payload })));
    expect(refused).toMatchObject({
      limit: "maxStoredBytes",
      max: 2 * size + 10,
      held: 2 * size,
      adding: size,
    });
    expect(footprint(shard)).toEqual(before);
    // A task without payload still fits.
    await shard.submit(task("small", 3));
    // A finished task's payload is held until it is compacted, retentionMs later.
    const [lease] = await shard.lease("w", { leaseMs: 60_000 });
    await shard.complete(lease!.taskId, lease!.token);
    expect(shard.holdings().storedBytes).toBe(2 * size);
    await vi.waitFor(() => expect(shard.holdings().storedBytes).toBe(size), { timeout: 5_000, interval: 20 });
    await shard.submit(task("c", 3, [], { payload }));
    expect(shard.getTask("c")?.payload).toEqual(payload);
  });

  it("refuses a new key past maxIdempotencyKeys, until old keys expire; a submit without key adds none", async () => {
    const shard = await openShard({
      dataDir: freshDir(),
      maxIdempotencyKeys: 2,
      idempotencyRetentionMs: 100,
    });
    await shard.submit(task("a", 1), { idempotencyKey: "k1" });
    await shard.submit(task("b", 1), { idempotencyKey: "k2" });
    const before = footprint(shard);
    const refused = await rejection(shard.submit(task("c", 1), { idempotencyKey: "k3" }));
    expect(refused).toMatchObject({ limit: "maxIdempotencyKeys", max: 2, held: 2, adding: 1 });
    expect((refused as Error).message).toMatch(/idempotencyRetentionMs/);
    expect(footprint(shard)).toEqual(before);
    expect(shard.getTask("c")).toBeUndefined();
    await shard.submit(task("d", 1));
    expect(shard.holdings().idempotencyKeys).toBe(2);
    await vi.waitFor(() => expect(shard.holdings().idempotencyKeys).toBe(0), {
      timeout: 5_000,
      interval: 20,
    });
    await shard.submit(task("c", 1), { idempotencyKey: "k3" });
    expect(shard.submitted("k3")?.taskIds).toEqual(["c"]);
  });

  it("counts room set aside elsewhere (alsoHeld), and admit checks a batch as submit would without adding it", async () => {
    const shard = await openShard({ dataDir: freshDir(), maxLiveTasks: 4, maxIdempotencyKeys: 5 });
    const payload = "p".repeat(20);
    const holds = shard.admit([task("a", 1, [], { payload }), task("b", 1)]);
    expect(holds).toEqual({ liveTasks: 2, storedBytes: wireBytes(payload), idempotencyKeys: 1 });
    expect(shard.holdings()).toEqual({ liveTasks: 0, storedBytes: 0, idempotencyKeys: 0 });
    expect(shard.getTask("a")).toBeUndefined();
    // Set aside for the batch: another submit finds less room.
    expect(
      await rejection(shard.submit([task("x", 1), task("y", 1), task("z", 1)], { alsoHeld: holds })),
    ).toMatchObject({ limit: "maxLiveTasks", held: 2, adding: 3 });
    expect(() => shard.admit([task("x", 1), task("y", 1), task("z", 1)], { alsoHeld: holds })).toThrow(
      ShardLimitError,
    );
    // An invalid batch is refused for its problems, limits or not.
    expect(() => shard.admit([task("q", 1, ["nope"])], { alsoHeld: holds })).toThrow(ValidationError);
    await shard.submit([task("a", 1, [], { payload }), task("b", 1)], { idempotencyKey: "k" });
    expect(shard.holdings()).toEqual(holds);
  });

  it("rebuilds what it counts from the journal: the same figures, and the same refusals, after a restart", async () => {
    const dataDir = freshDir();
    const limits = { maxLiveTasks: 5, maxStoredBytes: 10_000, maxIdempotencyKeys: 10 };
    const shard = await openShard({ dataDir, ...limits });
    const payload = (n: number) => ({ n, data: "y".repeat(n * 10) });
    await shard.submit(
      [1, 2, 3, 4].map((n) => task(`t${n}`, n, [], { payload: payload(n) })),
      { idempotencyKey: "k1" },
    );
    await shard.submit(task("t5", 5, ["t1"]), { idempotencyKey: "k2" });
    const [lease] = await shard.lease("w", { leaseMs: 60_000 });
    await shard.complete(lease!.taskId, lease!.token);
    await shard.cancel("t2");
    const before = shard.holdings();
    expect(before).toEqual({
      liveTasks: 3,
      storedBytes: [1, 2, 3, 4].reduce((sum, n) => sum + wireBytes(payload(n)), 0),
      idempotencyKeys: 2,
    });
    await shard.close();
    const again = await openShard({ dataDir, ...limits });
    expect(again.holdings()).toEqual(before);
    expect(await rejection(again.submit([task("u1", 1), task("u2", 1), task("u3", 1)]))).toMatchObject({
      limit: "maxLiveTasks",
      held: 3,
      adding: 3,
    });
    await again.submit([task("u1", 1), task("u2", 1)]);
    expect(again.holdings().liveTasks).toBe(5);
  });

  it("checks its limits are positive integers before touching the directory", async () => {
    for (const bad of [{ maxLiveTasks: 0 }, { maxStoredBytes: 1.5 }, { maxIdempotencyKeys: -1 }]) {
      const error = await rejection(Shard.open({ dataDir: freshDir(), ...bad }));
      expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect((error as Error).message).toMatch(new RegExp(Object.keys(bad)[0]!));
    }
  });
});

describe("Shard fail-stop", () => {
  it("after a failed commit rejects that call and every later one, and reopens to the durable prefix", async () => {
    const dataDir = freshDir();
    let failNext = false;
    const shard = await openShard({
      dataDir,
      openJournal: async (o) => failing(await LmdbJournal.open(o), () => failNext),
    });
    await shard.submit(task("durable", 1));
    failNext = true;
    const failed = await rejection(shard.submit(task("lost", 2)));
    expect(failed).toBeInstanceOf(ShardFailedError);
    expect(failed.code).toBe(ShardErrorCode.SHARD_FAILED);
    expect((failed.cause as StorageError).code).toBe(ShardErrorCode.STORAGE_FULL);
    expect(shard.stats().state).toBe(ShardState.FAILED);
    expect((await rejection(shard.lease("w"))).code).toBe(ShardErrorCode.SHARD_FAILED);
    expect(() => shard.getTask("durable")).toThrow(ShardFailedError);
    await shard.close();
    expect((await rejection(shard.lease("w"))).code).toBe(ShardErrorCode.SHARD_CLOSED);
    const again = await openShard({ dataDir });
    expect(again.getTask("durable")?.state).toBe("RUNNABLE");
    expect(again.getTask("lost")).toBeUndefined();
  });
});

describe("Shard: a replaced owner", () => {
  it("confirmOwner fails the shard once another opener took the directory over: it answers no read after that", async () => {
    const dataDir = freshDir();
    const old = await openShard({ dataDir });
    await old.submit(task("a", 1));
    old.confirmOwner();
    const successor = await openShard({ dataDir, takeover: true });
    // Its memory still holds the task: only asking the directory tells it that it is stale.
    expect(old.getTask("a")?.state).toBe("RUNNABLE");
    const error = await rejection(Promise.resolve().then(() => old.confirmOwner()));
    expect(error).toBeInstanceOf(ShardFailedError);
    expect((error as ShardFailedError).cause).toMatchObject({ code: ShardErrorCode.SHARD_FENCED });
    expect(old.stats().state).toBe(ShardState.FAILED);
    expect(() => old.getTask("a")).toThrow(ShardFailedError);
    successor.confirmOwner();
    expect(successor.getTask("a")?.state).toBe("RUNNABLE");
  });
});

/** A journal whose appends wait for `gate` before reaching the real one. */
/** An observer that hears nothing but what `heard` asks for. */
function observing(heard: Partial<ShardObserver>): ShardObserver {
  const ignore = () => {};
  return {
    added: ignore,
    leased: ignore,
    completed: ignore,
    retried: ignore,
    leaseExpired: ignore,
    released: ignore,
    attemptTimedOut: ignore,
    ended: ignore,
    staleRejected: ignore,
    duplicate: ignore,
    committed: ignore,
    duplicateSubmit: ignore,
    ...heard,
  };
}

function gated(journal: Journal, gate: Promise<void>): Journal {
  return {
    load: () => journal.load(),
    append: (records) => gate.then(() => journal.append(records)),
    stats: () => journal.stats(),
    checkOwner: () => journal.checkOwner(),
    close: () => journal.close(),
  };
}

/** A journal whose appends fail (as a full disk would) while `broken()` says so, and for good after. */
function failing(journal: Journal, broken: () => boolean): Journal {
  let failure: StorageError | undefined;
  return {
    load: () => journal.load(),
    append: (records) => {
      if (!failure && broken() && records.length > 0)
        failure = new StorageError(ShardErrorCode.STORAGE_FULL, "storage is full: injected", 28);
      return failure ? Promise.reject(failure) : journal.append(records);
    },
    stats: () => journal.stats(),
    checkOwner: () => journal.checkOwner(),
    close: () => journal.close(),
  };
}
