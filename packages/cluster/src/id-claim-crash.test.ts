/**
 * A cross-shard submit's id claims through crashes (docs/cluster.md, "One
 * id space per cluster"): two shard actors on a ShardHost's worker threads
 * that the test makes die of an uncaught exception (crashable-worker.ts),
 * restarted by the host on their data, between the phases a coordinator
 * drives (submit.ts): prepare everywhere, the claims of tasks held
 * elsewhere made durable (`claimsOnly`), then the tasks committed.
 *
 *   - the id's home dies before its claims are durable: its claimsOnly
 *     commit fails, every part is aborted, nothing is stored, the id is free;
 *   - the home dies after: the claim is there after the restart, the task is
 *     committed, and the id stays taken;
 *   - the task's shard dies before its commit: the claim is a row of a task
 *     that no shard holds, and the next batch that needs the id takes it over.
 */
import type { Request } from "@frontier/protocol";
import { homeSlotOf, slotOfTask } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  CRASHABLE_WORKER,
  crashWorker,
  eventually,
  logLevel,
  ok,
  silent,
  TestEnv,
  task,
} from "../test/support.js";
import { ShardHost, type ShardHostEvent } from "./shard-host.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/** Two shards: shard-0 owns the even slots, shard-1 the odd ones (n mod 2). */
async function host(cluster: string): Promise<ShardHostEvent[]> {
  const h = await ShardHost.start({
    natsUrl: env.url,
    cluster,
    dataDir: env.freshDir(),
    shards: 2,
    logLevel,
    logger: silent,
    restartInitialMs: 50,
    announceIntervalMs: 50,
    workerEntry: CRASHABLE_WORKER,
  });
  env.defer(() => h.close());
  const events: ShardHostEvent[] = [];
  h.onEvent((e) => events.push(e));
  return events;
}

const restarts = (events: readonly ShardHostEvent[], shardId: string) =>
  events.filter((e) => e.type === "worker:ready" && e.shardId === shardId).length;

/** A key whose slot (as `slot` computes it) is on shard `shard` (n mod 2). */
function keyOn(prefix: string, shard: 0 | 1, slot: (key: string) => number): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${i}`;
    if (slot(key) % 2 === shard) return key;
  }
}

/** An id homed on shard-0; two workflows on shard-1, one on shard-0. */
const ID = keyOn("crash-id", 0, homeSlotOf);
const WF = keyOn("crash-wf", 1, (w) => slotOfTask({ id: "x", workflowId: w }));
const WF2 = keyOn("crash-wf2", 1, (w) => slotOfTask({ id: "x", workflowId: w }));
const HOME_WF = keyOn("crash-home-wf", 0, (w) => slotOfTask({ id: "x", workflowId: w }));

async function cluster() {
  const name = env.freshCluster();
  const nc = await env.connect();
  const events = await host(name);
  const q = <R extends Request>(shardId: string, r: R) => ask(nc, name, shardId, r, 30_000);
  /** Phase one of a batch of one task X of `workflowId`, held by shard-1, its claim at shard-0. */
  const prepare = async (key: string, workflowId: string) => {
    ok(
      await q("shard-1", {
        op: "prepare",
        tasks: [task(ID, 1, { workflowId })],
        idempotencyKey: key,
        claims: [],
      }),
    );
    ok(
      await q("shard-0", {
        op: "prepare",
        tasks: [],
        idempotencyKey: key,
        claims: [{ taskId: ID, workflowId }],
      }),
    );
  };
  /** The whole batch, as a coordinator drives it (no crash). */
  const submit = async (key: string, workflowId: string) => {
    await prepare(key, workflowId);
    ok(await q("shard-0", { op: "commit", idempotencyKey: key, claimsOnly: true }));
    return q("shard-1", { op: "commit", idempotencyKey: key });
  };
  const crash = async (shardId: string) => {
    const before = restarts(events, shardId);
    crashWorker(shardId, "crash between the phases of a submit");
    await eventually(() => restarts(events, shardId) > before, 20_000, `${shardId} back`);
  };
  return { q, prepare, submit, crash };
}

describe("a cross-shard submit's claims through crashes", () => {
  it("the id's home dies before its claims are durable: the batch is aborted, nothing stored, the id free", async () => {
    const { q, prepare, submit, crash } = await cluster();
    await prepare("k1", WF);
    await crash("shard-0");
    // The coordinator's claimsOnly commit finds nothing prepared (retryable), so it aborts every part.
    const kept = await q("shard-0", { op: "commit", idempotencyKey: "k1", claimsOnly: true });
    expect(kept.ok ? "ok" : kept.error.code).toBe("SHARD_UNAVAILABLE");
    ok(await q("shard-1", { op: "abort", idempotencyKey: "k1" }));
    ok(await q("shard-0", { op: "abort", idempotencyKey: "k1" }));
    expect(ok(await q("shard-1", { op: "getTask", taskId: ID, workflowId: WF })).task).toBeNull();
    expect(ok(await q("shard-0", { op: "locate", taskId: ID })).claim).toBeNull();
    // Another batch may take the id.
    expect(ok(await submit("k2", WF2))).toMatchObject({ accepted: 1 });
    expect(ok(await q("shard-0", { op: "locate", taskId: ID })).claim).toEqual({
      taskId: ID,
      workflowId: WF2,
    });
  });

  it("the id's home dies after its claims are durable: the task is committed and the id stays taken", async () => {
    const { q, prepare, crash } = await cluster();
    await prepare("k1", WF);
    ok(await q("shard-0", { op: "commit", idempotencyKey: "k1", claimsOnly: true }));
    await crash("shard-0");
    expect(ok(await q("shard-0", { op: "locate", taskId: ID })).claim).toEqual({
      taskId: ID,
      workflowId: WF,
    });
    expect(ok(await q("shard-1", { op: "commit", idempotencyKey: "k1" }))).toMatchObject({ accepted: 1 });
    // A second task of the id, in a workflow of the home's own: one shard's submit, its claim refused
    // there (the row's task is held on shard-1), nothing stored.
    const refused = await q("shard-0", {
      op: "submit",
      tasks: [task(ID, 1, { workflowId: HOME_WF })],
      idempotencyKey: "k2",
      claims: [{ taskId: ID, workflowId: HOME_WF }],
    });
    expect(refused.ok ? [] : (refused.error.problems ?? []).map((p) => p.code)).toEqual(["DUPLICATE_ID"]);
    expect(ok(await q("shard-0", { op: "getTask", taskId: ID, workflowId: HOME_WF })).task).toBeNull();
    expect(ok(await q("shard-1", { op: "getTask", taskId: ID, workflowId: WF })).task).toMatchObject({
      id: ID,
    });
  });

  it("the task's shard dies before its commit: the claim's row is taken over by the next batch of the id", async () => {
    const { q, prepare, submit, crash } = await cluster();
    await prepare("k1", WF);
    ok(await q("shard-0", { op: "commit", idempotencyKey: "k1", claimsOnly: true }));
    await crash("shard-1");
    // The prepared part died with the shard: its commit fails, retryably; the batch was never acknowledged.
    const lost = await q("shard-1", { op: "commit", idempotencyKey: "k1" });
    expect(lost.ok ? "ok" : lost.error.code).toBe("SHARD_UNAVAILABLE");
    expect(ok(await q("shard-1", { op: "holds", taskId: ID, workflowId: WF })).held).toBe(false);
    // The home asks shard-1, which holds no such task: the id goes to the new batch.
    expect(ok(await submit("k2", WF2))).toMatchObject({ accepted: 1 });
    expect(ok(await q("shard-0", { op: "locate", taskId: ID })).claim).toEqual({
      taskId: ID,
      workflowId: WF2,
    });
    // The first batch, tried again under its key (its claims part was committed whole at the home,
    // before the crash): not replayed, since the id is another task's now.
    const again = await q("shard-0", {
      op: "prepare",
      tasks: [],
      idempotencyKey: "k1",
      claims: [{ taskId: ID, workflowId: WF }],
    });
    expect(again.ok ? [] : (again.error.problems ?? []).map((p) => p.code)).toEqual(["DUPLICATE_ID"]);
  });
});
