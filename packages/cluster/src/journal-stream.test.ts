/**
 * Journal shipping over a real nats-server (journal-stream.ts,
 * journal-follower.ts, standby.ts): a shard's call waits for the stream, a
 * copy rebuilt from the stream holds what was acknowledged, and a takeover
 * marker fences the writer.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { subjectsFor } from "@frontier/protocol";
import { type Journal, LmdbJournal, Shard, ShardErrorCode } from "@frontier/shard";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { silent, TestEnv } from "../test/support.js";
import {
  JournalHeader,
  JournalKind,
  JournalShippingErrorCode,
  JournalStream,
  MARKER_BODY,
} from "./journal-stream.js";
import { restoreFromStream } from "./standby.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/** A Shard shipping to its stream, with a handle on its local journal. */
async function replicatedShard(
  cluster: string,
  origin: string,
  dataDir = env.freshDir(),
  replicaRebaseBytes?: number,
) {
  const nc = await env.connect();
  let local: Journal | undefined;
  const shard = await Shard.open({
    dataDir,
    ...(replicaRebaseBytes === undefined ? {} : { replicaRebaseBytes }),
    replica: new JournalStream({ nc, cluster, shardId: "s0", origin, log: silent }),
    openJournal: async (o) => {
      local = await LmdbJournal.open(o);
      return local;
    },
  });
  env.defer(() => shard.close());
  return { shard, local: local!, dataDir, nc };
}

/** Whether `promise` settled once the event loop turned (a pending one stays pending). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/** A process's state letter from /proc (Linux): "T" once stopped by a signal. */
function processState(pid: number): string | undefined {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
}

async function restoredShard(cluster: string) {
  const dataDir = env.freshDir();
  const { hasCopy } = await restoreFromStream({ nc: await env.connect(), cluster, shardId: "s0", dataDir });
  expect(hasCopy).toBe(true);
  const shard = await Shard.open({ dataDir });
  env.defer(() => shard.close());
  return shard;
}

describe("journal shipping over JetStream", () => {
  it("refuses reads once a standby says it took the shard over", async () => {
    const cluster = env.freshCluster();
    const primary = await replicatedShard(cluster, randomUUID());
    await primary.shard.submit([{ id: "a", deadline: 1 }]);
    primary.shard.confirmOwner();
    const standby = await env.connect();
    standby.publish(subjectsFor(cluster).journalTaken("s0"), new TextEncoder().encode("standby-dir"));
    await standby.flush();
    await primary.nc.flush(); // the server sent the word before this flush's answer
    const refused = (() => {
      try {
        primary.shard.confirmOwner();
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toMatchObject({ code: ShardErrorCode.SHARD_FAILED });
    expect((refused as { cause: { code: string } }).cause.code).toBe(ShardErrorCode.REPLICATION_FAILED);
    expect(() => primary.shard.getTask("a")).toThrow();
  });

  it("holds a call's answer until the stream has its block (nats-server paused)", async () => {
    const cluster = env.freshCluster();
    const { shard, local } = await replicatedShard(cluster, randomUUID());
    await shard.submit([{ id: "a", deadline: 1 }]);
    const pid = env.server.pid!;
    process.kill(pid, "SIGSTOP");
    // The signal lands asynchronously: wait until the kernel shows the server stopped.
    while (processState(pid) !== "T") await new Promise((resolve) => setImmediate(resolve));
    let submitted: Promise<unknown>;
    try {
      submitted = shard.submit([{ id: "b", deadline: 2 }], { idempotencyKey: "k" });
      await local.append([]); // on the local disk ...
      expect(await settled(submitted)).toBe(false); // ... and not answered
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await expect(submitted).resolves.toEqual({ taskIds: ["b"], duplicate: false });
  });

  it("sends a block again across a nats-server restart, and the stream stores it once", async () => {
    const cluster = env.freshCluster();
    const { shard, nc } = await replicatedShard(cluster, randomUUID());
    await shard.submit([{ id: "a", deadline: 1 }]);
    await env.server.kill("SIGKILL");
    // Sent while the server is down (lost with the connection, or buffered until it is back).
    const submitted = shard.submit([{ id: "b", deadline: 2 }]);
    await env.server.restart();
    await expect(submitted).resolves.toEqual({ taskIds: ["b"], duplicate: false });
    const stream = subjectsFor(cluster).journalStream("s0");
    const jsm = await jetstreamManager(nc);
    const { first_seq, last_seq } = (await jsm.streams.info(stream)).state;
    const blocks: string[] = [];
    for (let seq = first_seq; seq <= last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m?.header.get(JournalHeader.KIND) === JournalKind.BLOCK) blocks.push(m.header.get("Nats-Msg-Id"));
    }
    expect(blocks.length).toBe(new Set(blocks).size);
    const copy = await restoredShard(cluster);
    expect(copy.getTask("b")?.state).toBe("RUNNABLE");
  });

  it("rebuilds, in another directory, the state the shard acknowledged: tasks, leases, keys, tokens", async () => {
    const cluster = env.freshCluster();
    const origin = randomUUID();
    const first = await replicatedShard(cluster, origin);
    await first.shard.submit(
      [
        { id: "a", deadline: 1, workflowId: "w" },
        { id: "b", deadline: 2, workflowId: "w", prerequisites: ["a"] },
        { id: "c", deadline: 3, workflowId: "w", payload: { big: "x".repeat(700_000) } },
      ],
      { idempotencyKey: "k1" },
    );
    const [la] = await first.shard.lease("w1", { max: 1, leaseMs: 600_000 });
    await first.shard.complete(la!.taskId, la!.token);
    // A restart on the same directory ships a new base; the blocks after it follow.
    await first.shard.close();
    const second = await replicatedShard(cluster, origin, first.dataDir);
    const leases = await second.shard.lease("w2", { max: 2, leaseMs: 600_000 });
    expect(leases.map((l) => l.taskId)).toEqual(["b", "c"]);
    await second.shard.fail(leases[1]!.taskId, leases[1]!.token, { retryable: true, reason: "x" });
    const views = ["a", "b", "c"].map((id) => second.shard.getTask(id));

    const copy = await restoredShard(cluster);
    expect(["a", "b", "c"].map((id) => copy.getTask(id))).toEqual(views);
    await expect(copy.submit([{ id: "z", deadline: 9 }], { idempotencyKey: "k1" })).resolves.toEqual({
      taskIds: ["a", "b", "c"],
      duplicate: true,
    });
    await copy.submit([{ id: "d", deadline: 0 }]);
    const [next] = await copy.lease("w3", { max: 1 });
    expect(next!.token).toBeGreaterThan(Math.max(...leases.map((l) => l.token)));
    // One base in the stream: the first run's messages were purged when the second's base was in.
    const info = await (await jetstreamManager(second.nc)).streams.info(
      subjectsFor(cluster).journalStream("s0"),
    );
    expect(info.state.first_seq).toBeGreaterThan(1);
  });

  it("ships new bases while the shard runs and purges what came before; the stream still rebuilds everything", async () => {
    const cluster = env.freshCluster();
    const { shard, nc } = await replicatedShard(cluster, randomUUID(), env.freshDir(), 1);
    for (let i = 0; i < 20; i++)
      await shard.submit([{ id: `t${i}`, deadline: i }], { idempotencyKey: `k${i}` });
    const [lease] = await shard.lease("w", { max: 1, leaseMs: 600_000 });
    const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(cluster).journalStream("s0"));
    // A base per block or so, each purging the ones before: far fewer messages than were published.
    expect(info.state.messages).toBeLessThan(info.state.last_seq / 2);
    const copy = await restoredShard(cluster);
    for (let i = 0; i < 20; i++) expect(copy.getTask(`t${i}`)).toEqual(shard.getTask(`t${i}`));
    expect(copy.getTask(lease!.taskId)).toMatchObject({ state: "LEASED", token: lease!.token });
  });

  it("stops a writer once a takeover marker is in its stream, and refuses its next open", async () => {
    const cluster = env.freshCluster();
    const origin = randomUUID();
    const primary = await replicatedShard(cluster, origin);
    await primary.shard.submit([{ id: "a", deadline: 1 }]);
    // A standby's marker, right after the last message.
    const s = subjectsFor(cluster);
    const jsm = await jetstreamManager(primary.nc);
    const last = (await jsm.streams.info(s.journalStream("s0"))).state.last_seq;
    const h = headers();
    h.set(JournalHeader.KIND, JournalKind.TAKEOVER);
    h.set(JournalHeader.ORIGIN, "standby");
    await jetstream(primary.nc).publish(s.journal("s0"), MARKER_BODY, {
      headers: h,
      expect: { lastSequence: last },
    });

    const refused = await primary.shard.submit([{ id: "b", deadline: 2 }]).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: ShardErrorCode.SHARD_FAILED });
    expect((refused as { cause: { code: string } }).cause.code).toBe(ShardErrorCode.REPLICATION_FAILED);
    await primary.shard.close();
    const reopened = await replicatedShard(cluster, origin, primary.dataDir).catch((e: unknown) => e);
    expect(reopened).toMatchObject({ code: ShardErrorCode.REPLICATION_FAILED });
    expect((reopened as { cause: { code: string } }).cause.code).toBe(
      JournalShippingErrorCode.STREAM_TAKEN_OVER,
    );
  });
});
