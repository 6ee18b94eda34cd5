import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  fnv1a32,
  partitionKeyOf,
  partitionKeyOfRef,
  SLOT_COUNT,
  slotOf,
  slotOfLargeTask,
  slotOfTask,
} from "./index.js";

/** The textbook definition, over TextEncoder's bytes: what the inline encoder must equal. */
function referenceFnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/** Any UTF-16 string, lone surrogates included. */
const utf16 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
  .map((units) => String.fromCharCode(...units));

describe("fnv1a32", () => {
  it("matches the published FNV-1a 32-bit test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("equals FNV-1a over TextEncoder's UTF-8 for every string", () => {
    fc.assert(
      fc.property(fc.oneof(utf16, fc.string({ unit: "binary" }), fc.string()), (s) => {
        expect(fnv1a32(s)).toBe(referenceFnv1a32(s));
      }),
      { numRuns: 2_000 },
    );
  });

  it("hashes a lone surrogate as U+FFFD, as it arrives after a trip through UTF-8", () => {
    expect(fnv1a32("a\uD800b")).toBe(fnv1a32("a\uFFFDb"));
    expect(fnv1a32("\uDC00")).toBe(fnv1a32("\uFFFD"));
  });
});

describe("slotOf", () => {
  it("is frozen: these values must never change (they decide which shard holds a task)", () => {
    expect(SLOT_COUNT).toBe(1024);
    const golden: Record<string, number> = {
      "": 11,
      a: 435,
      "wf-1": 816,
      "wf-2": 670,
      "order-42": 215,
      日本語: 146,
      "😀": 10,
    };
    for (const [key, slot] of Object.entries(golden)) expect(slotOf(key), key).toBe(slot);
  });

  it("is an integer in [0, SLOT_COUNT)", () => {
    fc.assert(
      fc.property(utf16, (s) => {
        const slot = slotOf(s);
        expect(Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT).toBe(true);
      }),
    );
  });

  // Chi-square over 1024 slots has 1023 degrees of freedom: mean 1023, sd ~45.
  // The bound (mean + 5 sd) fails FNV-1a with plain masking on sequential keys.
  it.each([
    ["sequential", (i: number) => `wf-${i}`],
    ["zero-padded", (i: number) => `task-${String(i).padStart(8, "0")}`],
    ["decimal", (i: number) => String(i)],
    ["base36", (i: number) => i.toString(36)],
    ["uuid-like", (i: number) => `${((i * 2654435761) >>> 0).toString(16)}-4abc-${i.toString(36)}`],
  ])("spreads %s keys evenly over the slots", (_name, key) => {
    const n = 100_000;
    const counts = new Array<number>(SLOT_COUNT).fill(0);
    for (let i = 0; i < n; i++) counts[slotOf(key(i))]! += 1;
    const expected = n / SLOT_COUNT;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    expect(chiSquare).toBeLessThan(1023 + 5 * 45);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });
});

describe("partition keys", () => {
  it("route a task by its workflow, else by its own id", () => {
    expect(partitionKeyOf({ id: "t1", workflowId: "wf" })).toBe("wf");
    expect(partitionKeyOf({ id: "t1" })).toBe("t1");
    expect(partitionKeyOf({ id: "t1", workflowId: undefined })).toBe("t1");
    expect(slotOfTask({ id: "t1", workflowId: "wf" })).toBe(slotOf("wf"));
    expect(slotOfTask({ id: "t1" })).toBe(slotOf("t1"));
  });

  it("route a large workflow's task by (workflowId, id), as slotOfLargeTask names it", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (id, workflowId) => {
        expect(slotOfLargeTask(id, workflowId)).toBe(slotOfTask({ id, workflowId, large: true }));
      }),
    );
  });

  it("route a request about a task to the same slot as the task itself", () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (id, workflowId) => {
        expect(partitionKeyOfRef({ taskId: id, workflowId })).toBe(partitionKeyOf({ id, workflowId }));
      }),
    );
  });
});
