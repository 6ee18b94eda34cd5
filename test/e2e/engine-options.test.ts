/**
 * The engine's opt-in behaviours, in a cluster: forward references (a task
 * may name a prerequisite of its workflow not submitted yet) and the
 * starvation guard (a task runnable for maxRunnableWaitMs is ordered as if
 * due then) — each through real shard actors and a coordinator, which
 * routes leases by the shards' announced keys. The CLI turns them on with
 * `--forward-references` and `--max-runnable-wait-ms` (start and shard).
 */
import { slotOf } from "@frontier/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "./harness.js";

const SHARDS = 3;

/** A workflow id whose slot falls on shard `index` (shards own slot mod SHARDS). */
function workflowOn(index: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (slotOf(id) % SHARDS === index) return id;
  }
}

describe("forward references", () => {
  let on: TestCluster;
  let off: TestCluster;
  beforeAll(async () => {
    [on, off] = await Promise.all([
      startCluster({ shards: SHARDS, cluster: "forward-on", engine: { allowForwardReferences: true } }),
      startCluster({ shards: SHARDS, cluster: "forward-off" }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([on?.stop(), off?.stop()]);
  });

  it("accept a dependent before its prerequisite, which it then waits for, when turned on", async () => {
    const client = await on.client();
    const wf = "fwd";
    await client.submit([{ id: "later-b", deadline: 1, workflowId: wf, prerequisites: ["later-a"] }]);
    expect((await client.getTask("later-b", { workflowId: wf }))?.state).toBe("WAITING");
    await client.submit([{ id: "later-a", deadline: 2, workflowId: wf }]);
    const [first] = await client.lease({ max: 1, waitMs: 5_000 });
    expect(first?.taskId).toBe("later-a");
    await client.complete(first!);
    const [second] = await client.lease({ max: 1, waitMs: 5_000 });
    expect(second?.taskId).toBe("later-b");
  });

  it("refuse it as UNKNOWN_PREREQUISITE, changing nothing, when off (the default)", async () => {
    const client = await off.client();
    const refused = await client
      .submit([{ id: "later-b", deadline: 1, workflowId: "fwd", prerequisites: ["later-a"] }])
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "VALIDATION_FAILED" });
    expect((refused as { problems: { code: string }[] }).problems.map((p) => p.code)).toEqual([
      "UNKNOWN_PREREQUISITE",
    ]);
    expect(await client.getTask("later-b", { workflowId: "fwd" })).toBeNull();
  });
});

describe("the starvation guard", () => {
  let cluster: TestCluster;
  const GUARD_MS = 300;
  beforeAll(async () => {
    cluster = await startCluster({
      shards: SHARDS,
      cluster: "guarded",
      engine: { maxRunnableWaitMs: GUARD_MS },
    });
  }, 60_000);
  afterAll(() => cluster?.stop());

  it("orders a task that waited past maxRunnableWaitMs ahead of a nearer deadline on another shard", async () => {
    const client = await cluster.client();
    const now = Date.now();
    const farWf = workflowOn(0, "far");
    const nearWf = workflowOn(1, "near");
    await client.submit([{ id: "patient", deadline: now + 86_400_000, workflowId: farWf }]);
    // The guard's window is the property under test: the task must have waited GUARD_MS.
    await new Promise((resolve) => setTimeout(resolve, GUARD_MS + 100));
    await client.submit([{ id: "urgent", deadline: now + 3_600_000, workflowId: nearWf }]);
    // The coordinator routes by the shards' announced keys: wait until both shards have said theirs.
    await until(
      () => cluster.coordinator.inspect().frontiers.filter((f) => f.runnable > 0).length === 2,
      10_000,
    );
    const [first] = await client.lease({ max: 1, waitMs: 5_000 });
    // Without the guard, "urgent" (an hour away) would come before "patient" (a day away).
    expect(first?.taskId).toBe("patient");
    const [second] = await client.lease({ max: 1, waitMs: 5_000 });
    expect(second?.taskId).toBe("urgent");
  });
});
