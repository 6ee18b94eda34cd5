/**
 * Results through the journal: the result is part of the COMPLETED status
 * row, written in the same append as the completion, so a restarted shard
 * still shows it, counts it in its held bytes and hands it to dependents.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode } from "@frontier/core";
import { Packr } from "msgpackr";
import { afterAll, describe, expect, it } from "vitest";
import { Shard, ShardLimitError } from "./index.js";

const root = mkdtempSync(join(tmpdir(), "frontier-shard-results-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Bytes as the wire (and the shard's maxStoredBytes) count them: msgpack without records. */
const wireBytes = (value: unknown) => new Packr({ useRecords: false }).pack(value).byteLength;

describe("a shard's results", () => {
  it("keeps a result across restarts, counts it in the held bytes and hands it to the dependent's grant", async () => {
    const dataDir = join(root, "restart");
    const result = { rows: 3, files: ["a.txt", "b.txt"] };
    let shard = await Shard.open({ dataDir, maxStoredBytes: 1_000_000 });
    try {
      await shard.submit([
        { id: "fetch", deadline: 1, workflowId: "w" },
        { id: "build", deadline: 2, workflowId: "w", prerequisites: ["fetch"] },
      ]);
      const [lease] = await shard.lease("w1");
      expect(await shard.complete("fetch", lease!.token, { result })).toEqual({ duplicate: false });
      // The resent complete keeps the first result.
      expect(await shard.complete("fetch", lease!.token, { result: "other" })).toEqual({ duplicate: true });
      expect(shard.holdings().storedBytes).toBe(wireBytes(result));
      await shard.close();

      shard = await Shard.open({ dataDir, maxStoredBytes: 1_000_000 });
      expect(shard.getTask("fetch")).toMatchObject({ state: "COMPLETED", result });
      expect(shard.holdings().storedBytes).toBe(wireBytes(result));
      expect(shard.stats().storedBytes).toBe(wireBytes(result));
      const [next] = await shard.lease("w2", { requestId: "r1" });
      expect(next).toMatchObject({ taskId: "build", results: [{ taskId: "fetch", result }] });
      // A replayed grant (the reply was lost) carries the results too.
      expect(await shard.replayLease("w2", "r1")).toEqual([next]);
    } finally {
      await shard.close();
    }
  });

  it("stores nothing from a stale complete, and counts results against maxStoredBytes for later submits", async () => {
    const dataDir = join(root, "limits");
    const result = "r".repeat(200);
    const time = { wall: 1_000_000, mono: 0 };
    const clock = { wallNow: () => time.wall, monotonicNow: () => time.mono };
    const shard = await Shard.open({ dataDir, clock, maxStoredBytes: wireBytes(result) + 50 });
    try {
      await shard.submit({ id: "a", deadline: 1 });
      const [first] = await shard.lease("w1", { leaseMs: 100 });
      time.mono += 200; // the lease expires
      const [second] = await shard.lease("w2", { leaseMs: 60_000 });
      const stale = await shard.complete("a", first!.token, { result }).then(
        () => undefined,
        (e: { code?: string }) => e.code,
      );
      expect(stale).toBe(ErrorCode.STALE_LEASE);
      expect(shard.getTask("a")).not.toHaveProperty("result");
      expect(shard.holdings().storedBytes).toBe(0);
      // A result past what the shard may hold still completes the task (it finishes accepted work)...
      await shard.complete("a", second!.token, { result });
      expect(shard.getTask("a")).toMatchObject({ state: "COMPLETED", result });
      expect(shard.holdings().storedBytes).toBe(wireBytes(result));
      // ...and a payload that no longer fits beside it is refused.
      const refused = await shard.submit({ id: "b", deadline: 2, payload: "p".repeat(60) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(ShardLimitError);
      expect(refused).toMatchObject({ limit: "maxStoredBytes", held: wireBytes(result) });
      expect(shard.getTask("b")).toBeUndefined();
    } finally {
      await shard.close();
    }
  });
});
