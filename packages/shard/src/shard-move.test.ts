/**
 * A slot's tasks moving from one shard's journal to another's
 * (docs/cluster.md, "Slot movement"): the outbox row at the source, the
 * adopt at the target, idempotency by move id, and recovery of both
 * journals between any two steps.
 */
import { describe, expect, it } from "vitest";
import type { Shard } from "./shard.js";
import { useShards } from "./test-shards.fixture.js";

const { freshDir, openShard } = useShards("shard-move");

async function reopen(shard: Shard, dataDir: string): Promise<Shard> {
  await shard.close();
  return openShard({ dataDir });
}

const inW = (workflowId: string | undefined) => workflowId === "w";
const proofOf = (taskId: string, token: number) => `proof-${taskId}-${token}`;

async function loaded(dataDir: string): Promise<Shard> {
  const a = await openShard({ dataDir });
  await a.submit(
    [
      { id: "p", deadline: 10, workflowId: "w" },
      { id: "d", deadline: 20, workflowId: "w", prerequisites: ["p"] },
      { id: "x", deadline: 5, workflowId: "other" },
    ],
    { idempotencyKey: "both" },
  );
  await a.submit({ id: "q", deadline: 30, workflowId: "w" }, { idempotencyKey: "only-w" });
  return a;
}

describe("Shard slot moves", () => {
  it("moves a slot's tasks, keys and lease proofs; both sides survive a restart between every step", async () => {
    const dirA = freshDir();
    const dirB = freshDir();
    let a = await loaded(dirA);
    const leases = await a.lease("worker", { max: 2, leaseMs: 60_000, requestId: "r1" });
    expect(leases.map((l) => l.taskId)).toEqual(["x", "p"]);
    const p = leases[1]!;

    const row = await a.beginMove({
      moveId: "m1",
      slot: 7,
      source: "A",
      target: "B",
      select: (w) => inW(w),
      proofOf,
    });
    expect(row.tasks.map((r) => r.spec.id)).toEqual(["d", "p", "q"]);
    expect(row.leases).toEqual([{ taskId: "p", token: p.token, secret: proofOf("p", p.token) }]);
    // Narrowed: the key of a batch over two workflows goes with its moved part, and stays for the rest.
    expect(Object.fromEntries(row.idempotency)).toEqual({
      both: expect.objectContaining({ taskIds: ["p", "d"] }),
      "only-w": expect.objectContaining({ taskIds: ["q"] }),
      [`lease:6:worker:r1`]: expect.objectContaining({ taskIds: ["p"], tokens: [p.token] }),
    });
    expect(a.getTask("p")).toBeUndefined();
    expect(a.movingTask("p")).toBe("m1");
    // The request's grant of p left: a resend here gets x alone, and learns that p went elsewhere.
    expect((await a.replayLease("worker", "r1")).map((l) => l.taskId)).toEqual(["x"]);
    expect(a.leaseMovedAway("worker", "r1")).toBe(true);
    // ...and that p is on its way in m1 (the target may not hold it yet): nowhere to look up now.
    expect(a.leaseMoving("worker", "r1")).toBe("m1");
    expect(a.leaseMoving("worker", "never-sent")).toBeUndefined();
    // Begun again (a restarted driver): the same row.
    expect(
      await a.beginMove({ moveId: "m1", slot: 7, source: "A", target: "B", select: () => true, proofOf }),
    ).toEqual(row);
    await expect(
      a.beginMove({ moveId: "m2", slot: 7, source: "A", target: "B", select: (w) => inW(w), proofOf }),
    ).rejects.toThrow(/moving already/);

    // Source restarts with the outbox row.
    a = await reopen(a, dirA);
    expect(a.outgoingMoves()).toEqual([row]);
    expect(a.movingTask("d")).toBe("m1");
    expect(a.getTask("x")?.state).toBe("LEASED");
    expect(a.submitted("both")?.taskIds).toEqual(["x"]);
    expect(a.submitted("only-w")).toBeUndefined();
    expect(a.leaseMovedAway("worker", "r1")).toBe(true);
    expect(a.leaseMoving("worker", "r1")).toBe("m1");

    let b = await openShard({ dataDir: dirB });
    await b.submit({ id: "own", deadline: 1 }, { idempotencyKey: "both" });
    expect(await b.adopt(row)).toEqual({ already: false, tasks: 3 });
    // Target restarts: adopted, idempotent.
    b = await reopen(b, dirB);
    expect(await b.adopt(row)).toEqual({ already: true, tasks: 0 });
    expect(b.adoptedMove("m1")).toBeDefined();
    expect(b.adoptedSlots()).toEqual([7]);
    expect(b.adoptedProof("p", p.token)).toBe(proofOf("p", p.token));
    expect(b.adoptedProof("p", p.token + 1)).toBeUndefined();
    expect(b.adoptedMove("m1")).toMatchObject({ slot: 7, source: "A" });
    // The key's entries merged; a retried submit of the moved part is a duplicate.
    expect(b.submitted("both")?.taskIds).toEqual(["own", "p", "d"]);
    expect(
      (await b.submit({ id: "q", deadline: 30, workflowId: "w" }, { idempotencyKey: "only-w" })).duplicate,
    ).toBe(true);
    // The lease request replays at the target, and the lease completes there with its token.
    expect((await b.replayLease("worker", "r1")).map((l) => l.taskId)).toEqual(["p"]);
    expect(b.leaseMovedAway("worker", "r1")).toBe(false);
    expect(await b.complete("p", p.token)).toEqual({ duplicate: false });
    const next = await b.lease("worker", { max: 3 });
    expect(next.map((l) => l.taskId)).toEqual(["own", "d", "q"]);
    for (const l of next) expect(l.token).toBeGreaterThan(p.token);

    expect(a.endedMove("m1")).toBeUndefined();
    await a.endMove("m1");
    a = await reopen(a, dirA);
    expect(a.outgoingMoves()).toEqual([]);
    expect(a.movingTask("d")).toBeUndefined();
    expect(a.leaseMoving("worker", "r1")).toBeUndefined();
    expect(a.leaseMovedAway("worker", "r1")).toBe(true);
    // The move id is spent: remembered as ended, with its slot and target, across the restart.
    expect(a.endedMove("m1")).toMatchObject({ slot: 7, target: "B" });
    await a.endMove("m1"); // again: nothing
    expect(a.stats().counts.LEASED).toBe(1);
  });

  it("a lease request whose every grant moved keeps a mark: a resend learns where to look", async () => {
    const dir = freshDir();
    let a = await loaded(dir);
    await a.complete("x", (await a.lease("worker", { max: 1 }))[0]!.token);
    expect(
      (await a.lease("worker", { max: 1, leaseMs: 60_000, requestId: "r2" })).map((l) => l.taskId),
    ).toEqual(["p"]);
    expect(a.leaseMovedAway("worker", "r2")).toBe(false);
    await a.beginMove({ moveId: "m1", slot: 7, source: "A", target: "B", select: (w) => inW(w), proofOf });
    expect(await a.replayLease("worker", "r2")).toEqual([]);
    expect(a.leaseMovedAway("worker", "r2")).toBe(true);
    // Fencing the request at a later attempt keeps the mark; so does a restart.
    expect(await a.replayLease("worker", "r2", { fence: 2 })).toEqual([]);
    a = await reopen(a, dir);
    expect(a.leaseMovedAway("worker", "r2")).toBe(true);
    expect(a.leaseFence("worker", "r2")).toBe(2);
    expect(a.leaseMovedAway("worker", "never-sent")).toBe(false);
  });

  it("an aborted move puts everything back, durably", async () => {
    const dirA = freshDir();
    let a = await loaded(dirA);
    const [x, p] = await a.lease("worker", { max: 2, leaseMs: 60_000, requestId: "r1" });
    const before = ["p", "d", "q", "x"].map((id) => a.getTask(id));
    await a.beginMove({ moveId: "m1", slot: 7, source: "A", target: "B", select: (w) => inW(w), proofOf });
    expect(a.leaseMoving("worker", "r1")).toBe("m1");
    await a.abortMove("m1");
    expect(a.leaseMoving("worker", "r1")).toBeUndefined();
    a = await reopen(a, dirA);
    expect(a.outgoingMoves()).toEqual([]);
    expect(a.leaseMoving("worker", "r1")).toBeUndefined();
    expect((await a.replayLease("worker", "r1")).map((l) => l.taskId).sort()).toEqual(["p", "x"]);
    expect(["p", "d", "q", "x"].map((id) => a.getTask(id))).toEqual(before);
    expect(a.submitted("only-w")?.taskIds).toEqual(["q"]);
    expect([...(a.submitted("both")?.taskIds ?? [])].sort()).toEqual(["d", "p", "x"]);
    expect(await a.complete("p", p!.token)).toEqual({ duplicate: false });
    expect(await a.complete("x", x!.token)).toEqual({ duplicate: false });
  });

  it("an adopt that collides with a task held at the target is refused whole", async () => {
    const a = await loaded(freshDir());
    const b = await openShard({ dataDir: freshDir() });
    await b.submit({ id: "q", deadline: 1, workflowId: "elsewhere" });
    const row = await a.beginMove({
      moveId: "m1",
      slot: 7,
      source: "A",
      target: "B",
      select: (w) => inW(w),
      proofOf,
    });
    await expect(b.adopt(row)).rejects.toThrow(/held here already/);
    expect(b.adoptedMove("m1")).toBeUndefined();
    expect(b.getTask("p")).toBeUndefined();
    expect(b.submitted("only-w")).toBeUndefined();
  });

  it("reads moved times on the target's own clock: a lease ends no earlier than it would have at the source", async () => {
    // Two shard clocks an hour apart (each is its own: wall clock at open, then monotonic).
    const clockA = { wall: 1_000_000_000_000, mono: 0 };
    const clockB = { wall: 1_000_003_600_000, mono: 0 };
    const sources = (c: { wall: number; mono: number }) => ({
      wallNow: () => c.wall,
      monotonicNow: () => c.mono,
    });
    const a = await openShard({ dataDir: freshDir(), clock: sources(clockA) });
    const b = await openShard({ dataDir: freshDir(), clock: sources(clockB) });
    await a.submit([
      { id: "p", deadline: 10, workflowId: "w" },
      { id: "q", deadline: 20, workflowId: "w" },
    ]);
    const [p] = await a.lease("worker", { leaseMs: 30_000 });
    clockA.mono += 10_000; // 20 s of the lease left at the source
    const row = await a.beginMove({
      moveId: "m1",
      slot: 7,
      source: "A",
      target: "B",
      select: (w) => inW(w),
      proofOf,
    });
    clockB.mono += 5_000; // the move takes 5 s
    await b.adopt(row);
    const view = b.getTask("p")!;
    // 20 s left from the source's export, counted from the target's adopt.
    expect(view.leaseExpiresAt).toBe(clockB.wall + 5_000 + 20_000);
    expect(b.getTask("q")!.runnableSince).toBe(clockB.wall + 5_000 - 10_000);
    clockB.mono += 19_999;
    expect(b.getTask("p")!.state).toBe("LEASED");
    expect(await b.heartbeat("p", p!.token, { leaseMs: 30_000 })).toMatchObject({ token: p!.token });
  });
});
