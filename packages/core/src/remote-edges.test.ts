/**
 * Remote prerequisites of large workflows (remote-edges.ts): a workflow
 * spread over several engines, its cross-partition edges carried by
 * completion events (remoteOutbox → applyRemote → acknowledgeRemote). The
 * property: however events are delayed, redelivered, their acknowledgements
 * lost, and engines rebuilt from their records, every task runs exactly
 * once and only after all its prerequisites completed — as one engine
 * holding the whole workflow would run it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "./errors.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import type { RemoteEvent, RemoteLink, TaskInput } from "./types.js";

const WF = "big";

/** A partition table by task id (the test's stand-in for slotOf). */
function partitions(table: Record<string, number>): SchedulerOptions["partitionOf"] {
  return (task) => table[task.id] ?? 0;
}

function pair(table: Record<string, number>, now = () => 0) {
  const options: SchedulerOptions = {
    partitionOf: partitions(table),
    sameWorkflowPrerequisites: true,
    now,
    retentionMs: 1_000,
  };
  return { options, a: new Scheduler(options), b: new Scheduler(options) };
}

const task = (id: string, prerequisites: string[] = [], extra: Partial<TaskInput> = {}): TaskInput => ({
  id,
  deadline: 10,
  workflowId: WF,
  large: true,
  prerequisites,
  ...extra,
});

describe("remote prerequisites", () => {
  it("count as unmet until their event is applied, once", () => {
    const { a, b } = pair({ p: 0, d: 1 });
    const link: RemoteLink = { prerequisite: "p", dependent: "d", workflowId: WF };
    a.addTasks([task("p")], { links: [link] });
    b.addTasks([task("d", ["p"])]);
    expect(b.getTask("d")).toMatchObject({ state: "WAITING", unmetPrerequisites: 1 });
    expect(a.remoteOutbox()).toEqual([]);

    const [lease] = a.lease("w");
    a.complete(lease!.taskId, lease!.token);
    const events = a.remoteOutbox();
    expect(events).toEqual([{ prerequisite: "p", dependent: "d", workflowId: WF, outcome: "COMPLETED" }]);
    expect(a.getTask("p")).toMatchObject({ remoteDependents: ["d"] });
    expect(a.getTask("p")!.remoteDelivered).toBeUndefined();

    expect(b.applyRemote(events)).toEqual(["applied"]);
    expect(b.getTask("d")).toMatchObject({ state: "RUNNABLE", remoteMet: ["p"] });
    expect(b.applyRemote(events)).toEqual(["duplicate"]);
    expect(b.getTask("d")!.state).toBe("RUNNABLE");
    expect(b.applyRemote([{ ...events[0]!, dependent: "nope" }])).toEqual(["unknown"]);

    a.acknowledgeRemote(events);
    expect(a.remoteOutbox()).toEqual([]);
    expect(a.getTask("p")).toMatchObject({ remoteDelivered: true });
  });

  it("cancel a dependent whose prerequisite ended badly, or let it run under the continue policy", () => {
    const { a, b } = pair({ p: 0, c: 1, k: 1 });
    const links: RemoteLink[] = [
      { prerequisite: "p", dependent: "c", workflowId: WF },
      { prerequisite: "p", dependent: "k", workflowId: WF },
    ];
    a.addTasks([task("p", [], { maxAttempts: 1 })], { links });
    b.addTasks([task("c", ["p"]), task("k", ["p"], { onPrerequisiteFailure: "continue" })]);
    const [lease] = a.lease("w");
    a.fail(lease!.taskId, lease!.token, { retryable: false });
    const events = a.remoteOutbox();
    expect(events.map((e) => e.outcome)).toEqual(["FAILED", "FAILED"]);
    expect(b.applyRemote(events)).toEqual(["applied", "applied"]);
    expect(b.getTask("c")).toMatchObject({ state: "CANCELLED", reason: 'prerequisite "p" ended FAILED' });
    expect(b.getTask("k")!.state).toBe("RUNNABLE");
    expect(b.applyRemote(events)).toEqual(["duplicate", "duplicate"]);
  });

  it("owe their outcome at once to a dependent linked after they ended", () => {
    const { a, b } = pair({ p: 0, d: 1 });
    a.addTasks([task("p")]);
    const [lease] = a.lease("w");
    a.complete(lease!.taskId, lease!.token);
    a.addTasks([], { links: [{ prerequisite: "p", dependent: "d", workflowId: WF }] });
    b.addTasks([task("d", ["p"])]);
    expect(b.applyRemote(a.remoteOutbox())).toEqual(["applied"]);
    expect(b.getTask("d")!.state).toBe("RUNNABLE");
  });

  it("refuse a link to a task not held here, or not of the large workflow, changing nothing", () => {
    const { a } = pair({ p: 0, q: 0, d: 1 });
    a.addTasks([task("q", [], { large: false, workflowId: "other" })]);
    const attempt = () =>
      a.addTasks([task("p")], {
        links: [
          { prerequisite: "x", dependent: "d", workflowId: WF },
          { prerequisite: "q", dependent: "d", workflowId: WF },
        ],
      });
    expect(attempt).toThrow(ValidationError);
    try {
      attempt();
    } catch (error) {
      expect((error as ValidationError).problems.map((p) => [p.taskId, p.code])).toEqual([
        ["d", "UNKNOWN_PREREQUISITE"],
        ["d", "CROSS_WORKFLOW"],
      ]);
    }
    expect(a.getTask("p")).toBeUndefined();
  });

  it("are not looked up locally, but local ones are checked as before", () => {
    const { a } = pair({ r: 1, d: 0, e: 0 });
    // "r" is in another partition: accepted unseen (its own engine checks the link).
    expect(a.addTasks([task("d", ["r"])])).toBe(1);
    // "zz" is in d's partition (0 by default): unknown here, refused.
    expect(() => a.addTasks([task("e", ["zz"])])).toThrow(/UNKNOWN_PREREQUISITE|not a known task/);
  });

  it("refuse large tasks without a workflow, and mixing large and ordinary tasks in one workflow", () => {
    const { a } = pair({});
    expect(() => a.addTasks([{ id: "x", deadline: 1, large: true }])).toThrow(/large needs a workflowId/);
    expect(() => a.addTasks([task("p", [], { large: false }), task("d", ["p"])])).toThrow(
      /in a large workflow/,
    );
    // The same, with the prerequisite held already (looked up by its handle), both ways.
    a.addTasks([task("q", [], { large: false }), task("r")]);
    expect(() => a.addTasks([task("e", ["q"])])).toThrow(/prerequisite "q" is not in a large workflow/);
    expect(() => a.addTasks([task("f", ["r"], { large: false })])).toThrow(
      /prerequisite "r" is in a large workflow/,
    );
  });

  it("keep an ended prerequisite past its retention until every dependent acknowledged", () => {
    let clock = 0;
    const { a } = pair({ p: 0, d: 1 }, () => clock);
    a.addTasks([task("p")], { links: [{ prerequisite: "p", dependent: "d", workflowId: WF }] });
    const [lease] = a.lease("w");
    a.complete(lease!.taskId, lease!.token);
    clock = 5_000;
    a.tick();
    expect(a.getTask("p")).toBeDefined();
    a.acknowledgeRemote(a.remoteOutbox());
    a.tick();
    expect(a.getTask("p")).toBeUndefined();
  });

  it("survive a rebuild on both sides: the outbox is owed again, the dedupe holds", () => {
    const { options, a, b } = pair({ p: 0, d: 1, e: 1 });
    a.addTasks([task("p")], {
      links: [
        { prerequisite: "p", dependent: "d", workflowId: WF },
        { prerequisite: "p", dependent: "e", workflowId: WF },
      ],
    });
    b.addTasks([task("d", ["p"]), task("e", ["p"])]);
    const [lease] = a.lease("w");
    a.complete(lease!.taskId, lease!.token);
    const events = a.remoteOutbox();
    // d's event applied, its acknowledgement lost; then both engines are rebuilt.
    expect(b.applyRemote([events[0]!])).toEqual(["applied"]);
    const a2 = Scheduler.restore(a.snapshot(), [], options);
    const b2 = Scheduler.restore(b.snapshot(), [], options);
    expect(a2.remoteOutbox()).toEqual(events);
    expect(b2.getTask("d")!.state).toBe("RUNNABLE");
    expect(b2.getTask("e")!.state).toBe("WAITING");
    expect(b2.applyRemote(events)).toEqual(["duplicate", "applied"]);
    a2.acknowledgeRemote(events);
    expect(Scheduler.restore(a2.snapshot(), [], options).remoteOutbox()).toEqual([]);
  });

  it("move with their tasks: an exported partition takes its outbox and its dedupe to the adopting engine", () => {
    // Partition 0: p, r, z; partition 1: d (waits on p and r), e (z waits on it). All on engine a.
    const { options, a } = pair({ p: 0, r: 0, z: 0, d: 1, e: 1 });
    a.addTasks([task("p"), task("r")], {
      links: [
        { prerequisite: "p", dependent: "d", workflowId: WF },
        { prerequisite: "r", dependent: "d", workflowId: WF },
      ],
    });
    a.addTasks([task("d", ["p", "r"]), task("e")]);
    a.addTasks([task("z", ["e"])], { links: [{ prerequisite: "e", dependent: "z", workflowId: WF }] });
    const leases = new Map(a.lease("w", { max: 10 }).map((l) => [l.taskId, l]));
    expect([...leases.keys()].sort()).toEqual(["e", "p", "r"]);
    a.complete("p", leases.get("p")!.token);
    const pEvent = a.remoteOutbox();
    expect(a.applyRemote(pEvent)).toEqual(["applied"]);
    a.acknowledgeRemote(pEvent);

    // Partition 1 moves to engine c, e still leased.
    const c = new Scheduler(options);
    expect(c.adoptTasks(a.exportTasks((_w, id) => id === "d" || id === "e"))).toBe(2);
    expect(c.getTask("d")).toMatchObject({ state: "WAITING", remoteMet: ["p"], unmetPrerequisites: 1 });
    // The dedupe moved: p's event again is a duplicate at c.
    expect(c.applyRemote(pEvent)).toEqual(["duplicate"]);
    // e's remote dependent moved: ended at c, e owes z its outcome from c, and a owes nothing.
    c.complete("e", leases.get("e")!.token);
    const eEvent = c.remoteOutbox();
    expect(eEvent).toEqual([{ prerequisite: "e", dependent: "z", workflowId: WF, outcome: "COMPLETED" }]);
    expect(a.remoteOutbox()).toEqual([]);
    expect(a.applyRemote(eEvent)).toEqual(["applied"]);
    expect(a.getTask("z")!.state).toBe("RUNNABLE");
    // r's event reaches d at its new engine.
    a.complete("r", leases.get("r")!.token);
    expect(c.applyRemote(a.remoteOutbox())).toEqual(["applied"]);
    expect(c.getTask("d")!.state).toBe("RUNNABLE");
  });

  it("refuse a retry of a task with remote neighbours", () => {
    const { a } = pair({ p: 0, d: 1 });
    a.addTasks([task("p", [], { maxAttempts: 1 })], {
      links: [{ prerequisite: "p", dependent: "d", workflowId: WF }],
    });
    const [lease] = a.lease("w");
    a.fail(lease!.taskId, lease!.token, { retryable: false });
    expect(() => a.retry("p")).toThrow(/other partitions/);
  });
});

// ------------------------------------------------------------------ property

interface Dag {
  /** prerequisites[i]: earlier task indices. */
  readonly prerequisites: number[][];
  /** partition of each task. */
  readonly partition: number[];
}

const dagArb: fc.Arbitrary<Dag> = fc.integer({ min: 1, max: 24 }).chain((n) =>
  fc.record({
    prerequisites: fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        i === 0 ? fc.constant([] as number[]) : fc.uniqueArray(fc.nat({ max: i - 1 }), { maxLength: 3 }),
      ),
    ),
    partition: fc.array(fc.nat({ max: 2 }), { minLength: n, maxLength: n }),
  }),
);

type Step =
  | { kind: "run"; engine: number }
  | { kind: "deliver"; max: number; loseAck: boolean; twice: boolean }
  | { kind: "rebuild"; engine: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("run" as const), engine: fc.nat({ max: 2 }) }),
  fc.record({
    kind: fc.constant("deliver" as const),
    max: fc.integer({ min: 1, max: 5 }),
    loseAck: fc.boolean(),
    twice: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("rebuild" as const), engine: fc.nat({ max: 2 }) }),
);

describe("a large workflow over three engines", () => {
  it("runs each task once, after its prerequisites, whatever the delivery and rebuilds", () => {
    fc.assert(
      fc.property(dagArb, fc.array(stepArb, { maxLength: 60 }), (dag, steps) => {
        const id = (i: number) => `t${i}`;
        const table: Record<string, number> = {};
        dag.partition.forEach((p, i) => {
          table[id(i)] = p;
        });
        const options: SchedulerOptions = { partitionOf: partitions(table), sameWorkflowPrerequisites: true };
        const engines = [0, 1, 2].map(() => new Scheduler(options));
        // Submit: each engine its tasks, plus the links of the edges into other partitions.
        for (let e = 0; e < 3; e++) {
          const tasks: TaskInput[] = [];
          const links: RemoteLink[] = [];
          dag.prerequisites.forEach((prereqs, i) => {
            if (dag.partition[i] === e) tasks.push(task(id(i), prereqs.map(id)));
            for (const p of prereqs)
              if (dag.partition[p] === e && dag.partition[i] !== e)
                links.push({ prerequisite: id(p), dependent: id(i), workflowId: WF });
          });
          engines[e]!.addTasks(tasks, { links });
        }
        const completed = new Set<string>();
        const runs = new Map<string, number>();
        const run = (e: number) => {
          const engine = engines[e]!;
          for (const lease of engine.lease("w", { max: 2 })) {
            runs.set(lease.taskId, (runs.get(lease.taskId) ?? 0) + 1);
            for (const p of lease.task.prerequisites) expect(completed.has(p)).toBe(true);
            engine.complete(lease.taskId, lease.token);
            completed.add(lease.taskId);
          }
        };
        const deliver = (max: number, loseAck: boolean, twice: boolean) => {
          for (const sender of engines) {
            expect(sender.remoteOutboxSize).toBe(sender.remoteOutbox().length);
            const events = sender.remoteOutbox(max);
            for (let k = 0; k < (twice ? 2 : 1); k++) {
              for (const event of events) {
                const answer = engines[table[event.dependent]!]!.applyRemote([event])[0];
                expect(answer).not.toBe("unknown");
              }
            }
            if (!loseAck) sender.acknowledgeRemote(events);
          }
        };
        for (const step of steps) {
          if (step.kind === "run") run(step.engine);
          else if (step.kind === "deliver") deliver(step.max, step.loseAck, step.twice);
          else engines[step.engine] = Scheduler.restore(engines[step.engine]!.snapshot(), [], options);
        }
        // Drain: run and deliver until nothing moves.
        for (let round = 0; round < 4 * dag.partition.length + 4; round++) {
          for (let e = 0; e < 3; e++) run(e);
          deliver(Number.POSITIVE_INFINITY, false, false);
        }
        expect(completed.size).toBe(dag.partition.length);
        for (const [, n] of runs) expect(n).toBe(1);
        for (const engine of engines) {
          expect(engine.remoteOutbox()).toEqual([] as RemoteEvent[]);
          expect(engine.remoteOutboxSize).toBe(0);
        }
      }),
      { numRuns: 150 },
    );
  });
});
