/**
 * Scheduler.retry: an ended task runs again from the start, through the
 * state machine, and a rebuilt engine (snapshot + change records) agrees.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./errors.js";
import { Scheduler } from "./scheduler.js";
import { engine } from "./test-engine.fixture.js";

/** Leases `id` (the only runnable task) and fails it for good. */
function failFor(s: Scheduler, id: string): void {
  const [l] = s.lease("w", { leaseMs: 100 });
  expect(l?.taskId).toBe(id);
  s.fail(id, l!.token, { retryable: false, reason: "boom" });
}

describe("retry", () => {
  it("runs a failed task again from attempt 1; its cancelled dependent, retried next, waits on it", () => {
    const { s, changes } = engine();
    s.addTasks([
      { id: "a", deadline: 10 },
      { id: "b", deadline: 20, prerequisites: ["a"] },
    ]);
    const snap = s.snapshot();
    const from = changes.length;
    failFor(s, "a");
    expect(s.getTask("b")?.state).toBe("CANCELLED");
    // b first: its prerequisite is still FAILED under the "cancel" policy.
    expect(() => s.retry("b")).toThrow(/prerequisite "a" ended FAILED: retry it first/);

    const a = s.retry("a");
    expect([a.state, a.attempts, a.reason]).toEqual(["RUNNABLE", 0, undefined]);
    const b = s.retry("b");
    expect([b.state, b.unmetPrerequisites]).toEqual(["WAITING", 1]);

    // A rebuilt engine holds the same state and carries on the same way.
    const rebuilt = Scheduler.restore(snap, changes.slice(from), { now: () => 1_000, random: () => 0.5 });
    expect(rebuilt.snapshot()).toEqual(s.snapshot());
    for (const e of [s, rebuilt]) {
      const [la] = e.lease("w", { leaseMs: 100 });
      expect([la?.taskId, la?.attempt]).toEqual(["a", 1]);
      e.complete("a", la!.token);
      expect(e.lease("w", { leaseMs: 100 }).map((l) => l.taskId)).toEqual(["b"]);
    }
  });

  it("takes a new deadline, and refuses an expired hard-deadline task without one", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "h", deadline: 1_010, hardDeadline: true });
    clock.now = 1_020;
    expect(s.getTask("h")?.state).toBe("EXPIRED");
    const before = JSON.stringify(s.snapshot());
    expect(() => s.retry("h")).toThrow(/hard deadline 1010 has passed: give a new deadline/);
    expect(JSON.stringify(s.snapshot())).toBe(before);
    const h = s.retry("h", { deadline: 5_000 });
    expect([h.state, h.deadline]).toEqual(["RUNNABLE", 5_000]);
  });

  it("refuses a live or completed task, an unknown one, and a dependent already running without it", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "c", deadline: 2, prerequisites: ["a"], onPrerequisiteFailure: "continue" },
      { id: "live", deadline: 3 },
    ]);
    failFor(s, "a");
    expect(s.getTask("c")?.state).toBe("RUNNABLE");
    const before = JSON.stringify(s.snapshot());
    const refusals = [
      () => s.retry("live"),
      () => s.retry("a"), // c already runs without it
    ];
    for (const r of refusals) expect(r).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
    expect(() => s.retry("a")).toThrow(/dependent "c" is RUNNABLE without it/);
    expect(() => s.retry("nope")).toThrow(expect.objectContaining({ code: ErrorCode.UNKNOWN_TASK }));
    expect(() => s.retry("live", { deadline: Number.NaN })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(JSON.stringify(s.snapshot())).toBe(before);
    const [l] = s.lease("w", { max: 2 });
    s.complete(l!.taskId, l!.token);
    expect(() => s.retry(l!.taskId)).toThrow(/it is COMPLETED, not ended badly/);
  });

  it("makes a waiting dependent with the continue policy wait on the retried prerequisite again", () => {
    const { s, changes } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "slow", deadline: 50 },
      { id: "c", deadline: 2, prerequisites: ["a", "slow"], onPrerequisiteFailure: "continue" },
    ]);
    const snap = s.snapshot();
    const from = changes.length;
    failFor(s, "a");
    expect(s.getTask("c")?.unmetPrerequisites).toBe(1);
    s.retry("a");
    expect(s.getTask("c")?.unmetPrerequisites).toBe(2);
    const rebuilt = Scheduler.restore(snap, changes.slice(from), { now: () => 1_000, random: () => 0.5 });
    for (const e of [s, rebuilt]) {
      expect(e.getTask("c")?.unmetPrerequisites).toBe(2);
      for (const l of e.lease("w", { max: 2, leaseMs: 100 })) e.complete(l.taskId, l.token);
      expect(e.lease("w").map((l) => l.taskId)).toEqual(["c"]);
    }
  });

  it("keeps a completed prerequisite of a retried task from compaction while it is live", () => {
    const { s, clock } = engine({ retentionMs: 10 });
    s.addTasks([
      { id: "p", deadline: 1 },
      { id: "x", deadline: 2, prerequisites: ["p"], maxAttempts: 1 },
    ]);
    const [lp] = s.lease("w");
    s.complete("p", lp!.token);
    failFor(s, "x");
    clock.now += 5;
    s.retry("x");
    clock.now += 100; // past p's retention: x still lists it
    expect(s.getTask("p")?.state).toBe("COMPLETED");
    const [lx] = s.lease("w");
    expect(lx?.taskId).toBe("x");
  });
});
