/**
 * The slot guard against a real nats-server: writes to the bucket made
 * outside Frontier's claims (an unconditional put, a deleted key, a deleted
 * bucket) never leave one slot served by two shards, and what can be
 * repaired is.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, silent, TestEnv } from "../test/support.js";
import { SlotGuard, type SlotRepair } from "./slot-guard.js";
import { SlotOwnership, slotBucketName, slotKey } from "./slot-ownership.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/** A shard's ownership and guard over `slots`, claimed now; repairs recorded. */
async function shard(cluster: string, shardId: string, slots: number[]) {
  const ownership = await SlotOwnership.open(await env.connect(), { cluster, logger: silent });
  env.defer(() => ownership.close());
  const claim = await ownership.claim(shardId, slots);
  const repairs: SlotRepair[] = [];
  const guard = new SlotGuard(ownership, {
    shardId,
    claimed: claim.owned,
    intervalMs: 60_000, // the tests call check() themselves; changes also trigger it
    log: silent,
    onRepair: (kind) => repairs.push(kind),
  });
  guard.start();
  env.defer(async () => guard.stop());
  return { ownership, guard, repairs };
}

/** Someone with write access to the bucket, writing past Frontier's claims. */
async function intruder(cluster: string) {
  const nc = await env.connect();
  return { kv: await new Kvm(nc).open(slotBucketName(cluster)), jsm: await jetstreamManager(nc) };
}

describe("SlotGuard", () => {
  it("serves only the slots its shard claimed and the bucket names it for", async () => {
    const cluster = env.freshCluster();
    const a = await shard(cluster, "a", [1, 2, 3]);
    expect(a.guard.served()).toEqual([1, 2, 3]);
    expect(a.guard.serves(4)).toBe(false);
  });

  it("serves all slots only while it alone owns every one of them (a cluster of one shard)", async () => {
    const cluster = env.freshCluster();
    const all = Array.from({ length: 1024 }, (_, i) => i);
    const a = await shard(cluster, "a", all);
    await eventually(() => a.ownership.map.ownedCount() === 1024, 10_000);
    expect(a.guard.servesAll()).toBe(true);
    // One slot moving away: no longer all.
    a.guard.leave(7);
    expect(a.guard.servesAll()).toBe(false);
    a.guard.keep(7);
    expect(a.guard.servesAll()).toBe(true);
    const b = await shard(env.freshCluster(), "b", [1, 2]);
    expect(b.guard.servesAll()).toBe(false);
  });

  it("has a slot written over to another shard given back: the other one never claimed it", async () => {
    const cluster = env.freshCluster();
    const a = await shard(cluster, "a", [1, 2]);
    const b = await shard(cluster, "b", [3]);
    const { kv } = await intruder(cluster);
    await kv.put(slotKey(1), new TextEncoder().encode("b")); // unconditional: no claim of b's
    // b gives the slot up (it never claimed it, so it served none of it), and a, whose tasks
    // it holds, claims it back. Between the two, neither serves it: a sees b named, b never claimed.
    await eventually(() => b.repairs.includes("disowned") && a.repairs.includes("reclaimed"), 10_000);
    await eventually(() => a.guard.serves(1) && a.ownership.map.ownerOf(1) === "a");
    expect(b.guard.serves(1)).toBe(false);
    expect(a.guard.served()).toEqual([1, 2]);
    expect(b.guard.served()).toEqual([3]);
  });

  it("refuses, and gives up, a slot written to it that it never claimed", async () => {
    const cluster = env.freshCluster();
    const b = await shard(cluster, "b", [3]);
    const { kv } = await intruder(cluster);
    await kv.put(slotKey(4), new TextEncoder().encode("b"));
    await eventually(() => b.repairs.includes("disowned"));
    expect(b.guard.serves(4)).toBe(false);
    await eventually(async () => (await kv.get(slotKey(4)))?.operation === "DEL");
  });

  it("does not serve a slot given to a shard that is not there, and says so", async () => {
    const cluster = env.freshCluster();
    const a = await shard(cluster, "a", [5]);
    const { kv } = await intruder(cluster);
    await kv.put(slotKey(5), new TextEncoder().encode("ghost"));
    await eventually(() => a.repairs.includes("lost"));
    expect(a.guard.serves(5)).toBe(false);
    // Reported once, however often it checks.
    await a.guard.check();
    await a.guard.check();
    expect(a.repairs.filter((r) => r === "lost")).toHaveLength(1);
  });

  it("claims again a key deleted from under it", async () => {
    const cluster = env.freshCluster();
    const a = await shard(cluster, "a", [7, 8]);
    const { kv } = await intruder(cluster);
    await kv.purge(slotKey(7));
    await eventually(() => a.repairs.includes("reclaimed"));
    await eventually(() => a.guard.serves(7));
    const entry = await kv.get(slotKey(7));
    expect(new TextDecoder().decode(entry!.value)).toBe("a");
  });

  it("makes a deleted bucket again and claims its slots in it", async () => {
    const cluster = env.freshCluster();
    const a = await shard(cluster, "a", [9, 10]);
    const { jsm } = await intruder(cluster);
    await jsm.streams.delete(`KV_${slotBucketName(cluster)}`);
    expect(await a.ownership.bucketExists()).toBe(false);
    await a.guard.check(); // the timer's job; a deleted stream stops no watcher
    expect(a.repairs).toContain("bucketRecreated");
    expect(await a.ownership.bucketExists()).toBe(true);
    const kv = await new Kvm(await env.connect()).open(slotBucketName(cluster));
    await eventually(async () => new TextDecoder().decode((await kv.get(slotKey(9)))?.value) === "a");
    await eventually(() => a.guard.served().length === 2);
  });
});
