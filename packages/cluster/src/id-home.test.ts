/**
 * An id's home on real shard actors and a real nats-server (docs/cluster.md,
 * "One id space per cluster"): claims prepared, committed alone
 * (`claimsOnly`) or with their part, aborted or expired leaving nothing,
 * kept across a restart, moved with their home slot; a claim whose task is
 * gone taken over after asking its shard (`holds`), one whose task is held
 * refused, and `locate`.
 */
import { homeSlotOf, slotOfTask, WireErrorCode } from "@frontier/protocol";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ask, eventually, keysInSlots, ok, type TestActorOptions, TestEnv, task } from "../test/support.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/** Shard "home" keeps the claims of ids homed in HOME_SLOTS; shard "holder" holds tasks of HOLDER_SLOTS. */
const HOME_SLOTS = [0, 1, 2, 3];
const HOLDER_SLOTS = [10, 11];
const [HOLDER_WF, HOLDER_WF2] = keysInSlots("wf", HOLDER_SLOTS, 2) as [string, string];
const [HOME_WF] = keysInSlots("hwf", HOME_SLOTS, 1) as [string];
/** Ids homed on shard "home" (in HOME_SLOTS), for tasks of the holder's workflows. */
const IDS = keysInSlots("id", HOME_SLOTS, 8);
const id = (i: number) => IDS[i]!;

async function pair(extra: TestActorOptions = {}) {
  const cluster = env.freshCluster();
  const home = await env.startActor({
    cluster,
    shardId: "home",
    slots: HOME_SLOTS,
    announceIntervalMs: 50,
    ...extra,
  });
  const holder = await env.startActor({
    cluster,
    shardId: "holder",
    slots: HOLDER_SLOTS,
    announceIntervalMs: 50,
  });
  return { cluster, home, holder, nc: home.nc };
}

function codeOf(reply: { ok: boolean; error?: { code: string } }): string {
  if (reply.ok) throw new Error("expected an error reply");
  return reply.error!.code;
}

function problemsOf(reply: {
  ok: boolean;
  error?: { problems?: readonly { taskId: string; code: string }[] };
}) {
  if (reply.ok) throw new Error("expected an error reply");
  return (reply.error?.problems ?? []).map((p) => [p.taskId, p.code]);
}

describe("an id's home", () => {
  it("reserves a prepared claim against every other key, and an abort leaves nothing", async () => {
    const { home } = await pair();
    expect(
      ok(
        await home.q({
          op: "prepare",
          tasks: [],
          idempotencyKey: "k1",
          claims: [{ taskId: id(0), workflowId: HOLDER_WF }],
        }),
      ).accepted,
    ).toBe(0);
    // Another batch's claim of the id, or a task of it here, is refused while the claim is prepared.
    const other = await home.q({
      op: "prepare",
      tasks: [],
      idempotencyKey: "k2",
      claims: [{ taskId: id(0), workflowId: HOLDER_WF2 }],
    });
    expect(problemsOf(other)).toEqual([[id(0), "DUPLICATE_ID"]]);
    const local = await home.q({
      op: "submit",
      tasks: [task(id(0), 1, { workflowId: HOME_WF })],
      idempotencyKey: "k3",
      claims: [{ taskId: id(0), workflowId: HOME_WF }],
    });
    expect(problemsOf(local)).toEqual([[id(0), "DUPLICATE_ID"]]);
    // A check reports it too, reserving nothing.
    expect(
      ok(await home.q({ op: "check", tasks: [], claims: [{ taskId: id(0), workflowId: HOLDER_WF2 }] }))
        .problems,
    ).toEqual([expect.objectContaining({ taskId: id(0), code: "DUPLICATE_ID" })]);
    ok(await home.q({ op: "abort", idempotencyKey: "k1" }));
    expect(ok(await home.q({ op: "locate", taskId: id(0) })).claim).toBeNull();
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "k2",
        claims: [{ taskId: id(0), workflowId: HOLDER_WF2 }],
      }),
    );
  });

  it("lets a prepared claim expire after prepareTtlMs, leaving nothing", async () => {
    const { home } = await pair({ prepareTtlMs: 100 });
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "k1",
        claims: [{ taskId: id(0), workflowId: HOLDER_WF }],
      }),
    );
    await eventually(
      async () =>
        (
          await home.q({
            op: "prepare",
            tasks: [],
            idempotencyKey: "k2",
            claims: [{ taskId: id(0), workflowId: HOLDER_WF2 }],
          })
        ).ok,
      5_000,
      "the first claim to expire",
    );
    // The expired part cannot commit.
    expect(codeOf(await home.q({ op: "commit", idempotencyKey: "k1" }))).toBe(
      WireErrorCode.SHARD_UNAVAILABLE,
    );
    expect(ok(await home.q({ op: "locate", taskId: id(0) })).claim).toBeNull();
  });

  it("keeps a part's claims durable with claimsOnly, its tasks still prepared, and all of it after a restart", async () => {
    const { cluster, home } = await pair();
    const mine = task(id(1), 1, { workflowId: HOME_WF });
    ok(
      await home.q({
        op: "prepare",
        tasks: [mine],
        idempotencyKey: "k1",
        claims: [
          { taskId: id(0), workflowId: HOLDER_WF },
          { taskId: id(1), workflowId: HOME_WF },
        ],
      }),
    );
    expect(ok(await home.q({ op: "commit", idempotencyKey: "k1", claimsOnly: true }))).toMatchObject({
      accepted: 0,
    });
    // Again: nothing more (idempotent), and the task still waits for its commit.
    ok(await home.q({ op: "commit", idempotencyKey: "k1", claimsOnly: true }));
    expect(ok(await home.q({ op: "getTask", taskId: id(1), workflowId: HOME_WF })).task).toBeNull();
    expect(ok(await home.q({ op: "locate", taskId: id(0) })).claim).toEqual({
      taskId: id(0),
      workflowId: HOLDER_WF,
    });
    expect(ok(await home.q({ op: "commit", idempotencyKey: "k1" }))).toMatchObject({
      accepted: 1,
      replayed: false,
    });
    // The task is its own id's claim: no row, found all the same.
    expect(ok(await home.q({ op: "locate", taskId: id(1) })).claim).toEqual({
      taskId: id(1),
      workflowId: HOME_WF,
    });

    await home.actor.close();
    const again = await env.startActor({
      cluster,
      shardId: "home",
      dataDir: home.dataDir,
      slots: HOME_SLOTS,
    });
    expect(ok(await again.q({ op: "locate", taskId: id(0) })).claim).toEqual({
      taskId: id(0),
      workflowId: HOLDER_WF,
    });
    expect(ok(await again.q({ op: "locate", taskId: id(1) })).claim).toEqual({
      taskId: id(1),
      workflowId: HOME_WF,
    });
  });

  it("refuses a claim whose row names a task still held, and takes over one whose task is gone", async () => {
    const { home, holder } = await pair();
    // Held: the holder has the task of the row.
    ok(
      await holder.q({
        op: "submit",
        tasks: [task(id(0), 1, { workflowId: HOLDER_WF })],
        idempotencyKey: "h0",
        claims: [],
      }),
    );
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "c0",
        claims: [{ taskId: id(0), workflowId: HOLDER_WF }],
      }),
    );
    ok(await home.q({ op: "commit", idempotencyKey: "c0", claimsOnly: true }));
    const taken = await home.q({
      op: "prepare",
      tasks: [],
      idempotencyKey: "x0",
      claims: [{ taskId: id(0), workflowId: HOLDER_WF2 }],
    });
    expect(problemsOf(taken)).toEqual([[id(0), "DUPLICATE_ID"]]);
    expect(ok(await holder.q({ op: "holds", taskId: id(0), workflowId: HOLDER_WF })).held).toBe(true);

    // Gone: a row whose batch never stored its task (its part at the holder was never prepared).
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "c1",
        claims: [{ taskId: id(1), workflowId: HOLDER_WF }],
      }),
    );
    ok(await home.q({ op: "commit", idempotencyKey: "c1", claimsOnly: true }));
    expect(ok(await holder.q({ op: "holds", taskId: id(1), workflowId: HOLDER_WF })).held).toBe(false);
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "x1",
        claims: [{ taskId: id(1), workflowId: HOLDER_WF2 }],
      }),
    );
    ok(await home.q({ op: "commit", idempotencyKey: "x1", claimsOnly: true }));
    expect(ok(await home.q({ op: "locate", taskId: id(1) })).claim).toEqual({
      taskId: id(1),
      workflowId: HOLDER_WF2,
    });

    // Prepared at the holder counts as held: the row's batch may still commit there.
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "c2",
        claims: [{ taskId: id(2), workflowId: HOLDER_WF }],
      }),
    );
    ok(await home.q({ op: "commit", idempotencyKey: "c2", claimsOnly: true }));
    ok(
      await holder.q({
        op: "prepare",
        tasks: [task(id(2), 1, { workflowId: HOLDER_WF })],
        idempotencyKey: "c2",
        claims: [],
      }),
    );
    const prepared = await home.q({
      op: "prepare",
      tasks: [],
      idempotencyKey: "x2",
      claims: [{ taskId: id(2), workflowId: HOLDER_WF2 }],
    });
    expect(problemsOf(prepared)).toEqual([[id(2), "DUPLICATE_ID"]]);
  });

  it("refuses retryably, changing nothing, when the shard of a row's task cannot be asked", async () => {
    const { home, holder } = await pair();
    ok(
      await home.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "c0",
        claims: [{ taskId: id(0), workflowId: HOLDER_WF }],
      }),
    );
    ok(await home.q({ op: "commit", idempotencyKey: "c0", claimsOnly: true }));
    await holder.actor.close();
    const reply = await home.q(
      { op: "prepare", tasks: [], idempotencyKey: "x0", claims: [{ taskId: id(0), workflowId: HOLDER_WF2 }] },
      15_000,
    );
    expect(reply.ok).toBe(false);
    expect(reply.ok ? undefined : reply.error.retryable).toBe(true);
    expect(ok(await home.q({ op: "locate", taskId: id(0) })).claim).toEqual({
      taskId: id(0),
      workflowId: HOLDER_WF,
    });
  });

  it("answers only for the ids homed in its slots, and holds only for tasks of its slots", async () => {
    const { home, holder } = await pair();
    const [elsewhere] = keysInSlots("far", [500], 1) as [string];
    expect(codeOf(await home.q({ op: "locate", taskId: elsewhere }))).toBe(WireErrorCode.SLOT_NOT_OWNED);
    expect(
      codeOf(
        await home.q({ op: "prepare", tasks: [], idempotencyKey: "k", claims: [{ taskId: elsewhere }] }),
      ),
    ).toBe(WireErrorCode.SLOT_NOT_OWNED);
    expect(codeOf(await holder.q({ op: "holds", taskId: id(0), workflowId: HOME_WF }))).toBe(
      WireErrorCode.SLOT_NOT_OWNED,
    );
  });
});

describe("the sweep of claims", () => {
  it("drops the rows of tasks gone, and keeps those of tasks held or prepared", async () => {
    const { home, holder } = await pair({ claimSweepMs: 50 });
    // Held: stored at the holder. Prepared: a part at the holder that may still commit. Gone: never stored.
    ok(
      await holder.q({
        op: "submit",
        tasks: [task(id(0), 1, { workflowId: HOLDER_WF })],
        idempotencyKey: "held",
        claims: [],
      }),
    );
    ok(
      await holder.q({
        op: "prepare",
        tasks: [task(id(1), 1, { workflowId: HOLDER_WF })],
        idempotencyKey: "prepared",
        claims: [],
      }),
    );
    for (const [i, key] of [
      [0, "c0"],
      [1, "c1"],
      [2, "c2"],
    ] as const) {
      ok(
        await home.q({
          op: "prepare",
          tasks: [],
          idempotencyKey: key,
          claims: [{ taskId: id(i), workflowId: HOLDER_WF }],
        }),
      );
      ok(await home.q({ op: "commit", idempotencyKey: key, claimsOnly: true }));
    }
    await eventually(
      async () => ok(await home.q({ op: "locate", taskId: id(2) })).claim === null,
      10_000,
      "the sweep",
    );
    // Two more passes later (each asks the holder about both rows left), the others are still there.
    const asked = holder.actor.stats().requests;
    await eventually(() => holder.actor.stats().requests >= asked + 4, 10_000, "two more passes");
    expect(ok(await home.q({ op: "locate", taskId: id(0) })).claim).toEqual({
      taskId: id(0),
      workflowId: HOLDER_WF,
    });
    expect(ok(await home.q({ op: "locate", taskId: id(1) })).claim).toEqual({
      taskId: id(1),
      workflowId: HOLDER_WF,
    });
  });
});

describe("claims moving with their home slot", () => {
  it("go to the slot's new shard: rows, and the claims of tasks staying behind", async () => {
    const cluster = env.freshCluster();
    const a = await env.startActor({ cluster, shardId: "a", slots: [0, 1, 2, 3], announceIntervalMs: 50 });
    const b = await env.startActor({ cluster, shardId: "b", slots: [10, 11], announceIntervalMs: 50 });
    const nc: NatsConnection = a.nc;
    const SLOT = 2;
    const [row, staying] = keysInSlots("moving-id", [SLOT], 2) as [string, string];
    const [stayWf] = keysInSlots("stay-wf", [0], 1) as [string];
    expect(homeSlotOf(row)).toBe(SLOT);
    // A row for a task of b's, and a task of a's (in slot 0) whose id is homed in the moving slot.
    ok(
      await a.q({
        op: "prepare",
        tasks: [],
        idempotencyKey: "r",
        claims: [{ taskId: row, workflowId: HOLDER_WF }],
      }),
    );
    ok(await a.q({ op: "commit", idempotencyKey: "r", claimsOnly: true }));
    ok(
      await a.q({
        op: "submit",
        tasks: [task(staying, 1, { workflowId: stayWf })],
        idempotencyKey: "s",
        claims: [{ taskId: staying, workflowId: stayWf }],
      }),
    );
    expect(slotOfTask({ id: staying, workflowId: stayWf })).toBe(0);
    await eventually(
      async () => {
        const reply = await ask(
          nc,
          cluster,
          "a",
          { op: "moveSlot", slot: SLOT, target: "b", moveId: "m1" },
          30_000,
        );
        return reply.ok;
      },
      10_000,
      "the move",
    );
    await eventually(async () => (await b.q({ op: "locate", taskId: row })).ok, 5_000, "b to serve the slot");
    expect(ok(await b.q({ op: "locate", taskId: row })).claim).toEqual({
      taskId: row,
      workflowId: HOLDER_WF,
    });
    expect(ok(await b.q({ op: "locate", taskId: staying })).claim).toEqual({
      taskId: staying,
      workflowId: stayWf,
    });
    expect(codeOf(await a.q({ op: "locate", taskId: row }))).toBe(WireErrorCode.SLOT_NOT_OWNED);
    // The id stays taken: a claim of it for another workflow, now at b, is refused (a holds the task).
    const [otherWf] = keysInSlots("other-wf", [10], 1) as [string];
    const refused = await b.q({
      op: "prepare",
      tasks: [],
      idempotencyKey: "x",
      claims: [{ taskId: staying, workflowId: otherWf }],
    });
    expect(problemsOf(refused)).toEqual([[staying, "DUPLICATE_ID"]]);
  });
});
