/**
 * notBefore and timeoutMs through the journal: both are part of the task's
 * spec row, the live attempt's end (timeoutAt) of its status row, so a
 * restarted shard keeps a delayed task waiting and a limited lease bounded.
 * Time is the shard's injected clock (wall and monotonic sources).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode } from "@frontier/core";
import { afterAll, describe, expect, it } from "vitest";
import { Shard } from "./shard.js";

const root = mkdtempSync(join(tmpdir(), "frontier-shard-limits-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("a shard's delayed tasks and run time limits", () => {
  it("keeps notBefore, timeoutMs and the live attempt's limit across restarts", async () => {
    const dataDir = join(root, "a");
    const time = { wall: 1_000_000, mono: 0 };
    const clock = { wallNow: () => time.wall, monotonicNow: () => time.mono };
    let shard = await Shard.open({ dataDir, clock, backoff: { baseMs: 100, maxMs: 100, jitter: 0 } });
    try {
      await shard.submit([
        { id: "later", deadline: 1, notBefore: 1_005_000 },
        { id: "bounded", deadline: 2, timeoutMs: 2_000 },
      ]);
      const [lease] = await shard.lease("w1", { leaseMs: 60_000 });
      expect(lease).toMatchObject({ taskId: "bounded", expiresAt: 1_002_000, task: { timeoutMs: 2_000 } });
      await shard.close();

      time.wall += 500; // down for half a second
      shard = await Shard.open({ dataDir, clock, backoff: { baseMs: 100, maxMs: 100, jitter: 0 } });
      expect(shard.getTask("later")).toMatchObject({ state: "WAITING", notBefore: 1_005_000 });
      expect(shard.getTask("bounded")).toMatchObject({
        state: "LEASED",
        timeoutMs: 2_000,
        timeoutAt: 1_002_000,
      });
      // A heartbeat after the restart still cannot carry the lease past the limit.
      expect((await shard.heartbeat("bounded", lease!.token, { leaseMs: 60_000 })).expiresAt).toBe(1_002_000);

      time.mono += 1_500; // 1,002,000: the limit
      const refused = await shard.heartbeat("bounded", lease!.token).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(refused?.code).toBe(ErrorCode.STALE_LEASE);
      expect(refused?.message).toContain("timed out after 2000 ms");
      expect(shard.stats().attemptTimeouts).toBe(1);
      expect(await shard.lease("w2", { max: 5 })).toEqual([]); // "later" not before 1,005,000
      await shard.close();

      time.wall = 1_005_000; // a reopened shard's clock starts at the wall clock: notBefore now
      shard = await Shard.open({ dataDir, clock, backoff: { baseMs: 100, maxMs: 100, jitter: 0 } });
      expect(shard.stats().attemptTimeouts).toBe(1);
      expect((await shard.lease("w2", { max: 5, leaseMs: 60_000 })).map((l) => l.taskId)).toEqual([
        "later",
        "bounded",
      ]);
    } finally {
      await shard.close();
    }
  });
});
