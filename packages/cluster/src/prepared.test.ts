/** PreparedParts against a simple model: a list of (key, ids, expiresAt). */
import type { TaskInput } from "@frontier/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PreparedParts } from "./prepared.js";

const TTL = 10;
type Op =
  | { kind: "add"; key: string; ids: string[] }
  | { kind: "take"; key: string }
  | { kind: "remove"; key: string }
  | { kind: "tick"; ms: number };

const key = fc.constantFrom("k1", "k2", "k3", "k4");
const ids = fc.uniqueArray(fc.constantFrom("a", "b", "c", "d", "e", "f"), { maxLength: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("add" as const), key, ids }),
  fc.record({ kind: fc.constant("take" as const), key }),
  fc.record({ kind: fc.constant("remove" as const), key }),
  fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 12 }) }),
);

describe("PreparedParts", () => {
  it("behaves like the model: parts live TTL from their last prepare, reservations follow the parts", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const parts = new PreparedParts(TTL);
        let model: { key: string; ids: string[]; expiresAt: number }[] = [];
        let now = 0;
        const live = () => (model = model.filter((p) => p.expiresAt > now));
        for (const o of ops) {
          switch (o.kind) {
            case "add":
              parts.add(
                o.key,
                o.ids.map((id): TaskInput => ({ id, deadline: 1 })),
                now,
              );
              live();
              model = model.filter((p) => p.key !== o.key);
              model.push({ key: o.key, ids: o.ids, expiresAt: now + TTL });
              break;
            case "take": {
              const got = parts.take(o.key, now);
              const want = live().find((p) => p.key === o.key);
              expect(got?.ids).toEqual(want?.ids);
              model = model.filter((p) => p.key !== o.key);
              break;
            }
            case "remove":
              parts.remove(o.key);
              model = model.filter((p) => p.key !== o.key);
              break;
            case "tick":
              now += o.ms;
              parts.sweep(now);
              live();
              break;
          }
          for (const k of ["k1", "k2", "k3", "k4"]) {
            expect(parts.get(k, now)?.ids).toEqual(live().find((p) => p.key === k)?.ids);
          }
          expect(parts.size).toBe(live().length);
          expect(new Set(parts.reserved)).toEqual(new Set(live().flatMap((p) => p.ids)));
          const all = ["a", "b", "c", "d", "e", "f"].map((id) => ({ id }));
          for (const k of ["k1", "k9"]) {
            const others = live()
              .filter((p) => p.key !== k)
              .flatMap((p) => p.ids);
            expect(new Set(parts.reservedByOthers(all, k, now))).toEqual(new Set(others));
          }
        }
      }),
    );
  });
});
