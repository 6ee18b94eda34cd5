import { SLOT_COUNT } from "@frontier/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeSlots, formatSlots, parseSlotRanges, parseSlotSpec, spreadSlots } from "./slots.js";

describe("slot specs", () => {
  it("parses ranges, lists and spreads", () => {
    expect(parseSlotRanges("0-3, 7,5-5")).toEqual([0, 1, 2, 3, 5, 7]);
    expect(parseSlotSpec(undefined)).toEqual({ kind: "auto" });
    expect(parseSlotSpec("auto")).toEqual({ kind: "auto" });
    expect(parseSlotSpec([3, 1, 3])).toEqual({ kind: "list", slots: [1, 3] });
    expect(parseSlotSpec({ index: 2, of: 4 })).toEqual({ kind: "spread", index: 2, of: 4 });
    expect(parseSlotSpec("2/4")).toEqual({ kind: "spread", index: 2, of: 4 });
    expect(() => parseSlotSpec("4/4")).toThrow(/"index"/);
  });

  it.each([["x"], ["1-"], ["3-1"], ["0-1024"], [""], ["1,,2"]])("refuses %j", (text) => {
    expect(() => parseSlotRanges(text)).toThrow();
  });

  it("refuses bad lists and spreads", () => {
    expect(() => parseSlotSpec([])).toThrow(/empty/);
    expect(() => parseSlotSpec([1.5])).toThrow(/slots\[0\]/);
    expect(() => parseSlotSpec({ index: 0, of: 0 })).toThrow(/"of"/);
    expect(() => parseSlotSpec({ index: -1, of: 2 })).toThrow(/"index"/);
  });

  it("formats a list as ranges that parse back to it", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: SLOT_COUNT - 1 }), { minLength: 1 }), (slots) => {
        expect(parseSlotRanges(formatSlots(slots))).toEqual([...slots].sort((a, b) => a - b));
      }),
    );
    expect(formatSlots([0, 1, 2, 5, 7, 8])).toBe("0-2,5,7-8");
    expect(formatSlots([])).toBe("none");
  });

  it("describes a slot list for a log line in bounded length", () => {
    expect(describeSlots(spreadSlots(1, 2))).toBe("1/2 (512 slots)");
    expect(describeSlots(spreadSlots(0, 3))).toBe("0/3 (342 slots)");
    expect(describeSlots([0, 1, 2, 3, 7])).toBe("0-3,7 (5 slots)");
    expect(describeSlots([5])).toBe("5 (1 slot)");
    expect(describeSlots([])).toBe("none");
    const scattered = Array.from({ length: 300 }, (_, i) => i * 3 + (i % 2)); // no spread, 300 ranges
    const line = describeSlots(scattered);
    expect(line).toMatch(/^0,4,6,10,12,16,18,22,… \(300 slots in 300 ranges\)$/);
    expect(describeSlots(spreadSlots(0, 1))).toBe("0-1023 (1024 slots)");
  });

  it("spreads every slot to exactly one of N shards, evenly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: SLOT_COUNT }), (n) => {
        const seen = new Array<number>(SLOT_COUNT).fill(0);
        const sizes: number[] = [];
        for (let i = 0; i < n; i++) {
          const slots = spreadSlots(i, n);
          sizes.push(slots.length);
          for (const s of slots) seen[s]!++;
        }
        expect(seen.every((c) => c === 1)).toBe(true);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 50 },
    );
  });
});
