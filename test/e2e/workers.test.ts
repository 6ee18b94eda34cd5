/**
 * The SDK's streaming halves against a real cluster: work() keeps long
 * tasks alive with heartbeats and aborts a handler whose lease is lost; the
 * submitter batches a stream with bounded memory and drops nothing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type FrontierClient, LeaseLostError } from "@frontier/client";
import type { TaskInput } from "@frontier/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "workers" });
  client = await cluster.client();
});

afterAll(async () => {
  await cluster?.stop();
});

describe("work()", () => {
  it("heartbeats a task that outlives its lease, and completes it on the first attempt", async () => {
    await client.submit([{ id: "slow", deadline: 1, workflowId: "hb" }]);
    const worker = client.work(() => sleep(1_500), { leaseMs: 400, waitMs: 500 });
    await until(() => worker.stats.completed === 1);
    await worker.stop();
    expect(worker.stats.lost).toBe(0);
    const view = await client.getTask("slow", { workflowId: "hb" });
    expect(view).toMatchObject({ state: "COMPLETED", attempts: 1 });
    expect((await client.stats()).leaseTimeouts).toBe(0);
  });

  it("aborts the handler through its AbortSignal when the lease is lost, and does not complete the task", async () => {
    await client.submit([{ id: "doomed", deadline: 2, workflowId: "lost" }]);
    let reason: unknown = null;
    let started = false;
    const worker = client.work(
      async (_task, { signal }) => {
        started = true;
        await new Promise<void>((resolve) =>
          signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        reason = signal.reason;
      },
      { leaseMs: 600, waitMs: 500 },
    );
    await until(() => started);
    // Someone else decides: the task is cancelled while it runs. The next heartbeat learns it.
    await client.cancel("doomed", { workflowId: "lost", reason: "no longer needed" });
    await until(() => worker.stats.lost === 1, 5_000);
    await worker.stop();
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as LeaseLostError).taskId).toBe("doomed");
    expect(worker.stats.completed).toBe(0);
    expect(await client.getTask("doomed", { workflowId: "lost" })).toMatchObject({
      state: "CANCELLED",
      reason: "no longer needed",
    });
  });

  it("fails a task whose handler throws, and the cluster retries it", async () => {
    await client.submit([{ id: "flaky", deadline: 3, workflowId: "retry", maxAttempts: 3 }]);
    const attempts: number[] = [];
    const worker = client.work(
      (_task, { attempt }) => {
        attempts.push(attempt);
        if (attempt === 1) throw new Error("transient");
      },
      { waitMs: 500 },
    );
    await until(() => worker.stats.completed === 1, 15_000);
    await worker.stop();
    expect(attempts).toEqual([1, 2]);
  });
});

describe("work(): what a worker holds", () => {
  it("holds no more than its slots and prefetch, so one slot runs tasks in deadline order across shards", async () => {
    // Completes go straight to the granting shard, which may hand back the next leases; the lease
    // loop asks a coordinator too. Both at once used to hold two leases for one slot.
    const tasks = Array.from({ length: 24 }, (_, i) => ({
      id: `one-${i}`,
      deadline: 10_000 + i,
      workflowId: `w${i}`,
    }));
    await client.submit(tasks);
    const ran: string[] = [];
    const held: number[] = [];
    const worker = client.work(
      async (task) => {
        ran.push(task.id);
        held.push(worker.leasesHeld);
        await sleep(5);
      },
      { concurrency: 1, prefetch: 0, waitMs: 200 },
    );
    await until(() => worker.stats.completed === tasks.length, 30_000);
    await worker.stop();
    expect(Math.max(...held)).toBe(1);
    expect(ran).toEqual(tasks.map((t) => t.id));
  });
});

describe("submitter", () => {
  it("holds at most maxPending tasks, waits instead of dropping, and delivers every task", async () => {
    const before = await client.stats();
    const s = client.submitter({ maxBatch: 50, lingerMs: 5, maxPending: 200 });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, s.pending);
    }, 1);
    const n = 3_000;
    let settled = 0;
    const adds = Array.from({ length: n }, (_, i) =>
      s.add({ id: `bp-${i}`, deadline: i, workflowId: `bp-${i % 37}` }).then(() => {
        peak = Math.max(peak, s.pending);
        settled++;
      }),
    );
    // Right after the adds, at most maxPending are held; the rest wait their turn.
    expect(s.pending).toBeLessThanOrEqual(200);
    expect(settled).toBe(0);
    await Promise.all(adds);
    clearInterval(sampler);
    await s.close();
    expect(settled).toBe(n);
    expect(peak).toBeLessThanOrEqual(200);
    const after = await client.stats();
    expect(after.counts.RUNNABLE - before.counts.RUNNABLE).toBe(n);
  });

  it("submitAll takes a long stream with bounded memory", async () => {
    const s = client.submitter({ maxBatch: 100, lingerMs: 5, maxPending: 300 });
    let peak = 0;
    async function* stream(): AsyncGenerator<TaskInput> {
      for (let i = 0; i < 2_000; i++) {
        // Pulled only when there is room: what is held never passes maxPending.
        peak = Math.max(peak, s.pending);
        yield { id: `stream-${i}`, deadline: 50_000 + i };
      }
    }
    const result = await s.submitAll(stream());
    await s.close();
    expect(result).toEqual({ accepted: 2_000, rejected: 0, errors: [] });
    expect(peak).toBeLessThanOrEqual(300);
    expect(peak).toBeGreaterThan(0);
  });
});
