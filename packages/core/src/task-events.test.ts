/**
 * The observer's optional taskEvent: the notable moves of a task, with its
 * id and the engine's reason, on the injected clock; and nothing built for
 * an observer that leaves it out.
 */
import { describe, expect, it } from "vitest";
import type { SchedulerObserver, TaskEvent } from "./observer.js";
import { Scheduler } from "./scheduler.js";

const quiet: SchedulerObserver = {
  added() {},
  leased() {},
  completed() {},
  retried() {},
  leaseExpired() {},
  released() {},
  attemptTimedOut() {},
  ended() {},
  staleRejected() {},
  duplicate() {},
};

function engine() {
  let now = 1_000;
  const events: TaskEvent[] = [];
  const s = new Scheduler({
    now: () => now,
    random: () => 0,
    backoff: { baseMs: 10, maxMs: 10, jitter: 0 },
    observer: { ...quiet, taskEvent: (e) => events.push(e) },
  });
  return { s, events, advance: (ms: number) => (now += ms) };
}

describe("taskEvent", () => {
  it("tells of a retried failure, an expired lease, a late dispatch and a task that ends badly", () => {
    const { s, events, advance } = engine();
    s.addTasks([{ id: "t", deadline: 1_500, workflowId: "w", maxAttempts: 3 }]);
    const [first] = s.lease("a", { leaseMs: 100 });
    s.fail("t", first!.token, { reason: "disk full" });
    expect(events.at(-1)).toEqual({
      kind: "retrying",
      taskId: "t",
      workflowId: "w",
      attempt: 1,
      reason: "attempt 1 of 3 failed: disk full",
    });
    advance(10);
    s.lease("b", { leaseMs: 100 });
    advance(100);
    s.tick();
    expect(events.at(-1)).toMatchObject({ kind: "leaseExpired", taskId: "t", attempt: 2 });
    expect(events.at(-1)?.reason).toMatch(/lease held by b expired on attempt 2 of 3/);
    advance(1_000); // past its deadline
    const [third] = s.lease("c", { leaseMs: 100 });
    expect(events.at(-1)).toMatchObject({ kind: "leasedLate", taskId: "t" });
    s.fail("t", third!.token, { retryable: false, reason: "bad input" });
    expect(events.at(-1)).toMatchObject({ kind: "ended", taskId: "t", state: "FAILED", attempt: 3 });
  });

  it("builds nothing for an observer without taskEvent, and a throwing one changes nothing", () => {
    const plain = new Scheduler({ observer: quiet });
    plain.addTasks([{ id: "x", deadline: 1 }]);
    const [lease] = plain.lease("a");
    plain.fail("x", lease!.token, { retryable: false });
    expect(plain.getTask("x")?.state).toBe("FAILED");
    const throwing = new Scheduler({
      observer: {
        ...quiet,
        taskEvent: () => {
          throw new Error("observer bug");
        },
      },
    });
    throwing.addTasks([{ id: "y", deadline: 1 }]);
    const [l2] = throwing.lease("a");
    throwing.fail("y", l2!.token, { retryable: false });
    expect(throwing.getTask("y")?.state).toBe("FAILED");
  });
});
