import { setTimeout as sleep } from "node:timers/promises";
import { UnknownTaskError } from "@frontier/core";
import { decodeRequest, encodeReply, type RequestOf, subjectsFor, toWireError } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import { useEngineCluster } from "../test/engine-cluster.js";
import { AttemptTimeoutError, LeaseLostError, TaskError, type WorkerEvent } from "./index.js";
import { reasonOf } from "./worker.js";

const harness = useEngineCluster("worker");
const { setup } = harness;

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("work", () => {
  it("runs every task once, at most `concurrency` at a time, and completes them", async () => {
    const { coord, client } = await setup();
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `t${i}`, deadline: i, payload: { n: i } }));
    await client.submit(tasks);
    let running = 0;
    let peak = 0;
    const ran: string[] = [];
    const worker = client.work(
      async (task) => {
        running++;
        peak = Math.max(peak, running);
        ran.push(task.id);
        await sleep(5);
        running--;
      },
      { concurrency: 4, waitMs: 200 },
    );
    await until(() => worker.stats.completed === 40);
    await worker.stop();
    expect(new Set(ran).size).toBe(40);
    expect(ran).toHaveLength(40);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(1);
    expect(coord.engine.stats().counts.COMPLETED).toBe(40);
    // Never asked for more than it had room for: its slots and the prefetch (default: as many).
    for (const q of coord.requests) if (q.op === "lease") expect(q.max).toBeLessThanOrEqual(8);
    // Completes went in batches, not one request per task.
    expect(coord.requests.filter((q) => q.op === "complete")).toHaveLength(0);
    expect(coord.requests.filter((q) => q.op === "settle").length).toBeLessThan(40);
    await client.close();
    await coord.close();
  });

  it("sends a complete again while its task's slot is moving (SLOT_MOVING), until it lands", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "moving", deadline: 1 }]);
    let moving = 3;
    coord.script = (request) =>
      request.op === "settle" && moving-- > 0 ? { action: "outcomes", code: "SLOT_MOVING" } : undefined;
    const events: WorkerEvent[] = [];
    const worker = client.work(async () => {}, { concurrency: 1, waitMs: 100 });
    worker.on((event) => events.push(event));
    await until(() => worker.stats.completed === 1);
    await worker.stop();
    expect(coord.requests.filter((q) => q.op === "settle")).toHaveLength(4);
    expect(coord.engine.getTask("moving")?.state).toBe("COMPLETED");
    expect(events.filter((e) => e.type === "error")).toEqual([]);
    await client.close();
    await coord.close();
  });

  it("sends a complete a shard applied but no longer holds (UNKNOWN_TASK: its slot moved) through a coordinator", async () => {
    const { coord, client, cluster } = await setup();
    await client.submit([{ id: "moved", deadline: 1 }]);
    // The grant names shard s9; s9 applies the complete, then answers as a shard the task has
    // moved away from would to a resend whose first reply was lost.
    coord.grantShard = "s9";
    const atShard: string[] = [];
    const shard = harness.nc.subscribe(subjectsFor(cluster).shard("s9", "settle"), {
      callback: (_err, msg) => {
        const request = decodeRequest(msg.data, "settle") as RequestOf<"settle">;
        const error = toWireError(new UnknownTaskError(request.completes[0]!.taskId));
        for (const c of request.completes) {
          atShard.push(c.taskId);
          coord.engine.complete(c.taskId, c.token);
        }
        msg.respond(
          encodeReply({
            ok: true,
            op: "settle",
            results: request.completes.map(() => ({ error })),
            leases: [],
          }),
        );
      },
    });
    const events: WorkerEvent[] = [];
    const worker = client.work(async () => {}, { concurrency: 1, waitMs: 100 });
    worker.on((event) => events.push(event));
    await until(() => worker.stats.completed + worker.stats.lost === 1);
    await worker.stop();
    shard.unsubscribe();
    expect(atShard).toEqual(["moved"]);
    // Through the coordinator: a duplicate of the complete the shard applied, not a lost lease.
    expect(worker.stats).toMatchObject({ completed: 1, lost: 0 });
    expect(events).toContainEqual(expect.objectContaining({ type: "task:completed", duplicate: true }));
    expect(coord.requests.filter((q) => q.op === "settle")).toHaveLength(1);
    expect(coord.engine.getTask("moved")?.state).toBe("COMPLETED");
    await client.close();
    await coord.close();
  });

  it("keeps two settles on the way to a shard, never a third: what finishes meanwhile waits for one to return", async () => {
    const { coord, client, cluster } = await setup();
    await client.submit(Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, deadline: i })));
    coord.grantShard = "s9";
    // A shard that holds its replies until told: the settles on the way pile up here.
    const held: { respond: () => void }[] = [];
    const settled: string[] = [];
    let holding = true;
    let peak = 0;
    const shard = harness.nc.subscribe(subjectsFor(cluster).shard("s9", "settle"), {
      callback: (_err, msg) => {
        const request = decodeRequest(msg.data, "settle") as RequestOf<"settle">;
        for (const c of request.completes) {
          settled.push(c.taskId);
          coord.engine.complete(c.taskId, c.token);
        }
        const respond = () => {
          msg.respond(
            encodeReply({
              ok: true,
              op: "settle",
              results: request.completes.map(() => ({ duplicate: false })),
              leases: [],
            }),
          );
        };
        if (!holding) {
          respond();
          return;
        }
        held.push({ respond });
        peak = Math.max(peak, held.length);
      },
    });
    // One task at a time finishes, 30 ms apart: each would be a settle of its own.
    const worker = client.work(async (task) => sleep(30 * (1 + Number(task.id.slice(1)))), {
      concurrency: 4,
      waitMs: 100,
    });
    await until(() => worker.running === 0 && held.length === 2);
    await sleep(100); // time for a third, if one were sent
    expect(peak).toBe(2);
    expect(settled).toHaveLength(2);
    holding = false;
    for (const h of held.splice(0)) h.respond();
    await until(() => worker.stats.completed === 4);
    await worker.stop();
    shard.unsubscribe();
    expect(settled.sort()).toEqual(["s0", "s1", "s2", "s3"]);
    await client.close();
    await coord.close();
  });

  it("fails a task whose handler throws, retryably unless it throws a non-retryable TaskError", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "flaky", deadline: 1, maxAttempts: 3 },
      { id: "doomed", deadline: 2, maxAttempts: 3 },
    ]);
    const attempts = new Map<string, number>();
    const events: WorkerEvent[] = [];
    const worker = client.work(
      (task, ctx) => {
        attempts.set(task.id, ctx.attempt);
        if (task.id === "doomed") throw new TaskError("input is corrupt", { retryable: false });
        if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
      },
      { concurrency: 2, waitMs: 100 },
    );
    worker.on((e) => events.push(e));
    await until(() => coord.engine.getTask("flaky")?.state === "COMPLETED");
    await until(() => coord.engine.getTask("doomed")?.state === "FAILED");
    await worker.stop();
    expect(attempts.get("flaky")).toBe(3);
    expect(attempts.get("doomed")).toBe(1);
    expect(coord.engine.getTask("doomed")?.reason).toContain("TaskError: input is corrupt");
    const failed = events.filter((e) => e.type === "task:failed");
    expect(failed.map((e) => (e.type === "task:failed" ? e.state : null))).toContain("FAILED");
    await client.close();
    await coord.close();
  });

  it("keeps a long task's lease alive with heartbeats", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "long", deadline: 1 }]);
    const worker = client.work(() => sleep(1_500), { leaseMs: 600, waitMs: 100 });
    await until(() => worker.stats.completed === 1);
    await worker.stop();
    expect(worker.stats.lost).toBe(0);
    expect(coord.engine.getTask("long")?.attempts).toBe(1);
    expect(coord.seen.get("heartbeat") ?? 0).toBeGreaterThanOrEqual(3);
    await client.close();
    await coord.close();
  });

  it("aborts the handler's signal when a heartbeat says the lease is lost, and drops its outcome", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "victim", deadline: 1 }]);
    let reason: unknown;
    const events: WorkerEvent[] = [];
    const worker = client.work(
      (_task, { signal }) =>
        new Promise<void>((resolve) => {
          signal.addEventListener("abort", () => {
            reason = signal.reason;
            resolve(); // "succeeds" after the lease is gone: must not be completed
          });
        }),
      { leaseMs: 300, waitMs: 100 },
    );
    worker.on((e) => events.push(e));
    await until(() => coord.engine.getTask("victim")?.state === "LEASED");
    coord.engine.cancel("victim", "operator said so");
    await until(() => worker.stats.lost === 1);
    await worker.stop();
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as LeaseLostError).taskId).toBe("victim");
    expect(coord.seen.get("complete")).toBeUndefined();
    expect(events.some((e) => e.type === "task:lost")).toBe(true);
    await client.close();
    await coord.close();
  });

  it("marks the lease lost when no heartbeat gets through before it runs out", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "cut-off", deadline: 1 }]);
    coord.script = (q) => (q.op === "heartbeat" ? { action: "drop" } : undefined);
    let aborted = false;
    const worker = client.work(
      (_task, { signal }) =>
        new Promise<void>((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted = true;
            reject(signal.reason);
          });
        }),
      { leaseMs: 300, waitMs: 100 },
    );
    await until(() => worker.stats.lost === 1);
    await worker.stop();
    expect(aborted).toBe(true);
    expect(coord.seen.get("fail")).toBeUndefined();
    await client.close();
    await coord.close();
  });

  it("keeps a lease through two lost heartbeat replies in a row, even with a request timeout as long as the lease", async () => {
    const leaseMs = 1_500;
    const { coord, client } = await harness.setup({ requestTimeoutMs: leaseMs });
    await client.submit([{ id: "slow-but-alive", deadline: 1 }]);
    // Each heartbeat's first two attempts are lost (dropped before the engine sees them).
    let attempts = 0;
    coord.script = (q) => (q.op === "heartbeat" && ++attempts % 3 !== 0 ? { action: "drop" } : undefined);
    const worker = client.work(
      async (_task, { signal }) => {
        await sleep(leaseMs * 2.5);
        signal.throwIfAborted();
      },
      { leaseMs, waitMs: 100 },
    );
    await until(() => worker.stats.completed === 1 || worker.stats.lost === 1, 10_000);
    await worker.stop();
    expect(worker.stats).toMatchObject({ completed: 1, lost: 0 });
    expect(attempts).toBeGreaterThanOrEqual(3);
    await client.close();
    await coord.close();
  });

  it("after a heartbeat that got through only on a retry, expects the lease to last from that retry", async () => {
    const { coord, client } = await harness.setup({ requestTimeoutMs: 300 });
    await client.submit([{ id: "late-retry", deadline: 1 }]);
    // The first heartbeat is lost, its retry gets through; every heartbeat after that is lost.
    let heartbeats = 0;
    let extendedAt = 0;
    coord.script = (q) => {
      if (q.op !== "heartbeat") return undefined;
      heartbeats++;
      if (heartbeats === 2) {
        extendedAt = Date.now();
        return undefined;
      }
      return { action: "drop" };
    };
    const leaseMs = 1_000;
    let lostAt = 0;
    const worker = client.work(
      (_task, { signal }) =>
        new Promise<void>((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            lostAt = Date.now();
            reject(signal.reason);
          });
        }),
      { leaseMs, heartbeatFraction: 0.2, waitMs: 100 },
    );
    await until(() => worker.stats.lost === 1);
    await worker.stop();
    expect(extendedAt).toBeGreaterThan(0);
    // The coordinator extended the lease to extendedAt + leaseMs: it is not lost before then
    // (from the first attempt's time, it would be ~300 ms earlier).
    expect(lostAt - extendedAt).toBeGreaterThanOrEqual(leaseMs - 50);
    await client.close();
    await coord.close();
  });

  it("long-polls when idle instead of spinning", async () => {
    const { coord, client } = await setup();
    const started = Date.now();
    const worker = client.work(() => {}, { waitMs: 300 });
    await until(() => (coord.seen.get("lease") ?? 0) >= 3);
    const elapsed = Date.now() - started;
    await worker.stop();
    // The third ask is sent only after the first two have each waited out their 300 ms (a
    // spinning worker would send it within a few ms).
    expect(elapsed).toBeGreaterThanOrEqual(2 * 300 - 20);
    await client.close();
    await coord.close();
  });

  it("stops gracefully: stops leasing and finishes the running tasks", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
      { id: "c", deadline: 3 },
    ]);
    let started = 0;
    // The two tasks run until the test has asked the worker to stop.
    let finish!: () => void;
    const finishing = new Promise<void>((resolve) => (finish = resolve));
    const worker = client.work(
      async () => {
        started++;
        await finishing;
      },
      { concurrency: 2, waitMs: 100, prefetch: 0 },
    );
    await until(() => started === 2);
    const stopping = worker.stop();
    finish();
    await stopping;
    expect(worker.running).toBe(0);
    expect(worker.stats.completed).toBe(2);
    expect(coord.engine.stats().counts.COMPLETED).toBe(2);
    expect(coord.engine.getTask("c")?.state).toBe("RUNNABLE");
    await client.close();
    await coord.close();
  });

  it("holds prefetched leases alive until a slot frees, and releases them when it stops, their attempts not spent", async () => {
    const { coord, client } = await setup();
    await client.submit(Array.from({ length: 6 }, (_, i) => ({ id: `p${i}`, deadline: i })));
    let running = 0;
    let peak = 0;
    const worker = client.work(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(300);
        running--;
      },
      // Heartbeats every 100 ms of a 300 ms lease: a task waiting 300 ms for its slot keeps its lease.
      { concurrency: 2, prefetch: 2, waitMs: 50, leaseMs: 300, heartbeatFraction: 1 / 3 },
    );
    await until(() => worker.stats.leased === 4);
    // Two run, two wait for a slot; nothing more is leased while the room is taken.
    expect(worker.running).toBe(2);
    expect(worker.leasesHeld).toBe(4);
    expect(coord.engine.stats().counts.LEASED).toBe(4);
    const events: WorkerEvent[] = [];
    worker.on((e) => events.push(e));
    await worker.stop();
    // The two running finish; the two waiting for a slot go back at once, for another worker.
    expect(worker.stats).toMatchObject({ completed: 2, released: 2, lost: 0 });
    expect(peak).toBe(2);
    expect(coord.engine.stats().counts).toMatchObject({ COMPLETED: 2, RUNNABLE: 4, LEASED: 0 });
    const released = events.flatMap((e) => (e.type === "task:released" ? [e] : []));
    expect(released.map((e) => e.reason)).toEqual(["stopping", "stopping"]);
    for (const { lease } of released)
      expect(coord.engine.getTask(lease.taskId)).toMatchObject({ state: "RUNNABLE", attempts: 0 });
    expect(coord.seen.get("heartbeat") ?? 0).toBeGreaterThan(0);
    await client.close();
    await coord.close();
  });

  it("stop({ abortInFlight }) releases the tasks waiting for a slot and aborts the running handlers", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "a", deadline: 1, maxAttempts: 3 },
      { id: "b", deadline: 2, maxAttempts: 3 },
      { id: "c", deadline: 3, maxAttempts: 3 },
    ]);
    const ran: string[] = [];
    const events: WorkerEvent[] = [];
    const worker = client.work(
      (task, { signal }) =>
        new Promise((_resolve, reject) => {
          ran.push(task.id);
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
      { concurrency: 1, prefetch: 2, waitMs: 100 },
    );
    worker.on((e) => events.push(e));
    await until(() => worker.stats.leased === 3 && worker.running === 1);
    await worker.stop({ abortInFlight: true });
    expect(ran).toEqual(["a"]);
    // The running one failed (its handler rejected on the abort: an attempt it did start);
    // the two that never started went back at once, their attempts not spent.
    // (WAITING out its retry backoff, or RUNNABLE again once it passed: a loaded machine gets there.)
    const a = coord.engine.getTask("a");
    expect(a).toMatchObject({ attempts: 1 });
    expect(a?.released).toBeUndefined();
    expect(["WAITING", "RUNNABLE"]).toContain(a?.state);
    for (const id of ["b", "c"])
      expect(coord.engine.getTask(id)).toMatchObject({ state: "RUNNABLE", attempts: 0, released: true });
    expect(worker.stats).toMatchObject({ leased: 3, failed: 1, released: 2, lost: 0 });
    const released = events.flatMap((e) => (e.type === "task:released" ? [e.lease.taskId] : []));
    expect(released.sort()).toEqual(["b", "c"]);
    expect(events.filter((e) => e.type === "error")).toEqual([]);
    await client.close();
    await coord.close();
  });

  it("releases what a lease request on the wire grants once it is stopping, and runs none of it", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "late", deadline: 1 }]);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    coord.script = (q) => (q.op === "lease" ? { action: "hold", until: gate } : undefined);
    const ran: string[] = [];
    const worker = client.work((task) => void ran.push(task.id), { concurrency: 1, waitMs: 100 });
    await until(() => (coord.seen.get("lease") ?? 0) === 1);
    const stopping = worker.stop();
    open(); // the grant reaches a stopping worker
    await stopping;
    expect(ran).toEqual([]);
    expect(worker.stats).toMatchObject({ leased: 1, released: 1 });
    expect(coord.engine.getTask("late")).toMatchObject({ state: "RUNNABLE", attempts: 0 });
    await client.close();
    await coord.close();
  });

  it("stops through its AbortSignal, and client.close() stops workers", async () => {
    const { coord, client } = await setup();
    const controller = new AbortController();
    const worker = client.work(() => {}, { waitMs: 100, signal: controller.signal });
    controller.abort();
    await worker.done;
    const other = client.work(() => {}, { waitMs: 100 });
    await client.close();
    await other.done;
    await coord.close();
  });

  it("rejects `done` when leasing fails for good (a bad option reaching the cluster)", async () => {
    const { coord, client } = await setup();
    coord.script = (q) => (q.op === "lease" ? { action: "error", code: "UNSUPPORTED_VERSION" } : undefined);
    const worker = client.work(() => {}, { waitMs: 0 });
    await expect(worker.done).rejects.toMatchObject({ code: "UNSUPPORTED_VERSION" });
    await client.close();
    await coord.close();
  });

  it("leases only the types it names, earliest deadline first, and tells the handler each task's type", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "d", deadline: 1 },
      { id: "img-late", deadline: 30, type: "img" },
      { id: "mail", deadline: 20, type: "mail" },
      { id: "img-early", deadline: 10, type: "img" },
      { id: "other", deadline: 5, type: "video" },
    ]);
    const ran: string[] = [];
    const worker = client.work(
      (task, context) => {
        ran.push(`${task.id}:${context.type}`);
      },
      { concurrency: 1, prefetch: 0, waitMs: 100, types: ["img", "mail"] },
    );
    await until(() => worker.stats.completed === 3);
    await worker.stop();
    expect(ran).toEqual(["img-early:img", "mail:mail", "img-late:img"]);
    // Every lease it sent named its types; the untyped and the other type's tasks are still there.
    for (const q of coord.requests) if (q.op === "lease") expect(q.types).toEqual(["img", "mail"]);
    expect(coord.engine.getTask("d")?.state).toBe("RUNNABLE");
    expect(coord.engine.getTask("other")?.state).toBe("RUNNABLE");
    // A worker that names no types gets the default type only.
    const plain: string[] = [];
    const untyped = client.work(
      (task, context) => {
        plain.push(`${task.id}:${context.type}`);
      },
      { waitMs: 100 },
    );
    await until(() => untyped.stats.completed === 1);
    await untyped.stop();
    expect(plain).toEqual(["d:default"]);
    expect(coord.engine.getTask("other")?.state).toBe("RUNNABLE");
    await client.close();
    await coord.close();
  });

  it("checks its options", async () => {
    const { coord, client } = await setup();
    expect(() => client.work(() => {}, { types: [] })).toThrow(/option types must list 1\.\.64/);
    expect(() => client.work(() => {}, { types: ["a b"] })).toThrow(/"a b" is not a task type/);
    expect(() => client.work(() => {}, { types: ["a", "a"] })).toThrow(/names "a" twice/);
    await expect(client.lease({ types: ["x".repeat(65)] })).rejects.toThrow(/option types/);
    expect(() => client.work(() => {}, { concurrency: 0 })).toThrow(/option concurrency/);
    expect(() => client.work(() => {}, { waitMs: 60_000 })).toThrow(/option waitMs/);
    expect(() => client.work(() => {}, { heartbeatFraction: 1 })).toThrow(/option heartbeatFraction/);
    await client.close();
    await coord.close();
  });
});

describe("reasonOf", () => {
  it("clips to the wire's limit without splitting a surrogate pair", () => {
    const r = reasonOf(new Error(`${"x".repeat(1016)}😀😀😀😀`));
    expect(r.length).toBeLessThanOrEqual(1024);
    expect(r.endsWith("…")).toBe(true);
    expect(/[\uD800-\uDBFF]…$/.test(r)).toBe(false);
    expect(reasonOf("text")).toBe("non-error thrown: text");
  });
});

describe("work: run time limits", () => {
  it("does not hold a task with a run time limit behind a slow handler, where its limit would run out unstarted", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "slow", deadline: 1 },
      { id: "timed", deadline: 2, maxAttempts: 1, timeoutMs: 200 },
    ]);
    const ran: string[] = [];
    const worker = client.work(
      async (task) => {
        ran.push(task.id);
        // Longer than the next task's limit: the length is what is under test.
        if (task.id === "slow") await sleep(400);
      },
      { concurrency: 1, waitMs: 100 },
    );
    await until(() => coord.engine.getTask("timed")?.state === "COMPLETED");
    expect(ran).toEqual(["slow", "timed"]);
    expect(coord.engine.getTask("timed")?.attempts).toBe(1);
    await worker.stop();
    await client.close();
    await coord.close();
  });

  it("releases a buffered task once it waited half its run time limit for a slot, so it runs later with all of it", async () => {
    const { coord, client } = await setup();
    await client.submit([
      { id: "slow", deadline: 1 },
      // One attempt: a run that timed out, or an attempt spent in the buffer, would end it FAILED.
      { id: "timed", deadline: 2, maxAttempts: 1, timeoutMs: 400 },
    ]);
    let finishSlow!: () => void;
    const slow = new Promise<void>((resolve) => (finishSlow = resolve));
    const started: { id: string; attempt: number; at: number }[] = [];
    const events: WorkerEvent[] = [];
    const worker = client.work(
      async (task, ctx) => {
        started.push({ id: task.id, attempt: ctx.attempt, at: performance.now() });
        if (task.id === "slow") await slow;
      },
      // A buffer of one beside one slot: "timed" waits behind "slow".
      { concurrency: 1, prefetch: 1, waitMs: 100 },
    );
    worker.on((e) => events.push(e));
    const releasedAt = () => events.findIndex((e) => e.type === "task:released");
    await until(() => releasedAt() >= 0);
    const release = events[releasedAt()];
    expect(release).toMatchObject({ type: "task:released", reason: "waitedTooLong" });
    expect(release?.type === "task:released" && release.lease.taskId).toBe("timed");
    // Back in the cluster with its attempt, not run, not failed.
    expect(started.map((s) => s.id)).toEqual(["slow"]);
    expect(coord.engine.getTask("timed")?.state).not.toBe("FAILED");
    finishSlow();
    await until(() => coord.engine.getTask("timed")?.state === "COMPLETED");
    expect(coord.engine.getTask("timed")?.attempts).toBe(1);
    expect(started.filter((s) => s.id === "timed").map((s) => s.attempt)).toEqual([1]);
    // Every lease of it this worker took and did not run went back: none was timed out or failed.
    expect(coord.engine.stats().attemptTimeouts).toBe(0);
    expect(worker.stats.failed).toBe(0);
    expect(worker.stats.released).toBeGreaterThanOrEqual(1);
    await worker.stop();
    await client.close();
    await coord.close();
  });

  it("aborts a hung handler at its task's timeoutMs, stops heartbeating and fails it, so it runs again", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "hangs", deadline: 1, maxAttempts: 2, timeoutMs: 300 }]);
    const contexts: { attempt: number; timeoutMs: number | undefined; signal: AbortSignal }[] = [];
    let release: () => void = () => {};
    const hung = new Promise<void>((resolve) => {
      release = resolve;
    });
    const events: WorkerEvent[] = [];
    const worker = client.work(
      async (_task, ctx) => {
        contexts.push({ attempt: ctx.attempt, timeoutMs: ctx.timeoutMs, signal: ctx.signal });
        // The first attempt ignores its signal entirely: a hung handler in a live worker.
        if (ctx.attempt === 1) await hung;
      },
      { concurrency: 2, leaseMs: 200, waitMs: 100 },
    );
    worker.on((e) => events.push(e));
    await until(() => coord.engine.getTask("hangs")?.state === "COMPLETED");
    const [first, second] = contexts;
    expect(first?.timeoutMs).toBe(300);
    expect(first?.signal.aborted).toBe(true);
    expect(first?.signal.reason).toBeInstanceOf(AttemptTimeoutError);
    expect(second?.attempt).toBe(2);
    const failed = events.find((e) => e.type === "task:failed");
    expect(failed?.type === "task:failed" && failed.error).toBeInstanceOf(AttemptTimeoutError);
    // The worker stopped heartbeating the first lease when it failed it: none after its fail.
    const firstToken = failed?.lease.token;
    const ofFirst = coord.requests.filter(
      (q) => (q.op === "heartbeat" || q.op === "fail") && "token" in q && q.token === firstToken,
    );
    const ops = ofFirst.map((q) => q.op);
    expect(ops.at(-1)).toBe("fail");
    expect(ops.filter((op) => op === "fail")).toHaveLength(1);
    release();
    await worker.stop();
    await client.close();
    await coord.close();
  });

  it("applies the worker's timeoutMs to tasks without their own, failing them with the reason", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "slow", deadline: 1, maxAttempts: 1 }]);
    const worker = client.work(
      (_task, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
        }),
      { timeoutMs: 150, waitMs: 100 },
    );
    await until(() => coord.engine.getTask("slow")?.state === "FAILED");
    expect(coord.engine.getTask("slow")?.reason).toContain("AttemptTimeoutError: timed out after 150 ms");
    // The worker enforced it (the task has no limit the shard knows of).
    expect(coord.engine.stats().attemptTimeouts).toBe(0);
    await worker.stop();
    expect(() => client.work(() => {}, { timeoutMs: 0 })).toThrow(/timeoutMs/);
    await client.close();
    await coord.close();
  });
});
