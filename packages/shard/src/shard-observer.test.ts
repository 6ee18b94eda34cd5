import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Shard, type ShardObserver } from "./shard.js";

const root = mkdtempSync(join(tmpdir(), "frontier-shard-observer-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("ShardObserver", () => {
  it("hears the engine's moves, each commit of changes, and repeated submits", async () => {
    const heard: string[] = [];
    const commits: number[] = [];
    const observer: ShardObserver = {
      added: (n) => heard.push(`added ${n}`),
      leased: () => heard.push("leased"),
      completed: () => heard.push("completed"),
      retried: () => heard.push("retried"),
      leaseExpired: () => heard.push("leaseExpired"),
      released: () => heard.push("released"),
      attemptTimedOut: () => heard.push("attemptTimedOut"),
      ended: (state) => heard.push(`ended ${state}`),
      staleRejected: () => heard.push("staleRejected"),
      duplicate: (op) => heard.push(`duplicate ${op}`),
      committed: (seconds) => commits.push(seconds),
      duplicateSubmit: () => heard.push("duplicateSubmit"),
    };
    const shard = await Shard.open({ dataDir: join(root, "a"), observer });
    try {
      await shard.submit([{ id: "t", deadline: 1 }], { idempotencyKey: "k" });
      expect(commits).toHaveLength(1);
      await shard.submit([{ id: "t", deadline: 1 }], { idempotencyKey: "k" });
      // A repeat changes nothing: no append of changes, so no commit to time.
      expect(commits).toHaveLength(1);
      const [lease] = await shard.lease("w", { leaseMs: 60_000 });
      await shard.complete("t", lease!.token);
      expect(heard).toEqual(["added 1", "duplicateSubmit", "leased", "completed"]);
      expect(commits).toHaveLength(3);
      expect(commits.every((s) => s >= 0 && s < 60)).toBe(true);
    } finally {
      await shard.close();
    }
  });
});
