import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { atMostAtOrBefore } from "./frontiers.js";
import { FRONTIER_DEPTH_RANKS } from "./limits.js";

/** A shard's announced depth for `keys` (ascending, its runnable tasks' ordering keys): keys at FRONTIER_DEPTH_RANKS. */
const depthOf = (keys: readonly number[]) => ({
  depth: FRONTIER_DEPTH_RANKS.filter((r) => r <= keys.length).map((r) => keys[r - 1]!),
  runnable: keys.length,
});

describe("atMostAtOrBefore", () => {
  it("reads a bound off each part's depth and sums the parts", () => {
    // Ranks 1, 2, 3, 4, 5, 6, 8 told; 100 runnable.
    const part = { depth: [10, 20, 30, 40, 50, 60, 80], runnable: 100 };
    expect(atMostAtOrBefore([part], 5)).toBe(0);
    expect(atMostAtOrBefore([part], 30)).toBe(3);
    expect(atMostAtOrBefore([part], 70)).toBe(7); // rank 8's key is after: at most 7
    expect(atMostAtOrBefore([part], 80)).toBe(100); // past the deepest rank told: everything
    expect(atMostAtOrBefore([part, { depth: [15], runnable: 1 }], 30)).toBe(4);
    expect(atMostAtOrBefore([], 30)).toBe(0);
  });

  it("is never below the true count, and exact up to the sixth rank", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2_000 }), { maxLength: 400 }),
        fc.integer({ min: -1, max: 2_001 }),
        (raw, key) => {
          const keys = [...raw].sort((a, b) => a - b);
          const truth = keys.filter((k) => k <= key).length;
          const bound = atMostAtOrBefore([depthOf(keys)], key);
          expect(bound).toBeGreaterThanOrEqual(truth);
          if (truth < 6 && keys.length > truth) expect(bound).toBe(truth);
        },
      ),
    );
  });
});
