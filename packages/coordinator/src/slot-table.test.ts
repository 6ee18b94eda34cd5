import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvSlotTable, slotBucketName, slotOfKey } from "./slot-table.js";

const entry = (key: string, operation: "PUT" | "DEL" | "PURGE", value = "") => ({
  key,
  operation,
  string: () => value,
});

describe("KvSlotTable bookkeeping", () => {
  // The watch itself runs against a real server in every integration test; this pins `apply`.
  const table = () => new KvSlotTable(null as never, "unused", 1_000, pino({ level: "silent" }));

  it("tracks owners and per-shard counts through puts, moves and deletes", () => {
    const t = table();
    t.apply(entry("slot.0", "PUT", "s1"));
    t.apply(entry("slot.1", "PUT", "s1"));
    t.apply(entry("slot.2", "PUT", "s2"));
    expect([t.ownerOf(0), t.ownerOf(1), t.ownerOf(2), t.ownerOf(3)]).toEqual(["s1", "s1", "s2", undefined]);
    expect([...t.shards()].sort()).toEqual(["s1", "s2"]);
    expect(t.ownedCount()).toBe(3);
    t.apply(entry("slot.2", "PUT", "s1")); // moved
    expect(t.shards()).toEqual(["s1"]);
    t.apply(entry("slot.0", "DEL"));
    t.apply(entry("slot.1", "PURGE"));
    expect(t.ownedCount()).toBe(1);
    expect(t.ownerOf(0)).toBeUndefined();
  });

  it("leaves a slot unowned for a value that is not a shard id, and ignores other keys", () => {
    const t = table();
    t.apply(entry("slot.5", "PUT", "s1"));
    t.apply(entry("slot.5", "PUT", "not a token!"));
    t.apply(entry("other", "PUT", "s9"));
    t.apply(entry("slot.1024", "PUT", "s9"));
    expect(t.ownerOf(5)).toBeUndefined();
    expect(t.ownedCount()).toBe(0);
  });

  it("reads slot keys strictly", () => {
    expect(slotOfKey("slot.0")).toBe(0);
    expect(slotOfKey("slot.1023")).toBe(1023);
    expect(slotOfKey("slot.1024")).toBeNull();
    expect(slotOfKey("slot.01")).toBeNull();
    expect(slotOfKey("slot.-1")).toBeNull();
    expect(slotOfKey("slots.1")).toBeNull();
  });
});

describe("KvSlotTable.whenLoaded", () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(() => server.stop());

  const silent = pino({ level: "silent" });

  it("resolves once every owner in the bucket is in the table, and false while the bucket is missing", async () => {
    const nc = await connect({ servers: server.url });
    const bucket = slotBucketName("loaded");
    const missing = new KvSlotTable(nc, bucket, 50, silent);
    missing.start();
    expect(await missing.whenLoaded(200)).toBe(false);

    const kv = await new Kvm(nc).create(bucket, { history: 1, storage: StorageType.Memory });
    for (let slot = 0; slot < 300; slot++) await kv.put(`slot.${slot}`, `s${slot % 3}`);
    const table = new KvSlotTable(nc, bucket, 50, silent);
    table.start();
    expect(await table.whenLoaded(5_000)).toBe(true);
    // Whole at that moment: every owner applied, not only the first few the watch delivered.
    expect(table.ownedCount()).toBe(300);
    expect([...table.shards()].sort()).toEqual(["s0", "s1", "s2"]);
    // The one that waited for the bucket loads too once it appears.
    expect(await missing.whenLoaded(5_000)).toBe(true);
    expect(missing.ownedCount()).toBe(300);
    await Promise.all([missing.close(), table.close()]);
    await nc.close();
  });

  it("counts an empty bucket as loaded", async () => {
    const nc = await connect({ servers: server.url });
    const bucket = slotBucketName("empty");
    await new Kvm(nc).create(bucket, { history: 1, storage: StorageType.Memory });
    const table = new KvSlotTable(nc, bucket, 50, silent);
    table.start();
    expect(await table.whenLoaded(5_000)).toBe(true);
    expect(table.ownedCount()).toBe(0);
    await table.close();
    await nc.close();
  });
});
