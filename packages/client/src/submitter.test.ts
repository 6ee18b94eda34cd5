import { type TaskInput, ValidationError } from "@frontier/core";
import { ProtocolError, type SubmitRequest } from "@frontier/protocol";
import { describe, expect, it, vi } from "vitest";
import { useEngineCluster } from "../test/engine-cluster.js";
import type { EngineCoordinator } from "../test/engine-coordinator.js";
import { ClientError, type SubmitReceipt } from "./index.js";

const harness = useEngineCluster("submitter");
const { setup } = harness;

const submits = (coord: EngineCoordinator) =>
  coord.requests.filter((q): q is SubmitRequest => q.op === "submit");

/** A gate the test opens: a held request (the stand-in's "hold") is handled once it opens. */
function gate(): { readonly opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe("submitter", () => {
  it("gathers single adds into batches by size", async () => {
    const { coord, client } = await setup();
    const s = client.submitter({ maxBatch: 10, lingerMs: 1_000 });
    const receipts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => s.add({ id: `t${i}`, deadline: i })),
    );
    expect(submits(coord).map((q) => q.tasks.length)).toEqual([10, 10, 10]);
    expect(new Set(receipts.map((r) => r.idempotencyKey)).size).toBe(3);
    expect(receipts[0]).toMatchObject({ taskId: "t0", replayed: false });
    expect(coord.engine.stats().runnable).toBe(30);
    await s.close();
    await client.close();
    await coord.close();
  });

  it("sends a batch that does not fill once lingerMs has passed", async () => {
    const { coord, client } = await setup();
    const s = client.submitter({ maxBatch: 100, lingerMs: 150 });
    // When the batch reached the coordinator, measured there: no waiting to see it has not yet.
    let arrivedAt = 0;
    coord.script = (q) => {
      if (q.op === "submit" && arrivedAt === 0) arrivedAt = Date.now();
      return undefined;
    };
    const t0 = Date.now();
    const pending = [s.add({ id: "a", deadline: 1 }), s.add({ id: "b", deadline: 2 })];
    await Promise.all(pending);
    expect(arrivedAt - t0).toBeGreaterThanOrEqual(140);
    expect(submits(coord).map((q) => q.tasks.map((t) => t.id))).toEqual([["a", "b"]]);
    await s.close();
    await client.close();
    await coord.close();
  });

  it("keeps order across batches, so a task may depend on one added before it", async () => {
    const { coord, client } = await setup();
    const s = client.submitter({ maxBatch: 3, lingerMs: 0 });
    const adds: Promise<SubmitReceipt>[] = [];
    for (let i = 0; i < 20; i++) {
      adds.push(s.add({ id: `s${i}`, deadline: i, prerequisites: i === 0 ? [] : [`s${i - 1}`] }));
    }
    await Promise.all(adds);
    expect(coord.engine.stats().counts.WAITING).toBe(19);
    await s.close();
    await client.close();
    await coord.close();
  });

  it("applies backpressure: add() waits while maxPending tasks are held, and drops nothing", async () => {
    const { coord, client } = await setup();
    const acks = gate();
    coord.script = (q) => (q.op === "submit" ? { action: "hold", until: acks.opened } : undefined);
    const s = client.submitter({ maxBatch: 5, lingerMs: 0, maxPending: 10 });
    const settled: string[] = [];
    const adds = Array.from({ length: 25 }, (_, i) =>
      s.add({ id: `p${i}`, deadline: i }).then((r) => settled.push(r.taskId)),
    );
    await vi.waitUntil(() => submits(coord).length === 1, { timeout: 5_000, interval: 10 });
    // Event-ordered: a request sent after the adds, on the same connection, reaches the
    // coordinator after any batch sent before it.
    await client.getTask("p0");
    expect(s.pending).toBe(10);
    expect(settled).toHaveLength(0);
    // Only the first batch is in flight; nothing beyond maxPending is queued.
    expect(submits(coord)).toHaveLength(1);
    acks.open();
    await Promise.all(adds);
    expect(settled).toHaveLength(25);
    expect(coord.engine.stats().runnable).toBe(25);
    expect(s.pending).toBe(0);
    await s.close();
    await client.close();
    await coord.close();
  });

  it("submitAll pulls from the source only when there is room", async () => {
    const { coord, client } = await setup();
    const firstAck = gate();
    let calls = 0;
    coord.script = (q) =>
      q.op === "submit" && calls++ === 0 ? { action: "hold", until: firstAck.opened } : undefined;
    const s = client.submitter({ maxBatch: 4, lingerMs: 0, maxPending: 8 });
    let pulled = 0;
    function* source(): Generator<TaskInput> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield { id: `g${i}`, deadline: i };
      }
    }
    const all = s.submitAll(source());
    await vi.waitUntil(() => submits(coord).length === 1, { timeout: 5_000, interval: 10 });
    // A round trip after the first batch arrived: pulling needs none, so a submitter that pulled
    // past its room would have done so before this one ends.
    await client.getTask("g0");
    expect(pulled).toBeLessThanOrEqual(9);
    firstAck.open();
    const result = await all;
    expect(result).toEqual({ accepted: 100, rejected: 0, errors: [] });
    expect(pulled).toBe(100);
    await s.close();
    await client.close();
    await coord.close();
  });

  it("rejects only the callers whose tasks a batch rejection names, and sends the rest again", async () => {
    const { coord, client } = await setup();
    await client.submit([{ id: "taken", deadline: 1 }]);
    const s = client.submitter({ maxBatch: 10, lingerMs: 50 });
    const outcomes = await Promise.allSettled([
      s.add({ id: "ok1", deadline: 1 }),
      s.add({ id: "taken", deadline: 1 }),
      s.add({ id: "ok2", deadline: 1 }),
      s.add({ id: "cyc-a", deadline: 1, prerequisites: ["cyc-b"] }),
      s.add({ id: "cyc-b", deadline: 1, prerequisites: ["cyc-a"] }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "rejected",
    ]);
    const taken = (outcomes[1] as PromiseRejectedResult).reason;
    expect(taken).toBeInstanceOf(ValidationError);
    expect(taken.problems.map((p: { taskId: string }) => p.taskId)).toEqual(["taken"]);
    expect(coord.engine.getTask("ok1")?.state).toBe("RUNNABLE");
    expect(coord.engine.getTask("ok2")?.state).toBe("RUNNABLE");
    await s.close();
    await client.close();
    await coord.close();
  });

  it("refuses a malformed task at add() without sinking the batch it would have joined", async () => {
    const { coord, client } = await setup();
    const s = client.submitter({ lingerMs: 20 });
    const good = s.add({ id: "good", deadline: 1 });
    const bad = s.add({ id: "bad", deadline: "soon" } as unknown as TaskInput);
    await expect(bad).rejects.toBeInstanceOf(ProtocolError);
    await expect(good).resolves.toMatchObject({ taskId: "good" });
    await s.close();
    await client.close();
    await coord.close();
  });

  it("flush sends at once; close flushes and then refuses adds", async () => {
    const { coord, client } = await setup();
    const s = client.submitter({ lingerMs: 60_000 });
    const a = s.add({ id: "a", deadline: 1 });
    await s.flush();
    await expect(a).resolves.toMatchObject({ taskId: "a" });
    const b = s.add({ id: "b", deadline: 1 });
    await s.close();
    await expect(b).resolves.toMatchObject({ taskId: "b" });
    await expect(s.add({ id: "c", deadline: 1 })).rejects.toBeInstanceOf(ClientError);
    await client.close();
    await coord.close();
  });

  it("checks its options", async () => {
    const { coord, client } = await setup();
    expect(() => client.submitter({ maxBatch: 5_000 })).toThrow(/option maxBatch/);
    expect(() => client.submitter({ maxPending: 0 })).toThrow(/option maxPending/);
    expect(() => client.submitter({ lingerMs: -1 })).toThrow(/option lingerMs/);
    await client.close();
    await coord.close();
  });
});
