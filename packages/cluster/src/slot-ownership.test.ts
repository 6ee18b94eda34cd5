/**
 * Slot ownership against a real nats-server: claims race and exactly one
 * wins, ownership survives a restart, the assignment policies, and the live
 * map that coordinators read.
 */
import { SLOT_COUNT } from "@frontier/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, silent, TestEnv } from "../test/support.js";
import {
  type SlotChange,
  SlotMap,
  SlotOwnership,
  slotBucketName,
  slotKey,
  slotOfKey,
  watchSlotMap,
} from "./slot-ownership.js";
import { spreadSlots } from "./slots.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

async function open(cluster: string): Promise<SlotOwnership> {
  // Each its own connection, as separate shard processes would have.
  const nc = await env.connect();
  const ownership = await SlotOwnership.open(nc, { cluster, logger: silent });
  env.defer(() => ownership.close());
  return ownership;
}

describe("SlotOwnership", () => {
  it("lets exactly one of two racing shards own each slot", async () => {
    const cluster = env.freshCluster();
    const [a, b] = await Promise.all([open(cluster), open(cluster)]);
    const all = Array.from({ length: SLOT_COUNT }, (_, n) => n);
    // Both ask for every slot at once; opposite orders make them collide throughout.
    const [ra, rb] = await Promise.all([a.claim("a", all), b.claim("b", [...all].reverse())]);
    expect(ra.claimed.length + rb.claimed.length).toBe(SLOT_COUNT);
    const claimedA = new Set(ra.claimed);
    expect(rb.claimed.some((n) => claimedA.has(n))).toBe(false);
    // Each one's losses are the other's wins, named as such.
    expect(ra.taken.map((t) => t.slot).sort((x, y) => x - y)).toEqual(rb.claimed);
    expect(ra.taken.every((t) => t.owner === "b")).toBe(true);
    // The bucket agrees, and so do both live maps.
    const kv = await new Kvm(await env.connect()).open(slotBucketName(cluster));
    for (const n of [0, 1, 511, 1023]) {
      const owner = new TextDecoder().decode((await kv.get(slotKey(n)))!.value);
      expect(owner).toBe(claimedA.has(n) ? "a" : "b");
    }
    await eventually(() => a.map.ownedCount() === SLOT_COUNT && b.map.ownedCount() === SLOT_COUNT);
    expect(a.map.slotsOf("a")).toEqual(ra.claimed);
    expect(b.map.slotsOf("a")).toEqual(ra.claimed);
  });

  it("keeps a restarted shard's slots, writing nothing", async () => {
    const cluster = env.freshCluster();
    const first = await open(cluster);
    const claimed = await first.assign("s1", { kind: "spread", index: 1, of: 4 });
    expect(claimed.claimed).toEqual(spreadSlots(1, 4));
    await first.close();

    const again = await open(cluster);
    const kv = await new Kvm(await env.connect()).open(slotBucketName(cluster));
    const before = (await kv.status()).values;
    // A restart with no explicit slots ("auto") keeps what it owned; it does not grab the free ones.
    const result = await again.assign("s1", { kind: "auto" });
    expect(result.claimed).toEqual([]);
    expect(result.owned).toEqual(spreadSlots(1, 4));
    expect((await kv.status()).values).toBe(before);
    // The same with its explicit assignment.
    expect((await again.assign("s1", { kind: "spread", index: 1, of: 4 })).claimed).toEqual([]);
  });

  it("gives a new shard in auto mode every free slot, and a list only the free ones asked for", async () => {
    const cluster = env.freshCluster();
    const o = await open(cluster);
    await o.assign("s0", { kind: "list", slots: [0, 1, 2, 3] });
    const listed = await o.assign("s1", { kind: "list", slots: [2, 3, 4, 5] });
    expect(listed.claimed).toEqual([4, 5]);
    expect(listed.taken).toEqual([
      { slot: 2, owner: "s0" },
      { slot: 3, owner: "s0" },
    ]);
    const auto = await o.assign("s2", { kind: "auto" });
    expect(auto.claimed.length).toBe(SLOT_COUNT - 6);
    expect(auto.owned[0]).toBe(6);
    // A later shard in auto mode finds nothing free.
    const late = await o.assign("s3", { kind: "auto" });
    expect(late.owned).toEqual([]);
  });

  it("keeps slots owned before when a shard is given another list", async () => {
    const cluster = env.freshCluster();
    const o = await open(cluster);
    await o.assign("s0", { kind: "list", slots: [10, 11] });
    const result = await o.assign("s0", { kind: "list", slots: [12] });
    expect(result.owned).toEqual([10, 11, 12]);
  });

  it("releases only what the shard owns, with a revision check", async () => {
    const cluster = env.freshCluster();
    const o = await open(cluster);
    await o.claim("s0", [1, 2]);
    await o.claim("s1", [3]);
    expect(await o.release("s0", [1, 3])).toEqual([1]);
    expect(o.map.ownerOf(1)).toBeUndefined();
    expect(o.map.ownerOf(3)).toBe("s1");
    // A released slot can be claimed again, by anyone.
    expect((await o.claim("s1", [1])).claimed).toEqual([1]);
  });

  it("claims again what the bucket lost (reclaim)", async () => {
    const cluster = env.freshCluster();
    const o = await open(cluster);
    await o.claim("s0", [7, 8, 9]);
    await o.claim("s1", [10]);
    // The bucket loses slot 8 (as a NATS server whose store was wiped would lose all).
    const kv = await new Kvm(await env.connect()).open(slotBucketName(cluster));
    await kv.purge(slotKey(8));
    const result = await o.reclaim("s0", [7, 8, 9, 10]);
    expect(result.claimed).toEqual([8]);
    expect(result.owned).toEqual([7, 8, 9]);
    expect(result.taken).toEqual([{ slot: 10, owner: "s1" }]);
  });
});

describe("SlotMap", () => {
  it("loads the table, then follows every change live", async () => {
    const cluster = env.freshCluster();
    const writer = await open(cluster);
    await writer.claim("s0", [0, 5]);
    const map = await watchSlotMap(await env.connect(), { cluster, logger: silent });
    env.defer(() => map.close());
    expect(map.owners()).toEqual(
      new Map([
        [0, "s0"],
        [5, "s0"],
      ]),
    );
    const changes: SlotChange[] = [];
    map.onChange((c) => changes.push(c));
    await writer.claim("s1", [6]);
    await writer.release("s0", [5]);
    await eventually(() => changes.length === 2, 5_000, "two changes");
    expect(changes).toEqual([
      { slot: 6, owner: "s1", previous: undefined },
      { slot: 5, owner: undefined, previous: "s0" },
    ]);
    expect(map.shards()).toEqual(["s0", "s1"]);
    expect(map.ownedCount()).toBe(2);
  });

  it("loads an empty table at once, and survives a listener that throws", async () => {
    const cluster = env.freshCluster();
    const writer = await open(cluster); // makes the (empty) bucket: a reader never does
    const map = await watchSlotMap(await env.connect(), { cluster, logger: silent });
    env.defer(() => map.close());
    expect(map.ownedCount()).toBe(0);
    expect(map.freeSlots().length).toBe(SLOT_COUNT);
    map.onChange(() => {
      throw new Error("listener bug");
    });
    const seen: SlotChange[] = [];
    map.onChange((c) => seen.push(c));
    await writer.claim("s9", [3]);
    await eventually(() => map.ownerOf(3) === "s9");
    await eventually(() => seen.length === 1);
  });

  it("waits for a bucket no shard has made yet, and loads it once one does", async () => {
    const cluster = env.freshCluster();
    const map = SlotMap.start(await env.connect(), { cluster, retryMs: 20 });
    env.defer(() => map.close());
    expect(await map.whenLoaded(200)).toBe(false);
    const writer = await open(cluster);
    await writer.claim("s1", [1, 2]);
    expect(await map.whenLoaded(10_000)).toBe(true);
    await eventually(() => map.ownedCount() === 2);
  });

  it("loads the table of a bucket deleted and made again: nothing of the old one stays", async () => {
    const cluster = env.freshCluster();
    const first = await open(cluster);
    await first.claim("old", [1, 2, 3, 4, 5]);
    const map = await watchSlotMap(await env.connect(), { cluster, logger: silent });
    env.defer(() => map.close());
    await eventually(() => map.ownedCount() === 5);
    const jsm = await jetstreamManager(await env.connect());
    await jsm.streams.delete(`KV_${slotBucketName(cluster)}`);
    const again = await open(cluster); // revisions start at 1 again
    await again.claim("new", [9]);
    await map.resync();
    await eventually(() => map.ownerOf(9) === "new" && map.ownedCount() === 1);
    await again.claim("new", [10]); // a later change, at a revision below the old generation's
    await eventually(() => map.ownerOf(10) === "new");
  });

  it("leaves a slot unowned for a value that is not a shard id", async () => {
    const cluster = env.freshCluster();
    const writer = await open(cluster);
    await writer.claim("s1", [7]);
    const kv = await new Kvm(await env.connect()).open(slotBucketName(cluster));
    await kv.put(slotKey(8), new TextEncoder().encode("not a token!"));
    const map = await watchSlotMap(await env.connect(), { cluster, logger: silent });
    env.defer(() => map.close());
    expect(map.ownerOf(7)).toBe("s1");
    expect(map.ownerOf(8)).toBeUndefined();
    expect(map.shards()).toEqual(["s1"]);
  });

  it("names keys both ways, strictly", () => {
    expect(slotKey(17)).toBe("slot.17");
    expect(slotOfKey("slot.17")).toBe(17);
    expect(slotOfKey("slot.0007")).toBeUndefined();
    expect(slotOfKey("slot.01")).toBeUndefined();
    expect(slotOfKey("slot.-1")).toBeUndefined();
    expect(slotOfKey("slot.1024")).toBeUndefined();
    expect(slotOfKey("slot.x")).toBeUndefined();
    expect(slotOfKey("other")).toBeUndefined();
    expect(slotBucketName("prod")).toBe("frontier-prod-slots");
  });
});
