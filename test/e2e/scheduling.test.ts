/**
 * Scheduling across a real cluster: three shard actors behind a coordinator
 * on a real nats-server. Earliest-deadline-first holds across shards,
 * dependencies hold inside workflows, no task is leased twice at once under
 * several concurrent workers, resubmits under one key change nothing, and a
 * lease resend gets the first grant back and fences the first send off.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { FrontierClient } from "@frontier/client";
import { type TaskInput, ValidationError } from "@frontier/core";
import { decodeReply, encodeRequest, type RequestOf, slotOfTask, subjectsFor } from "@frontier/protocol";
import { connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;

beforeAll(async () => {
  cluster = await startCluster({ shards: 3 });
  client = await cluster.client();
});

afterAll(async () => {
  await cluster?.stop();
});

/** Which shard owns each task, by the slot spread the harness uses (n mod 3). */
function shardOf(task: TaskInput): number {
  return slotOfTask(task) % cluster.shards.length;
}

/** Until the coordinator has heard from the shards that `n` tasks are runnable. */
async function announced(n: number): Promise<void> {
  await until(() => cluster.coordinator.inspect().frontiers.reduce((sum, f) => sum + f.runnable, 0) === n);
}

/** Lease and complete everything runnable, so the next test starts from an empty frontier. */
async function drain(): Promise<void> {
  for (;;) {
    const leases = await client.lease({ max: 500, waitMs: 300 });
    if (leases.length === 0) break;
    await Promise.all(leases.map((l) => client.complete(l)));
  }
  await announced(0);
}

describe("earliest deadline first", () => {
  it("leases one at a time in global deadline order, whichever shard holds the task", async () => {
    // Distinct deadlines in shuffled order, spread over every shard.
    const n = 24;
    const deadlines = Array.from({ length: n }, (_, i) => 1_000 + i * 7).sort(() => Math.random() - 0.5);
    const tasks = deadlines.map((deadline, i) => ({ id: `edf-${i}`, deadline }));
    expect(new Set(tasks.map(shardOf)).size).toBe(3);
    await client.submit(tasks);
    await announced(n);

    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      const [lease] = await client.lease({ max: 1, waitMs: 2_000 });
      expect(lease).toBeDefined();
      order.push(lease!.task.deadline);
      await client.complete(lease!);
      // No wait for announcements between leases: the granting shard's reply told the
      // coordinator its next key, so back-to-back leases stay in global order.
    }
    expect(order).toEqual([...deadlines].sort((a, b) => a - b));
    expect(await client.lease({ max: 1, waitMs: 300 })).toEqual([]);
    await announced(0);
  });

  it("fills one lease request for N tasks from several shards, earliest first", async () => {
    const tasks = Array.from({ length: 30 }, (_, i) => ({ id: `multi-${i}`, deadline: 5_000 - i * 13 }));
    await client.submit(tasks);
    await announced(30);
    // A parallel round that fills half the room answers (what is left would go in asks of a task
    // or two each, a commit each); the next request goes on where it stopped.
    const first = await client.lease({ max: 12, waitMs: 2_000 });
    expect(first.length).toBeGreaterThanOrEqual(6);
    const rest = first.length < 12 ? await client.lease({ max: 12 - first.length, waitMs: 2_000 }) : [];
    const leases = [...first, ...rest];
    const deadlines = leases.map((l) => l.task.deadline);
    expect(leases).toHaveLength(12);
    // Each shard gives only tasks before the next shard's frontier (or up to a key whose bounds
    // fit the room, all shards at once) and says its own next key: the 12 earliest overall, in order.
    expect(deadlines).toEqual(
      tasks
        .map((t) => t.deadline)
        .sort((a, b) => a - b)
        .slice(0, 12),
    );
    expect(new Set(leases.map((l) => shardOf({ id: l.taskId, deadline: 0 }))).size).toBeGreaterThan(1);
    await Promise.all(leases.map((l) => client.complete(l)));
    await drain();
  });
});

describe("dependencies", () => {
  it("runs every task only after its prerequisites completed, with several workers", async () => {
    // Ten workflows, each a diamond with a tail: a → (b, c) → d → e. Workflows land on different shards.
    const tasks: TaskInput[] = [];
    for (let w = 0; w < 10; w++) {
      const wf = `dag-${w}`;
      const id = (n: string) => `${wf}-${n}`;
      // Deadlines reversed against the dependency order: EDF alone would run them backwards.
      tasks.push(
        { id: id("e"), deadline: 1, workflowId: wf, prerequisites: [id("d")] },
        { id: id("d"), deadline: 2, workflowId: wf, prerequisites: [id("b"), id("c")] },
        { id: id("c"), deadline: 3, workflowId: wf, prerequisites: [id("a")] },
        { id: id("b"), deadline: 4, workflowId: wf, prerequisites: [id("a")] },
        { id: id("a"), deadline: 5, workflowId: wf },
      );
    }
    expect(new Set(tasks.map(shardOf)).size).toBeGreaterThan(1);
    await client.submit(tasks);

    // A handler that returned has its complete on the way: only then may a dependent start.
    const finished = new Set<string>();
    const completedAt = new Map<string, number>();
    const violations: string[] = [];
    const prerequisites = new Map(tasks.map((t) => [t.id, t.prerequisites ?? []]));
    const workers = [0, 1, 2].map(async (n) => {
      const c = await cluster.client({ name: `dag-worker-${n}` });
      return c.work(
        async (task) => {
          for (const p of prerequisites.get(task.id) ?? []) {
            if (!finished.has(p)) violations.push(`${task.id} ran before ${p} finished`);
          }
          await sleep(2);
          finished.add(task.id);
        },
        { concurrency: 3, waitMs: 200 },
      );
    });
    const running = await Promise.all(workers);
    for (const w of running) {
      w.on((e) => {
        if (e.type === "task:completed") completedAt.set(e.lease.taskId, Date.now());
      });
    }
    await until(() => tasks.every((t) => completedAt.has(t.id)), 20_000);
    await Promise.all(running.map((w) => w.stop()));
    expect(violations).toEqual([]);
    for (const t of tasks) {
      expect((await client.getTask(t.id, { workflowId: t.workflowId as string }))?.state, t.id).toBe(
        "COMPLETED",
      );
    }
  });

  it("refuses a prerequisite in another workflow, with a clear error", async () => {
    const err = await client
      .submit([
        { id: "xw-a", deadline: 1, workflowId: "wf-one" },
        { id: "xw-b", deadline: 1, workflowId: "wf-two", prerequisites: ["xw-a"] },
      ])
      .catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.problems).toEqual([expect.objectContaining({ taskId: "xw-b", code: "CROSS_WORKFLOW" })]);
    expect(await client.getTask("xw-a", { workflowId: "wf-one" })).toBeNull();
  });

  it("refuses a cycle and names it", async () => {
    const err = await client
      .submit([
        { id: "cy-a", deadline: 1, workflowId: "cy", prerequisites: ["cy-c"] },
        { id: "cy-b", deadline: 1, workflowId: "cy", prerequisites: ["cy-a"] },
        { id: "cy-c", deadline: 1, workflowId: "cy", prerequisites: ["cy-b"] },
      ])
      .catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.problems.map((p: { code: string }) => p.code)).toContain("CYCLE");
  });
});

describe("exclusive leases", () => {
  it("never leases a task to two workers at once, and completes each exactly once", async () => {
    await drain();
    const n = 300;
    await client.submit(Array.from({ length: n }, (_, i) => ({ id: `ex-${i}`, deadline: i % 17 })));
    const holding = new Set<string>();
    const doubles: string[] = [];
    const completions = new Map<string, number>();
    const workers = await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        const c = await cluster.client({ name: `ex-worker-${w}` });
        const worker = c.work(
          async (task) => {
            if (holding.has(task.id)) doubles.push(task.id);
            holding.add(task.id);
            await sleep(Math.random() * 4);
            holding.delete(task.id);
          },
          { concurrency: 5, waitMs: 200 },
        );
        worker.on((e) => {
          if (e.type === "task:completed") {
            completions.set(e.lease.taskId, (completions.get(e.lease.taskId) ?? 0) + 1);
          }
        });
        return worker;
      }),
    );
    const errors: unknown[] = [];
    for (const w of workers) w.on((e) => e.type === "error" && errors.push(e.error));
    const done = () => [...completions.keys()].filter((id) => id.startsWith("ex-")).length === n;
    try {
      await until(done, 30_000);
    } catch (e) {
      const left = Array.from({ length: n }, (_, i) => `ex-${i}`).filter((id) => !completions.has(id));
      const views = await Promise.all(left.slice(0, 5).map((id) => client.getTask(id)));
      throw new Error(
        `${left.length} not completed; e.g. ${JSON.stringify(views)}; workers ${JSON.stringify(workers.map((w) => w.stats))}; errors ${errors.map(String).join(" | ")}`,
        { cause: e },
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    expect(doubles).toEqual([]);
    expect([...completions.values()].every((k) => k === 1)).toBe(true);
    // Every worker got a share.
    expect(workers.every((w) => w.stats.completed > 0)).toBe(true);
  });
});

describe("idempotent resubmits", () => {
  it("replays the first outcome for the same key, also for a batch spread over every shard", async () => {
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `idem-${i}`, deadline: 10_000 + i }));
    expect(new Set(tasks.map(shardOf)).size).toBe(3);
    const before = await client.stats();
    const first = await client.submit(tasks, { idempotencyKey: "idem-key-1" });
    expect(first).toMatchObject({ accepted: 40, replayed: false });
    const again = await client.submit(tasks, { idempotencyKey: "idem-key-1" });
    expect(again).toMatchObject({ accepted: 40, replayed: true });
    const after = await client.stats();
    const total = (s: typeof before) => Object.values(s.counts).reduce((a, b) => a + b, 0);
    expect(total(after) - total(before)).toBe(40);

    // The same tasks under another key are duplicates: rejected, nothing added.
    const dup = await client.submit(tasks, { idempotencyKey: "idem-key-2" }).catch((e) => e);
    expect(dup).toBeInstanceOf(ValidationError);
    expect(dup.problems[0].code).toBe("DUPLICATE_ID");
  });

  it("applies concurrent resubmits of one key once", async () => {
    const tasks = Array.from({ length: 12 }, (_, i) => ({ id: `race-${i}`, deadline: 20_000 + i }));
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => client.submit(tasks, { idempotencyKey: "race-key" })),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(results.every((r) => r.accepted === 12)).toBe(true);
    for (const t of tasks) expect((await client.getTask(t.id))?.state).toBe("RUNNABLE");
  });
});

describe("lease resends", () => {
  it("hand the first send's grant back, and fence the first send off: its late asks grant nothing new", async () => {
    await drain();
    const tasks = Array.from({ length: 6 }, (_, i) => ({ id: `resend-${i}`, deadline: 30_000 + i }));
    await client.submit(tasks);
    await announced(6);
    const nc = await natsConnect({ servers: cluster.url });
    const subjects = subjectsFor(cluster.cluster);
    const lease = async (subject: string, request: RequestOf<"lease">) => {
      const reply = decodeReply(
        (await nc.request(subject, encodeRequest(request), { timeout: 5_000 })).data,
        "lease",
      );
      if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
      return reply.leases.map((l) => `${l.taskId}/${l.token}`);
    };
    const request = (requestId: string) =>
      ({ op: "lease", owner: "resender", max: 2, leaseMs: 60_000, waitMs: 0, requestId }) as const;
    try {
      // The first send is granted; say its reply was lost. The resend gets that grant back.
      const first = await lease(subjects.coord("lease"), request("rs-1"));
      expect(first).toHaveLength(2);
      expect(await lease(subjects.coord("lease"), { ...request("rs-1"), attempt: 2 })).toEqual(first);
      // A coordinator still filling the first send (slow) asks the shard holding the next task, its
      // second ask in that fill: a retry of the request, answered from what it holds, nothing new.
      const next = `shard-${shardOf(tasks[2]!)}`;
      const late = await lease(subjects.shard(next, "lease"), { ...request("rs-1"), ask: 2 });
      expect(late.every((grant) => first.includes(grant))).toBe(true);
      expect((await client.stats()).leased).toBe(2);
      // The control: the same late ask for a request that was never resent does grant.
      await lease(subjects.coord("lease"), request("rs-2"));
      expect(await lease(subjects.shard(next, "lease"), { ...request("rs-2"), ask: 2 })).toHaveLength(1);
      expect((await client.stats()).leased).toBe(5);
    } finally {
      await nc.close();
    }
  });
});

describe("requests that name a task by id alone", () => {
  // The SDK sends a lease's workflowId along; a person at the CLI may not know it.
  it("find the task in its workflow's shard, and answer null for no task at all", async () => {
    const tasks = Array.from({ length: 8 }, (_, i) => ({
      id: `byid-${i}`,
      deadline: 30_000 + i,
      workflowId: `byid-wf-${i}`,
    }));
    await client.submit(tasks);
    expect(await client.getTask("no-such-task", { retry: { attempts: 1 } })).toBeNull();
    for (const t of tasks) {
      expect((await client.getTask(t.id, { retry: { attempts: 1 } }))?.workflowId).toBe(t.workflowId);
    }
  });
});
