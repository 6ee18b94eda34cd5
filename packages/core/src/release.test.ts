/**
 * `release`: a holder hands its lease back without spending an attempt. The
 * task is RUNNABLE again at once, as if the lease had never been granted,
 * except that the fencing token stays spent: the released lease is fenced,
 * and the next grant gets a larger token.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, StaleLeaseError, UnknownTaskError } from "./errors.js";
import type { SchedulerObserver, TaskEvent } from "./observer.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { engine as testEngine } from "./test-engine.fixture.js";

/** The test engine (test-engine.fixture.ts) with a fixed backoff of 100 ms. */
const engine = (options: SchedulerOptions = {}) =>
  testEngine({ backoff: { baseMs: 100, maxMs: 100, jitter: 0 }, ...options });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("release", () => {
  it("makes the task RUNNABLE at once, its attempt not spent, and fences the released token", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "t", deadline: 5_000, maxAttempts: 2 });
    const [first] = s.lease("w1", { leaseMs: 1_000 });
    expect(first).toMatchObject({ attempt: 1 });
    clock.now = 1_100;
    expect(s.release("t", first!.token)).toEqual({ duplicate: false });
    expect(s.getTask("t")).toMatchObject({
      state: "RUNNABLE",
      attempts: 0,
      token: first!.token,
      released: true,
      runnableSince: 1_100,
    });
    expect(s.getTask("t")?.leaseExpiresAt).toBeUndefined();
    expect(s.nextTimerAt()).toBeNull(); // no lease timer left behind
    // Fenced: every call under the released token is stale.
    expect(() => s.heartbeat("t", first!.token)).toThrow(StaleLeaseError);
    expect(codeOf(() => s.complete("t", first!.token))).toBe(ErrorCode.STALE_LEASE);
    expect(codeOf(() => s.fail("t", first!.token))).toBe(ErrorCode.STALE_LEASE);
    // Leased again at once (no backoff) as the same attempt, under a larger token.
    const [second] = s.lease("w2", { leaseMs: 1_000 });
    expect(second).toMatchObject({ taskId: "t", attempt: 1, owner: "w2" });
    expect(second!.token).toBeGreaterThan(first!.token);
    expect(s.getTask("t")?.released).toBeUndefined();
    // Releases do not count towards maxAttempts: two more releases, then two failures end it.
    s.release("t", second!.token);
    const [third] = s.lease("w2");
    s.release("t", third!.token);
    const [fourth] = s.lease("w2");
    expect(fourth).toMatchObject({ attempt: 1 });
    s.fail("t", fourth!.token);
    clock.now += 100;
    const [fifth] = s.lease("w2");
    expect(fifth).toMatchObject({ attempt: 2 });
    expect(s.fail("t", fifth!.token).state).toBe("FAILED");
  });

  it("answers a resend as a duplicate while no lease was granted since, and STALE_LEASE after", () => {
    const { s, changes } = engine();
    s.addTasks({ id: "t", deadline: 5_000 });
    const [lease] = s.lease("w");
    s.release("t", lease!.token);
    const recorded = changes.length;
    expect(s.release("t", lease!.token)).toEqual({ duplicate: true });
    expect(changes.length).toBe(recorded); // nothing changed
    expect(s.stats().staleRejections).toBe(0);
    const [next] = s.lease("w");
    expect(codeOf(() => s.release("t", lease!.token))).toBe(ErrorCode.STALE_LEASE);
    // Never a duplicate of a lease that ended some other way.
    s.fail("t", next!.token);
    expect(codeOf(() => s.release("t", next!.token))).toBe(ErrorCode.STALE_LEASE);
    expect(s.stats().staleRejections).toBe(2);
  });

  it("refuses a lease that expired, a wrong token and an unknown task, changing nothing", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "t", deadline: 5_000 });
    const [lease] = s.lease("w", { leaseMs: 100 });
    expect(codeOf(() => s.release("t", lease!.token + 1))).toBe(ErrorCode.STALE_LEASE);
    expect(s.getTask("t")).toMatchObject({ state: "LEASED", attempts: 1 });
    clock.now = 1_100; // expired: that attempt is spent
    expect(codeOf(() => s.release("t", lease!.token))).toBe(ErrorCode.STALE_LEASE);
    expect(s.getTask("t")).toMatchObject({ state: "RUNNABLE", attempts: 1 });
    expect(s.getTask("t")?.released).toBeUndefined();
    expect(() => s.release("nobody", 1)).toThrow(UnknownTaskError);
  });

  it("puts a task whose hard deadline passed while it was leased to EXPIRED, as if it had stayed runnable", () => {
    const { s, clock } = engine();
    s.addTasks({ id: "t", deadline: 1_500, hardDeadline: true });
    const [lease] = s.lease("w", { leaseMs: 10_000 });
    clock.now = 1_600;
    expect(s.release("t", lease!.token)).toEqual({ duplicate: false });
    expect(s.getTask("t")).toMatchObject({ state: "EXPIRED", attempts: 0, released: true });
    expect(s.release("t", lease!.token)).toEqual({ duplicate: true });
  });

  it("keeps the run time limit's clock for the next grant only, and releases a consumed task too", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "a", deadline: 1, timeoutMs: 500 },
      { id: "b", deadline: 2 },
    ]);
    const [a] = s.lease("w", { leaseMs: 10_000 });
    clock.now = 1_400;
    s.release("a", a!.token);
    const [again] = s.lease("w", { leaseMs: 10_000 });
    // The limit runs from the new grant, not from the released one.
    expect(again).toMatchObject({ taskId: "a", expiresAt: 1_900 });
    const b = s.consumeTask();
    expect(b?.id).toBe("b");
    const token = s.getTask("b")!.token;
    expect(s.release("b", token)).toEqual({ duplicate: false });
    expect(s.getTask("b")).toMatchObject({ state: "RUNNABLE", attempts: 0 });
  });

  it("is journaled: a rebuilt engine has the task released, and answers the resend the same", () => {
    const { s, changes, clock } = engine();
    s.addTasks([
      { id: "p", deadline: 1 },
      { id: "d", deadline: 2, prerequisites: ["p"] },
    ]);
    const [p] = s.lease("w");
    s.release("p", p!.token);
    const rebuilt = Scheduler.restore({ version: 1, meta: s.snapshot().meta, tasks: [] }, changes, {
      now: () => clock.now,
    });
    expect(rebuilt.snapshot()).toEqual(s.snapshot());
    expect(rebuilt.getTask("p")).toMatchObject({ state: "RUNNABLE", attempts: 0, released: true });
    expect(rebuilt.release("p", p!.token)).toEqual({ duplicate: true });
    // From a snapshot too.
    const fromSnapshot = Scheduler.restore(s.snapshot(), [], { now: () => clock.now });
    expect(fromSnapshot.release("p", p!.token)).toEqual({ duplicate: true });
    const [again] = fromSnapshot.lease("w");
    expect(again!.token).toBeGreaterThan(p!.token);
  });

  it("moves with its slot: an adopted released task answers the resend as a duplicate", () => {
    const { s } = engine();
    s.addTasks({ id: "t", deadline: 1, workflowId: "wf" });
    const [lease] = s.lease("w");
    s.release("t", lease!.token);
    const records = s.exportTasks((workflowId) => workflowId === "wf");
    const { s: target } = engine();
    target.adoptTasks(records);
    expect(target.release("t", lease!.token)).toEqual({ duplicate: true });
    expect(target.lease("w")[0]).toMatchObject({ taskId: "t", attempt: 1 });
  });

  it("tells the observer: released, a duplicate, a stale call, and a task event", () => {
    const heard: string[] = [];
    const events: TaskEvent[] = [];
    const observer: SchedulerObserver = {
      added: () => {},
      leased: () => heard.push("leased"),
      completed: () => {},
      retried: () => {},
      leaseExpired: () => {},
      released: () => heard.push("released"),
      attemptTimedOut: () => {},
      ended: () => {},
      staleRejected: () => heard.push("stale"),
      duplicate: (op) => heard.push(`duplicate ${op}`),
      taskEvent: (e) => events.push(e),
    };
    const { s } = engine({ observer });
    s.addTasks({ id: "t", deadline: 5_000, workflowId: "wf" });
    const [lease] = s.lease("w");
    s.release("t", lease!.token);
    s.release("t", lease!.token);
    expect(codeOf(() => s.release("t", 999))).toBe(ErrorCode.STALE_LEASE);
    expect(heard).toEqual(["leased", "released", "duplicate release", "stale"]);
    expect(events).toEqual([{ kind: "released", taskId: "t", workflowId: "wf", attempt: 1 }]);
  });
});
