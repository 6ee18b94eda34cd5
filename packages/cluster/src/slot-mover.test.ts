/**
 * A slot's export as `adopt` parts: every task, entry and lease proof once,
 * in order, each part within the codec's limits, at least one part.
 */
import { encodeRequest, MAX_MESSAGE_BYTES, MOVE_PART_BYTES } from "@frontier/protocol";
import type { SlotExport } from "@frontier/shard";
import { describe, expect, it } from "vitest";
import { splitExport } from "./slot-mover.js";

function exportOf(tasks: number, payloadBytes: number, entries = 0, leases = 0): SlotExport {
  return {
    moveId: "m",
    slot: 5,
    source: "a",
    target: "b",
    createdAt: 1,
    tasks: Array.from({ length: tasks }, (_, i) => ({
      spec: {
        id: `t${i}`,
        prerequisites: [],
        maxAttempts: 3,
        hardDeadline: false,
        onPrerequisiteFailure: "cancel" as const,
        payload: "x".repeat(payloadBytes),
      },
      status: { state: "RUNNABLE" as const, deadline: i, attempts: 0, token: 0, runnableSince: 1 },
    })),
    idempotency: Array.from(
      { length: entries },
      (_, i) => [`k${i}`, { taskIds: [`t${i}`], createdAt: 1 }] as const,
    ),
    leases: Array.from({ length: leases }, (_, i) => ({
      taskId: `t${i}`,
      token: i + 1,
      secret: "A".repeat(22),
    })),
  };
}

describe("splitExport", () => {
  it("sends an empty slot as one empty part", () => {
    const parts = splitExport(exportOf(0, 0));
    expect(parts).toEqual([
      {
        op: "adopt",
        moveId: "m",
        slot: 5,
        source: "a",
        part: 0,
        parts: 1,
        tasks: [],
        entries: [],
        leases: [],
        exportedAt: 1,
      },
    ]);
  });

  it("marks every part with its export's createdAt, so a target tells two exports under one id apart", () => {
    const parts = splitExport({ ...exportOf(400, 10_000, 300, 50), createdAt: 77 });
    expect(parts.length).toBeGreaterThan(1);
    expect(new Set(parts.map((p) => p.exportedAt))).toEqual(new Set([77]));
  });

  it("splits a large slot into parts that each encode within the limits, nothing lost or repeated", () => {
    const row = exportOf(400, 10_000, 300, 50);
    const parts = splitExport(row);
    expect(parts.length).toBeGreaterThan(4);
    parts.forEach((p, i) => {
      expect(p.part).toBe(i);
      expect(p.parts).toBe(parts.length);
      const bytes = encodeRequest(p).byteLength;
      expect(bytes).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      expect(bytes).toBeLessThanOrEqual(MOVE_PART_BYTES + 20_000);
    });
    expect(parts.flatMap((p) => p.tasks)).toEqual(row.tasks);
    expect(parts.flatMap((p) => p.entries).map((e) => e.key)).toEqual(row.idempotency.map(([k]) => k));
    expect(parts.flatMap((p) => p.leases)).toEqual(row.leases);
  });
});
