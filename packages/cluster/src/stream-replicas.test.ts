/**
 * The streams a cluster keeps get the replicas they were asked for
 * (`kvReplicas`), whichever process made them first: a standby, a restore,
 * a shard before the count was raised.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsCluster, type NatsServer, startNatsCluster, startNatsServer } from "@frontier/nats-testing";
import { subjectsFor } from "@frontier/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, silent } from "../test/support.js";
import { journalStreamInfo, openJournalStream } from "./journal-stream.js";
import { openSlotBucket, slotBucketName } from "./slot-ownership.js";
import { restoreFromStream, runStandby } from "./standby.js";
import { StreamReplicasErrorCode } from "./stream-replicas.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "frontier-replicas-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The replicas the server says the shard's journal stream has. */
async function journalReplicas(nc: NatsConnection, cluster: string, shardId: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(cluster).journalStream(shardId));
  return info.config.num_replicas;
}

describe("on a NATS cluster of three", () => {
  let nats: NatsCluster;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNatsCluster({ size: 3 });
    nc = await connect({ servers: [...nats.urls] });
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it("scales a journal stream made with one replica up to the three a primary asks for", async () => {
    // A standby or a restore that was told no count made it first.
    await openJournalStream(nc, "r1", "s0");
    expect(await journalReplicas(nc, "r1", "s0")).toBe(1);
    const info = await journalStreamInfo(await jetstreamManager(nc), "r1", "s0", 3);
    expect(info.config.num_replicas).toBe(3);
    expect(await journalReplicas(nc, "r1", "s0")).toBe(3);
    // One that asks fewer leaves it as it is.
    await journalStreamInfo(await jetstreamManager(nc), "r1", "s0", 1);
    expect(await journalReplicas(nc, "r1", "s0")).toBe(3);
  }, 30_000);

  it("a standby that starts before its primary makes the journal stream with its kvReplicas", async () => {
    const kv = await openSlotBucket(nc, { cluster: "r2", kvReplicas: 3 });
    const stop = new AbortController();
    const following = runStandby({
      nc,
      kv,
      cluster: "r2",
      shardId: "s0",
      dataDir: join(dir, "standby"),
      kvReplicas: 3,
      failoverAfterMs: 60_000,
      checkMs: 20,
      log: silent,
      signal: stop.signal,
    }).catch((error: unknown) => error);
    try {
      await eventually(async () => (await journalReplicas(nc, "r2", "s0").catch(() => 0)) > 0, 10_000);
      expect(await journalReplicas(nc, "r2", "s0")).toBe(3);
      // Stopped once it follows (its consumer is on the stream): a stop while the consumer is
      // being made waits for it.
      const jsm = await jetstreamManager(nc);
      const stream = subjectsFor("r2").journalStream("s0");
      await eventually(async () => (await jsm.consumers.list(stream).next()).length > 0, 20_000);
    } finally {
      stop.abort();
      await following;
    }
  }, 30_000);

  it("scales the slot bucket made with one replica up to three; asking fewer leaves it", async () => {
    const bucket = async () => (await (await new Kvm(nc).open(slotBucketName("r3"))).status()).replicas;
    await openSlotBucket(nc, { cluster: "r3", kvReplicas: 1 });
    expect(await bucket()).toBe(1);
    await openSlotBucket(nc, { cluster: "r3", kvReplicas: 3 });
    expect(await bucket()).toBe(3);
    await openSlotBucket(nc, { cluster: "r3", kvReplicas: 1 });
    expect(await bucket()).toBe(3);
  }, 30_000);
});

describe("on a single server", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });
  afterEach(async () => {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
  });

  it("refuses, with TOO_FEW_REPLICAS, a stream it cannot give the replicas asked, and leaves it as it was", async () => {
    await openJournalStream(nc, "one", "s0");
    await expect(journalStreamInfo(await jetstreamManager(nc), "one", "s0", 3)).rejects.toMatchObject({
      code: StreamReplicasErrorCode.TOO_FEW_REPLICAS,
      message: expect.stringMatching(/journal stream .* has 1 replica, 3 asked/),
    });
    expect(await journalReplicas(nc, "one", "s0")).toBe(1);
    await openSlotBucket(nc, { cluster: "one" });
    await expect(openSlotBucket(nc, { cluster: "one", kvReplicas: 3 })).rejects.toMatchObject({
      code: StreamReplicasErrorCode.TOO_FEW_REPLICAS,
    });
  });

  it("a restore of a shard that has no journal stream copies nothing and makes no stream", async () => {
    const restored = await restoreFromStream({
      nc,
      cluster: "none",
      shardId: "s0",
      dataDir: join(dir, "restore"),
    });
    expect(restored).toEqual({ lastSeq: 0, hasCopy: false });
    await expect(journalReplicas(nc, "none", "s0")).rejects.toThrow(/stream not found/);
  });
});
