/**
 * `--kv-replicas` as an operator on a NATS cluster uses it: `frontier start
 * --kv-replicas 3 --replicate` against a routed cluster of three
 * nats-servers keeps the slot bucket and each shard's journal stream on
 * three servers, and work flows through it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type FrontierClient } from "@frontier/client";
import { type NatsCluster, startNatsCluster } from "@frontier/nats-testing";
import { slotBucketName, subjectsFor } from "@frontier/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { type NatsConnection, connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StartedFrontier, startFrontier, until } from "./harness.js";

const CLUSTER = "replicas";
let nats: NatsCluster;
let nc: NatsConnection;
let started: StartedFrontier | undefined;
let client: FrontierClient | undefined;
let dir: string;

beforeAll(async () => {
  nats = await startNatsCluster({ size: 3 });
  nc = await natsConnect({ servers: [...nats.urls] });
  dir = mkdtempSync(join(tmpdir(), "frontier-replicas-"));
}, 60_000);

afterAll(async () => {
  await client?.close();
  await started?.stop();
  await nc?.close();
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("frontier start --kv-replicas 3 on a NATS cluster of three", () => {
  it("keeps the slot bucket and the shards' journal streams on three servers, and serves", async () => {
    started = await startFrontier([
      "--nats",
      nats.urls[0]!,
      "--cluster",
      CLUSTER,
      "--data",
      join(dir, "data"),
      "--shards",
      "2",
      "--kv-replicas",
      "3",
      "--replicate",
      "--no-metrics",
      "--no-console",
    ]);
    const jsm = await jetstreamManager(nc);
    const bucket = await jsm.streams.info(`KV_${slotBucketName(CLUSTER)}`);
    expect(bucket.config.num_replicas).toBe(3);
    expect(bucket.cluster?.replicas).toHaveLength(2);
    for (const shardId of ["shard-0", "shard-1"]) {
      const journal = await jsm.streams.info(subjectsFor(CLUSTER).journalStream(shardId));
      expect(journal.config.num_replicas).toBe(3);
    }
    client = await connect({ servers: [...nats.urls], cluster: CLUSTER });
    const c = client;
    await c.submit([{ id: "r-1", deadline: Date.now() + 60_000 }]);
    let leased: readonly { taskId: string }[] = [];
    await until(async () => {
      leased = await c.lease({ max: 1, waitMs: 500 });
      return leased.length === 1;
    }, 20_000);
    expect(leased[0]!.taskId).toBe("r-1");
  }, 90_000);
});
