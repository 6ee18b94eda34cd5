/**
 * A submit whose tasks all live on one shard goes straight to that shard
 * (one hop), by the slot table the client watches; a batch over several
 * shards, and one the table cannot place, go through a coordinator. Over
 * real shard actors and a coordinator, with every submit on the wire seen
 * by a tap.
 */
import type { FrontierClient } from "@frontier/client";
import { ValidationError } from "@frontier/core";
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  homeSlotOf,
  slotOfTask,
  subjectsFor,
} from "@frontier/protocol";
import { type NatsConnection, connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "./harness.js";

const CLUSTER = "direct";
const s = subjectsFor(CLUSTER);
let cluster: TestCluster;
let tap: NatsConnection;
/** Idempotency keys seen, by where they were sent. */
const atCoordinator = new Set<string>();
const atShard = new Map<string, string>();
const prepared = new Set<string>();

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: CLUSTER });
  tap = await natsConnect({ servers: cluster.url });
  tap.subscribe(s.coord("submit"), {
    callback: (_err, msg) => {
      atCoordinator.add((decodeRequest(msg.data, "submit") as { idempotencyKey: string }).idempotencyKey);
    },
  });
  for (const op of ["submit", "prepare"] as const) {
    tap.subscribe(s.anyShard(op), {
      callback: (_err, msg) => {
        const { idempotencyKey } = decodeRequest(msg.data, op) as { idempotencyKey: string };
        if (op === "prepare") prepared.add(idempotencyKey);
        else atShard.set(idempotencyKey, msg.subject.split(".")[3]!);
      },
    });
  }
  await tap.flush();
});

afterAll(async () => {
  await tap?.close();
  await cluster?.stop();
});

/**
 * `client.submit`, then a round trip on the tap's connection: by its end the
 * tap has taken the submit's request in (the server queues it to the tap
 * before the shard can answer, and the PONG after it). A shard that commits
 * fast can answer the client before the tap's copy arrives.
 */
async function submitSeen(
  client: FrontierClient,
  ...args: Parameters<FrontierClient["submit"]>
): ReturnType<FrontierClient["submit"]> {
  const result = await client.submit(...args);
  await tap.flush();
  return result;
}

/** A workflow id placed on shard `index` (the harness spreads slots n mod 2). */
function workflowOn(index: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (slotOfTask({ id }) % cluster.shards.length === index) return id;
  }
}

/** Submits one task at a time until one goes straight to its shard: the client's table is in. */
async function tableLoaded(client: FrontierClient, prefix: string): Promise<void> {
  let n = 0;
  await until(async () => {
    const { idempotencyKey } = await submitSeen(client, [{ id: `${prefix}-${n++}`, deadline: 1 }]);
    return !atCoordinator.has(idempotencyKey);
  });
}

describe("direct submits", () => {
  it("sends a one-shard batch straight to its shard, and a batch over two shards through a coordinator", async () => {
    const client = await cluster.client();
    // The first submit starts watching the table and goes through a coordinator.
    const first = await submitSeen(client, [{ id: "first", deadline: 1 }]);
    expect(atCoordinator.has(first.idempotencyKey)).toBe(true);
    await tableLoaded(client, "warm");

    const w0 = workflowOn(0, "w0");
    const w1 = workflowOn(1, "w1");
    // Ids homed on shard 1 too (their claims are the tasks themselves: docs/cluster.md, "One id
    // space per cluster"); `workflowOn` places an id alone by the same hash.
    const [a, b] = [workflowOn(1, "a"), workflowOn(1, "b")];
    const one = await submitSeen(client, [
      { id: a, deadline: 5, workflowId: w1 },
      { id: b, deadline: 6, workflowId: w1, prerequisites: [a] },
    ]);
    expect(one).toMatchObject({ accepted: 2, replayed: false });
    expect(atCoordinator.has(one.idempotencyKey)).toBe(false);
    expect(atShard.get(one.idempotencyKey)).toBe("shard-1");
    // The same key again: the shard replays it, as a coordinator's resend would.
    expect(
      await submitSeen(client, [{ id: a, deadline: 5, workflowId: w1 }], {
        idempotencyKey: one.idempotencyKey,
      }),
    ).toMatchObject({
      replayed: true,
    });

    const two = await submitSeen(client, [
      { id: "c", deadline: 7, workflowId: w0 },
      { id: "d", deadline: 8, workflowId: w1 },
    ]);
    expect(atCoordinator.has(two.idempotencyKey)).toBe(true);
    expect(prepared.has(two.idempotencyKey)).toBe(true);
    // One workflow on shard 1, but an id homed on shard 0: its claim is kept there, so a coordinator.
    const elsewhere = await submitSeen(client, [{ id: workflowOn(0, "e"), deadline: 9, workflowId: w1 }]);
    expect(atCoordinator.has(elsewhere.idempotencyKey)).toBe(true);
    expect(prepared.has(elsewhere.idempotencyKey)).toBe(true);

    // What went straight is scheduled as anything else: b waits for a, then runs.
    expect((await client.getTask(b, { workflowId: w1 }))?.state).toBe("WAITING");
    const leased = await client.lease({ max: 10 });
    expect(leased.map((l) => l.taskId)).toContain(a);
    for (const lease of leased) await client.complete(lease);
    expect((await client.getTask(b, { workflowId: w1 }))?.state).toBe("RUNNABLE");
  });

  it("refuses a bad one-shard batch with the same single report, and stores nothing of it", async () => {
    const client = await cluster.client();
    await tableLoaded(client, "warm-bad");
    const w = workflowOn(0, "bad");
    await submitSeen(client, [{ id: "taken", deadline: 1, workflowId: w }]);
    const error = await client
      .submit([
        { id: "taken", deadline: 2, workflowId: w },
        { id: "self", deadline: 3, workflowId: w, prerequisites: ["self"] },
        { id: "orphan", deadline: 4, workflowId: w, prerequisites: ["nowhere"] },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).problems.map((p) => [p.taskId, p.code])).toEqual([
      ["taken", "DUPLICATE_ID"],
      ["self", "SELF_DEPENDENCY"],
      ["orphan", "UNKNOWN_PREREQUISITE"],
    ]);
    expect(await client.getTask("self", { workflowId: w })).toBeNull();
  });

  it("a shard refuses a task it cannot place, sent straight to it, with every other problem of the batch", async () => {
    // A task without a workflow is placed by its id: its prerequisites would live elsewhere. The SDK
    // sends such a batch through a coordinator; a hand-made request to a shard is refused the same way.
    const id = (prefix: string) => {
      for (let i = 0; ; i++) if (slotOfTask({ id: `${prefix}-${i}` }) % 2 === 0) return `${prefix}-${i}`;
    };
    const [lone, dup] = [id("lone"), id("dup")];
    const client = await cluster.client();
    await submitSeen(client, [{ id: dup, deadline: 1 }]);
    const reply = decodeReply(
      (
        await tap.request(
          s.shard("shard-0", "submit"),
          encodeRequest({
            op: "submit",
            idempotencyKey: "hand-made",
            tasks: [
              { id: lone, deadline: 1, prerequisites: [dup] },
              { id: dup, deadline: 2 },
            ],
          }),
          { timeout: 5_000 },
        )
      ).data,
      "submit",
    );
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe("VALIDATION_FAILED");
    expect(reply.error.problems?.map((p) => [p.taskId, p.code])).toEqual([
      [lone, "CROSS_WORKFLOW"],
      [dup, "DUPLICATE_ID"],
    ]);
    expect(await client.getTask(lone)).toBeNull();
  });

  it("sends a large workflow's task with a prerequisite in another slot through a coordinator, which sends the edge's link", async () => {
    const client = await cluster.client();
    await tableLoaded(client, "warm-large");
    // Two large tasks of one workflow on the same shard but in different slots, their ids homed
    // there too (else their claims would make the submit two-phase).
    const on = (index: number, prefix: string) => {
      for (let i = 0; ; i++) {
        const id = `${prefix}-${i}`;
        const n = cluster.shards.length;
        if (
          slotOfTask({ id, workflowId: "giant", large: true }) % n === index &&
          homeSlotOf(id) % n === index
        )
          return id;
      }
    };
    const p = on(0, "gp");
    let d = on(0, "gd");
    for (
      let i = 0;
      slotOfTask({ id: d, workflowId: "giant", large: true }) ===
      slotOfTask({ id: p, workflowId: "giant", large: true });
      i++
    )
      d = on(0, `gd${i}`);
    const alone = await submitSeen(client, [
      { id: p, deadline: 1, workflowId: "giant", large: true, type: "giant" },
    ]);
    expect(atShard.get(alone.idempotencyKey)).toBe("shard-0");
    const dependent = await submitSeen(client, [
      { id: d, deadline: 2, workflowId: "giant", large: true, type: "giant", prerequisites: [p] },
    ]);
    expect(atCoordinator.has(dependent.idempotencyKey)).toBe(true);
    // The link reached p's shard: once p completes, d is runnable there.
    // Of its own type: the earlier tests' tasks are runnable too.
    const [lease] = await client.lease({ max: 1, leaseMs: 10_000, types: ["giant"] });
    expect(lease?.taskId).toBe(p);
    await client.complete(lease!);
    await until(
      async () => (await client.getTask(d, { workflowId: "giant", large: true }))?.state === "RUNNABLE",
    );
  });

  it("keeps to coordinators when told to", async () => {
    const client = await cluster.client({ directSubmit: false });
    for (let i = 0; i < 5; i++) {
      const { idempotencyKey } = await submitSeen(client, [{ id: `off-${i}`, deadline: 1 }]);
      expect(atCoordinator.has(idempotencyKey)).toBe(true);
    }
  });
});
