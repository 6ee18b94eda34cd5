/**
 * One cluster, one owner, against a real nats-server: the cluster identity
 * made once in the slot bucket and recorded in each shard's data directory;
 * a restart on the same data accepted; a fresh directory joining only when
 * allowed; a directory of another cluster identity, a shard id held by
 * another directory and an unreadable record refused before anything is
 * opened or claimed.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { slotBucketName } from "@frontier/protocol";
import { Kvm } from "@nats-io/kv";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { silent, TestEnv } from "../test/support.js";
import {
  CLUSTER_IDENTITY_KEY,
  ClusterIdentityError,
  IDENTITY_FILE,
  readDataIdentity,
  shardKey,
} from "./cluster-identity.js";
import type { ShardActorOptions } from "./options.js";
import { ShardActor } from "./shard-actor.js";
import { ShardHost } from "./shard-host.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

async function start(
  o: Partial<ShardActorOptions> & { cluster: string; dataDir: string },
): Promise<ShardActor> {
  const actor = await ShardActor.start({
    natsUrl: env.url,
    shardId: "s0",
    slots: [0, 1],
    logger: silent,
    ...o,
  });
  env.defer(() => actor.close());
  return actor;
}

async function bucketValue(cluster: string, key: string): Promise<string | undefined> {
  const kv = await new Kvm(await env.connect()).open(slotBucketName(cluster));
  const entry = await kv.get(key);
  return entry?.operation === "PUT" ? new TextDecoder().decode(entry.value) : undefined;
}

/** The error `promise` rejects with, which must be a ClusterIdentityError. */
async function refusal(promise: Promise<unknown>): Promise<ClusterIdentityError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClusterIdentityError);
  return error as ClusterIdentityError;
}

describe("the cluster identity", () => {
  it("is made by the first shard, recorded in its data directory, and kept across a restart", async () => {
    const cluster = env.freshCluster();
    const dataDir = env.freshDir();
    const first = await start({ cluster, dataDir });
    const record = readDataIdentity(dataDir)!;
    expect(record).toMatchObject({ cluster, shardId: "s0" });
    expect(await bucketValue(cluster, CLUSTER_IDENTITY_KEY)).toBe(record.clusterId);
    expect(await bucketValue(cluster, shardKey("s0"))).toBe(record.dataId);
    expect(first.ownedSlots()).toEqual([0, 1]);
    await first.close();

    // Restarted on the same data, even as a shard that may not join: the same cluster, nothing rewritten.
    const again = await start({ cluster, dataDir, join: false });
    expect(readDataIdentity(dataDir)).toEqual(record);
    expect(await bucketValue(cluster, CLUSTER_IDENTITY_KEY)).toBe(record.clusterId);
    expect(again.ownedSlots()).toEqual([0, 1]);
  });

  it("lets a fresh shard join when allowed, and refuses it (CLUSTER_EXISTS) otherwise, creating nothing", async () => {
    const cluster = env.freshCluster();
    await start({ cluster, dataDir: env.freshDir() });
    const clusterId = await bucketValue(cluster, CLUSTER_IDENTITY_KEY);

    const refusedDir = env.freshDir();
    const error = await refusal(
      start({ cluster, dataDir: refusedDir, shardId: "s1", slots: [2], join: false }),
    );
    expect(error.code).toBe("CLUSTER_EXISTS");
    expect(error.message).toContain(clusterId!);
    expect(error.message).toContain(refusedDir);
    expect(error.message).toMatch(/--join/);
    expect(existsSync(refusedDir)).toBe(false);
    expect(await bucketValue(cluster, shardKey("s1"))).toBeUndefined();
    expect(await bucketValue(cluster, "slot.2")).toBeUndefined();

    const joinedDir = env.freshDir();
    const joined = await start({ cluster, dataDir: joinedDir, shardId: "s1", slots: [2] });
    expect(readDataIdentity(joinedDir)?.clusterId).toBe(clusterId);
    expect(joined.ownedSlots()).toEqual([2]);
  });

  it("refuses a data directory of another cluster identity (CLUSTER_MISMATCH), naming both", async () => {
    const cluster = env.freshCluster();
    const oldDir = env.freshDir();
    const old = await start({ cluster, dataDir: oldDir });
    const oldId = readDataIdentity(oldDir)!.clusterId;
    await old.close();
    // The bucket is gone (its NATS store wiped), and another deployment made a cluster of the same name.
    await (await new Kvm(await env.connect()).open(slotBucketName(cluster))).destroy();
    await start({ cluster, dataDir: env.freshDir(), shardId: "other" });
    const newId = await bucketValue(cluster, CLUSTER_IDENTITY_KEY);
    expect(newId).not.toBe(oldId);

    const error = await refusal(start({ cluster, dataDir: oldDir, slots: [5] }));
    expect(error.code).toBe("CLUSTER_MISMATCH");
    expect(error.message).toContain(oldId);
    expect(error.message).toContain(newId!);
    expect(error.message).toContain(oldDir);
    expect(await bucketValue(cluster, "slot.5")).toBeUndefined();
  });

  it("is restored from a shard's record when the bucket was lost and no one else took the name", async () => {
    const cluster = env.freshCluster();
    const dataDir = env.freshDir();
    const first = await start({ cluster, dataDir });
    const record = readDataIdentity(dataDir)!;
    await first.close();
    await (await new Kvm(await env.connect()).open(slotBucketName(cluster))).destroy();
    const again = await start({ cluster, dataDir, join: false });
    expect(await bucketValue(cluster, CLUSTER_IDENTITY_KEY)).toBe(record.clusterId);
    expect(await bucketValue(cluster, shardKey("s0"))).toBe(record.dataId);
    expect(again.ownedSlots()).toEqual([0, 1]);
  });

  it("has one winner when fresh shards start together, and every other one joins it", async () => {
    const cluster = env.freshCluster();
    const dirs = Array.from({ length: 4 }, () => env.freshDir());
    await Promise.all(dirs.map((dataDir, i) => start({ cluster, dataDir, shardId: `s${i}`, slots: [i] })));
    const clusterId = await bucketValue(cluster, CLUSTER_IDENTITY_KEY);
    expect(clusterId).toBeDefined();
    expect(dirs.map((d) => readDataIdentity(d)?.clusterId)).toEqual(dirs.map(() => clusterId));
  });

  it("refuses a shard id another data directory holds (SHARD_ID_TAKEN), before opening the directory", async () => {
    const cluster = env.freshCluster();
    await start({ cluster, dataDir: env.freshDir() });
    const secondDir = env.freshDir();
    const error = await refusal(start({ cluster, dataDir: secondDir }));
    expect(error.code).toBe("SHARD_ID_TAKEN");
    expect(error.message).toMatch(/shard id s0/);
    expect(existsSync(secondDir)).toBe(false);
  });

  it("refuses a data directory whose record cannot be read (IDENTITY_UNREADABLE)", async () => {
    const cluster = env.freshCluster();
    const dataDir = env.freshDir();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, IDENTITY_FILE), "{ not json");
    const error = await refusal(start({ cluster, dataDir }));
    expect(error.code).toBe("IDENTITY_UNREADABLE");
    expect(readdirSync(dataDir)).toEqual([IDENTITY_FILE]);
  });
});

describe("a host of shards", () => {
  it("refuses to start as a second instance of a cluster (CLUSTER_EXISTS) before any worker runs", async () => {
    const cluster = env.freshCluster();
    await start({ cluster, dataDir: env.freshDir(), shardId: "first" });
    const dataDir = env.freshDir();
    const error = await refusal(
      ShardHost.start({ natsUrl: env.url, cluster, dataDir, shards: 2, logger: silent }),
    );
    expect(error.code).toBe("CLUSTER_EXISTS");
    expect(existsSync(dataDir)).toBe(false);
  });
});
