import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planRebalance } from "./rebalance.js";
import { spreadSlots } from "./slots.js";

function apply(owners: Map<number, string>, plan: ReturnType<typeof planRebalance>): Map<number, string> {
  const after = new Map(owners);
  for (const m of plan) {
    expect(after.get(m.slot)).toBe(m.from);
    after.set(m.slot, m.to);
  }
  return after;
}

function counts(owners: Map<number, string>): Map<string, number> {
  const c = new Map<string, number>();
  for (const s of owners.values()) c.set(s, (c.get(s) ?? 0) + 1);
  return c;
}

describe("planRebalance", () => {
  it("gives a third shard its share of two shards' 1024 slots, moving only that many", () => {
    const owners = new Map<number, string>();
    for (const slot of spreadSlots(0, 2)) owners.set(slot, "shard-0");
    for (const slot of spreadSlots(1, 2)) owners.set(slot, "shard-1");
    const plan = planRebalance(owners, ["shard-0", "shard-1", "shard-2"]);
    expect(plan.length).toBe(341);
    expect(plan.every((m) => m.to === "shard-2")).toBe(true);
    const after = counts(apply(owners, plan));
    expect([...after.values()].sort()).toEqual([341, 341, 342]);
    expect(planRebalance(apply(owners, plan), ["shard-0", "shard-1", "shard-2"])).toEqual([]);
  });

  it("drains a shard onto the others, evenly", () => {
    const owners = new Map<number, string>();
    for (let i = 0; i < 3; i++) for (const slot of spreadSlots(i, 3)) owners.set(slot, `s${i}`);
    const plan = planRebalance(owners, ["s0", "s1", "s2"], { draining: ["s1"] });
    const after = counts(apply(owners, plan));
    expect(after.get("s1")).toBeUndefined();
    expect([...after.values()].sort()).toEqual([512, 512]);
  });

  it("always ends even (±1 of the share), moves each slot at most once, and only between live shards", () => {
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.nat({ max: 5 }), { nil: undefined }), { minLength: 1, maxLength: 200 }),
        fc.uniqueArray(fc.nat({ max: 5 }), { minLength: 1, maxLength: 6 }),
        fc.uniqueArray(fc.nat({ max: 5 }), { maxLength: 2 }),
        (table, live, draining) => {
          const owners = new Map<number, string>();
          table.forEach((o, slot) => {
            if (o !== undefined) owners.set(slot, `s${o}`);
          });
          const shards = live.map((i) => `s${i}`);
          const drained = draining.map((i) => `s${i}`);
          const plan = planRebalance(owners, shards, { draining: drained });
          expect(new Set(plan.map((m) => m.slot)).size).toBe(plan.length);
          const after = apply(owners, plan);
          const takers = shards.filter((s) => !drained.includes(s));
          for (const m of plan) expect(takers).toContain(m.to);
          if (takers.length === 0) {
            expect(plan).toEqual([]);
            return;
          }
          const c = counts(after);
          for (const d of drained) expect(c.get(d)).toBeUndefined();
          const movable = [...owners.values()].filter(
            (o) => takers.includes(o) || drained.includes(o),
          ).length;
          const held = takers.map((s) => c.get(s) ?? 0);
          expect(Math.max(...held) - Math.min(...held)).toBeLessThanOrEqual(1);
          expect(held.reduce((a, b) => a + b, 0)).toBe(movable);
        },
      ),
    );
  });
});
