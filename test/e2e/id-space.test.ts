/**
 * One id space per cluster (docs/cluster.md), over real shard actors behind
 * real coordinators: a task id is unique in the cluster — a second task of
 * an id on another shard is refused as DUPLICATE_ID with nothing of its
 * batch stored, also when two submits race for it through two coordinators
 * — an id whose task was dropped after its retention is free again, and a
 * task named by id alone is found through its id's home.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FrontierClient } from "@frontier/client";
import { ClusterIdentityError, startShardActor } from "@frontier/cluster";
import { type Coordinator, startCoordinator } from "@frontier/coordinator";
import { ValidationError } from "@frontier/core";
import {
  decodeReply,
  encodeRequest,
  homeSlotOf,
  type IdClaim,
  slotOfTask,
  subjectsFor,
  unwrapReply,
} from "@frontier/protocol";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "./harness.js";

const SHARDS = 2;
/** Tasks end this long after they finish: short, so a test sees an id freed by retention. */
const RETENTION_MS = 300;

let cluster: TestCluster;
let client: FrontierClient;
let nc: NatsConnection;

beforeAll(async () => {
  // No sweep of claims: the test of an id freed by retention sees the claim outlive its task, then
  // taken over by the next batch (the sweep is tested in packages/cluster's id-home.test.ts).
  cluster = await startCluster({
    shards: SHARDS,
    cluster: "idspace",
    engine: { retentionMs: RETENTION_MS },
    claimSweepMs: 0,
  });
  client = await cluster.client();
  nc = await connect({ servers: cluster.url });
});

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

/** The shard the harness gives `slot` (slots n mod SHARDS). */
const ownerOf = (slot: number) => `shard-${slot % SHARDS}`;

/** A workflow on shard `index`, for tasks of any id. */
function workflowOn(index: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const w = `${prefix}-${i}`;
    if (slotOfTask({ id: "x", workflowId: w }) % SHARDS === index) return w;
  }
}

/** An id homed on shard `index` (its claim is kept there). */
function idHomedOn(index: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (homeSlotOf(id) % SHARDS === index) return id;
  }
}

/** The claim of `taskId` as its home shard knows it (`locate`, as a coordinator asks). */
async function claimOf(taskId: string): Promise<IdClaim | null> {
  const home = ownerOf(homeSlotOf(taskId));
  const msg = await nc.request(
    subjectsFor(cluster.cluster).shard(home, "locate"),
    encodeRequest({ op: "locate", taskId }),
    { timeout: 5_000 },
  );
  return unwrapReply(decodeReply(msg.data, "locate")).claim;
}

/** Every task the shards hold, summed. */
function tasksHeld(): number {
  return cluster.shards.reduce(
    (sum, s) => sum + Object.values(s.stats().shard.counts).reduce((a, b) => a + b, 0),
    0,
  );
}

async function refusal(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe("one id space per cluster", () => {
  it("refuses a task whose id a task of another workflow on another shard holds, storing nothing of its batch", async () => {
    // The id homed on shard 0, its first task on shard 1, the second on shard 0: three shards' worth of roles on two.
    const id = idHomedOn(0, "dup");
    const first = workflowOn(1, "first");
    const second = workflowOn(0, "second");
    await client.submit([{ id, deadline: 1_000, workflowId: first }]);
    expect(await claimOf(id)).toEqual({ taskId: id, workflowId: first });
    const before = tasksHeld();
    const error = await refusal(
      client.submit([
        { id: "sibling-a", deadline: 1_000, workflowId: second },
        { id, deadline: 1_000, workflowId: second },
        { id: "sibling-b", deadline: 1_000, workflowId: first },
      ]),
    );
    expect(error.problems).toEqual([expect.objectContaining({ taskId: id, code: "DUPLICATE_ID" })]);
    expect(error.problems[0]?.message).toContain(JSON.stringify(first));
    expect(tasksHeld()).toBe(before);
    expect(await client.getTask("sibling-a")).toBeNull();
    expect(await client.getTask("sibling-b")).toBeNull();
    expect(cluster.shards.map((s) => s.stats().prepared)).toEqual([0, 0]);
    // The id still names the first task, and only it.
    expect(await claimOf(id)).toEqual({ taskId: id, workflowId: first });
    expect(await client.getTask(id)).toMatchObject({ id, workflowId: first });
  });

  it("refuses it whichever shard is the id's home, the holder's or the newcomer's", async () => {
    for (const home of [0, 1]) {
      const id = idHomedOn(home, `either-${home}`);
      await client.submit([{ id, deadline: 1_000, workflowId: workflowOn(home, "h") }]);
      const error = await refusal(
        client.submit([{ id, deadline: 1_000, workflowId: workflowOn(1 - home, "o") }]),
      );
      expect(error.problems.map((p) => [p.taskId, p.code])).toEqual([[id, "DUPLICATE_ID"]]);
      // A task without a workflow is homed where it lives: refused the same way.
      const bare = await refusal(client.submit([{ id, deadline: 1_000 }]));
      expect(bare.problems.map((p) => p.code)).toEqual(["DUPLICATE_ID"]);
    }
  });

  it("lists a cross-shard duplicate with the other problems of a rejected batch (one report)", async () => {
    const id = idHomedOn(1, "report");
    await client.submit([{ id, deadline: 1_000, workflowId: workflowOn(0, "r0") }]);
    const error = await refusal(
      client.submit([
        { id, deadline: 1_000, workflowId: workflowOn(0, "r1") },
        { id: "self-ref", deadline: 1_000, workflowId: workflowOn(1, "r2"), prerequisites: ["self-ref"] },
      ]),
    );
    expect(error.problems.map((p) => [p.taskId, p.code])).toEqual([
      [id, "DUPLICATE_ID"],
      ["self-ref", "SELF_DEPENDENCY"],
    ]);
  });

  it("lets exactly one of two submits racing for an id through two coordinators win", async () => {
    let second: Coordinator | undefined;
    try {
      second = await startCoordinator({
        natsUrl: cluster.url,
        cluster: cluster.cluster,
        logger: pino({ level: "silent" }),
      });
      await until(() => second!.inspect().slotsOwned === 1024);
      const other = await cluster.client();
      const w0 = workflowOn(0, "race-a");
      const w1 = workflowOn(1, "race-b");
      const ids = Array.from({ length: 24 }, (_, i) => idHomedOn(i % SHARDS, `race-${i}`));
      const outcomes = await Promise.all(
        ids.map((id) =>
          Promise.allSettled([
            client.submit([{ id, deadline: 1_000, workflowId: w0 }]),
            other.submit([{ id, deadline: 1_000, workflowId: w1 }]),
          ]),
        ),
      );
      for (const [i, pair] of outcomes.entries()) {
        const won = pair.filter((o) => o.status === "fulfilled");
        expect(won, ids[i]).toHaveLength(1);
        const lost = pair.find((o) => o.status === "rejected") as PromiseRejectedResult;
        // The loser is refused for the id (taken, or reserved by the winner's prepared claim), or
        // retryably while the winner's part is still prepared; never accepted.
        expect(lost.reason).toBeInstanceOf(Error);
      }
      // Exactly one task per id in the cluster, and its claim names it.
      for (const id of ids) {
        const holders = await Promise.all([w0, w1].map((w) => client.getTask(id, { workflowId: w })));
        expect(
          holders.filter((t) => t !== null),
          id,
        ).toHaveLength(1);
        const claim = await claimOf(id);
        expect(claim?.workflowId).toBe(holders.find((t) => t !== null)?.workflowId);
      }
    } finally {
      await second?.close();
    }
  });

  it("gives an id whose task was dropped after its retention to a new task, in another workflow", async () => {
    const id = idHomedOn(0, "retained");
    const first = workflowOn(1, "old");
    const next = workflowOn(0, "new");
    await client.submit([{ id, deadline: 1, workflowId: first, type: "retention" }]);
    const [lease] = await client.lease({ max: 1, types: ["retention"] });
    expect(lease?.taskId).toBe(id);
    await client.complete(lease!);
    // The holder drops it after RETENTION_MS; the claim at the home outlives it.
    await until(async () => (await client.getTask(id, { workflowId: first })) === null);
    expect(await claimOf(id)).toEqual({ taskId: id, workflowId: first });
    // A bare-id read follows the stale claim and finds nothing.
    expect(await client.getTask(id)).toBeNull();
    await client.submit([{ id, deadline: 1_000, workflowId: next }]);
    expect(await claimOf(id)).toEqual({ taskId: id, workflowId: next });
    expect(await client.getTask(id)).toMatchObject({ id, workflowId: next });
  });

  it("reaches a task named by id alone through its home: getTask, updateDeadline and cancel", async () => {
    const id = idHomedOn(0, "by-id");
    const w = workflowOn(1, "by-id-wf");
    await client.submit([{ id, deadline: 5_000, workflowId: w }]);
    expect(await client.getTask(id)).toMatchObject({ id, workflowId: w, state: "RUNNABLE" });
    await client.updateDeadline(id, 6_000);
    await client.cancel(id);
    expect(await client.getTask(id, { workflowId: w })).toMatchObject({
      state: "CANCELLED",
      deadline: 6_000,
    });
    expect(await client.getTask("no-such-task")).toBeNull();
  });
});

describe("a cluster whose ids are unique per shard (--id-space workflow)", () => {
  let wf: TestCluster;
  beforeAll(async () => {
    wf = await startCluster({ shards: SHARDS, cluster: "idspace-wf", idSpace: "workflow" });
  });
  afterAll(async () => {
    await wf?.stop();
  });

  it("takes a second task of an id on another shard, and asks every shard about a task named by id alone", async () => {
    const c = await wf.client();
    const [a, b] = [workflowOn(0, "wf-a"), workflowOn(1, "wf-b")];
    await c.submit([{ id: "shared", deadline: 1, workflowId: a }]);
    await c.submit([{ id: "shared", deadline: 2, workflowId: b }]);
    expect(await c.getTask("shared", { workflowId: a })).toMatchObject({ deadline: 1 });
    expect(await c.getTask("shared", { workflowId: b })).toMatchObject({ deadline: 2 });
    const ambiguous = await c.getTask("shared").catch((e: unknown) => e);
    expect(ambiguous).toMatchObject({ code: "AMBIGUOUS_TASK" });
  });

  it("refuses a shard started with the other id space, changing nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "frontier-idspace-"));
    const error = await startShardActor({
      natsUrl: wf.url,
      cluster: wf.cluster,
      shardId: `shard-${SHARDS}`,
      dataDir: join(dir, "mismatched"),
      logger: pino({ level: "silent" }),
      idSpace: "cluster",
    })
      .catch((e: unknown) => e)
      .finally(() => rm(dir, { recursive: true, force: true }));
    expect(error).toBeInstanceOf(ClusterIdentityError);
    expect(error).toMatchObject({ code: "ID_SPACE_MISMATCH" });
    expect((error as Error).message).toMatch(/--id-space workflow/);
  });
});
