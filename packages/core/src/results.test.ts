/**
 * Results: what a `complete` carries is kept with the task, shown by
 * getTask, counted in the held bytes, and handed to the dependents' grants.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, FrontierError } from "./errors.js";
import { resultEntryBytes, Scheduler, type SchedulerOptions } from "./scheduler.js";
import { engine as testEngine } from "./test-engine.fixture.js";

const measurePayload = (value: unknown): number => {
  const text = JSON.stringify(value);
  if (text === undefined) throw new Error("not JSON");
  return text.length;
};

/** The test engine (test-engine.fixture.ts), measuring payloads and results as JSON text. */
const engine = (options: SchedulerOptions = {}) => testEngine({ measurePayload, ...options });

/** Leases the one runnable task `id` and completes it with `result`. */
function run(s: Scheduler, id: string, result?: unknown): number {
  const [lease] = s.lease("w", { max: 1 });
  expect(lease?.taskId).toBe(id);
  s.complete(id, lease!.token, { result });
  return lease!.token;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof FrontierError) return e.code;
    throw e;
  }
  throw new Error("expected a FrontierError");
}

describe("results", () => {
  it("keeps a completed task's result, and hands its dependents' grants the results of their prerequisites in order", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
      { id: "c", deadline: 3 },
      { id: "d", deadline: 10, prerequisites: ["c", "a", "b"] },
    ]);
    run(s, "a", { rows: 3 });
    run(s, "b"); // no result: nothing to hand on
    run(s, "c", "text");
    expect(s.getTask("a")?.result).toEqual({ rows: 3 });
    expect(s.getTask("b")).not.toHaveProperty("result");
    const [lease] = s.lease("w2", { max: 1 });
    expect(lease?.results).toEqual([
      { taskId: "c", result: "text" },
      { taskId: "a", result: { rows: 3 } },
    ]);
    expect(lease).not.toHaveProperty("resultsOmitted");
    // Only grants carry them: a heartbeat's lease does not.
    expect(s.heartbeat("d", lease!.token)).not.toHaveProperty("results");
  });

  it("gives no results field to a grant whose prerequisites have none", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2, prerequisites: ["a"] },
    ]);
    run(s, "a");
    const [lease] = s.lease("w", { max: 1 });
    expect(lease?.taskId).toBe("b");
    expect(lease).not.toHaveProperty("results");
  });

  it("keeps the first result when a complete is repeated with the same token", () => {
    const { s } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    const token = run(s, "a", 1);
    const held = s.heldPayloadBytes;
    expect(s.complete("a", token, { result: 2 })).toEqual({ duplicate: true });
    expect(s.getTask("a")?.result).toBe(1);
    expect(s.heldPayloadBytes).toBe(held);
  });

  it("stores nothing from a complete refused as STALE_LEASE", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    const [first] = s.lease("w1", { max: 1, leaseMs: 10 });
    clock.now += 20; // the lease expires; the task is runnable again
    const [second] = s.lease("w2", { max: 1 });
    expect(codeOf(() => s.complete("a", first!.token, { result: "late" }))).toBe(ErrorCode.STALE_LEASE);
    expect(s.getTask("a")?.state).toBe("LEASED");
    expect(s.getTask("a")).not.toHaveProperty("result");
    expect(s.heldPayloadBytes).toBe(0);
    s.complete("a", second!.token, { result: "on time" });
    expect(s.getTask("a")?.result).toBe("on time");
  });

  it("refuses a result the store cannot measure with INVALID_ARGUMENT, changing nothing", () => {
    const { s, changes } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    const [lease] = s.lease("w", { max: 1 });
    const before = changes.length;
    expect(codeOf(() => s.complete("a", lease!.token, { result: () => 1 }))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(changes.length).toBe(before);
    expect(s.getTask("a")?.state).toBe("LEASED");
    expect(s.heldPayloadBytes).toBe(0);
    // The lease still holds: the worker can complete with a result that can be stored.
    s.complete("a", lease!.token, { result: "ok" });
    expect(s.getTask("a")?.result).toBe("ok");
  });

  it("leaseTask: the task as its lease carries it and the payload's measured bytes, without running timers", () => {
    const { s, clock } = engine({ retentionMs: 100 });
    s.addTasks([
      { id: "a", deadline: 5, payload: { n: 1 }, workflowId: "wf", type: "mail", timeoutMs: 50 },
      { id: "b", deadline: 6, prerequisites: ["a"], workflowId: "wf" },
    ]);
    expect(s.leaseTask("a")).toEqual({
      task: s.lease("w", { max: 1, types: ["mail"] })[0]!.task,
      payloadBytes: measurePayload({ n: 1 }),
    });
    expect(s.leaseTask("b")).toEqual({
      task: { id: "b", deadline: 6, prerequisites: ["a"], workflowId: "wf" },
      payloadBytes: 0,
    });
    expect(s.leaseTask("nope")).toBeUndefined();
    // A timer due (the lease's expiry) is left for the next call that runs them.
    clock.now += 1_000_000;
    expect(s.leaseTask("a")?.task.id).toBe("a");
    expect(s.getTask("a")?.state).not.toBe("LEASED");
  });

  it("counts results in the held bytes until the task is dropped after retention", () => {
    const { s, clock } = engine({ retentionMs: 100 });
    s.addTasks({ id: "a", deadline: 1, payload: "pp" });
    expect(s.heldPayloadBytes).toBe(measurePayload("pp"));
    run(s, "a", { n: 12345 });
    expect(s.heldPayloadBytes).toBe(measurePayload("pp") + measurePayload({ n: 12345 }));
    clock.now += 100;
    s.tick();
    expect(s.getTask("a")).toBeUndefined();
    expect(s.heldPayloadBytes).toBe(0);
  });

  it("carries the result in the COMPLETED change record, so a rebuilt engine keeps it and its bytes", () => {
    const { s, changes } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2, prerequisites: ["a"] },
    ]);
    const snapshot = s.snapshot();
    const since = changes.length;
    run(s, "a", [1, "two"]);
    const completed = changes.find((c) => c.kind === "set" && c.id === "a" && c.status.state === "COMPLETED");
    expect(completed?.kind === "set" && completed.status.result).toEqual([1, "two"]);
    const rebuilt = Scheduler.restore(snapshot, changes.slice(since), { measurePayload });
    expect(rebuilt.getTask("a")?.result).toEqual([1, "two"]);
    expect(rebuilt.heldPayloadBytes).toBe(s.heldPayloadBytes);
    expect(rebuilt.lease("w", { max: 1 })[0]?.results).toEqual([{ taskId: "a", result: [1, "two"] }]);
  });

  it("leaves out the results that would pass maxLeaseResultBytes, and counts them", () => {
    const big = "x".repeat(50);
    const bigEntry = resultEntryBytes("a", measurePayload(big));
    // Room for the big one and a small one, not two big ones.
    const { s } = engine({ maxLeaseResultBytes: bigEntry + resultEntryBytes("c", measurePayload(1)) });
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
      { id: "c", deadline: 3 },
      { id: "d", deadline: 10, prerequisites: ["a", "b", "c"] },
    ]);
    run(s, "a", big);
    run(s, "b", big);
    run(s, "c", 1);
    const expected = [
      { taskId: "a", result: big },
      { taskId: "c", result: 1 },
    ];
    expect(s.prerequisiteResults("d")).toEqual({
      results: expected,
      omitted: 1,
      bytes: bigEntry + resultEntryBytes("c", measurePayload(1)),
    });
    const [lease] = s.lease("w", { max: 1 });
    expect(lease?.results).toEqual(expected);
    expect(lease?.resultsOmitted).toBe(1);
  });

  it("refuses a negative maxLeaseResultBytes", () => {
    expect(() => new Scheduler({ maxLeaseResultBytes: -1 })).toThrow(/maxLeaseResultBytes/);
  });
});
