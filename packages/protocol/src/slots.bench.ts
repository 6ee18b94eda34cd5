import { bench, describe } from "vitest";
import { slotOf } from "./index.js";

// Baseline: the textbook FNV-1a over TextEncoder bytes (allocates per call), plain mask.
const encoder = new TextEncoder();
function baselineSlot(s: string): number {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(s)) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0) & 1023;
}

const keys = Array.from({ length: 10_000 }, (_, i) => `workflow-${i}-${(i * 2654435761) >>> 0}`);
let sink = 0;

describe("slot of 10k typical keys", () => {
  bench("baseline: FNV-1a via TextEncoder", () => {
    for (const k of keys) sink ^= baselineSlot(k);
  });
  bench("slotOf: inline UTF-8 FNV-1a + fmix32", () => {
    for (const k of keys) sink ^= slotOf(k);
  });
});

export { sink };
