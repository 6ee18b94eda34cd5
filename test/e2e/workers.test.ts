/**
 * The SDK's streaming halves against a real cluster: work() keeps long
 * tasks alive with heartbeats and aborts a handler whose lease is lost; a
 * released lease goes to another worker as the same attempt, and a stopping
 * worker releases what it holds unstarted; the submitter batches a stream
 * with bounded memory and drops nothing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type FrontierClient, LeaseLostError, type WorkerEvent } from "@frontier/client";
import { StaleLeaseError, type TaskInput } from "@frontier/core";
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

describe("release", () => {
  it("hands a lease back: another worker leases the task as the same attempt, the released holder is fenced", async () => {
    // Typed, so no other test's runnable tasks come first; one attempt, so a spent one would end it.
    await client.submit([{ id: "handed", deadline: 1, workflowId: "rel", type: "handback", maxAttempts: 1 }]);
    const holder = await cluster.client({ name: "holder" });
    const [lease] = await holder.lease({ types: ["handback"], waitMs: 2_000, leaseMs: 60_000 });
    expect(lease).toMatchObject({ taskId: "handed", attempt: 1, owner: "holder" });
    expect(await holder.release(lease!)).toEqual({ duplicate: false });
    // Sent again (a reply lost): the same success while nobody leased it since.
    expect(await holder.release(lease!)).toEqual({ duplicate: true });
    expect(await client.getTask("handed", { workflowId: "rel" })).toMatchObject({
      state: "RUNNABLE",
      attempts: 0,
      token: lease!.token,
      released: true,
    });
    // The released lease is fenced: its holder can neither extend nor complete it.
    await expect(holder.heartbeat(lease!)).rejects.toBeInstanceOf(StaleLeaseError);
    await expect(holder.complete(lease!)).rejects.toBeInstanceOf(StaleLeaseError);

    const other = await cluster.client({ name: "other" });
    const runs: { attempt: number; owner: string; token: number }[] = [];
    const worker = other.work(
      (_task, ctx) => {
        runs.push({ attempt: ctx.attempt, owner: ctx.lease.owner, token: ctx.lease.token });
      },
      { types: ["handback"], waitMs: 500 },
    );
    await until(() => worker.stats.completed === 1);
    await worker.stop();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ attempt: 1, owner: "other" });
    expect(runs[0]!.token).toBeGreaterThan(lease!.token);
    expect(await client.getTask("handed", { workflowId: "rel" })).toMatchObject({
      state: "COMPLETED",
      attempts: 1,
      leaseOwner: "other",
    });
    // Still refused after the task moved on; and a release under the old token is stale now.
    await expect(holder.complete(lease!)).rejects.toBeInstanceOf(StaleLeaseError);
    await expect(holder.release(lease!)).rejects.toBeInstanceOf(StaleLeaseError);
  });

  it("a stopping worker releases the leases it holds unstarted; they run elsewhere on their first attempt", async () => {
    const tasks = ["s0", "s1", "s2"].map((id, i) => ({
      id,
      deadline: 10 + i,
      workflowId: `stop-${id}`,
      type: "stopping",
      maxAttempts: 1,
    }));
    await client.submit(tasks);
    let running = 0;
    const events: WorkerEvent[] = [];
    const first = client.work(
      async (_task, { signal }) => {
        running++;
        await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      },
      { types: ["stopping"], concurrency: 1, prefetch: 2, waitMs: 500 },
    );
    first.on((e) => events.push(e));
    await until(() => first.leasesHeld === 3 && running === 1);
    // The running handler resolves on the abort (so completes); the two waiting are released.
    await first.stop({ abortInFlight: true });
    expect(first.stats).toMatchObject({ leased: 3, completed: 1, released: 2, lost: 0 });
    const released = events.flatMap((e) => (e.type === "task:released" ? [e.lease.taskId] : []));
    expect(released.sort()).toEqual(["s1", "s2"]);
    for (const id of released)
      expect(await client.getTask(id, { workflowId: `stop-${id}` })).toMatchObject({
        state: "RUNNABLE",
        attempts: 0,
      });
    const attempts: number[] = [];
    const second = client.work((_task, ctx) => void attempts.push(ctx.attempt), {
      types: ["stopping"],
      waitMs: 500,
    });
    await until(() => second.stats.completed === 2);
    await second.stop();
    expect(attempts).toEqual([1, 1]);
    expect((await client.stats()).leaseTimeouts).toBe(0);
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
