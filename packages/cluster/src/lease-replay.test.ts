/** LeaseReplay against a simple model, and its bounds. */
import type { Lease } from "@frontier/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LeaseReplay } from "./lease-replay.js";

const lease = (taskId: string): Lease => ({
  taskId,
  owner: "w",
  token: 1,
  expiresAt: 1,
  attempt: 1,
  task: { id: taskId, deadline: 1, prerequisites: [] },
});

describe("LeaseReplay", () => {
  it("returns what was put, keeps within its bounds, and drops the oldest first", () => {
    const TTL = 20;
    const MAX_ENTRIES = 4;
    const MAX_BYTES = 100;
    const put = fc.record({
      owner: fc.constantFrom("w1", "w2", "w1:", ":w"),
      requestId: fc.constantFrom("r", "1", "r1", ":r"),
      bytes: fc.integer({ min: 1, max: 60 }),
      advance: fc.integer({ min: 0, max: 8 }),
    });
    fc.assert(
      fc.property(fc.array(put, { maxLength: 40 }), (puts) => {
        const replay = new LeaseReplay(TTL, MAX_ENTRIES, MAX_BYTES);
        let model: { k: string; owner: string; requestId: string; bytes: number; at: number; id: string }[] =
          [];
        let now = 0;
        puts.forEach((p, i) => {
          now += p.advance;
          const id = `t${i}`;
          replay.put(p.owner, p.requestId, [lease(id)], p.bytes, now);
          const k = JSON.stringify([p.owner, p.requestId]);
          model = model.filter((m) => m.k !== k);
          model.push({ k, owner: p.owner, requestId: p.requestId, bytes: p.bytes, at: now, id });
          // Model eviction: from the oldest, while over a bound or expired.
          while (
            model.length > 0 &&
            (model.length > MAX_ENTRIES ||
              model.reduce((s, m) => s + m.bytes, 0) > MAX_BYTES ||
              now - model[0]!.at > TTL)
          ) {
            model.shift();
          }
          expect(replay.size).toBe(model.length);
          expect(replay.bytes).toBe(model.reduce((s, m) => s + m.bytes, 0));
          expect(replay.size).toBeLessThanOrEqual(MAX_ENTRIES);
          expect(replay.bytes).toBeLessThanOrEqual(MAX_BYTES);
          for (const m of model) expect(replay.get(m.owner, m.requestId, now)?.[0]?.taskId).toBe(m.id);
        });
      }),
    );
  });

  it("forgets grants after the TTL and keeps none when disabled", () => {
    const replay = new LeaseReplay(10, 100, 1_000);
    replay.put("w", "r", [lease("a")], 10, 0);
    expect(replay.get("w", "r", 10)).toHaveLength(1);
    expect(replay.get("w", "r", 11)).toBeUndefined();
    const off = new LeaseReplay(10, 0, 1_000);
    off.put("w", "r", [lease("a")], 10, 0);
    expect(off.get("w", "r", 0)).toBeUndefined();
    // A grant larger than the whole budget is not kept.
    replay.put("w", "big", [lease("b")], 2_000, 0);
    expect(replay.get("w", "big", 0)).toBeUndefined();
  });
});

describe("LeaseReplay by base request id", () => {
  it("finds every grant filed under a base, per owner, and forgets them with the grant", () => {
    const replay = new LeaseReplay(100, 3, 1_000);
    replay.put("w", "1:1:r", [lease("a")], 10, 0, "r");
    replay.put("w", "1:2:r", [lease("b")], 10, 1, "r");
    replay.put("w2", "1:1:r", [lease("c")], 10, 2, "r");
    expect(replay.getByBase("w", "r", 2).map((l) => l.taskId)).toEqual(["a", "b"]);
    expect(replay.getByBase("w2", "r", 2).map((l) => l.taskId)).toEqual(["c"]);
    expect(replay.getByBase("w", "x", 2)).toEqual([]);
    // Evicted (over maxEntries): gone from the base index too.
    replay.put("w", "other", [lease("d")], 10, 3);
    expect(replay.getByBase("w", "r", 3).map((l) => l.taskId)).toEqual(["b"]);
    // Expired.
    expect(replay.getByBase("w", "r", 200)).toEqual([]);
  });
});
