/**
 * Id claims at the shard (docs/cluster.md, "One id space per cluster"):
 * journaled with the submit that keeps them, or alone (keepClaims), kept
 * across restarts, and moved with their home slot — rows, the claims of
 * tasks staying behind, and rows left for tasks leaving whose ids stay.
 */
import { describe, expect, it } from "vitest";
import type { ClaimHomes, Shard } from "./shard.js";
import { useShards } from "./test-shards.fixture.js";

const { freshDir, openShard, closeShard } = useShards("shard-claims");

const proofOf = (taskId: string, token: number) => `proof-${taskId}-${token}`;

/** A home map for the tests: an id's home is the number after "h" in it ("a.h3" → 3), else 0. */
function homesKeeping(kept: ReadonlySet<number>): ClaimHomes {
  return {
    homeOf: (id) => Number(/h(\d+)$/.exec(id)?.[1] ?? 0),
    keeps: (slot) => kept.has(slot),
  };
}

async function reopen(shard: Shard, dataDir: string): Promise<Shard> {
  await closeShard(shard);
  return openShard({ dataDir });
}

describe("Shard id claims", () => {
  it("keeps claims with the submit that accepts its batch, and alone; both survive a restart", async () => {
    const dir = freshDir();
    let shard = await openShard({ dataDir: dir });
    await shard.submit([{ id: "t1", deadline: 1, workflowId: "w" }], {
      idempotencyKey: "k1",
      claims: [{ taskId: "x", workflowId: "far" }, { taskId: "y" }],
    });
    // A claims-only part: no task, its key remembered like any part's.
    await shard.submit([], { idempotencyKey: "k2", claims: [{ taskId: "z", workflowId: "far" }] });
    await shard.keepClaims([{ taskId: "v", workflowId: "far2" }]);
    const x = shard.claimOf("x");
    expect(x).toEqual({ taskId: "x", workflowId: "far" });
    expect(shard.claimCount).toBe(4);
    expect(shard.submitted("k2")?.taskIds).toEqual([]);
    // A replay keeps nothing new.
    await shard.submit([{ id: "t1", deadline: 1, workflowId: "w" }], {
      idempotencyKey: "k1",
      claims: [{ taskId: "other" }],
    });
    expect(shard.claimOf("other")).toBeUndefined();
    expect(shard.claimOf("x")).toBe(x);

    shard = await reopen(shard, dir);
    expect(shard.claimOf("x")).toEqual({ taskId: "x", workflowId: "far" });
    expect(shard.claimOf("y")).toEqual({ taskId: "y" });
    expect(shard.claimOf("z")).toEqual({ taskId: "z", workflowId: "far" });
    expect(shard.claimOf("v")).toEqual({ taskId: "v", workflowId: "far2" });
    expect(shard.heldTask("t1")).toEqual({ workflowId: "w" });
    expect(shard.heldTask("x")).toBeUndefined();
  });

  it("keeps a large workflow's claim as large (its task's slot is by workflow and id), across a restart", async () => {
    const dir = freshDir();
    let shard = await openShard({ dataDir: dir });
    await shard.submit([], {
      idempotencyKey: "k",
      claims: [{ taskId: "g1", workflowId: "big", large: true }],
    });
    await shard.keepClaims([{ taskId: "g2", workflowId: "big", large: true }]);
    shard = await reopen(shard, dir);
    expect(shard.claimOf("g1")).toEqual({ taskId: "g1", workflowId: "big", large: true });
    expect(shard.claimOf("g2")).toEqual({ taskId: "g2", workflowId: "big", large: true });
  });

  it("a claim written again is a new row object, even with the same workflow", async () => {
    const shard = await openShard({ dataDir: freshDir() });
    await shard.keepClaims([{ taskId: "x", workflowId: "w" }]);
    const first = shard.claimOf("x");
    await shard.keepClaims([{ taskId: "x", workflowId: "w" }]);
    expect(shard.claimOf("x")).toEqual(first);
    expect(shard.claimOf("x")).not.toBe(first);
  });

  it("drops only the rows still kept as they were read, durably", async () => {
    const dir = freshDir();
    let shard = await openShard({ dataDir: dir });
    await shard.keepClaims([
      { taskId: "x", workflowId: "w" },
      { taskId: "y", workflowId: "w" },
    ]);
    const [x, y] = [shard.claimOf("x")!, shard.claimOf("y")!];
    expect(shard.claimRows()).toHaveLength(2);
    // "y" is written again after it was read: the read row is not the kept one any more.
    await shard.keepClaims([{ taskId: "y", workflowId: "w" }]);
    expect(await shard.dropClaims([x, y])).toBe(1);
    expect(shard.claimOf("x")).toBeUndefined();
    expect(shard.claimOf("y")).toEqual({ taskId: "y", workflowId: "w" });
    shard = await reopen(shard, dir);
    expect(shard.claimOf("x")).toBeUndefined();
    expect(shard.claimCount).toBe(1);
  });

  it("a refused batch keeps none of its claims", async () => {
    const shard = await openShard({ dataDir: freshDir() });
    await shard.submit({ id: "t", deadline: 1 });
    await expect(
      shard.submit([{ id: "t", deadline: 2 }], { idempotencyKey: "dup", claims: [{ taskId: "x" }] }),
    ).rejects.toThrow(/DUPLICATE_ID|already/);
    expect(shard.claimOf("x")).toBeUndefined();
    expect(shard.claimCount).toBe(0);
  });

  it("claims move with their home slot, both ways, and survive the restarts of source and target", async () => {
    const dirA = freshDir();
    const dirB = freshDir();
    let a = await openShard({ dataDir: dirA });
    // Slot 5 moves. Task ids end in their home ("…h5": homed in slot 5); workflow "m" is in slot 5.
    await a.submit(
      [
        // Stays (workflow "s"), id homed in the moving slot: its claim goes to the target as a row.
        { id: "stay.h5", deadline: 1, workflowId: "s" },
        // Leaves, id homed in slot 2, which stays here: a row is left here for it.
        { id: "leave.h2", deadline: 2, workflowId: "m" },
        // Leaves, id homed in the moving slot: its claim is the task itself at the target.
        { id: "leave.h5", deadline: 3, workflowId: "m" },
        // Leaves, id homed in slot 9, not this shard's: its claim is elsewhere already.
        { id: "leave.h9", deadline: 4, workflowId: "m" },
      ],
      { idempotencyKey: "k", claims: [{ taskId: "row.h5", workflowId: "far" }, { taskId: "row.h2" }] },
    );
    const homes = homesKeeping(new Set([2]));
    const row = await a.beginMove({
      moveId: "m1",
      slot: 5,
      source: "A",
      target: "B",
      select: (w) => w === "m",
      proofOf,
      homes,
    });
    expect(row.tasks.map((r) => r.spec.id).sort()).toEqual(["leave.h2", "leave.h5", "leave.h9"]);
    expect([...(row.claims ?? [])].sort((p, q) => (p.taskId < q.taskId ? -1 : 1))).toEqual([
      { taskId: "row.h5", workflowId: "far" },
      { taskId: "stay.h5", workflowId: "s" },
    ]);
    expect(a.claimOf("row.h5")).toBeUndefined();
    expect(a.claimOf("row.h2")).toEqual({ taskId: "row.h2" });
    expect(a.claimOf("leave.h2")).toEqual({ taskId: "leave.h2", workflowId: "m" });
    expect(a.claimOf("leave.h5")).toBeUndefined();
    expect(a.claimOf("leave.h9")).toBeUndefined();

    a = await reopen(a, dirA);
    expect(a.outgoingMoves()[0]?.claims).toEqual(row.claims);
    expect(a.claimOf("leave.h2")).toEqual({ taskId: "leave.h2", workflowId: "m" });
    expect(a.claimOf("row.h5")).toBeUndefined();

    let b = await openShard({ dataDir: dirB });
    await b.adopt(row);
    b = await reopen(b, dirB);
    expect(b.claimOf("row.h5")).toEqual({ taskId: "row.h5", workflowId: "far" });
    expect(b.claimOf("stay.h5")).toEqual({ taskId: "stay.h5", workflowId: "s" });
    expect(b.heldTask("leave.h5")).toEqual({ workflowId: "m" });
  });

  it("an undone move brings its claims back as rows", async () => {
    const a = await openShard({ dataDir: freshDir() });
    await a.submit([{ id: "stay.h5", deadline: 1, workflowId: "s" }], {
      idempotencyKey: "k",
      claims: [{ taskId: "row.h5", workflowId: "far" }],
    });
    const homes = homesKeeping(new Set());
    await a.beginMove({
      moveId: "m1",
      slot: 5,
      source: "A",
      target: "B",
      select: () => false,
      proofOf,
      homes,
    });
    expect(a.claimOf("row.h5")).toBeUndefined();
    await a.abortMove("m1");
    expect(a.claimOf("row.h5")).toEqual({ taskId: "row.h5", workflowId: "far" });
    expect(a.claimOf("stay.h5")).toEqual({ taskId: "stay.h5", workflowId: "s" });
  });

  it("a move the engine refuses leaves every claim as it was", async () => {
    const a = await openShard({ dataDir: freshDir() });
    await a.submit(
      [
        { id: "p.h5", deadline: 1, workflowId: "s" },
        { id: "d.h2", deadline: 2, workflowId: "s", prerequisites: ["p.h5"] },
      ],
      { idempotencyKey: "k", claims: [{ taskId: "row.h5", workflowId: "far" }] },
    );
    const homes = homesKeeping(new Set([2]));
    // Selecting "d" without its prerequisite is not closed: refused, nothing changes.
    await expect(
      a.beginMove({
        moveId: "m1",
        slot: 5,
        source: "A",
        target: "B",
        select: (_w, id) => id === "d.h2",
        proofOf,
        homes,
      }),
    ).rejects.toThrow();
    expect(a.claimOf("row.h5")).toEqual({ taskId: "row.h5", workflowId: "far" });
    expect(a.claimOf("d.h2")).toBeUndefined();
    expect(a.outgoingMoves()).toEqual([]);
  });
});
