import { describe, expect, it } from "vitest";
import { ErrorCode, ValidationError } from "./errors.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { engine } from "./test-engine.fixture.js";
import type { Snapshot, TaskInput } from "./types.js";

function drain(s: Scheduler): string[] {
  const out: string[] = [];
  for (let t = s.consumeTask(); t; t = s.consumeTask()) out.push(t.id);
  return out;
}

/** The error `fn` throws (a test failure if it throws none); engine errors carry a `code`. */
function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`expected an Error, got ${String(e)}`);
    return e;
  }
  throw new Error("expected an error");
}

describe("Part 1: earliest deadline first", () => {
  it("consumes by deadline, ties by id, null when empty", () => {
    const { s } = engine();
    s.addTasks({ id: "b", deadline: 5 });
    s.addTasks([
      { id: "c", deadline: 2 },
      { id: "a", deadline: 5 },
      { id: "d", deadline: 9 },
    ]);
    expect(drain(s)).toEqual(["c", "a", "b", "d"]);
    expect(s.consumeTask()).toBeNull();
  });

  it("returns the task as submitted", () => {
    const { s } = engine();
    s.addTasks({ id: "a", deadline: 5, workflowId: "w", payload: { x: 1 } });
    expect(s.consumeTask()).toEqual({
      id: "a",
      deadline: 5,
      prerequisites: [],
      workflowId: "w",
      payload: { x: 1 },
    });
  });
});

describe("Part 2: prerequisites", () => {
  it("dispatches only runnable tasks and unblocks dependents on completion", () => {
    const { s } = engine();
    s.addTasks([
      { id: "late", deadline: 100 },
      { id: "urgent-child", deadline: 1, prerequisites: ["late"] },
      { id: "mid", deadline: 50 },
    ]);
    expect(s.consumeTask()?.id).toBe("mid");
    expect(s.consumeTask()?.id).toBe("late");
    expect(s.consumeTask()).toBeNull();
    expect(s.getTask("urgent-child")?.state).toBe("WAITING");
    s.completeTask("late");
    expect(s.getTask("urgent-child")).toMatchObject({ state: "RUNNABLE", unmetPrerequisites: 0 });
    expect(s.consumeTask()?.id).toBe("urgent-child");
  });

  it("makes a task runnable at once when its prerequisites are already completed", () => {
    const { s } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    s.consumeTask();
    s.completeTask("a");
    s.addTasks({ id: "b", deadline: 2, prerequisites: ["a"] });
    expect(s.getTask("b")?.state).toBe("RUNNABLE");
  });

  it("waits for every prerequisite (fan-in) and unblocks each dependent once (fan-out)", () => {
    const { s, changes } = engine();
    s.addTasks([
      { id: "p1", deadline: 1 },
      { id: "p2", deadline: 2 },
      { id: "join", deadline: 0, prerequisites: ["p1", "p2"] },
      { id: "x", deadline: 3, prerequisites: ["p1"] },
      { id: "y", deadline: 4, prerequisites: ["p1"] },
    ]);
    s.consumeTask();
    s.completeTask("p1");
    expect(s.getTask("join")).toMatchObject({ state: "WAITING", unmetPrerequisites: 1 });
    expect(drain(s)).toEqual(["p2", "x", "y"]);
    s.completeTask("p2");
    expect(drain(s)).toEqual(["join"]);
    const runnableSets = changes
      .filter((c) => c.kind === "set" && c.status.state === "RUNNABLE")
      .map((c) => (c as { id: string }).id);
    expect(runnableSets.sort()).toEqual(["join", "x", "y"]);
  });

  it("refuses to complete a task that is not leased", () => {
    const { s } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    expect(errorOf(() => s.completeTask("a")).code).toBe(ErrorCode.INVALID_STATE);
    expect(errorOf(() => s.completeTask("nope")).code).toBe(ErrorCode.UNKNOWN_TASK);
  });
});

describe("validation", () => {
  it("rejects a bad batch whole, listing every problem, and changes nothing", () => {
    const { s, changes } = engine();
    s.addTasks({ id: "known", deadline: 1 });
    const before = JSON.stringify(s.snapshot());
    const changeCount = changes.length;
    const err = errorOf(() =>
      s.addTasks([
        { id: "ok", deadline: 1 },
        { id: "known", deadline: 1 },
        { id: "self", deadline: 1, prerequisites: ["self"] },
        { id: "orphan", deadline: 1, prerequisites: ["ghost"] },
        { id: "c1", deadline: 1, prerequisites: ["c2"] },
        { id: "c2", deadline: 1, prerequisites: ["c1"] },
        { id: "bad", deadline: Number.POSITIVE_INFINITY },
      ] as TaskInput[]),
    );
    expect(err).toBeInstanceOf(ValidationError);
    const problems = (err as ValidationError).problems.map((p) => `${p.taskId}:${p.code}`).sort();
    expect(problems).toEqual([
      "bad:MALFORMED",
      "c1:CYCLE",
      "known:DUPLICATE_ID",
      "orphan:UNKNOWN_PREREQUISITE",
      "self:SELF_DEPENDENCY",
    ]);
    expect(JSON.stringify(s.snapshot())).toBe(before);
    expect(changes.length).toBe(changeCount);
    expect(s.getTask("ok")).toBeUndefined();
  });
});

describe("check (dry run)", () => {
  it("reports what addTasks would reject, and changes nothing", () => {
    const { s, changes } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    expect(s.check({ id: "b", deadline: 1, prerequisites: ["a"] })).toEqual([]);
    expect(s.check({ id: "a", deadline: 1 }).map((p) => p.code)).toEqual(["DUPLICATE_ID"]);
    expect(s.check({ id: "r", deadline: 1 }, new Set(["r"])).map((p) => p.code)).toEqual(["DUPLICATE_ID"]);
    expect(changes.filter((c) => c.kind === "add")).toHaveLength(1);
  });
});

describe("what a store's limits count", () => {
  const measurePayload = (payload: unknown) => JSON.stringify(payload).length;

  it("counts live tasks and payload bytes held, until a finished task is dropped", () => {
    const { s, clock } = engine({ measurePayload, retentionMs: 100 });
    s.addTasks([
      { id: "a", deadline: 1, payload: "xyz" },
      { id: "b", deadline: 2, payload: { n: 1 } },
      { id: "c", deadline: 3 },
    ]);
    expect(s.liveCount).toBe(3);
    expect(s.heldPayloadBytes).toBe(5 + 7);
    const [lease] = s.lease("w");
    expect(s.liveCount).toBe(3);
    s.complete("a", lease!.token);
    // Finished, not yet dropped: no longer live, its payload still held.
    expect(s.liveCount).toBe(2);
    expect(s.heldPayloadBytes).toBe(12);
    clock.now += 100;
    s.tick();
    expect(s.getTask("a")).toBeUndefined();
    expect(s.heldPayloadBytes).toBe(7);
    s.cancel("b");
    expect(s.liveCount).toBe(1);
    // Restored from its records: the same counts, measured again.
    const restored = Scheduler.restore(s.snapshot(), [], { measurePayload, now: () => clock.now });
    expect([restored.liveCount, restored.heldPayloadBytes]).toEqual([1, 7]);
  });

  it("lets admit refuse a valid batch whole, after the check and before any change", () => {
    const { s, changes } = engine({ measurePayload });
    s.addTasks({ id: "a", deadline: 1 });
    const before = JSON.stringify(s.snapshot());
    const seen: unknown[] = [];
    const refuse = (footprint: unknown) => {
      seen.push(footprint);
      throw new Error("full");
    };
    expect(
      errorOf(() =>
        s.addTasks(
          [
            { id: "b", deadline: 1, payload: [1, 2] },
            { id: "c", deadline: 1 },
          ],
          { admit: refuse },
        ),
      ).message,
    ).toBe("full");
    expect(seen).toEqual([{ tasks: 2, payloadBytes: 5 }]);
    expect(JSON.stringify(s.snapshot())).toBe(before);
    expect(changes.filter((c) => c.kind === "add")).toHaveLength(1);
    // An invalid batch is refused for its problems; admit is not asked.
    expect(errorOf(() => s.addTasks({ id: "a", deadline: 1 }, { admit: refuse }))).toBeInstanceOf(
      ValidationError,
    );
    expect(seen).toHaveLength(1);
    // check asks admit too, and throws what it throws.
    expect(
      errorOf(() => s.check({ id: "d", deadline: 1, payload: "p" }, undefined, { admit: refuse })).message,
    ).toBe("full");
    expect(seen[1]).toEqual({ tasks: 1, payloadBytes: 3 });
    expect(s.check({ id: "a", deadline: 1 }, undefined, { admit: refuse })).toHaveLength(1);
    expect(seen).toHaveLength(2);
  });

  it("refuses a payload the measure cannot take as MALFORMED, with the batch's other problems", () => {
    const { s } = engine({
      measurePayload: (p) => {
        if (p === "bad") throw new Error("cannot encode");
        return 1;
      },
    });
    const err = errorOf(() =>
      s.addTasks([
        { id: "x", deadline: 1, payload: "bad" },
        { id: "y", deadline: 1, prerequisites: ["nope"] },
      ]),
    ) as ValidationError;
    expect(err.problems.map((p) => [p.taskId, p.code, p.message])).toEqual([
      ["x", "MALFORMED", "payload cannot be stored: cannot encode"],
      ["y", "UNKNOWN_PREREQUISITE", expect.any(String)],
    ]);
    expect(s.liveCount).toBe(0);
    expect(s.heldPayloadBytes).toBe(0);
  });
});

describe("forward references", () => {
  it("are an error by default", () => {
    const { s } = engine();
    const err = errorOf(() => s.addTasks({ id: "b", deadline: 1, prerequisites: ["a"] })) as ValidationError;
    expect(err.problems[0]?.code).toBe("UNKNOWN_PREREQUISITE");
  });

  it("wait for the id to arrive when allowed", () => {
    const { s } = engine({ allowForwardReferences: true });
    s.addTasks({ id: "b", deadline: 1, prerequisites: ["a"] });
    expect(s.getTask("b")).toMatchObject({ state: "WAITING", unmetPrerequisites: 1 });
    s.addTasks({ id: "a", deadline: 9 });
    expect(drain(s)).toEqual(["a"]);
    s.completeTask("a");
    expect(drain(s)).toEqual(["b"]);
  });

  it("reject a later submission that would close a cycle through them", () => {
    const { s } = engine({ allowForwardReferences: true });
    s.addTasks({ id: "b", deadline: 1, prerequisites: ["a"] });
    s.addTasks({ id: "c", deadline: 1, prerequisites: ["b"] });
    const err = errorOf(() => s.addTasks({ id: "a", deadline: 1, prerequisites: ["c"] })) as ValidationError;
    expect(err.problems[0]?.code).toBe("CYCLE");
    expect(err.problems[0]?.message).toContain('"a" -> "b" -> "c" -> "a"');
    expect(s.getTask("a")).toBeUndefined();
    s.addTasks({ id: "a", deadline: 1 });
    expect(s.getTask("b")?.unmetPrerequisites).toBe(1);
  });
});

describe("leases", () => {
  it("grants in deadline order with increasing fencing tokens and an expiry", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "a", deadline: 3 },
      { id: "b", deadline: 1 },
      { id: "c", deadline: 2 },
    ]);
    const leases = s.lease("w1", { max: 2, leaseMs: 100 });
    expect(leases.map((l) => [l.taskId, l.owner, l.expiresAt, l.attempt])).toEqual([
      ["b", "w1", clock.now + 100, 1],
      ["c", "w1", clock.now + 100, 1],
    ]);
    expect(leases[1]!.token).toBeGreaterThan(leases[0]!.token);
    expect(s.getTask("b")).toMatchObject({
      state: "LEASED",
      leaseOwner: "w1",
      leaseExpiresAt: clock.now + 100,
    });
  });

  it("raises its token floor: later tokens are above it, lower floors change nothing, bad ones are refused", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
    ]);
    expect(s.lastToken).toBe(0);
    s.raiseTokenFloor(1_000);
    expect(s.lastToken).toBe(1_000);
    const [a] = s.lease("w1");
    expect(a!.token).toBe(1_001);
    s.raiseTokenFloor(5);
    const [b] = s.lease("w1");
    expect(b!.token).toBe(1_002);
    expect(errorOf(() => s.raiseTokenFloor(-1)).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(errorOf(() => s.raiseTokenFloor(1.5)).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(s.lastToken).toBe(1_002);
  });

  it("returns an expired lease's task to runnable, counts it and fences the old holder", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    const [first] = s.lease("w1", { leaseMs: 100 });
    clock.now += 99;
    expect(s.lease("w2")).toEqual([]);
    clock.now += 1;
    expect(s.stats().leaseTimeouts).toBe(1);
    const [second] = s.lease("w2", { leaseMs: 100 });
    expect(second!.token).toBeGreaterThan(first!.token);
    expect(second!.attempt).toBe(2);
    const stale = errorOf(() => s.complete("a", first!.token));
    expect(stale.code).toBe(ErrorCode.STALE_LEASE);
    expect(errorOf(() => s.heartbeat("a", first!.token)).code).toBe(ErrorCode.STALE_LEASE);
    expect(s.getTask("a")).toMatchObject({ state: "LEASED", leaseOwner: "w2" });
    expect(s.complete("a", second!.token)).toEqual({ duplicate: false });
    expect(s.complete("a", second!.token)).toEqual({ duplicate: true });
    expect(s.stats().staleRejections).toBe(2);
  });

  it("heartbeats extend a live lease", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    const [l] = s.lease("w1", { leaseMs: 100 });
    clock.now += 90;
    expect(s.heartbeat("a", l!.token, { leaseMs: 100 }).expiresAt).toBe(clock.now + 100);
    clock.now += 90;
    s.tick();
    expect(s.getTask("a")?.state).toBe("LEASED");
    expect(s.stats().leaseTimeouts).toBe(0);
  });

  it("a stale token changes nothing", () => {
    const { s, changes } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    const [l] = s.lease("w1");
    const before = JSON.stringify(s.snapshot().tasks);
    const n = changes.length;
    for (const call of [
      () => s.complete("a", l!.token + 1),
      () => s.fail("a", 7),
      () => s.heartbeat("a", 0),
    ]) {
      expect(errorOf(call).code).toBe(ErrorCode.STALE_LEASE);
    }
    expect(JSON.stringify(s.snapshot().tasks)).toBe(before);
    // Only the rejection counter is journaled (so a rebuilt engine reports it too).
    expect(changes.slice(n).every((c) => c.kind === "meta")).toBe(true);
    expect(s.stats().staleRejections).toBe(3);
  });

  it("takes only tasks up to maxKey (filling one request from several engines)", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 10 },
      { id: "b", deadline: 20 },
      { id: "c", deadline: 30 },
    ]);
    expect(s.lease("w", { max: 5, maxKey: 20 }).map((l) => l.taskId)).toEqual(["a", "b"]);
    expect(s.lease("w", { max: 5, maxKey: 29 })).toEqual([]);
  });

  it("breaks ties at maxKey by task id: up to maxTaskId, as one engine orders ties", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 10 },
      { id: "c", deadline: 10 },
      { id: "e", deadline: 10 },
    ]);
    // The next engine's first task is (10, "b"), then (10, "d").
    expect(s.lease("w", { max: 5, maxKey: 10, maxTaskId: "b" }).map((l) => l.taskId)).toEqual(["a"]);
    expect(s.lease("w", { max: 5, maxKey: 10, maxTaskId: "d" }).map((l) => l.taskId)).toEqual(["c"]);
    expect(s.lease("w", { max: 5, maxKey: 10 }).map((l) => l.taskId)).toEqual(["e"]);
  });

  it("validates its arguments", () => {
    const { s } = engine();
    expect(errorOf(() => s.lease("")).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(errorOf(() => s.lease("w", { max: 0 })).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(errorOf(() => s.lease("w", { leaseMs: -1 })).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe("retries", () => {
  it("backs off exponentially with jitter, then fails at the attempt cap and cancels dependents", () => {
    const { s, clock } = engine({ backoff: { baseMs: 100, maxMs: 10_000, jitter: 0.2 } });
    s.addTasks([
      { id: "a", deadline: 1, maxAttempts: 3 },
      { id: "b", deadline: 1, prerequisites: ["a"] },
      { id: "c", deadline: 1, prerequisites: ["b"] },
    ]);
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [l] = s.lease("w");
      const view = s.fail("a", l!.token, { reason: "boom" });
      expect(view.state).toBe("WAITING");
      expect(view.reason).toContain("boom");
      delays.push(view.retryAt! - clock.now);
      clock.now = view.retryAt! - 1;
      expect(s.lease("w")).toEqual([]);
      clock.now += 1;
    }
    // random() = 0.5 and 20 % jitter: 90 % of 100 ms, then of 200 ms.
    expect(delays).toEqual([90, 180]);
    const [last] = s.lease("w");
    expect(last!.attempt).toBe(3);
    expect(s.fail("a", last!.token, { reason: "boom" }).state).toBe("FAILED");
    expect(s.getTask("b")).toMatchObject({ state: "CANCELLED", reason: 'prerequisite "a" ended FAILED' });
    expect(s.getTask("c")).toMatchObject({ state: "CANCELLED", reason: 'prerequisite "b" ended CANCELLED' });
    expect(s.stats().retries).toBe(2);
  });

  it("a non-retryable failure fails at once; 'continue' dependents run anyway", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2, prerequisites: ["a"], onPrerequisiteFailure: "continue" },
    ]);
    const [l] = s.lease("w");
    expect(s.fail("a", l!.token, { retryable: false, reason: "bad input" })).toMatchObject({
      state: "FAILED",
      reason: "failed (not retryable): bad input",
    });
    expect(drain(s)).toEqual(["b"]);
  });

  it("lease expiries count as attempts", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "a", deadline: 1, maxAttempts: 2 });
    s.lease("w", { leaseMs: 10 });
    clock.now += 10;
    s.lease("w", { leaseMs: 10 });
    clock.now += 10;
    expect(s.getTask("a")).toMatchObject({ state: "FAILED", attempts: 2 });
    expect(s.stats().leaseTimeouts).toBe(2);
  });

  it("a dependent added after its prerequisite failed is cancelled at once", () => {
    const { s } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    s.fail("a", s.lease("w")[0]!.token, { retryable: false });
    s.addTasks({ id: "b", deadline: 1, prerequisites: ["a"] });
    expect(s.getTask("b")?.state).toBe("CANCELLED");
  });
});

describe("cancellation and deadline updates", () => {
  it("cancels runnable, waiting and leased tasks; a held lease goes stale", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
      { id: "c", deadline: 3, prerequisites: ["b"] },
    ]);
    const [l] = s.lease("w");
    s.cancel("a");
    expect(errorOf(() => s.complete("a", l!.token)).code).toBe(ErrorCode.STALE_LEASE);
    s.cancel("b", "no longer needed");
    expect(s.getTask("b")?.reason).toBe("no longer needed");
    expect(s.getTask("c")?.state).toBe("CANCELLED");
    s.cancel("c"); // idempotent
    expect(s.consumeTask()).toBeNull();
    expect(s.stats().runnable).toBe(0);
  });

  it("refuses to cancel a completed task", () => {
    const { s } = engine();
    s.addTasks({ id: "a", deadline: 1 });
    s.consumeTask();
    s.completeTask("a");
    expect(errorOf(() => s.cancel("a")).code).toBe(ErrorCode.INVALID_STATE);
  });

  it("moves a runnable task both ways in the heap", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 10 },
      { id: "b", deadline: 20 },
      { id: "c", deadline: 30 },
    ]);
    s.updateDeadline("c", 5);
    s.updateDeadline("a", 25);
    expect(drain(s)).toEqual(["c", "b", "a"]);
    expect(errorOf(() => s.updateDeadline("a", Number.NaN)).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe("starvation guard and hard deadlines", () => {
  it("orders a task that waited too long as if due when its wait ran out", () => {
    const { s, clock } = engine({ maxRunnableWaitMs: 1_000 });
    s.addTasks({ id: "far", deadline: 1e12 });
    clock.now += 500;
    s.addTasks({ id: "soon", deadline: clock.now + 10_000 });
    expect(s.peekFrontier()?.id).toBe("far"); // its wait runs out at 2_000, before "soon"'s deadline
    s.addTasks({ id: "urgent", deadline: 1_800 });
    expect(drain(s)).toEqual(["urgent", "far", "soon"]);
  });

  it("never dispatches a hard-deadline task past its deadline", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "hard", deadline: 1_100, hardDeadline: true },
      { id: "dep", deadline: 2_000, prerequisites: ["hard"] },
      { id: "soft", deadline: 1_100 },
    ]);
    clock.now = 1_100;
    expect(drain(s)).toEqual(["soft"]);
    expect(s.getTask("hard")).toMatchObject({ state: "EXPIRED" });
    expect(s.getTask("dep")?.state).toBe("CANCELLED");
    expect(s.stats().deadlineMisses).toBe(2); // the expiry, and "soft" dispatched at its deadline
  });
});

describe("stats", () => {
  it("counts by state and reports the oldest runnable age and the frontier", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "a", deadline: 7 });
    clock.now += 250;
    s.addTasks([
      { id: "b", deadline: 3 },
      { id: "c", deadline: 9, prerequisites: ["a"] },
    ]);
    const stats = s.stats();
    expect(stats.counts).toMatchObject({ RUNNABLE: 2, WAITING: 1, LEASED: 0 });
    expect(stats.oldestRunnableAgeMs).toBe(250);
    expect(stats.frontierDeadline).toBe(3);
    s.lease("w");
    s.lease("w");
    expect(s.stats()).toMatchObject({
      runnable: 0,
      leased: 2,
      oldestRunnableAgeMs: 0,
      frontierDeadline: null,
    });
  });
});

describe("change records and rebuild", () => {
  it("a snapshot plus the changes since rebuilds the engine exactly", () => {
    const { s, clock, changes } = engine({ allowForwardReferences: true });
    s.addTasks([
      { id: "a", deadline: 5 },
      { id: "b", deadline: 1, prerequisites: ["a"] },
      { id: "f", deadline: 2, prerequisites: ["later"] },
    ]);
    const snap = s.snapshot();
    const from = changes.length;
    const [la] = s.lease("w", { leaseMs: 100 });
    s.addTasks({ id: "c", deadline: 3 });
    clock.now += 10;
    const rebuilt = Scheduler.restore(snap, changes.slice(from), {
      now: () => clock.now,
      allowForwardReferences: true,
    });
    expect(rebuilt.snapshot()).toEqual(s.snapshot());
    // Both behave the same from here on: the lease is honoured, tokens keep rising.
    for (const e of [s, rebuilt]) {
      e.complete("a", la!.token);
      const next = e.lease("w2", { max: 5 });
      expect(next.map((l) => l.taskId)).toEqual(["b", "c"]);
      expect(next[0]!.token).toBeGreaterThan(la!.token);
      e.addTasks({ id: "later", deadline: 0 });
      expect(e.lease("w3").map((l) => l.taskId)).toEqual(["later"]);
    }
    expect(rebuilt.snapshot()).toEqual(s.snapshot());
  });

  it("restores from rows read once, in any order, exactly as from the snapshot", () => {
    const options: SchedulerOptions = { allowForwardReferences: true, retentionMs: 60_000 };
    /** An engine with a task in every kind of state, and the clock it runs on. */
    const original = () => {
      const { s, clock } = engine(options);
      s.addTasks([
        { id: "a", deadline: 5 },
        { id: "b", deadline: 5 },
        { id: "c", deadline: 1, prerequisites: ["a", "later"] },
        { id: "d", deadline: 2, prerequisites: ["b"], onPrerequisiteFailure: "continue" },
        { id: "e", deadline: 1_500, hardDeadline: true },
      ]);
      const [la] = s.lease("w", { leaseMs: 500 }); // a
      clock.now += 10;
      s.addTasks([
        { id: "f", deadline: 5 },
        { id: "g", deadline: 0, maxAttempts: 3 },
        { id: "h", deadline: 7 },
      ]);
      const [lg, lb] = s.lease("w", { max: 2, leaseMs: 5_000 }); // g, b
      s.fail("g", lg!.token, { reason: "flaky" }); // retry backoff
      s.fail("b", lb!.token, { retryable: false }); // d continues
      const [ld] = s.lease("w", { leaseMs: 5_000 }); // d
      clock.now += 10;
      s.complete("a", la!.token);
      s.cancel("f");
      return { s, clock, live: ld! };
    };
    const byId = <T extends { spec: { id: string } }>(xs: readonly T[]) =>
      [...xs].sort((x, y) => (x.spec.id < y.spec.id ? -1 : 1));
    const probe = (e: Scheduler) => ({
      stats: e.stats(),
      views: ["a", "b", "c", "d", "e", "f", "g", "h"].map((id) => e.getTask(id)),
      frontier: e.peekFrontier(),
      next: e.nextTimerAt(),
    });
    const variants = [
      (tasks: Snapshot["tasks"]) => tasks,
      (tasks: Snapshot["tasks"]) => [...tasks].reverse(),
      (tasks: Snapshot["tasks"]) => {
        function* once() {
          yield* [...tasks].reverse();
        }
        return once();
      },
    ];
    for (const variant of variants) {
      for (const counted of [true, false]) {
        const { s, clock, live } = original();
        const snap = s.snapshot();
        const source = { version: 1 as const, meta: snap.meta, tasks: variant(snap.tasks) };
        const rebuilt = Scheduler.restore(
          counted ? { ...source, taskCount: snap.tasks.length } : source,
          [],
          {
            now: () => clock.now,
            random: () => 0.5,
            ...options,
          },
        );
        expect(byId(rebuilt.snapshot().tasks)).toEqual(byId(snap.tasks));
        expect(probe(rebuilt)).toEqual(probe(s));
        // The same from here on: the live lease, timers (g's retry, e's hard deadline), dispatch order.
        for (const e of [s, rebuilt]) e.heartbeat(live.taskId, live.token, { leaseMs: 5_000 });
        clock.now += 1_000;
        expect(rebuilt.lease("x", { max: 10 }).map((l) => l.taskId)).toEqual(
          s.lease("x", { max: 10 }).map((l) => l.taskId),
        );
        for (const e of [s, rebuilt]) e.addTasks({ id: "later", deadline: 3 });
        expect(probe(rebuilt)).toEqual(probe(s));
      }
    }
  });

  it("refuses a restore that names a task twice, whether the rows are in order or not", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
      { id: "c", deadline: 3 },
    ]);
    const snap = s.snapshot();
    const [a, b, c] = snap.tasks;
    for (const tasks of [
      [a!, b!, b!, c!],
      [a!, b!, c!, a!],
      [c!, b!, a!, c!],
    ]) {
      const error = errorOf(() => Scheduler.restore({ version: 1, meta: snap.meta, tasks }));
      expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(error.message).toMatch(/appears twice/);
    }
  });

  it("retention forgets terminal tasks, but not while a live dependent still needs them", () => {
    const { s, clock, changes } = engine({ retentionMs: 1_000 });
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
      { id: "c", deadline: 3, prerequisites: ["a", "b"] },
    ]);
    s.consumeTask();
    s.completeTask("a");
    clock.now += 1_000;
    s.tick();
    expect(s.getTask("a")?.state).toBe("COMPLETED"); // c still waits on b
    s.consumeTask();
    s.completeTask("b");
    s.consumeTask();
    s.completeTask("c");
    clock.now += 2_000;
    s.tick();
    expect(["a", "b", "c"].map((id) => s.getTask(id))).toEqual([undefined, undefined, undefined]);
    expect(changes.filter((c) => c.kind === "drop")).toHaveLength(3);
    expect(s.stats().counts.COMPLETED).toBe(0);
  });
});

describe("frontierDepth", () => {
  it("gives the ordering keys of the runnable tasks at the ranks asked, up to what is runnable", () => {
    const { s } = engine();
    const ranks = [1, 2, 4, 8, 16];
    expect(s.frontierDepth(ranks)).toEqual([]);
    // Deadlines 100, 110, …; one waits on a prerequisite (not runnable), one is leased.
    s.addTasks(Array.from({ length: 12 }, (_, i) => ({ id: `t${i}`, deadline: 100 + 10 * i })));
    s.addTasks([{ id: "w", deadline: 1, prerequisites: ["t11"] }]);
    expect(s.frontierDepth(ranks)).toEqual([100, 110, 130, 170]);
    s.lease("worker", { max: 1 });
    // t0 is leased: ranks move up by one.
    expect(s.frontierDepth(ranks)).toEqual([110, 120, 140, 180]);
    expect(s.frontierDepth([1, 3])).toEqual([110, 130]);
    expect(s.frontierDepth(ranks)[0]).toBe(s.peekFrontier()?.key);
  });
});

describe("leastKeys", () => {
  it("gives the ordering keys of the earliest runnable tasks of the types asked, ascending, taking none", () => {
    const { s } = engine();
    expect(s.leastKeys(3)).toEqual([]);
    s.addTasks([
      { id: "a", deadline: 300, type: "email" },
      { id: "b", deadline: 100, type: "video" },
      { id: "c", deadline: 200, type: "email" },
      { id: "d", deadline: 50 },
      { id: "w", deadline: 1, prerequisites: ["a"] }, // waiting: never counted
    ]);
    expect(s.leastKeys(10)).toEqual([50, 100, 200, 300]);
    expect(s.leastKeys(2)).toEqual([50, 100]);
    expect(s.leastKeys(10, ["email"])).toEqual([200, 300]);
    expect(s.leastKeys(10, ["email", "video"])).toEqual([100, 200, 300]);
    expect(s.leastKeys(10, ["sms"])).toEqual([]);
    expect(s.stats().counts.RUNNABLE).toBe(4);
  });
});
