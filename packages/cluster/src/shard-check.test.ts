/**
 * The shard's `check` op against a real nats-server: the problems a submit
 * of the part would get (ids taken, reserved by a prepared part, unknown
 * prerequisites), and nothing changed by asking — no reservation, no task,
 * no idempotency key. A part in slots the shard does not own is refused.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { keysInSlots, ok, TestEnv, task } from "../test/support.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const startActor = () => env.startActor();

describe("check", () => {
  it("answers what a submit of the part would refuse, and changes nothing", async () => {
    const { actor, q, wf } = await startActor();
    ok(await q({ op: "submit", tasks: [task("old", 100, { workflowId: wf })], idempotencyKey: "k0" }));
    ok(await q({ op: "prepare", tasks: [task("held", 100, { workflowId: wf })], idempotencyKey: "k1" }));
    const before = actor.stats();

    const part = [
      task("old", 100, { workflowId: wf }),
      task("held", 100, { workflowId: wf }),
      task("orphan", 100, { workflowId: wf, prerequisites: ["ghost"] }),
      task("new", 100, { workflowId: wf, prerequisites: ["old"] }),
    ];
    const reply = ok(await q({ op: "check", tasks: part }));
    expect(reply.problems.map((p) => [p.taskId, p.code])).toEqual([
      ["old", "DUPLICATE_ID"],
      ["held", "DUPLICATE_ID"],
      ["orphan", "UNKNOWN_PREREQUISITE"],
    ]);

    const after = actor.stats();
    expect(after.prepared).toBe(before.prepared);
    expect(after.shard.counts).toEqual(before.shard.counts);
    expect(after.shard.idempotencyKeys).toBe(before.shard.idempotencyKeys);
    // Nothing was reserved: the valid tasks of the part can be prepared and committed at once.
    const valid = [task("orphan", 100, { workflowId: wf }), task("new", 100, { workflowId: wf })];
    expect(ok(await q({ op: "prepare", tasks: valid, idempotencyKey: "k2" })).accepted).toBe(2);
    expect(ok(await q({ op: "commit", idempotencyKey: "k2" })).accepted).toBe(2);
  });

  it("answers no problem for a part the shard would take", async () => {
    const { q, wf } = await startActor();
    const reply = ok(await q({ op: "check", tasks: [task("a", 1, { workflowId: wf })] }));
    expect(reply.problems).toEqual([]);
  });

  it("refuses a part in a slot it does not own (SLOT_NOT_OWNED)", async () => {
    const { q } = await startActor();
    const elsewhere = keysInSlots("away", [100], 1)[0]!;
    const reply = await q({ op: "check", tasks: [task(elsewhere, 1)] });
    expect(reply.ok).toBe(false);
    if (!reply.ok) expect(reply.error.code).toBe("SLOT_NOT_OWNED");
  });
});
