/**
 * Which slots a shard asks for. Three forms (see README "Slot ownership"):
 *
 *   auto           keep the slots this shard id owns; if it owns none,
 *                  claim every free slot (a standalone `frontier shard`)
 *   list           these slots ("0-511,700,900-1023" or [0, 1, 2])
 *   spread i of N  the slots n with n mod N == i (`frontier start --shards N`;
 *                  written "i/N" or { index: i, of: N })
 *
 * Whatever the form, a shard never gives up a slot it owns (its tasks are in
 * its data directory), and never takes one another shard owns.
 */
import { SLOT_COUNT } from "@frontier/protocol";

export type SlotAssignment =
  | { readonly kind: "auto" }
  | { readonly kind: "list"; readonly slots: readonly number[] }
  | { readonly kind: "spread"; readonly index: number; readonly of: number };

/** What callers write: "auto", a range string ("0-511,700"), "I/N" (a spread), a list of slots, or `{ index, of }`. */
export type SlotSpec = "auto" | string | readonly number[] | { readonly index: number; readonly of: number };

/** `spec` as a SlotAssignment; throws an Error saying what is wrong. Undefined is "auto". */
export function parseSlotSpec(spec: SlotSpec | undefined): SlotAssignment {
  if (spec === undefined || spec === "auto") return { kind: "auto" };
  if (typeof spec === "string") {
    const spread = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
    if (spread) return parseSlotSpec({ index: Number(spread[1]), of: Number(spread[2]) });
    return { kind: "list", slots: parseSlotRanges(spec) };
  }
  if (Array.isArray(spec)) {
    for (const [i, n] of spec.entries()) {
      if (!isSlot(n))
        throw new Error(`slots[${i}] must be an integer in 0..${SLOT_COUNT - 1}, got ${String(n)}`);
    }
    if (spec.length === 0) throw new Error("the slot list is empty");
    return { kind: "list", slots: sortedUnique(spec) };
  }
  if (typeof spec === "object" && spec !== null) {
    const { index, of } = spec as { index?: unknown; of?: unknown };
    if (typeof of !== "number" || !Number.isInteger(of) || of < 1 || of > SLOT_COUNT) {
      throw new Error(`"of" must be an integer in 1..${SLOT_COUNT}, got ${String(of)}`);
    }
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= of) {
      throw new Error(`"index" must be an integer in 0..${of - 1}, got ${String(index)}`);
    }
    return { kind: "spread", index, of };
  }
  throw new Error(`expected "auto", a range string like "0-511", a list of slots or { index, of }`);
}

/** "0-3,7" → [0, 1, 2, 3, 7]. Ranges are inclusive; overlaps are fine. */
export function parseSlotRanges(text: string): number[] {
  const slots: number[] = [];
  const parts = text.split(",").map((p) => p.trim());
  for (const part of parts) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad slot range ${JSON.stringify(part)} (expected N or N-M, comma-separated)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (!isSlot(from) || !isSlot(to)) {
      throw new Error(`slot range ${JSON.stringify(part)} is outside 0..${SLOT_COUNT - 1}`);
    }
    if (to < from) throw new Error(`slot range ${JSON.stringify(part)} runs backwards`);
    for (let n = from; n <= to; n++) slots.push(n);
  }
  return sortedUnique(slots);
}

/** The slots n with n mod `of` == `index`. */
export function spreadSlots(index: number, of: number): number[] {
  const slots: number[] = [];
  for (let n = index; n < SLOT_COUNT; n += of) slots.push(n);
  return slots;
}

/** Ranges a log line shows before it says how many more there are. */
const LOGGED_RANGES = 8;

/**
 * A slot list as a log line shows it, bounded whatever the list: the spread
 * `I/N` (every slot n with n mod N == I) when it is one, else the first
 * ranges and a count — `"1/2 (512 slots)"`, `"0-3,7 (5 slots)"`,
 * `"0,2,4,… (300 slots in 290 ranges)"`. Not parseable: formatSlots is.
 */
export function describeSlots(slots: Iterable<number>): string {
  const sorted = sortedUnique([...slots]);
  if (sorted.length === 0) return "none";
  const count = `${sorted.length} slot${sorted.length === 1 ? "" : "s"}`;
  const step = sorted.length > 2 ? sorted[1]! - sorted[0]! : 0;
  if (step > 1 && sorted[0]! < step && sorted.every((n, i) => n === sorted[0]! + i * step)) {
    if (sorted.at(-1)! + step >= SLOT_COUNT) return `${sorted[0]}/${step} (${count})`;
  }
  const ranges = formatSlots(sorted).split(",");
  if (ranges.length <= LOGGED_RANGES) return `${ranges.join(",")} (${count})`;
  return `${ranges.slice(0, LOGGED_RANGES).join(",")},… (${count} in ${ranges.length} ranges)`;
}

/** "0-3,7": a short form of a slot list, for errors and `--slots` (parseSlotRanges reads it back). */
export function formatSlots(slots: Iterable<number>): string {
  const sorted = sortedUnique([...slots]);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length === 0 ? "none" : parts.join(",");
}

export function isSlot(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n < SLOT_COUNT;
}

function sortedUnique(slots: readonly number[]): number[] {
  return [...new Set(slots)].sort((a, b) => a - b);
}
