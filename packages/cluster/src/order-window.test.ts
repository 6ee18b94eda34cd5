import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { settleShare } from "./order-window.js";

/** The other shards' tasks at or before a key, exactly. */
const counter =
  (keys: readonly number[]) =>
  (key: number): number =>
    keys.filter((k) => k <= key).length;

/** Own keys ascending, the other shards' keys (disjoint from them), a window and an ask. */
const scenario = fc
  .record({
    own: fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { maxLength: 60 }),
    others: fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { maxLength: 60 }),
    window: fc.integer({ min: 0, max: 150 }),
    max: fc.integer({ min: 0, max: 80 }),
  })
  .map(({ own, others, window, max }) => ({
    own: [...own].sort((a, b) => a - b),
    others: others.filter((k) => !own.includes(k)),
    window,
    max,
  }));

/** The rank in the whole cluster of own task i: own tasks before it, others' before it, itself. */
const rankOf = (own: readonly number[], others: readonly number[], i: number) =>
  i + counter(others)(own[i]!) + 1;

describe("settleShare", () => {
  it("grants the first own tasks that are among the cluster's first W, or before every other shard's, and no fewer", () => {
    fc.assert(
      fc.property(scenario, ({ own, others, window, max }) => {
        const share = settleShare(own, counter(others), window, max);
        expect(share).toBeLessThanOrEqual(Math.min(max, own.length));
        for (let i = 0; i < share; i++) {
          const before = counter(others)(own[i]!);
          expect(before === 0 || rankOf(own, others, i) <= window).toBe(true);
        }
        // Maximal: the next own task would break the window (or the ask or the heap ends).
        if (share < Math.min(max, own.length)) {
          expect(counter(others)(own[share]!)).toBeGreaterThan(0);
          expect(rankOf(own, others, share)).toBeGreaterThan(window);
        }
      }),
    );
  });

  it("with window 0 grants only what comes before every other shard's first task (exact order)", () => {
    expect(settleShare([1, 2, 3, 10, 11], counter([5, 6]), 0, 10)).toBe(3);
    expect(settleShare([7, 8], counter([5, 6]), 0, 10)).toBe(0);
    expect(settleShare([1, 2, 3], counter([]), 0, 2)).toBe(2);
  });

  it("takes its part of the first W when the shards' keys interleave", () => {
    const own = [0, 2, 4, 6, 8, 10, 12, 14];
    const others = [1, 3, 5, 7, 9, 11, 13, 15];
    // Window 8: own 0, 2, 4, 6 (ranks 1, 3, 5, 7); own 8 would be rank 9.
    expect(settleShare(own, counter(others), 8, 100)).toBe(4);
    expect(settleShare(own, counter(others), 1, 100)).toBe(1);
    expect(settleShare(own, counter(others), 8, 2)).toBe(2);
  });

  it('"shard" grants as many own tasks as asked, whatever the other shards hold', () => {
    expect(settleShare([50, 60, 70], counter([1, 2, 3, 4]), "shard", 2)).toBe(2);
    expect(settleShare([50, 60, 70], counter([1, 2, 3, 4]), "shard", 10)).toBe(3);
  });

  it("never grants more when the other shards' counts are over-told (a stale announcement) or the window smaller", () => {
    fc.assert(
      fc.property(scenario, fc.nat(20), fc.nat(20), ({ own, others, window, max }, extra, less) => {
        const exact = settleShare(own, counter(others), window, max);
        const overTold = (key: number) => counter(others)(key) + (counter(others)(key) > 0 ? extra : 0);
        expect(settleShare(own, overTold, window, max)).toBeLessThanOrEqual(exact);
        expect(settleShare(own, counter(others), Math.max(0, window - less), max)).toBeLessThanOrEqual(exact);
      }),
    );
  });
});
