import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IndexedHeap } from "./indexed-heap.js";

/** A heap over handles 0..n-1 whose keys live in a plain array, as the engine uses it. */
function heapOver(keys: number[]) {
  const heap = new IndexedHeap((a, b) => keys[a]! < keys[b]! || (keys[a] === keys[b] && a < b));
  return heap;
}

describe("IndexedHeap", () => {
  it("tells the keys of its least entries without moving any", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 300 }),
        fc.integer({ min: 0, max: 320 }),
        fc.nat(),
        (keys, limit, removals) => {
          const heap = new IndexedHeap(
            (a, b) => keys[a]! < keys[b]! || (keys[a] === keys[b] && a < b),
            4,
            (h) => keys[h]!,
          );
          for (let h = 0; h < keys.length; h++) heap.push(h);
          // Some removals first, so the walk meets a heap that was reshaped in the middle.
          const gone = new Set<number>();
          for (let i = 0; i < Math.min(removals % 20, keys.length); i++) {
            const h = (i * 7919) % keys.length;
            if (heap.has(h)) {
              heap.remove(h);
              gone.add(h);
            }
          }
          const left = keys.filter((_, h) => !gone.has(h)).sort((a, b) => a - b);
          expect(heap.leastKeys(limit)).toEqual(left.slice(0, limit));
          // Nothing moved: popping still yields every entry in order.
          const popped: number[] = [];
          for (let h = heap.pop(); h >= 0; h = heap.pop()) popped.push(keys[h]!);
          expect(popped).toEqual(left);
        },
      ),
    );
  });

  it("pops in key order, ties by the comparator", () => {
    const keys = [5, 3, 9, 3, 1];
    const heap = heapOver(keys);
    for (let h = 0; h < keys.length; h++) heap.push(h);
    const out: number[] = [];
    for (let h = heap.pop(); h >= 0; h = heap.pop()) out.push(h);
    expect(out).toEqual([4, 1, 3, 0, 2]);
    expect(heap.pop()).toBe(-1);
    expect(heap.peek()).toBe(-1);
  });

  it("removes and re-keys entries anywhere, sifting both ways", () => {
    // A model-based check: random push/pop/remove/update against a sorted list.
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("push" as const), key: fc.integer({ min: 0, max: 50 }) }),
            fc.record({ op: fc.constant("pop" as const) }),
            fc.record({ op: fc.constant("remove" as const), pick: fc.nat() }),
            fc.record({
              op: fc.constant("update" as const),
              pick: fc.nat(),
              key: fc.integer({ min: 0, max: 50 }),
            }),
          ),
          { maxLength: 200 },
        ),
        (ops) => {
          const keys: number[] = [];
          const heap = heapOver(keys);
          const inHeap = new Set<number>();
          const least = () => [...inHeap].sort((a, b) => keys[a]! - keys[b]! || a - b)[0] ?? -1;
          for (const op of ops) {
            if (op.op === "push") {
              const h = keys.length;
              keys.push(op.key);
              heap.push(h);
              inHeap.add(h);
            } else if (op.op === "pop") {
              const expected = least();
              expect(heap.pop()).toBe(expected);
              inHeap.delete(expected);
            } else if (inHeap.size > 0) {
              const h = [...inHeap][op.pick % inHeap.size]!;
              if (op.op === "remove") {
                expect(heap.remove(h)).toBe(true);
                expect(heap.remove(h)).toBe(false);
                inHeap.delete(h);
              } else {
                keys[h] = op.key;
                heap.update(h);
              }
            }
            expect(heap.size).toBe(inHeap.size);
            expect(heap.peek()).toBe(least());
            for (const h of inHeap) expect(heap.has(h)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("build orders any set of handles bottom-up, replacing what was there", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 120 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 20 }),
        (keys, before, after) => {
          // The cached primary key and the tie-breaking comparator, as the engine uses them.
          const heap = new IndexedHeap(
            (a, b) => a < b,
            4,
            (h) => keys[h]!,
          );
          const all = keys.map((_, h) => h);
          for (const h of new Set(before.filter((x) => x < keys.length))) heap.push(h);
          const chosen = all.filter((h) => keys[h]! % 3 !== 0);
          heap.build(chosen);
          expect(heap.size).toBe(chosen.length);
          for (const h of all) expect(heap.has(h)).toBe(chosen.includes(h));
          // Keep using it: pushes after a build, then everything pops in (key, handle) order.
          const extra = all.filter((h) => !chosen.includes(h)).slice(0, after.length);
          extra.forEach((h, i) => {
            keys[h] = after[i]!;
            heap.push(h);
          });
          const expected = [...chosen, ...extra].sort((a, b) => keys[a]! - keys[b]! || a - b);
          const out: number[] = [];
          for (let h = heap.pop(); h >= 0; h = heap.pop()) out.push(h);
          expect(out).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
