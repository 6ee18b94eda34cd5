/**
 * The standby against a real nats-server (standby.ts): it follows a
 * replicated shard actor, takes the shard over once the primary is silent,
 * and the shard opened on its directory serves what the primary
 * acknowledged; a primary that was only paused is fenced at its next write.
 */
import { Kvm } from "@nats-io/kv";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ok, silent, TestEnv } from "../test/support.js";
import { readDataIdentity, shardKey } from "./cluster-identity.js";
import { ShardActor } from "./shard-actor.js";
import { slotBucketName } from "./slot-ownership.js";
import { runStandby } from "./standby.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

describe("a standby", () => {
  it("takes over a silent primary: the shard opened on its copy serves what the primary acknowledged", async () => {
    const primary = await env.startActor({ replicate: true });
    const submitted = ok(
      await primary.q({
        op: "submit",
        tasks: [
          { id: "a", deadline: 1, workflowId: primary.wf },
          { id: "b", deadline: 2, workflowId: primary.wf, prerequisites: ["a"] },
        ],
        idempotencyKey: "k",
      }),
    );
    expect(submitted.accepted).toBe(2);
    const leased = ok(
      await primary.q({ op: "lease", owner: "w", max: 1, leaseMs: 600_000, waitMs: 0, requestId: "r1" }),
    );

    const nc = await env.connect();
    const kv = await new Kvm(nc).open(slotBucketName(primary.cluster));
    const dataDir = env.freshDir();
    const stop = new AbortController();
    env.defer(async () => stop.abort());
    const taking = runStandby({
      nc,
      kv,
      cluster: primary.cluster,
      shardId: primary.shardId,
      dataDir,
      failoverAfterMs: 300,
      log: silent,
      checkMs: 20,
      signal: stop.signal,
    });
    // The primary stops announcing (its host is lost; here, closed).
    await primary.actor.close();
    const { identity } = await taking;
    expect(readDataIdentity(dataDir)?.dataId).toBe(identity.dataId);
    const holder = await kv.get(shardKey(primary.shardId));
    expect(new TextDecoder().decode(holder!.value)).toBe(identity.dataId);

    const successor = await env.startActor({
      cluster: primary.cluster,
      shardId: primary.shardId,
      dataDir,
      replicate: true,
      slots: "auto",
    });
    const view = ok(await successor.q({ op: "getTask", taskId: "a", workflowId: primary.wf }));
    expect(view.task).toMatchObject({ state: "LEASED", token: leased.leases[0]!.token });
    // The lease keeps its secret: the key came with the base.
    const held = leased.leases[0]!;
    const completed = ok(
      await successor.q({
        op: "complete",
        taskId: "a",
        workflowId: primary.wf,
        token: held.token,
        secret: held.secret!,
      }),
    );
    expect(completed.duplicate).toBe(false);
    const replay = ok(
      await successor.q({
        op: "submit",
        tasks: [{ id: "z", deadline: 1, workflowId: primary.wf }],
        idempotencyKey: "k",
      }),
    );
    expect(replay.replayed).toBe(true);
    // The old directory is refused: the shard id is the standby's now.
    await expect(
      ShardActor.start({
        natsUrl: env.url,
        cluster: primary.cluster,
        shardId: primary.shardId,
        dataDir: primary.dataDir,
        replicate: true,
        logger: silent,
      }),
    ).rejects.toMatchObject({ code: "SHARD_ID_TAKEN" });
  });

  it("follows its primary through restarts and new bases, and takes over with the last state", async () => {
    const first = await env.startActor({ replicate: true });
    const { cluster, shardId, wf } = first;
    ok(
      await first.q({
        op: "submit",
        tasks: [
          { id: "a", deadline: 1, workflowId: wf },
          { id: "b", deadline: 2, workflowId: wf, prerequisites: ["a"] },
        ],
        idempotencyKey: "k",
      }),
    );
    const nc = await env.connect();
    const kv = await new Kvm(nc).open(slotBucketName(cluster));
    const dataDir = env.freshDir();
    const stop = new AbortController();
    env.defer(async () => stop.abort());
    const taking = runStandby({
      nc,
      kv,
      cluster,
      shardId,
      dataDir,
      // Longer than a restart of the primary here: the standby must not take over in between.
      failoverAfterMs: 3_000,
      checkMs: 20,
      log: silent,
      signal: stop.signal,
    });
    // A restart of the primary on its directory: a new run, a new base (the old one purged).
    await first.actor.close();
    // This run ships a new base after every block or so: the standby swaps copies as it follows.
    const second = await env.startActor({
      cluster,
      shardId,
      dataDir: first.dataDir,
      replicate: true,
      replicationRebaseBytes: 1,
      slots: "auto",
    });
    const [lease] = ok(
      await second.q({ op: "lease", owner: "w", max: 1, leaseMs: 600_000, waitMs: 0, requestId: "r" }),
    ).leases;
    ok(
      await second.q({
        op: "complete",
        taskId: "a",
        workflowId: wf,
        token: lease!.token,
        secret: lease!.secret!,
      }),
    );
    ok(
      await second.q({
        op: "submit",
        tasks: [{ id: "c", deadline: 3, workflowId: wf }],
        idempotencyKey: "k2",
      }),
    );
    await second.actor.close();

    await taking;
    const successor = await env.startActor({ cluster, shardId, dataDir, replicate: true, slots: "auto" });
    const state = async (id: string) =>
      ok(await successor.q({ op: "getTask", taskId: id, workflowId: wf })).task?.state;
    expect([await state("a"), await state("b"), await state("c")]).toEqual([
      "COMPLETED",
      "RUNNABLE",
      "RUNNABLE",
    ]);
    for (const key of ["k", "k2"])
      expect(
        ok(
          await successor.q({
            op: "submit",
            tasks: [{ id: "z", deadline: 1, workflowId: wf }],
            idempotencyKey: key,
          }),
        ).replayed,
      ).toBe(true);
  });
});
