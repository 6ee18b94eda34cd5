import { describe, expect, it } from "vitest";
import type { SchedulerObserver } from "./observer.js";
import { Scheduler } from "./scheduler.js";

/** An observer that writes down every call, in order. */
function recorder(): { observer: SchedulerObserver; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const observer: SchedulerObserver = {
    added: (n) => calls.push(["added", n]),
    leased: (waitMs, unblocked, late) => calls.push(["leased", waitMs, unblocked, late]),
    completed: (runMs, late) => calls.push(["completed", runMs, late]),
    retried: () => calls.push(["retried"]),
    leaseExpired: () => calls.push(["leaseExpired"]),
    released: () => calls.push(["released"]),
    attemptTimedOut: () => calls.push(["attemptTimedOut"]),
    ended: (state) => calls.push(["ended", state]),
    staleRejected: () => calls.push(["staleRejected"]),
    duplicate: (op) => calls.push(["duplicate", op]),
  };
  return { observer, calls };
}

describe("SchedulerObserver", () => {
  it("hears queue wait, run time, the dispatch latency of an unblocked dependent, and lateness, in clock time", () => {
    let now = 1_000;
    const { observer, calls } = recorder();
    const engine = new Scheduler({ now: () => now, observer });
    engine.addTasks([
      { id: "a", deadline: 1_500 },
      { id: "b", deadline: 2_000, prerequisites: ["a"] },
    ]);
    now = 1_100;
    const [a] = engine.lease("w", { leaseMs: 10_000 });
    now = 1_600; // a finishes 100 after its deadline; b becomes runnable now
    engine.complete("a", a!.token);
    now = 2_050; // b is leased 450 after a completed, 50 after its deadline
    const [b] = engine.lease("w", { leaseMs: 10_000 });
    now = 2_060;
    engine.complete("b", b!.token);
    engine.complete("b", b!.token);
    expect(calls).toEqual([
      ["added", 2],
      ["leased", 100, false, false],
      ["completed", 500, true],
      ["leased", 450, true, true],
      ["completed", 10, true],
      ["duplicate", "complete"],
    ]);
  });

  it("hears retries, lease expiries, failures, cascades, stale tokens and repeated fails", () => {
    let now = 0;
    const { observer, calls } = recorder();
    const engine = new Scheduler({
      now: () => now,
      observer,
      backoff: { baseMs: 10, maxMs: 10, jitter: 0 },
    });
    engine.addTasks([
      { id: "x", deadline: 100, maxAttempts: 3 },
      { id: "y", deadline: 100, prerequisites: ["x"] },
    ]);
    const [first] = engine.lease("w", { leaseMs: 50 });
    engine.fail("x", first!.token, { reason: "boom" });
    now = 10; // backoff over: runnable again (not unblocked: a retry)
    const [second] = engine.lease("w", { leaseMs: 50 });
    now = 60; // the second lease expires
    expect(() => engine.heartbeat("x", second!.token)).toThrow(/no longer holds/);
    const [third] = engine.lease("w", { leaseMs: 50 });
    engine.fail("x", third!.token, { retryable: false });
    engine.fail("x", third!.token, { retryable: false });
    expect(calls).toEqual([
      ["added", 2],
      ["leased", 0, false, false],
      ["retried"],
      ["leased", 0, false, false],
      ["leaseExpired"],
      ["staleRejected"],
      ["leased", 0, false, false],
      ["ended", "FAILED"],
      ["ended", "CANCELLED"],
      ["duplicate", "fail"],
    ]);
  });

  it("hears a hard deadline passing as EXPIRED, and does not time a lease granted before a restore", () => {
    let now = 0;
    const { observer, calls } = recorder();
    const engine = new Scheduler({ now: () => now, observer });
    engine.addTasks([
      { id: "soon", deadline: 5, hardDeadline: true },
      { id: "held", deadline: 1_000 },
    ]);
    engine.lease("w", { max: 1, leaseMs: 1_000 }); // "soon" first: earliest deadline
    const [held] = engine.lease("w", { leaseMs: 1_000 });
    const restored = Scheduler.restore(engine.snapshot(), [], { now: () => now, observer });
    now = 20;
    restored.complete("held", held!.token);
    expect(calls.slice(-1)).toEqual([["completed", undefined, false]]);

    const fresh = recorder();
    const other = new Scheduler({ now: () => now, observer: fresh.observer });
    other.addTasks([{ id: "late", deadline: 25, hardDeadline: true }]);
    now = 30;
    other.tick();
    expect(fresh.calls).toEqual([
      ["added", 1],
      ["ended", "EXPIRED"],
    ]);
  });

  it("hears a run time limit as attemptTimedOut (not leaseExpired), and times a limited lease across a restore", () => {
    let now = 0;
    const { observer, calls } = recorder();
    const engine = new Scheduler({ now: () => now, observer, backoff: { baseMs: 10, maxMs: 10, jitter: 0 } });
    engine.addTasks([{ id: "hung", deadline: 1_000, timeoutMs: 100, maxAttempts: 2 }]);
    const [first] = engine.lease("w", { leaseMs: 60 });
    now = 50;
    engine.heartbeat("hung", first!.token, { leaseMs: 60 }); // alive, but its limit is at 100
    now = 100;
    engine.tick();
    now = 110;
    const [second] = engine.lease("w", { leaseMs: 60 });
    // The second attempt's start (110) survives a restore through its timeoutAt, so its run time is known.
    const restored = Scheduler.restore(engine.snapshot(), [], { now: () => now, observer });
    now = 140;
    restored.complete("hung", second!.token);
    expect(calls).toEqual([
      ["added", 1],
      ["leased", 0, false, false],
      ["attemptTimedOut"],
      ["retried"],
      ["leased", 0, false, false],
      ["completed", 30, false],
    ]);
  });
});
