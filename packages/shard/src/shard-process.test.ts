/**
 * Ownership and storage failures across real processes: a second process on
 * the same directory, a paused owner that wakes up after a takeover, a
 * process whose disk fills up.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ShardErrorCode, ShardLockedError } from "./errors.js";
import { Shard } from "./shard.js";
import { ShardProcess } from "./shard-process.fixture.js";

const root = mkdtempSync(join(tmpdir(), "frontier-shard-process-"));
let dirs = 0;
const freshDir = () => join(root, `p${dirs++}`);

/**
 * A real full disk: a tmpfs of `size` mounted at a fresh directory, when
 * this process may mount one (root, as on CI's machines); else undefined.
 */
function mountTmpfs(size: string): string | undefined {
  const dir = join(root, "tmpfs");
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
    return dir;
  } catch {
    return undefined;
  }
}
const tmpfs = process.getuid?.() === 0 ? mountTmpfs("2m") : undefined;
afterAll(() => {
  if (tmpfs) execFileSync("umount", [tmpfs], { stdio: "ignore" });
  rmSync(root, { recursive: true, force: true });
});

/** Fills the process's shard with batches of 100 tasks (`t-<batch>-<i>`) until the disk is full; returns the batches acknowledged. */
async function fillUntilFull(child: ShardProcess): Promise<number> {
  const { acked, error } = (await child.ok("fill", "t")) as {
    acked: number;
    error: { code: string; cause: string };
  };
  expect(error.code).toBe(ShardErrorCode.SHARD_FAILED);
  expect(error.cause).toBe(ShardErrorCode.STORAGE_FULL);
  return acked;
}

/** Reopened (with room on the disk), the shard holds whole batches, every acknowledged one, and serves. */
async function expectAckedBatchesAndServes(dataDir: string, acked: number): Promise<void> {
  const reopened = await Shard.open({ dataDir });
  const stored = reopened.stats().counts.RUNNABLE;
  expect(stored % 100).toBe(0);
  expect(stored).toBeGreaterThanOrEqual(acked * 100);
  for (let batch = 0; batch < acked; batch++)
    expect(reopened.getTask(`t-${batch}-99`)?.state).toBe("RUNNABLE");
  await reopened.submit({ id: "after", deadline: 1 });
  await reopened.close();
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

describe("Shard across processes", () => {
  it("refuses a second process while the owner lives, and admits it once the owner is killed", async () => {
    const dataDir = freshDir();
    const owner = ShardProcess.start();
    const pid = await owner.ok("open", { dataDir });
    await owner.ok("submit", [{ id: "a", deadline: 1 }]);
    const refused = await rejection(Shard.open({ dataDir }));
    expect(refused).toBeInstanceOf(ShardLockedError);
    expect((refused as ShardLockedError).owner?.pid).toBe(pid);
    expect(refused.message).toContain(`live process ${pid}`);

    owner.kill("SIGKILL");
    await owner.exited;
    const successor = await Shard.open({ dataDir });
    expect(successor.getTask("a")?.state).toBe("RUNNABLE");
    await successor.close();
  });

  it("fences a paused owner that wakes up after a takeover: its writes are refused and never land", async () => {
    const dataDir = freshDir();
    const old = ShardProcess.start();
    await old.ok("open", { dataDir });
    await old.ok("submit", [{ id: "before", deadline: 1 }]);
    const [lease] = (await old.ok("lease", "old-worker", { leaseMs: 60_000 })) as { token: number }[];

    old.kill("SIGSTOP");
    // Queued while it sleeps; it runs these when it wakes up.
    const lateSubmit = old.call("submit", [{ id: "from-old", deadline: 1 }]);
    const lateComplete = old.call("complete", "before", lease!.token);

    expect((await rejection(Shard.open({ dataDir }))).code).toBe(ShardErrorCode.SHARD_LOCKED);
    const successor = await Shard.open({ dataDir, takeover: true });
    await successor.submit({ id: "from-successor", deadline: 2 });

    old.kill("SIGCONT");
    for (const reply of [await lateSubmit, await lateComplete]) {
      expect(reply.ok).toBe(false);
      expect(reply.error?.code).toBe(ShardErrorCode.SHARD_FAILED);
      expect(reply.error?.cause).toBe(ShardErrorCode.SHARD_FENCED);
    }
    await old.ok("close");
    await old.ok("exit");

    // The successor's view is untouched, and so is the directory.
    expect(successor.getTask("from-old")).toBeUndefined();
    expect(successor.getTask("before")?.state).toBe("LEASED");
    await successor.close();
    const reopened = await Shard.open({ dataDir });
    expect(reopened.getTask("from-old")).toBeUndefined();
    expect(reopened.getTask("before")).toMatchObject({ state: "LEASED", token: lease!.token });
    expect(reopened.getTask("from-successor")?.state).toBe("RUNNABLE");
    await reopened.close();
  });

  // Each batch alone: committed on lmdb-js's write thread, or on the shard's own (an idle journal's).
  for (const [where, journal] of [
    ["the write thread", { syncWhenIdleMs: "never" }],
    ["the shard's thread", { syncWhenIdleMs: 0 }],
  ] as const)
    it(`stops with a typed storage error when the disk fills up (commits on ${where}); reopening finds every acknowledged batch and no partial one`, async () => {
      const dataDir = freshDir();
      const child = ShardProcess.start(4096);
      // The file size limit stands in for a full disk: any I/O error counts as one.
      await child.ok("open", { dataDir }, { fullBelowBytes: Number.MAX_SAFE_INTEGER, ...journal });
      const acked = await fillUntilFull(child);
      expect(acked).toBeGreaterThan(5);
      // Every later call is refused too, reads included.
      const later = await child.call("lease", "w");
      expect(later.error?.code).toBe(ShardErrorCode.SHARD_FAILED);
      const read = await child.call("getTask", "t-0-0");
      expect(read.error?.code).toBe(ShardErrorCode.SHARD_FAILED);
      await child.ok("close");
      await child.ok("exit");
      await child.exited;

      // A failed journal writes nothing more, not even its release: the next
      // opener finds the owner dead.
      await expectAckedBatchesAndServes(dataDir, acked);
    });

  // Needs a mount (root); the file-size limit tests above stand in for it elsewhere.
  it.skipIf(tmpfs === undefined)(
    "on a really full disk (a 2 MB tmpfs) it stops with STORAGE_FULL; reopened with room again, every acknowledged batch is there and it serves",
    async () => {
      const dataDir = join(tmpfs!, "shard");
      const child = ShardProcess.start();
      // The default full-disk threshold: the disk itself says it is full.
      await child.ok("open", { dataDir });
      const acked = await fillUntilFull(child);
      expect(acked).toBeGreaterThan(2);
      await child.ok("close");
      await child.ok("exit");
      await child.exited;

      execFileSync("mount", ["-o", "remount,size=16m", tmpfs!], { stdio: "ignore" });
      await expectAckedBatchesAndServes(dataDir, acked);
    },
  );

  for (const durability of ["flushed", "committed"] as const)
    it(`pipelined blocks (${durability}) when the disk fills up: the failed one and every later one rejected, and no hole on disk`, async () => {
      const dataDir = freshDir();
      const child = ShardProcess.start(4096);
      // Through lmdb-js's write thread, where blocks are in flight together (an idle journal's
      // block, written on the calling thread, has none behind it).
      await child.ok(
        "open",
        { dataDir, durability },
        { fullBelowBytes: Number.MAX_SAFE_INTEGER, syncWhenIdleMs: "never" },
      );
      const { outcomes } = (await child.ok("fillPipelined", "t", 8)) as { outcomes: (string | null)[] };
      const acked = outcomes.findIndex((o) => o !== null);
      expect(acked).toBeGreaterThan(5);
      // Acknowledged: a prefix. From the first failure on: every one rejected, several of them in flight,
      // all for the cause of the first failure in chain order (later blocks only see that one was lost).
      expect(outcomes.slice(0, acked).every((o) => o === null)).toBe(true);
      expect(outcomes.length - acked).toBeGreaterThan(1);
      expect(new Set(outcomes.slice(acked))).toEqual(new Set([ShardErrorCode.STORAGE_FULL]));
      await child.ok("close");
      await child.ok("exit");
      await child.exited;

      // On disk: whole batches, a prefix of them (no batch after a missing one), every acknowledged one included.
      const reopened = await Shard.open({ dataDir });
      const stored = reopened.stats().counts.RUNNABLE;
      expect(stored % 100).toBe(0);
      expect(stored / 100).toBeGreaterThanOrEqual(acked);
      for (let batch = 0; batch < outcomes.length; batch++) {
        const expected = batch < stored / 100 ? "RUNNABLE" : undefined;
        expect(reopened.getTask(`t-${batch}-0`)?.state).toBe(expected);
        expect(reopened.getTask(`t-${batch}-99`)?.state).toBe(expected);
      }
      await reopened.close();
    });
});
