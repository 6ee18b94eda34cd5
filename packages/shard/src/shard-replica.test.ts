/**
 * Journal shipping at the shard (journal-replica.ts): an answer waits for
 * the replica as well as the disk, a refused block stops the shard, and the
 * copy rebuilds the acknowledged state in another directory.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ShardErrorCode } from "./errors.js";
import type { Journal } from "./journal.js";
import { BASE_FIELDS } from "./journal-replica.js";
import { LmdbJournal } from "./lmdb-journal.js";
import { MemoryReplica } from "./memory-replica.fixture.js";
import type { Shard } from "./shard.js";
import { useShards } from "./test-shards.fixture.js";

const { freshDir, openShard, closeShard } = useShards("shard-replica");

/** Opens a replicated shard, keeping a handle on its local journal. */
async function openReplicated(replica: MemoryReplica, dataDir = freshDir(), replicaRebaseBytes?: number) {
  let local: Journal | undefined;
  const shard = await openShard({
    dataDir,
    replica,
    ...(replicaRebaseBytes === undefined ? {} : { replicaRebaseBytes }),
    openJournal: async (o) => {
      local = await LmdbJournal.open(o);
      return local;
    },
  });
  return { shard, local: local!, dataDir };
}

/** Whether `promise` settled, once everything already queued on the microtask queue ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("a replicated shard", () => {
  it("acknowledges a block only once the replica holds it, not when the disk alone does", async () => {
    const replica = new MemoryReplica();
    const { shard, local } = await openReplicated(replica);
    replica.hold();
    const submitted = shard.submit([{ id: "a", deadline: 1 }], { idempotencyKey: "k" });
    // The local commit is done (a barrier resolves once every earlier append is durable) ...
    await local.append([]);
    // ... and the submit still waits for the replica.
    expect(await settled(submitted)).toBe(false);
    expect(replica.shipped).toBe(1);
    replica.release();
    await expect(submitted).resolves.toEqual({ taskIds: ["a"], duplicate: false });
  });

  it("stops at a block the replica refuses: nothing after it acknowledged, REPLICATION_FAILED", async () => {
    const replica = new MemoryReplica();
    const { shard } = await openReplicated(replica);
    await shard.submit([{ id: "a", deadline: 1 }]);
    replica.hold();
    const refused = shard.submit([{ id: "b", deadline: 2 }]);
    replica.refuse(new Error("wrong last msg id"));
    const error = await refused.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ShardErrorCode.SHARD_FAILED });
    expect((error as { cause: { code: string } }).cause.code).toBe(ShardErrorCode.REPLICATION_FAILED);
    await expect(shard.submit([{ id: "c", deadline: 3 }])).rejects.toMatchObject({
      code: ShardErrorCode.SHARD_FAILED,
    });
  });

  it("does not open when the replica refuses its base, and leaves the directory free", async () => {
    const replica = new MemoryReplica();
    replica.refuse(new Error("taken over"));
    const dataDir = freshDir();
    await expect(openShard({ dataDir, replica })).rejects.toMatchObject({
      code: ShardErrorCode.REPLICATION_FAILED,
    });
    // Closed again: an open without the replica takes the directory.
    await closeShard(await openShard({ dataDir }));
  });

  it("ships its state as a new base when it opens again, so a copy needs no block from before", async () => {
    const first = new MemoryReplica();
    const { shard, dataDir } = await openReplicated(first);
    await shard.submit([{ id: "a", deadline: 1 }], { idempotencyKey: "k" });
    const [lease] = await shard.lease("w", { max: 1, leaseMs: 60_000 });
    await closeShard(shard);

    const second = new MemoryReplica();
    const reopened = await openReplicated(second, dataDir);
    await closeShard(reopened.shard);
    const copy = freshDir();
    await second.restoreInto(copy);
    const restored = await openShard({ dataDir: copy });
    expect(restored.getTask("a")).toMatchObject({ state: "LEASED", token: lease!.token });
    await expect(restored.submit([{ id: "a", deadline: 1 }], { idempotencyKey: "k" })).resolves.toEqual({
      taskIds: ["a"],
      duplicate: true,
    });
  });
});

/** One step of a random history; each is awaited, so each answered step is acknowledged. */
type Step =
  | { readonly op: "submit"; readonly n: number; readonly key: boolean; readonly chain: boolean }
  | { readonly op: "lease"; readonly max: number }
  | { readonly op: "complete" | "fail" | "cancel"; readonly pick: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant("submit" as const),
    n: fc.integer({ min: 1, max: 4 }),
    key: fc.boolean(),
    chain: fc.boolean(),
  }),
  fc.record({ op: fc.constant("lease" as const), max: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    op: fc.constantFrom("complete" as const, "fail" as const, "cancel" as const),
    pick: fc.nat(),
  }),
);

async function play(shard: Shard, steps: readonly Step[], prefix: string) {
  const ids: string[] = [];
  const keys = new Map<string, string[]>();
  const leases: { taskId: string; token: number }[] = [];
  let next = 0;
  for (const s of steps) {
    switch (s.op) {
      case "submit": {
        const batch = Array.from({ length: s.n }, (_, i) => ({
          id: `${prefix}${next + i}`,
          deadline: 1_000 + ((next + i) % 7),
          workflowId: "w",
          ...(s.chain && i > 0 ? { prerequisites: [`${prefix}${next + i - 1}`] } : {}),
        }));
        next += s.n;
        const key = s.key ? `${prefix}key-${next}` : undefined;
        const result = await shard.submit(batch, key === undefined ? {} : { idempotencyKey: key });
        ids.push(...result.taskIds);
        if (key !== undefined) keys.set(key, [...result.taskIds]);
        break;
      }
      case "lease":
        for (const l of await shard.lease("w", { max: s.max, leaseMs: 600_000 }))
          leases.push({ taskId: l.taskId, token: l.token });
        break;
      default: {
        const lease = leases.length === 0 ? undefined : leases.splice(s.pick % leases.length, 1)[0]!;
        if (lease === undefined) break;
        if (s.op === "complete") await shard.complete(lease.taskId, lease.token);
        else if (s.op === "fail")
          await shard.fail(lease.taskId, lease.token, { retryable: true, reason: "x" });
        else await shard.cancel(lease.taskId, "x");
      }
    }
  }
  return { ids, keys };
}

describe("a copy rebuilt from the replica", () => {
  it("ships a new base once the blocks since the last one outgrow it, holding calls meanwhile; the copy stays whole", async () => {
    const replica = new MemoryReplica();
    const { shard } = await openReplicated(replica, freshDir(), 1);
    const answers: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      answers.push(shard.submit([{ id: `t${i}`, deadline: i }], { idempotencyKey: `k${i}` }));
      if (i % 10 === 9) await Promise.all(answers.splice(0));
    }
    await Promise.all(answers);
    const [lease] = await shard.lease("w", { max: 1, leaseMs: 600_000 });
    expect(replica.rebases).toBeGreaterThan(0);
    // The copy is a base and the blocks after it: far fewer messages than blocks shipped.
    expect(replica.held.length).toBeLessThan(replica.shipped);
    const copy = freshDir();
    await replica.restoreInto(copy);
    const restored = await openShard({ dataDir: copy });
    for (let i = 0; i < 30; i++) expect(restored.getTask(`t${i}`)).toEqual(shard.getTask(`t${i}`));
    expect(restored.getTask(lease!.taskId)).toMatchObject({ state: "LEASED", token: lease!.token });
    await expect(restored.submit([{ id: "x", deadline: 1 }], { idempotencyKey: "k29" })).resolves.toEqual({
      taskIds: ["t29"],
      duplicate: true,
    });
  });

  it("ships every field of the journal's state in its base (a field added to the journal must be shipped too)", async () => {
    const journal = await LmdbJournal.open({ dataDir: freshDir() });
    try {
      expect(Object.keys(journal.load()).sort()).toEqual([...BASE_FIELDS].sort());
    } finally {
      await journal.close();
    }
  });

  it("holds the acknowledged state: every task as it was, leases with their tokens, idempotency keys", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 25 }),
        fc.boolean(),
        fc.constantFrom(undefined, 1, 2_000),
        async (steps, reopen, rebaseBytes) => {
          const replica = new MemoryReplica();
          // New bases while the shard runs: after every block (1 byte), now and then, or never.
          let { shard, dataDir } = await openReplicated(replica, freshDir(), rebaseBytes);
          const half = Math.floor(steps.length / 2);
          const first = await play(shard, steps.slice(0, half), "a");
          // A restart in the middle (a new base), or not.
          if (reopen) {
            await closeShard(shard);
            ({ shard } = await openReplicated(replica, dataDir, rebaseBytes));
          }
          const second = await play(shard, steps.slice(half), "b");
          const ids = [...first.ids, ...second.ids];
          const keys = new Map([...first.keys, ...second.keys]);
          // The primary is not closed: the copy must hold what was answered, with no help from a clean close.
          const views = ids.map((id) => shard.getTask(id));
          const lastToken = Math.max(0, ...views.map((v) => v?.token ?? 0));

          const copy = freshDir();
          await replica.restoreInto(copy);
          const restored = await openShard({ dataDir: copy });
          expect(ids.map((id) => restored.getTask(id))).toEqual(views);
          for (const [key, taskIds] of keys)
            await expect(
              restored.submit([{ id: "never", deadline: 1 }], { idempotencyKey: key }),
            ).resolves.toEqual({ taskIds, duplicate: true });
          // Tokens go on above every token the primary handed out.
          const more = await restored.submit([{ id: "fresh", deadline: 0 }]);
          expect(more.taskIds).toEqual(["fresh"]);
          const [lease] = await restored.lease("w2", { max: 1 });
          expect(lease!.token).toBeGreaterThan(lastToken);
          await closeShard(restored);
          await closeShard(shard);
        },
      ),
      { numRuns: 24 },
    );
  });
});
