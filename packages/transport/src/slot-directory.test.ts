/**
 * The slot directory's one watcher against a real nats-server: whole
 * generations, per-shard counts through puts, moves and deletes, values
 * that are not shard ids, a bucket that does not exist yet, and the strict
 * key codec. (Claims and the shard's side: @frontier/cluster's
 * slot-ownership tests.)
 */
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { slotBucketName } from "@frontier/protocol";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SlotChange, SlotMap, slotKey, slotOfKey, slotOwnerOf } from "./slot-directory.js";

let server: NatsServer;
let nc: NatsConnection;
let clusters = 0;
const maps: SlotMap[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await Promise.all(maps.map((m) => m.close()));
  await nc.close();
  await server.stop();
});

function start(cluster: string): SlotMap {
  const map = SlotMap.start(nc, { cluster, retryMs: 20 });
  maps.push(map);
  return map;
}

const bucket = (cluster: string) => new Kvm(nc).create(slotBucketName(cluster), { history: 8 });
const put = (kv: Awaited<ReturnType<typeof bucket>>, slot: number, owner: string) =>
  kv.put(slotKey(slot), new TextEncoder().encode(owner));

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("SlotMap", () => {
  it("is loaded only once every owner in the bucket is in, and waits for a bucket that is missing", async () => {
    const cluster = `c${++clusters}`;
    const early = start(cluster);
    expect(await early.whenLoaded(200)).toBe(false);
    const kv = await bucket(cluster);
    for (let slot = 0; slot < 300; slot++) await put(kv, slot, `s${slot % 3}`);
    const late = start(cluster);
    expect(await late.whenLoaded(5_000)).toBe(true);
    // Whole at that moment: every owner applied, not only the first few the watch delivered.
    expect(late.ownedCount()).toBe(300);
    expect(late.shards()).toEqual(["s0", "s1", "s2"]);
    expect(await early.whenLoaded(5_000)).toBe(true);
    await until(() => early.ownedCount() === 300);
  });

  it("counts an empty bucket as loaded", async () => {
    const cluster = `c${++clusters}`;
    await bucket(cluster);
    const map = start(cluster);
    expect(await map.whenLoaded(5_000)).toBe(true);
    expect(map.ownedCount()).toBe(0);
    expect(map.freeSlots()).toHaveLength(1024);
  });

  it("keeps owners and per-shard counts through puts, moves and deletes, telling its listeners", async () => {
    const cluster = `c${++clusters}`;
    const kv = await bucket(cluster);
    const map = start(cluster);
    expect(await map.whenLoaded(5_000)).toBe(true);
    const seen: SlotChange[] = [];
    map.onChange((c) => seen.push(c));
    await put(kv, 0, "s1");
    await put(kv, 1, "s1");
    await put(kv, 2, "s2");
    await until(() => map.ownedCount() === 3);
    expect([map.ownerOf(0), map.ownerOf(1), map.ownerOf(2), map.ownerOf(3)]).toEqual([
      "s1",
      "s1",
      "s2",
      undefined,
    ]);
    expect(map.shards()).toEqual(["s1", "s2"]);
    await put(kv, 2, "s1"); // moved
    await until(() => map.shards().length === 1);
    await kv.delete(slotKey(0));
    await kv.purge(slotKey(1));
    await until(() => map.ownedCount() === 1);
    expect(map.slotsOf("s1")).toEqual([2]);
    expect(seen.at(-1)).toEqual({ slot: 1, owner: undefined, previous: "s1" });
  });

  it("leaves a slot unowned for a value that is not a shard id, and ignores other keys", async () => {
    const cluster = `c${++clusters}`;
    const kv = await bucket(cluster);
    await put(kv, 5, "s1");
    await put(kv, 5, "not a token!");
    await kv.put("other", new TextEncoder().encode("s9"));
    await kv.put("slot.1024", new TextEncoder().encode("s9"));
    const map = start(cluster);
    expect(await map.whenLoaded(5_000)).toBe(true);
    expect(map.ownerOf(5)).toBeUndefined();
    expect(map.ownedCount()).toBe(0);
  });
});

describe("the directory's contract", () => {
  it("reads slot keys strictly", () => {
    expect(slotOfKey("slot.0")).toBe(0);
    expect(slotOfKey("slot.1023")).toBe(1023);
    expect(slotOfKey("slot.1024")).toBeUndefined();
    expect(slotOfKey("slot.01")).toBeUndefined();
    expect(slotOfKey("slot.0007")).toBeUndefined();
    expect(slotOfKey("slot.-1")).toBeUndefined();
    expect(slotOfKey("slots.1")).toBeUndefined();
    expect(slotOfKey(slotKey(17))).toBe(17);
  });

  it("takes a shard id as an owner, and nothing else", () => {
    expect(slotOwnerOf("shard-0")).toBe("shard-0");
    expect(slotOwnerOf(" shard-0\n")).toBe("shard-0");
    expect(slotOwnerOf("a.b")).toBeUndefined();
    expect(slotOwnerOf("")).toBeUndefined();
    expect(slotOwnerOf("x".repeat(65))).toBeUndefined();
  });
});
