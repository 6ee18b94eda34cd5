/**
 * ShardHost against a real nats-server: shard actors on worker threads
 * (the .ts worker entry, through tsx, as vitest runs the source), slots
 * spread over them, a crashed worker restarted on its data, a clean close,
 * and a first start that fails.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  CRASHABLE_WORKER,
  crashWorker,
  eventually,
  keysInSlots,
  logLevel,
  silent,
  TestEnv,
  task,
} from "../test/support.js";
import { checkShardHostOptions } from "./options.js";
import { ShardHost, type ShardHostEvent, WorkerState } from "./shard-host.js";
import { watchSlotMap } from "./slot-ownership.js";
import { spreadSlots } from "./slots.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

describe("ShardHost", () => {
  it("runs N actors on worker threads, restarts one that crashes, and closes them all", async () => {
    const cluster = env.freshCluster();
    const dataDir = env.freshDir();
    const host = await ShardHost.start({
      natsUrl: env.url,
      cluster,
      dataDir,
      shards: 3,
      logLevel,
      logger: silent,
      restartInitialMs: 50,
      workerEntry: CRASHABLE_WORKER, // so that the test can crash one
    });
    env.defer(() => host.close());
    const events: ShardHostEvent[] = [];
    host.onEvent((e) => events.push(e));
    expect(host.shardIds).toEqual(["shard-0", "shard-1", "shard-2"]);
    expect(host.workers().map((w) => w.state)).toEqual([
      WorkerState.RUNNING,
      WorkerState.RUNNING,
      WorkerState.RUNNING,
    ]);
    expect(host.workers()[1]).toMatchObject({ dataDir: join(dataDir, "shard-1"), restarts: 0 });

    // Shard i owns the slots n with n mod 3 == i.
    const nc = await env.connect();
    const map = await watchSlotMap(nc, { cluster, logger: silent });
    env.defer(() => map.close());
    for (let i = 0; i < 3; i++) expect(map.slotsOf(`shard-${i}`)).toEqual(spreadSlots(i, 3));

    // Each one serves its own slots.
    for (let i = 0; i < 3; i++) {
      const [wf] = keysInSlots(`wf${i}-`, spreadSlots(i, 3), 1) as [string];
      // An id homed on the same shard (homeSlotOf): its claim is the task itself.
      const [id] = keysInSlots(`t${i}-`, spreadSlots(i, 3), 1) as [string];
      const reply = await ask(nc, cluster, `shard-${i}`, {
        op: "submit",
        tasks: [task(id, i, { workflowId: wf })],
        idempotencyKey: `k${i}`,
      });
      expect(reply).toMatchObject({ ok: true, accepted: 1 });
    }

    // A worker dies of an uncaught exception: the host starts it again, on the same data.
    crashWorker("shard-1", "test crash");
    await eventually(
      () => events.some((e) => e.type === "worker:ready" && e.shardId === "shard-1" && e.restarts === 1),
      20_000,
      "shard-1 back",
    );
    expect(events.map((e) => e.type)).toEqual(["worker:exit", "worker:restart", "worker:ready"]);
    expect(events[0]).toMatchObject({ shardId: "shard-1", code: 1, restartInMs: 50 });
    expect((events[0] as { reason?: string }).reason).toMatch(/test crash/);
    expect(host.restarts).toBe(1);
    expect(host.workers()[1]).toMatchObject({ state: WorkerState.RUNNING, restarts: 1 });
    const [wf1] = keysInSlots("wf1-", spreadSlots(1, 3), 1) as [string];
    const [t1] = keysInSlots("t1-", spreadSlots(1, 3), 1) as [string];
    const kept = await ask(nc, cluster, "shard-1", { op: "getTask", taskId: t1, workflowId: wf1 });
    expect(kept).toMatchObject({ ok: true, task: { id: t1, state: "RUNNABLE" } });
    expect(map.slotsOf("shard-1")).toEqual(spreadSlots(1, 3));

    await host.close();
    expect(host.workers().every((w) => w.state === WorkerState.STOPPED)).toBe(true);
    expect(host.workers().map((w) => w.lastExit?.code)).toEqual([0, 0, 0]);
    await expect(ask(nc, cluster, "shard-0", { op: "stats" }, 1_000)).rejects.toThrow();
    // Nothing restarted on the way down.
    expect(events.filter((e) => e.type === "worker:restart").length).toBe(1);
  });

  it("fails to start, stopping every worker, when a shard cannot open its data", async () => {
    const dataDir = env.freshDir();
    const cluster = env.freshCluster();
    // shard-1's directory is a file.
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "shard-1"), "not a directory");
    await expect(
      ShardHost.start({ natsUrl: env.url, cluster, dataDir, shards: 2, logLevel, logger: silent }),
    ).rejects.toThrow(/shard shard-1 did not start/);
  });

  it("checks its options, naming the bad one", () => {
    expect(() => checkShardHostOptions({ dataDir: "/x", shards: 0 })).toThrow(/"shards"/);
    expect(() => checkShardHostOptions({ dataDir: "", shards: 1 })).toThrow(/"dataDir"/);
    expect(() =>
      checkShardHostOptions({ dataDir: "/x", shards: 2, restartInitialMs: 5, restartMaxMs: 1 }),
    ).toThrow(/"restartMaxMs"/);
    expect(() =>
      checkShardHostOptions({ dataDir: "/x", shards: 1, shard: { backoff: { baseMs: () => 1 } } as never }),
    ).toThrow(/"shard" must be plain data/);
    expect(checkShardHostOptions({ dataDir: "/x", shards: 2 })).toMatchObject({
      natsUrl: ["nats://127.0.0.1:4222"],
      cluster: "default",
    });
  });
});
