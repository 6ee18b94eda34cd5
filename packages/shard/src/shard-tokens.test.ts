/**
 * Fencing tokens under "committed" durability (hi-lo): the shard keeps a
 * flushed ceiling above every token it acknowledges, and a restart starts
 * above it, so a token handed out in a commit a power cut took back is never
 * handed out again. The power cut is played by restoring a copy of the data
 * directory taken at the last flush before the grants.
 */
import { cpSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LmdbJournal } from "./lmdb-journal.js";
import { Shard } from "./shard.js";
import { useShards } from "./test-shards.fixture.js";

const { freshDir, openShard, closeShard } = useShards("shard-tokens");

/** The token ceiling stored in a closed shard's directory. */
async function storedCeiling(dataDir: string): Promise<number> {
  const journal = await LmdbJournal.open({ dataDir });
  try {
    return journal.load().tokenCeiling;
  } finally {
    await journal.close();
  }
}

const tasks = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, deadline: 1_000 + i }));

async function leaseAll(shard: Shard, n: number): Promise<number[]> {
  const tokens: number[] = [];
  for (let i = 0; i < n; i++) {
    const [lease] = await shard.lease("w", { max: 1 });
    if (lease === undefined) throw new Error(`no task to lease (${i} of ${n})`);
    tokens.push(lease.token);
  }
  return tokens;
}

describe("fencing tokens under committed durability", () => {
  it("are never handed out twice across a lost tail: a restart starts above the flushed ceiling", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir, durability: "committed", tokenReservation: 100 });
    await shard.submit(tasks("t", 5));
    // The disk as a power cut would leave it: everything flushed up to here (the shard is idle:
    // no write in flight), nothing after.
    const atLastFlush = freshDir();
    cpSync(dataDir, atLastFlush, { recursive: true });
    const handedOut = await leaseAll(shard, 5);
    await closeShard(shard);

    // Back to the copy: the grants above are gone, as if their commits never reached the disk.
    rmSync(dataDir, { recursive: true, force: true });
    cpSync(atLastFlush, dataDir, { recursive: true });
    const third = await openShard({ dataDir, durability: "committed", tokenReservation: 100 });
    expect(third.getTask("t0")?.state).toBe("RUNNABLE");
    const again = await leaseAll(third, 5);
    expect(Math.min(...again)).toBeGreaterThan(Math.max(...handedOut));
  });

  it("raise the ceiling ahead of the tokens, by the reservation, once half of it is used", async () => {
    const dataDir = freshDir();
    const shard = await openShard({ dataDir, durability: "committed", tokenReservation: 10 });
    await shard.submit(tasks("t", 30));
    const tokens = await leaseAll(shard, 30);
    // Every token is unique and increasing.
    expect(new Set(tokens).size).toBe(30);
    expect([...tokens].sort((a, b) => a - b)).toEqual(tokens);
    await closeShard(shard);
    const ceiling = await storedCeiling(dataDir);
    // Above every token handed out, by less than one reservation and a half.
    expect(ceiling).toBeGreaterThan(tokens.at(-1)!);
    expect(ceiling).toBeLessThanOrEqual(tokens.at(-1)! + 15);

    const reopened = await openShard({ dataDir, durability: "committed", tokenReservation: 10 });
    await reopened.submit(tasks("u", 1));
    const [next] = await leaseAll(reopened, 1);
    expect(next).toBeGreaterThan(ceiling);
  });

  it("are reserved only under committed durability; a flushed shard still starts above a ceiling left by one", async () => {
    const dataDir = freshDir();
    const flushed = await openShard({ dataDir });
    await flushed.submit(tasks("t", 3));
    const [a] = await leaseAll(flushed, 1);
    await closeShard(flushed);
    expect(await storedCeiling(dataDir)).toBe(0);

    const committed = await openShard({ dataDir, durability: "committed", tokenReservation: 100 });
    const [b] = await leaseAll(committed, 1);
    await closeShard(committed);
    const ceiling = await storedCeiling(dataDir);
    expect(b).toBeGreaterThan(a!);
    expect(ceiling).toBeGreaterThan(b!);

    // Back to flushed: tokens go on from above the ceiling, which stays as it was.
    const back = await openShard({ dataDir });
    const [c] = await leaseAll(back, 1);
    await closeShard(back);
    expect(c).toBeGreaterThan(ceiling);
    expect(await storedCeiling(dataDir)).toBe(ceiling);
  });

  it("refuses a reservation below 2", async () => {
    await expect(
      Shard.open({ dataDir: freshDir(), durability: "committed", tokenReservation: 1 }),
    ).rejects.toThrow(/tokenReservation must be an integer >= 2/);
  });
});
