/**
 * exportTasks / adoptTasks: a slot's tasks leave one engine and arrive in
 * another (docs/cluster.md, "Slot movement"). The property: split a random
 * engine by workflow, and the two halves together behave like the original
 * (a restore of it) — same tasks and states, same runnable order, live
 * leases still valid at their new home, tokens monotonic — through further
 * leases, completes, failures and time.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Scheduler } from "./scheduler.js";
import { engine } from "./test-engine.fixture.js";
import { type Change, DEFAULT_TASK_TYPE, type TaskInput, type TaskView } from "./types.js";

const WORKFLOWS = ["a", "b", "c"] as const;
const TYPES = [DEFAULT_TASK_TYPE, "typed"];

type Op =
  | {
      op: "add";
      workflow: number;
      deadline: number;
      prereqs: number[];
      hard: boolean;
      notBefore?: number;
      typed: boolean;
    }
  | { op: "lease"; max: number; leaseMs: number }
  | { op: "complete"; pick: number; result: boolean }
  | { op: "fail"; pick: number; retryable: boolean }
  | { op: "cancel"; pick: number }
  | { op: "tick"; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("add" as const),
      workflow: fc.nat({ max: 3 }),
      deadline: fc.integer({ min: 0, max: 200 }),
      prereqs: fc.array(fc.nat({ max: 30 }), { maxLength: 3 }),
      hard: fc.boolean(),
      notBefore: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined, freq: 4 }),
      typed: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("lease" as const),
      max: fc.integer({ min: 1, max: 3 }),
      leaseMs: fc.integer({ min: 1, max: 80 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("complete" as const), pick: fc.nat(), result: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("fail" as const), pick: fc.nat(), retryable: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("cancel" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 40 }) }),
  },
);

const options = { retentionMs: 150, backoff: { baseMs: 5, maxMs: 20, jitter: 0 }, defaultMaxAttempts: 2 };

/** Workflow index 3 is "none": such tasks have no prerequisites (a cluster places them by id). */
function workflowOf(i: number): string | undefined {
  return WORKFLOWS[i];
}

/** Applies `op` to the engine; ids and leases are tracked in `known`. Refusals are fine (and the same everywhere). */
function apply(s: Scheduler, op: Op, known: { ids: string[]; leased: Map<string, number> }, n: number): void {
  try {
    switch (op.op) {
      case "add": {
        const workflowId = workflowOf(op.workflow);
        const same = known.ids.filter((id) => s.getTask(id)?.workflowId === workflowId);
        const prerequisites =
          workflowId === undefined || same.length === 0
            ? []
            : [...new Set(op.prereqs.map((p) => same[p % same.length]!))];
        const task: TaskInput = {
          id: `t${n}`,
          deadline: op.deadline,
          prerequisites,
          hardDeadline: op.hard,
          ...(workflowId === undefined ? {} : { workflowId }),
          ...(op.notBefore === undefined ? {} : { notBefore: op.notBefore }),
          // Two task types: each its own runnable heap; leases name both.
          ...(op.typed ? { type: "typed" } : {}),
        };
        s.addTasks(task);
        known.ids.push(task.id);
        return;
      }
      case "lease":
        for (const l of s.lease("w", { max: op.max, leaseMs: op.leaseMs, types: TYPES }))
          known.leased.set(l.taskId, l.token);
        return;
      default:
        return;
    }
  } catch {
    // refused: nothing changed
  }
}

function leasedOf(s: Scheduler, ids: readonly string[]): string[] {
  return ids.filter((id) => s.getTask(id)?.state === "LEASED");
}

/** The view without what depends on which engine granted it (tokens count per engine). */
function comparable(view: TaskView | undefined): unknown {
  if (view === undefined) return undefined;
  const { token: _, ...rest } = view;
  return rest;
}

describe("exportTasks and adoptTasks", () => {
  it("the two halves of a split engine behave like the original", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 40 }),
        fc.subarray([0, 1, 2, 3]),
        fc.array(opArb, { maxLength: 30 }),
        (before, moving, after) => {
          const { s: a, clock } = engine(options);
          const known = { ids: [] as string[], leased: new Map<string, number>() };
          let n = 0;
          for (const op of before) {
            if (op.op === "tick") clock.now += op.ms;
            else if (op.op === "complete" || op.op === "fail" || op.op === "cancel") {
              const ids = op.op === "cancel" ? known.ids : leasedOf(a, known.ids);
              if (ids.length === 0) continue;
              const id = ids[op.pick % ids.length]!;
              try {
                if (op.op === "complete")
                  a.complete(id, a.getTask(id)!.token, op.result ? { result: { r: id } } : {});
                else if (op.op === "fail") a.fail(id, a.getTask(id)!.token, { retryable: op.retryable });
                else a.cancel(id);
              } catch {
                // a task already ended
              }
            } else apply(a, op, known, n++);
          }
          const original = Scheduler.restore(a.snapshot(), [], {
            ...options,
            now: () => clock.now,
            random: () => 0.5,
          });
          const movingWorkflows = new Set(moving.map((i) => workflowOf(i)));
          const tokensBefore = new Map(known.ids.map((id) => [id, a.getTask(id)?.token ?? 0]));
          const maxTokenMoved = Math.max(
            0,
            ...known.ids
              .filter((id) => movingWorkflows.has(a.getTask(id)?.workflowId))
              .map((id) => a.getTask(id)!.token),
          );

          const changesB: Change[] = [];
          const b = new Scheduler({
            ...options,
            now: () => clock.now,
            random: () => 0.5,
            onChange: (c) => changesB.push(c),
          });
          const records = a.exportTasks((workflowId) => movingWorkflows.has(workflowId));
          expect(b.adoptTasks(records)).toBe(records.length);
          const home = (id: string) => (b.getTask(id) !== undefined ? b : a);

          // Same tasks, each in one place only, as the original holds them.
          const check = () => {
            for (const id of known.ids) {
              const inA = a.getTask(id);
              const inB = b.getTask(id);
              expect(inA === undefined || inB === undefined).toBe(true);
              expect(comparable(inA ?? inB)).toEqual(comparable(original.getTask(id)));
            }
            const sa = a.stats().counts;
            const sb = b.stats().counts;
            const so = original.stats().counts;
            for (const state of Object.keys(so) as (keyof typeof so)[])
              expect(sa[state] + sb[state]).toBe(so[state]);
            expect(a.runnableCount + b.runnableCount).toBe(original.runnableCount);
          };
          check();
          // B's grants are fenced above every adopted token.
          expect(b.snapshot().meta.tokenSeq).toBeGreaterThanOrEqual(maxTokenMoved);
          // B rebuilt from its own changes is B.
          const rebuilt = Scheduler.restore({ version: 1, meta: b.snapshot().meta, tasks: [] }, changesB, {
            ...options,
            now: () => clock.now,
          });
          for (const id of known.ids)
            expect(comparable(rebuilt.getTask(id))).toEqual(comparable(b.getTask(id)));

          for (const op of after) {
            switch (op.op) {
              case "tick":
                clock.now += op.ms;
                break;
              case "lease": {
                // One at a time: the original's next task is the earlier of the two halves' next.
                for (let k = 0; k < op.max; k++) {
                  const [o] = original.lease("w", { leaseMs: op.leaseMs, types: TYPES });
                  const fa = a.peekFrontier(TYPES);
                  const fb = b.peekFrontier(TYPES);
                  const next =
                    fa === null
                      ? b
                      : fb === null
                        ? a
                        : fa.key < fb.key || (fa.key === fb.key && fa.id < fb.id)
                          ? a
                          : b;
                  const [l] = next.lease("w", { leaseMs: op.leaseMs, types: TYPES });
                  expect(l?.taskId).toBe(o?.taskId);
                  if (l === undefined) break;
                  // Monotonic per task, at its new home too.
                  expect(l.token).toBeGreaterThan(tokensBefore.get(l.taskId) ?? 0);
                  tokensBefore.set(l.taskId, l.token);
                }
                break;
              }
              case "complete":
              case "fail": {
                const ids = leasedOf(original, known.ids);
                if (ids.length === 0) break;
                const id = ids[op.pick % ids.length]!;
                const there = home(id);
                // The lease held at the split (or granted since) is valid where the task is now.
                const token = there.getTask(id)!.token;
                if (op.op === "complete") {
                  original.complete(id, original.getTask(id)!.token);
                  expect(there.complete(id, token).duplicate).toBe(false);
                } else {
                  original.fail(id, original.getTask(id)!.token, { retryable: op.retryable });
                  there.fail(id, token, { retryable: op.retryable });
                }
                break;
              }
              case "cancel": {
                if (known.ids.length === 0) break;
                const id = known.ids[op.pick % known.ids.length]!;
                let refused = false;
                try {
                  original.cancel(id);
                } catch {
                  refused = true;
                }
                if (!refused) home(id).cancel(id);
                break;
              }
              case "add":
                break;
            }
            check();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a lease held at the split completes at the new home with its token; a stale one is refused", () => {
    const { s: a, clock } = engine();
    a.addTasks([
      { id: "p", deadline: 10, workflowId: "w" },
      { id: "d", deadline: 20, workflowId: "w", prerequisites: ["p"] },
      { id: "x", deadline: 5, workflowId: "other" },
    ]);
    const [held] = a.lease("worker", { leaseMs: 1_000 });
    expect(held?.taskId).toBe("x");
    const [p] = a.lease("worker", { leaseMs: 1_000 });
    expect(p?.taskId).toBe("p");
    const b = new Scheduler({ now: () => clock.now });
    b.addTasks({ id: "mine", deadline: 1 });
    const records = a.exportTasks((workflowId) => workflowId === "w");
    expect(records.map((r) => r.spec.id)).toEqual(["d", "p"]);
    expect(a.getTask("p")).toBeUndefined();
    expect(() => a.complete("p", p!.token)).toThrow(/unknown/i);
    b.adoptTasks(records);
    expect(() => b.complete("p", p!.token - 1)).toThrow(/no longer holds/);
    expect(b.complete("p", p!.token).duplicate).toBe(false);
    // The dependent is unblocked at the new home, and its lease is fenced above the adopted token.
    const [mine, d] = b.lease("worker", { max: 2 });
    expect([mine?.taskId, d?.taskId]).toEqual(["mine", "d"]);
    expect(mine!.token).toBeGreaterThan(p!.token);
    expect(a.getTask("x")?.state).toBe("LEASED");
  });

  it("refuses a selection that is not closed, and an adopt that collides, changing nothing", () => {
    const { s: a, changes } = engine();
    a.addTasks([
      { id: "p", deadline: 10 },
      { id: "d", deadline: 20, prerequisites: ["p"] },
    ]);
    const before = changes.length;
    expect(() => a.exportTasks((_, id) => id === "p")).toThrow(/without its dependent "d"/);
    expect(() => a.exportTasks((_, id) => id === "d")).toThrow(/without its prerequisite "p"/);
    expect(changes.length).toBe(before);
    expect(a.getTask("d")?.state).toBe("WAITING");

    const b = new Scheduler();
    b.addTasks({ id: "p", deadline: 1 });
    const records = a.exportTasks(() => true);
    expect(() => b.adoptTasks(records)).toThrow(/held here already/);
    expect(b.getTask("d")).toBeUndefined();
    const c = new Scheduler({ allowForwardReferences: true });
    c.addTasks({ id: "waiter", deadline: 1, prerequisites: ["d"] });
    expect(() => c.adoptTasks(records)).toThrow(/forward reference/);
    expect(c.getTask("p")).toBeUndefined();
  });

  it("keeps the oldest runnable age: adopted runnable tasks join the FIFO by when they became runnable", () => {
    const { s: a, clock } = engine();
    a.addTasks({ id: "old", deadline: 100, workflowId: "w" });
    clock.now += 500;
    const b = new Scheduler({ now: () => clock.now });
    b.addTasks({ id: "young", deadline: 1 });
    b.adoptTasks(a.exportTasks(() => true));
    expect(b.stats().oldestRunnableAgeMs).toBe(500);
    expect(b.lease("w").map((l) => l.taskId)).toEqual(["young"]);
    expect(b.stats().oldestRunnableAgeMs).toBe(500);
    expect(b.lease("w").map((l) => l.taskId)).toEqual(["old"]);
    expect(b.stats().oldestRunnableAgeMs).toBe(0);
  });
});
