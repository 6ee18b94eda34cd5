/**
 * A retry is journaled like any other change: a shard reopened from its
 * LMDB journal has the retried task live again, and lists it so.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode } from "@frontier/core";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Shard } from "./shard.js";

const root = mkdtempSync(join(tmpdir(), "frontier-shard-retry-"));
const open: Shard[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function openShard(dataDir: string): Promise<Shard> {
  const shard = await Shard.open({ dataDir });
  open.push(shard);
  return shard;
}

describe("Shard.retry", () => {
  it("makes a failed task runnable again, durably, and listTasks shows it", async () => {
    const dataDir = join(root, "a");
    const shard = await openShard(dataDir);
    await shard.submit([
      { id: "a", deadline: 10, maxAttempts: 1, workflowId: "w" },
      { id: "b", deadline: 20, prerequisites: ["a"], workflowId: "w" },
    ]);
    const [lease] = await shard.lease("worker", { leaseMs: 60_000 });
    await shard.fail("a", lease!.token, { reason: "boom" });
    expect(shard.listTasks({ limit: 10, states: ["FAILED"] }).tasks.map((t) => t.id)).toEqual(["a"]);

    const view = await shard.retry("a");
    expect([view.state, view.attempts]).toEqual(["RUNNABLE", 0]);
    expect((await shard.retry("b")).state).toBe("WAITING");
    // Refused, and nothing journaled: "a" is live.
    const refused = await shard.retry("a").catch((e: { code: string }) => e);
    expect((refused as { code: string }).code).toBe(ErrorCode.INVALID_STATE);
    await shard.close();

    const again = await openShard(dataDir);
    expect(again.listTasks({ limit: 10, workflowId: "w", withPrerequisites: true }).tasks).toEqual([
      {
        id: "a",
        workflowId: "w",
        state: "RUNNABLE",
        deadline: 10,
        attempts: 0,
        maxAttempts: 1,
        prerequisites: [],
      },
      {
        id: "b",
        workflowId: "w",
        state: "WAITING",
        deadline: 20,
        attempts: 0,
        maxAttempts: 5,
        prerequisites: ["a"],
      },
    ]);
    const [next] = await again.lease("worker", { leaseMs: 60_000 });
    expect([next?.taskId, next?.attempt]).toEqual(["a", 1]);
    await again.complete("a", next!.token);
    expect((await again.lease("worker", { leaseMs: 60_000 })).map((l) => l.taskId)).toEqual(["b"]);
  });
});
