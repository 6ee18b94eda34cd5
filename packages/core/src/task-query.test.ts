/**
 * Scheduler.listTasks (task-query.ts) against a simple model: filter every
 * task's view, sort by (deadline, id), cut at the cursor and the limit.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "./errors.js";
import { Scheduler } from "./scheduler.js";
import type { TaskQuery, TaskSummary } from "./task-query.js";
import { type TaskInput, TaskState } from "./types.js";

const STATES = Object.values(TaskState);

function engine() {
  const clock = { now: 1_000 };
  const s = new Scheduler({ now: () => clock.now, random: () => 0.5, retentionMs: 1_000_000 });
  return { s, clock };
}

/** What listTasks must answer, computed the slow way from the snapshot. */
function model(s: Scheduler, q: TaskQuery): { ids: string[]; more: boolean } {
  const all = s
    .snapshot()
    .tasks.map((t) => ({ id: t.spec.id, workflowId: t.spec.workflowId, ...t.status }))
    .filter(
      (t) =>
        (q.states === undefined || q.states.includes(t.state)) &&
        (q.workflowId === undefined || t.workflowId === q.workflowId) &&
        (q.deadlineFrom === undefined || t.deadline >= q.deadlineFrom) &&
        (q.deadlineTo === undefined || t.deadline < q.deadlineTo),
    )
    .filter((t) => {
      if (q.after === undefined) return true;
      if (t.deadline !== q.after.deadline) return t.deadline > q.after.deadline;
      return q.inclusive ? t.id >= q.after.id : t.id > q.after.id;
    })
    .sort((a, b) => a.deadline - b.deadline || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { ids: all.slice(0, q.limit).map((t) => t.id), more: all.length > q.limit };
}

/** An engine with tasks in every state, over two workflows, with equal deadlines to break by id. */
function populated(n: number, seed: number) {
  const { s, clock } = engine();
  let x = seed;
  const rand = (k: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % k;
  };
  const tasks: TaskInput[] = [];
  for (let i = 0; i < n; i++) {
    const id = `t${rand(1000).toString().padStart(3, "0")}-${i}`;
    const task: TaskInput = { id, deadline: 2_000 + rand(5) * 10, maxAttempts: 1 };
    if (rand(2) === 0) tasks.push({ ...task, workflowId: rand(2) === 0 ? "w1" : "w2" });
    else tasks.push(task);
  }
  s.addTasks(tasks);
  const leased = s.lease("w", { max: Math.floor(n / 2), leaseMs: 100 });
  leased.forEach((l, i) => {
    if (i % 4 === 0) s.complete(l.taskId, l.token);
    else if (i % 4 === 1) s.fail(l.taskId, l.token, { retryable: false, reason: `boom ${i}` });
    else if (i % 4 === 2) s.cancel(l.taskId, "no longer needed");
  });
  clock.now += 1;
  return s;
}

describe("listTasks", () => {
  it("pages through every task in (deadline, id) order, each once, with `more` until the last page", () => {
    const s = populated(300, 7);
    const seen: string[] = [];
    let after: TaskQuery["after"];
    let pages = 0;
    for (;;) {
      const page = s.listTasks({ limit: 37, ...(after ? { after } : {}) });
      seen.push(...page.tasks.map((t) => t.id));
      pages++;
      if (!page.more) break;
      const last = page.tasks.at(-1)!;
      after = { deadline: last.deadline, id: last.id };
    }
    expect(pages).toBe(Math.ceil(300 / 37));
    expect(seen).toEqual(model(s, { limit: 1000 }).ids);
    expect(new Set(seen).size).toBe(300);
  });

  it("agrees with the model for any filter, cursor and limit", () => {
    const s = populated(200, 11);
    const ids = s.snapshot().tasks.map((t) => t.spec.id);
    const query = fc.record(
      {
        states: fc.subarray(STATES, { minLength: 1 }),
        workflowId: fc.constantFrom("w1", "w2", "none"),
        deadlineFrom: fc.integer({ min: 1_990, max: 2_050 }),
        deadlineTo: fc.integer({ min: 1_990, max: 2_050 }),
        after: fc.record({
          deadline: fc.constantFrom(2_000, 2_010, 2_020, 2_030),
          id: fc.constantFrom(...ids),
        }),
        inclusive: fc.boolean(),
        limit: fc.integer({ min: 1, max: 250 }),
      },
      { requiredKeys: ["limit"] },
    );
    fc.assert(
      fc.property(query, (q) => {
        const page = s.listTasks(q);
        expect({ ids: page.tasks.map((t) => t.id), more: page.more }).toEqual(model(s, q));
      }),
      { numRuns: 300 },
    );
  });

  it("shows state, attempts, reason and finish time, no payload; prerequisites only when asked", () => {
    const { s, clock } = engine();
    s.addTasks([
      { id: "a", deadline: 10, workflowId: "w", payload: { secret: 1 }, maxAttempts: 1 },
      { id: "b", deadline: 20, workflowId: "w", prerequisites: ["a"] },
    ]);
    const [l] = s.lease("w", { leaseMs: 100 });
    clock.now += 5;
    s.fail(l!.taskId, l!.token, { reason: "disk full" });
    const plain = s.listTasks({ limit: 10 }).tasks;
    expect(plain).toEqual<TaskSummary[]>([
      {
        id: "a",
        workflowId: "w",
        state: "FAILED",
        deadline: 10,
        attempts: 1,
        maxAttempts: 1,
        reason: "failed after 1 attempt(s): disk full",
        finishedAt: 1_005,
      },
      {
        id: "b",
        workflowId: "w",
        state: "CANCELLED",
        deadline: 20,
        attempts: 0,
        maxAttempts: 5,
        reason: 'prerequisite "a" ended FAILED',
        finishedAt: 1_005,
      },
    ]);
    const graph = s.listTasks({ workflowId: "w", limit: 10, withPrerequisites: true }).tasks;
    expect(graph.map((t) => [t.id, t.prerequisites])).toEqual([
      ["a", []],
      ["b", ["a"]],
    ]);
  });

  it("skips handles freed by compaction", () => {
    const clock = { now: 0 };
    const s = new Scheduler({ now: () => clock.now, retentionMs: 10 });
    s.addTasks([
      { id: "a", deadline: 1 },
      { id: "b", deadline: 2 },
    ]);
    s.completeTask(s.consumeTask()!.id);
    clock.now = 100; // "a" is dropped; its handle is free
    expect(s.listTasks({ limit: 10 }).tasks.map((t) => t.id)).toEqual(["b"]);
  });

  it("refuses a bad limit or state with INVALID_ARGUMENT", () => {
    const { s } = engine();
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      expect(() => s.listTasks({ limit })).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    expect(() => s.listTasks({ limit: 1, states: ["DONE" as TaskState] })).toThrow(/unknown state "DONE"/);
  });
});
