import type { Task } from "@frontier/core";
import { encodedByteLength, LEASE_SECRET_LENGTH } from "@frontier/protocol";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { leaseSizeBound } from "./lease-size.js";

/** The payload's bytes as a shard measures them at submit (msgpack, no records). */
const packr = new Packr({ useRecords: false });
const measure = (payload: unknown): number => packr.pack(payload).byteLength;

const text = fc.string({ unit: "binary", maxLength: 80 });
const wide = fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.double({ noNaN: true }));

const task: fc.Arbitrary<Task> = fc.record(
  {
    id: text,
    deadline: wide,
    prerequisites: fc.array(text, { maxLength: 20 }),
    workflowId: text,
    large: fc.constant(true as const),
    payload: fc.jsonValue(),
    type: text,
    timeoutMs: wide,
  },
  { requiredKeys: ["id", "deadline", "prerequisites"] },
);

/** The encoded bytes of a lease of `task` as a grant carries it, its secret included. */
function leaseBytes(task: Task, owner: string, token: number, expiresAt: number, attempt: number): number {
  const secret = "A".repeat(LEASE_SECRET_LENGTH);
  return encodedByteLength({ taskId: task.id, owner, token, secret, expiresAt, attempt, task });
}

describe("leaseSizeBound", () => {
  it("is never below the encoded bytes of the lease, its secret included", () => {
    fc.assert(
      fc.property(task, text, wide, wide, wide, (t, owner, token, expiresAt, attempt) => {
        const payloadBytes = t.payload === undefined ? 0 : measure(t.payload);
        expect(leaseSizeBound(t, payloadBytes, owner)).toBeGreaterThanOrEqual(
          leaseBytes(t, owner, token, expiresAt, attempt),
        );
      }),
      { numRuns: 2_000 },
    );
  });

  it("stays within a small factor of a typical small lease, so replies still carry many", () => {
    const t: Task = { id: "task-000123", deadline: Date.now(), prerequisites: [], payload: { i: 123 } };
    const bound = leaseSizeBound(t, measure(t.payload), "worker-1");
    expect(bound).toBeLessThan(2 * leaseBytes(t, "worker-1", 42, Date.now(), 1));
  });
});
