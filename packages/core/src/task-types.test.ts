/**
 * Task types in the engine: a lease takes only the types it names (the
 * default type when it names none), earliest deadline first among them;
 * each type's frontier, counts and code are kept per type and survive a
 * rebuild; a bad type is refused and changes nothing.
 */
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, ValidationError } from "./errors.js";
import { MAX_LEASE_TYPES, Scheduler } from "./scheduler.js";
import { MAX_TASK_TYPES_HELD } from "./task-types.js";
import { engine } from "./test-engine.fixture.js";

/** A mix of three types with interleaved deadlines. */
function mixed() {
  const e = engine();
  e.s.addTasks([
    { id: "d1", deadline: 5_000 },
    { id: "i1", deadline: 4_000, type: "img" },
    { id: "m1", deadline: 3_000, type: "mail" },
    { id: "i2", deadline: 2_000, type: "img" },
    { id: "d2", deadline: 1_500, type: "default" },
    { id: "m2", deadline: 6_000, type: "mail" },
  ]);
  return e;
}

describe("task types", () => {
  it("leases only the named types, earliest deadline first among them", () => {
    const { s } = mixed();
    expect(s.lease("w", { max: 10 }).map((l) => l.taskId)).toEqual(["d2", "d1"]);
    expect(s.lease("w", { max: 10, types: ["img", "mail"] }).map((l) => l.taskId)).toEqual([
      "i2",
      "m1",
      "i1",
      "m2",
    ]);
    expect(s.lease("w", { max: 10, types: ["img", "mail", "default"] })).toEqual([]);
  });

  it("shows the type in the lease, the view and the listing, and leaves the default out", () => {
    const { s } = mixed();
    const [lease] = s.lease("w", { types: ["img"] });
    expect(lease!.task.type).toBe("img");
    expect(s.getTask("i1")?.type).toBe("img");
    expect(s.getTask("d1")).not.toHaveProperty("type");
    expect(s.getTask("d2")).not.toHaveProperty("type"); // "default" spelled out is the default
    const page = s.listTasks({ limit: 10 });
    expect(page.tasks.map((t) => [t.id, t.type])).toEqual([
      ["d2", undefined],
      ["i2", "img"],
      ["m1", "mail"],
      ["i1", "img"],
      ["d1", undefined],
      ["m2", "mail"],
    ]);
  });

  it('lists the tasks of some types only, "default" naming the untyped ones', () => {
    const { s } = mixed();
    expect(s.listTasks({ limit: 10, types: ["img"] }).tasks.map((t) => t.id)).toEqual(["i2", "i1"]);
    expect(s.listTasks({ limit: 10, types: ["default", "mail"] }).tasks.map((t) => t.id)).toEqual([
      "d2",
      "m1",
      "d1",
      "m2",
    ]);
    expect(s.listTasks({ limit: 10, types: ["nobody"] }).tasks).toEqual([]);
    expect(() => s.listTasks({ limit: 10, types: ["a b"] })).toThrow(InvalidArgumentError);
  });

  it("bounds ties and keys across types, as across shards", () => {
    const { s } = engine();
    s.addTasks([
      { id: "a", deadline: 100, type: "x" },
      { id: "b", deadline: 100, type: "y" },
      { id: "c", deadline: 100, type: "x" },
    ]);
    expect(
      s.lease("w", { max: 5, types: ["x", "y"], maxKey: 100, maxTaskId: "b" }).map((l) => l.taskId),
    ).toEqual(["a", "b"]);
  });

  it("peeks, counts and announces per type", () => {
    const { s } = mixed();
    expect(s.peekFrontier()?.id).toBe("d2");
    expect(s.peekFrontier(["img"])?.id).toBe("i2");
    expect(s.peekFrontier(["mail", "img"])?.id).toBe("i2");
    expect(s.peekFrontier(["nobody"])).toBeNull();
    expect(s.frontierDepth([1, 2, 3], ["mail", "img"])).toEqual([2_000, 3_000, 4_000]);
    expect(s.typeFrontiers(2)).toEqual({
      frontiers: [
        { type: "default", id: "d2", deadline: 1_500, key: 1_500, runnable: 2 },
        { type: "img", id: "i2", deadline: 2_000, key: 2_000, runnable: 2 },
      ],
      omitted: 1,
    });
    s.lease("w", { types: ["mail"] });
    expect(s.stats().types).toEqual([
      { type: "default", runnable: 2, leased: 0 },
      { type: "img", runnable: 2, leased: 0 },
      { type: "mail", runnable: 1, leased: 1 },
    ]);
  });

  it("keeps the starvation guard across types", () => {
    const { s, clock } = engine({ maxRunnableWaitMs: 100 });
    s.addTasks({ id: "far", deadline: 1_000_000, type: "x" });
    clock.now += 50;
    s.addTasks({ id: "near", deadline: 10_000, type: "y" });
    clock.now += 60; // "far" has waited 110 ms: ordered as if due at 1_100
    expect(s.lease("w", { types: ["y", "x"] }).map((l) => l.taskId)).toEqual(["far"]);
  });

  it("refuses a bad type whole, changing nothing", () => {
    const { s, changes } = engine();
    for (const type of ["", "has space", "x".repeat(65), 7, "ü"]) {
      expect(() =>
        s.addTasks([{ id: "ok", deadline: 1 }, { id: "bad", deadline: 1, type } as never]),
      ).toThrow(ValidationError);
    }
    expect(changes).toEqual([]);
    expect(s.getTask("ok")).toBeUndefined();
    expect(() => s.lease("w", { types: ["has space"] })).toThrow(InvalidArgumentError);
    expect(() =>
      s.lease("w", { types: Array.from({ length: MAX_LEASE_TYPES + 1 }, (_, i) => `t${i}`) }),
    ).toThrow(InvalidArgumentError);
    expect(MAX_TASK_TYPES_HELD).toBe(65_536);
  });

  it("rebuilds per-type heaps from records, a record without a type being of the default type", () => {
    const { s, changes } = mixed();
    s.lease("w", { types: ["img"] });
    const rebuilt = Scheduler.restore(s.snapshot(), [], { now: () => 1_000 });
    expect(rebuilt.lease("v", { max: 10, types: ["img"] }).map((l) => l.taskId)).toEqual(["i1"]);
    expect(rebuilt.stats().types).toEqual(
      s.stats().types?.map((c) => (c.type === "img" ? { ...c, runnable: 0, leased: 2 } : c)),
    );
    // A journal written before types: specs have no type field.
    const old = Scheduler.restore(
      {
        version: 1,
        meta: s.snapshot().meta,
        tasks: [
          {
            spec: {
              id: "x",
              prerequisites: [],
              maxAttempts: 1,
              hardDeadline: false,
              onPrerequisiteFailure: "cancel",
            },
            status: { state: "RUNNABLE", deadline: 1, attempts: 0, token: 0, runnableSince: 0 },
          },
        ],
      },
      [],
    );
    expect(old.lease("w").map((l) => l.taskId)).toEqual(["x"]);
    expect(changes.length).toBeGreaterThan(0);
  });

  it("releases a type's code when its last task is dropped, and reuses it", () => {
    const { s, clock } = engine({ retentionMs: 10 });
    s.addTasks({ id: "a", deadline: 1, type: "one" });
    const [lease] = s.lease("w", { types: ["one"] });
    s.complete("a", lease!.token);
    clock.now += 20;
    s.tick();
    expect(s.getTask("a")).toBeUndefined();
    s.addTasks({ id: "b", deadline: 1, type: "two" });
    expect(s.peekFrontier(["one"])).toBeNull();
    expect(s.lease("w", { types: ["two"] }).map((l) => [l.taskId, l.task.type])).toEqual([["b", "two"]]);
  });
});
