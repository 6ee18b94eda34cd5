/** PreparedParts against a simple model: a list of (key, ids, expiresAt). */
import type { TaskInput } from "@frontier/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PreparedParts } from "./prepared.js";

const TTL = 10;
/** Any size that differs between parts will do: the sums must follow the parts. */
const payloadBytesOf = (ids: readonly string[]) => 7 * ids.length + ids.join("").length;
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
  it("behaves like the model: parts live TTL from their last prepare, reservations and set-aside room follow the parts", () => {
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
                0,
                payloadBytesOf(o.ids),
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
            const rest = live().filter((p) => p.key !== k);
            expect(parts.holdings(now, k)).toEqual({
              liveTasks: rest.reduce((n, p) => n + p.ids.length, 0),
              storedBytes: rest.reduce((n, p) => n + payloadBytesOf(p.ids), 0),
              idempotencyKeys: rest.length,
            });
          }
        }
      }),
    );
  });

  it("says when a new part would pass the count or byte limit, counting a replaced part out", () => {
    const parts = new PreparedParts(1_000, { maxParts: 2, maxBytes: 100 });
    const t = (id: string) => [{ id, deadline: 1 }];
    expect(parts.noRoomFor("a", 40, 0)).toBeUndefined();
    parts.add("a", t("a"), 0, 40);
    parts.add("b", t("b"), 0, 40);
    expect(parts.bytes).toBe(80);
    expect(parts.noRoomFor("c", 1, 0)).toMatch(/2 prepared parts held/);
    expect(parts.noRoomFor("b", 60, 0)).toBeUndefined();
    parts.remove("a");
    expect(parts.noRoomFor("c", 61, 0)).toMatch(/40 bytes of prepared parts held, and this part is 61/);
    expect(parts.noRoomFor("c", 60, 0)).toBeUndefined();
    // Expired parts are swept first and free their room.
    expect(parts.noRoomFor("c", 100, 1_000)).toBeUndefined();
    expect(parts.bytes).toBe(0);
  });
});
