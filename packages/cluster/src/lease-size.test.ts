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

describe("leaseSizeBound", () => {
  it("is never below the encoded bytes of the lease, its secret included", () => {
    fc.assert(
      fc.property(task, text, wide, wide, wide, (t, owner, token, expiresAt, attempt) => {
        const lease = {
          taskId: t.id,
          owner,
          token,
          secret: "A".repeat(LEASE_SECRET_LENGTH),
          expiresAt,
          attempt,
          task: t,
        };
        const payloadBytes = t.payload === undefined ? 0 : measure(t.payload);
        expect(leaseSizeBound(t, payloadBytes, owner)).toBeGreaterThanOrEqual(encodedByteLength(lease));
      }),
      { numRuns: 2_000 },
    );
  });

  it("stays within a small factor of a typical small lease, so replies still carry many", () => {
    const t: Task = { id: "task-000123", deadline: Date.now(), prerequisites: [], payload: { i: 123 } };
    const lease = {
      taskId: t.id,
      owner: "worker-1",
      token: 42,
      secret: "A".repeat(22),
      expiresAt: Date.now(),
      attempt: 1,
      task: t,
    };
    const bound = leaseSizeBound(t, measure(t.payload), "worker-1");
    expect(bound).toBeLessThan(2 * encodedByteLength(lease));
  });
});
