import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashId, IdIndex } from "./id-index.js";

let pair: [string, string] | undefined;

/** Two different ids with the same 32-bit hash (a birthday search, once; ~80k tries on average). */
function collidingPair(): [string, string] {
  if (pair) return pair;
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const id = `c${i}`;
    const other = seen.get(hashId(id));
    if (other !== undefined) return (pair = [other, id]);
    seen.set(hashId(id), id);
  }
}

/** The index as the task table uses it: handles into an ids array, "" for a free handle. */
class Harness {
  readonly ids: string[] = [];
  readonly index = new IdIndex(this.ids, 2);
  readonly model = new Map<string, number>();
  private readonly free: number[] = [];

  add(id: string): void {
    if (this.model.has(id)) return;
    let h = this.free.pop();
    if (h === undefined) {
      h = this.ids.length;
      this.ids.push(id);
    } else this.ids[h] = id;
    this.index.add(id, h);
    this.model.set(id, h);
  }

  delete(id: string): void {
    const h = this.model.get(id);
    expect(this.index.delete(id, h ?? -1)).toBe(h !== undefined);
    if (h === undefined) return;
    this.ids[h] = "";
    this.free.push(h);
    this.model.delete(id);
  }

  check(probes: readonly string[]): void {
    expect(this.index.size).toBe(this.model.size);
    for (const [id, h] of this.model) expect(this.index.get(id)).toBe(h);
    for (const id of probes) {
      expect(this.index.get(id)).toBe(this.model.get(id) ?? -1);
      expect(this.index.has(id)).toBe(this.model.has(id));
    }
  }
}

describe("IdIndex", () => {
  it("agrees with a Map under any sequence of adds, deletes and lookups", () => {
    const [x, y] = collidingPair();
    // A small alphabet makes repeats, deletes of present ids and long probe runs likely.
    const id = fc.oneof(
      fc.stringMatching(/^[ab]{1,4}$/),
      fc.constantFrom(x, y, "é", "\u{1F600}", "a".repeat(256)),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("add" as const), id }),
            fc.record({ op: fc.constant("delete" as const), id }),
            fc.record({ op: fc.constant("reserve" as const), n: fc.nat({ max: 200 }) }),
          ),
          { maxLength: 300 },
        ),
        (ops) => {
          const t = new Harness();
          for (const op of ops) {
            if (op.op === "add") t.add(op.id);
            else if (op.op === "delete") t.delete(op.id);
            else t.index.reserve(op.n);
            t.check([x, y, "zz", ""]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("getMany, addMany and addAll agree with get and add one by one", () => {
    const [x, y] = collidingPair();
    const id = fc.oneof(fc.stringMatching(/^[abc]{1,5}$/), fc.constantFrom(x, y));
    fc.assert(
      fc.property(
        fc.uniqueArray(id, { maxLength: 120 }),
        fc.uniqueArray(id, { maxLength: 120 }),
        fc.array(id, { maxLength: 60 }),
        fc.boolean(),
        (first, second, probes, bulk) => {
          const t = new Harness();
          // The first ids one by one or all at once (a restore's bulk path), then a batch.
          if (bulk) {
            t.ids.push(...first);
            for (const [h, f] of first.entries()) t.model.set(f, h);
            expect(t.index.addAll(0, first.length, true)).toBe(-1);
          } else for (const f of first) t.add(f);
          const fresh = second.filter((s) => !t.model.has(s));
          const handles = new Int32Array(fresh.length);
          fresh.forEach((s, i) => {
            handles[i] = t.ids.length;
            t.model.set(s, t.ids.length);
            t.ids.push(s);
          });
          t.index.addMany(handles);
          t.check(probes);
          const all = [...probes, ...first, ...second];
          const out = new Int32Array(all.length);
          t.index.getMany(all, out);
          expect([...out]).toEqual(all.map((s) => t.model.get(s) ?? -1));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("addAll reports an id that is there twice", () => {
    const [x, y] = collidingPair();
    const t = new Harness();
    t.ids.push("a", x, "b", y, x);
    expect(t.index.addAll(0, t.ids.length, true)).toBe(4);
    const u = new Harness();
    u.ids.push("a", x, "b", y);
    expect(u.index.addAll(0, u.ids.length, true)).toBe(-1);
    for (const [h, s] of u.ids.entries()) expect(u.index.get(s)).toBe(h);
  });

  it("tells apart ids whose hashes collide", () => {
    const [x, y] = collidingPair();
    expect(x).not.toBe(y);
    expect(hashId(x)).toBe(hashId(y));
    const t = new Harness();
    t.add(x);
    expect(t.index.get(y)).toBe(-1);
    t.add(y);
    t.check([x, y]);
    t.delete(x);
    t.check([x, y]);
    expect(t.index.get(y)).toBe(1);
  });

  it("keeps every entry reachable through deletions across the wrap-around", () => {
    // Many entries in a table kept small relative to the churn: deletions
    // shift runs that wrap past the last slot.
    const t = new Harness();
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 40; i++) t.add(`r${round}-${i}`);
      for (let i = 0; i < 40; i += round % 3 === 0 ? 1 : 2) t.delete(`r${round}-${i}`);
      t.check([`r${round}-0`, `r${round}-1`]);
    }
  });
});
