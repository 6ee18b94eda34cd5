/**
 * Delayed start (`notBefore`) and the per-attempt run time limit
 * (`timeoutMs`), on the engine's injected clock: when a task may first run,
 * and how long one attempt may hold it whatever its heartbeats say.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, StaleLeaseError, ValidationError } from "./errors.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { engine as testEngine } from "./test-engine.fixture.js";

/** The test engine (test-engine.fixture.ts) with a fixed backoff of 100 ms. */
const engine = (options: SchedulerOptions = {}) =>
  testEngine({ backoff: { baseMs: 100, maxMs: 100, jitter: 0 }, ...options });

/** The problems of the ValidationError `fn` throws. */
function problemsOf(fn: () => unknown): { taskId: string; code: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => ({ ...p }));
    throw e;
  }
  throw new Error("expected a ValidationError");
}

describe("notBefore: delayed start", () => {
  it("keeps a task WAITING until notBefore, then makes it runnable, ordered by deadline", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "later", deadline: 2_000, notBefore: 1_500 },
      { id: "now", deadline: 3_000 },
    ]);
    expect(s.getTask("later")).toMatchObject({ state: "WAITING", notBefore: 1_500, unmetPrerequisites: 0 });
    expect(s.getTask("later")?.retryAt).toBeUndefined();
    expect(s.nextTimerAt()).toBe(1_500);
    expect(s.lease("w", { max: 5 }).map((l) => l.taskId)).toEqual(["now"]);

    clock.now = 1_499;
    expect(s.lease("w")).toEqual([]);
    clock.now = 1_500;
    expect(s.getTask("later")).toMatchObject({ state: "RUNNABLE", runnableSince: 1_500 });
    s.addTasks({ id: "after", deadline: 2_500 });
    expect(s.lease("w", { max: 2 }).map((l) => l.taskId)).toEqual(["later", "after"]);
  });

  it("waits for notBefore after the last prerequisite completes, and not when it has passed", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "p", deadline: 1 },
      { id: "d", deadline: 2, prerequisites: ["p"], notBefore: 1_200 },
      { id: "e", deadline: 3, prerequisites: ["p"], notBefore: 900 },
    ]);
    const [p] = s.lease("w");
    s.complete("p", p!.token);
    expect(s.getTask("d")).toMatchObject({ state: "WAITING", unmetPrerequisites: 0 });
    expect(s.getTask("e")?.state).toBe("RUNNABLE");
    clock.now = 1_200;
    expect(s.lease("w", { max: 2 }).map((l) => l.taskId)).toEqual(["d", "e"]);
  });

  it("survives a rebuild from the change records and from a snapshot, with or without prerequisites met", () => {
    const { s, clock, changes } = engine();
    s.addTasks([
      { id: "p", deadline: 1 },
      { id: "blocked", deadline: 2, prerequisites: ["p"], notBefore: 1_300 },
      { id: "delayed", deadline: 3, notBefore: 1_100 },
    ]);
    const snapshot = s.snapshot();
    const restore = (from: Scheduler) =>
      Scheduler.restore(from.snapshot(), [], { now: () => clock.now, random: () => 0.5 });
    const fromChanges = Scheduler.restore({ version: 1, meta: snapshot.meta, tasks: [] }, changes, {
      now: () => clock.now,
    });
    for (const r of [restore(s), fromChanges]) {
      expect(r.nextTimerAt()).toBe(1_100); // "blocked" waits on p, not on a timer
      expect(r.getTask("delayed")).toMatchObject({ state: "WAITING", notBefore: 1_100 });
    }
    clock.now = 1_100;
    const [p] = s.lease("w");
    s.complete("p", p!.token); // "blocked" now waits only for its notBefore
    const rebuilt = restore(s);
    expect(rebuilt.nextTimerAt()).toBe(1_300);
    clock.now = 1_300;
    expect(rebuilt.lease("w", { max: 3 }).map((l) => l.taskId)).toEqual(["blocked", "delayed"]);
  });

  it("is refused when not a finite number, or not before a hard deadline; a cancel clears its timer", () => {
    const { s } = engine();
    expect(
      problemsOf(() =>
        s.addTasks([
          { id: "a", deadline: 5, notBefore: Number.NaN },
          { id: "b", deadline: 5, notBefore: "soon" as unknown as number },
          { id: "c", deadline: 5_000, hardDeadline: true, notBefore: 5_000 },
        ]),
      ),
    ).toEqual([
      { taskId: "a", code: "MALFORMED", message: "notBefore must be a finite number, got NaN" },
      { taskId: "b", code: "MALFORMED", message: 'notBefore must be a finite number, got "soon"' },
      { taskId: "c", code: "MALFORMED", message: "notBefore 5000 is not before the hard deadline 5000" },
    ]);
    s.addTasks({ id: "d", deadline: 5, notBefore: 2_000 });
    s.cancel("d");
    expect(s.nextTimerAt()).toBeNull();
  });

  it("waits for notBefore again when an ended task is retried before it, across a rebuild", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "d", deadline: 5, notBefore: 2_000 });
    s.cancel("d");
    expect(s.retry("d")).toMatchObject({ state: "WAITING", unmetPrerequisites: 0 });
    const rebuilt = Scheduler.restore(s.snapshot(), [], { now: () => clock.now });
    for (const e of [s, rebuilt]) expect(e.nextTimerAt()).toBe(2_000);
    clock.now = 2_000;
    expect(rebuilt.lease("w").map((l) => l.taskId)).toEqual(["d"]);
  });

  it("does not take a fail with token 0 on a task never leased as a repeat", () => {
    const { s } = engine();
    s.addTasks({ id: "d", deadline: 5, notBefore: 2_000 });
    expect(() => s.fail("d", 0)).toThrow(StaleLeaseError);
  });
});

describe("timeoutMs: the run time limit of one attempt", () => {
  it("caps the lease at grant + timeoutMs however it is heartbeaten, then retries after a backoff", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "t", deadline: 10_000, timeoutMs: 250, maxAttempts: 2 });
    const [lease] = s.lease("w1", { leaseMs: 100 });
    expect(lease).toMatchObject({ expiresAt: 1_100, task: { timeoutMs: 250 } });
    expect(s.getTask("t")).toMatchObject({ state: "LEASED", timeoutMs: 250, timeoutAt: 1_250 });
    clock.now = 1_090;
    expect(s.heartbeat("t", lease!.token, { leaseMs: 100 }).expiresAt).toBe(1_190);
    clock.now = 1_180;
    expect(s.heartbeat("t", lease!.token, { leaseMs: 100 }).expiresAt).toBe(1_250);
    clock.now = 1_250;
    const refused = (() => {
      try {
        s.heartbeat("t", lease!.token, { leaseMs: 100 });
      } catch (e) {
        return e as StaleLeaseError;
      }
      throw new Error("expected the heartbeat to be refused");
    })();
    expect(refused).toBeInstanceOf(StaleLeaseError);
    expect(refused.code).toBe(ErrorCode.STALE_LEASE);
    expect(refused.message).toContain("attempt 1 of 2 timed out after 250 ms (lease held by w1)");
    expect(s.getTask("t")).toMatchObject({
      state: "WAITING",
      retryAt: 1_350,
      reason: "attempt 1 of 2 timed out after 250 ms (lease held by w1)",
    });
    expect(s.stats()).toMatchObject({ attemptTimeouts: 1, leaseTimeouts: 0, retries: 1 });

    clock.now = 1_350;
    const [second] = s.lease("w2", { leaseMs: 1_000 });
    expect(second).toMatchObject({ attempt: 2, expiresAt: 1_600 });
    clock.now = 1_600;
    expect(s.getTask("t")).toMatchObject({
      state: "FAILED",
      reason: "attempt 2 of 2 timed out after 250 ms (lease held by w2)",
    });
    expect(s.stats()).toMatchObject({ attemptTimeouts: 2, leaseTimeouts: 0 });
  });

  it("counts a lease that lapses before the limit as a lease timeout, not a run timeout", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "t", deadline: 10_000, timeoutMs: 500 });
    s.lease("w", { leaseMs: 100 });
    clock.now = 1_100;
    expect(s.getTask("t")?.state).toBe("RUNNABLE");
    expect(s.stats()).toMatchObject({ attemptTimeouts: 0, leaseTimeouts: 1 });
  });

  it("bounds a consumed task too, and keeps the limit across a restore of the live lease", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "c", deadline: 1, timeoutMs: 300 },
      { id: "l", deadline: 2, timeoutMs: 300 },
    ]);
    expect(s.consumeTask()?.id).toBe("c");
    clock.now = 1_100;
    const [l] = s.lease("w", { leaseMs: 10_000 });
    expect(l!.expiresAt).toBe(1_400);
    const r = Scheduler.restore(s.snapshot(), [], { now: () => clock.now });
    expect(r.getTask("l")).toMatchObject({ timeoutAt: 1_400, leaseExpiresAt: 1_400 });
    clock.now = 1_200;
    // The restored lease still knows its start: a heartbeat cannot carry it past 1,400.
    expect(r.heartbeat("l", l!.token, { leaseMs: 10_000 }).expiresAt).toBe(1_400);
    clock.now = 1_300;
    expect(r.getTask("c")?.state).toBe("WAITING");
    expect(r.stats().attemptTimeouts).toBe(1);
    expect(r.snapshot().meta.attemptTimeouts).toBe(1);
  });

  it("is refused unless a positive integer of at most 2^32 - 1", () => {
    const { s } = engine();
    const bad = [0, -1, 1.5, 2 ** 32, "60s"];
    expect(
      problemsOf(() =>
        s.addTasks(bad.map((timeoutMs, i) => ({ id: `t${i}`, deadline: 1, timeoutMs: timeoutMs as number }))),
      ).map((p) => p.message),
    ).toEqual([
      "timeoutMs must be an integer in 1..4294967295, got 0",
      "timeoutMs must be an integer in 1..4294967295, got -1",
      "timeoutMs must be an integer in 1..4294967295, got 1.5",
      "timeoutMs must be an integer in 1..4294967295, got 4294967296",
      'timeoutMs must be an integer in 1..4294967295, got "60s"',
    ]);
  });
});
