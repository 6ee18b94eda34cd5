/**
 * Task types on the wire: a task's `type`, a lease's and a settle lease's
 * `types`, the per-type frontiers of an announcement and per-type counts in
 * stats — their shapes and bounds, checked the same way on encode and decode.
 */
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decode,
  decodeFrontier,
  decodeReply,
  decodeRequest,
  encodeFrontier,
  encodeReply,
  encodeRequest,
  type FrontierAnnouncement,
  MAX_ANNOUNCED_TYPES,
  MAX_LEASE_TYPES,
  MAX_STATS_TYPES,
  PROTOCOL_VERSION,
  type Request,
} from "./index.js";

const rawPackr = new Packr({ useRecords: false });
const envelope = (kind: string, body: object): Uint8Array =>
  rawPackr.pack({ v: PROTOCOL_VERSION, kind, ...body });

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    const { code, message } = e as { code: string; message: string };
    return { code, message };
  }
  throw new Error("expected a refusal");
}

const lease = (types?: unknown): Request =>
  ({
    op: "lease",
    owner: "w",
    max: 1,
    leaseMs: 1_000,
    waitMs: 0,
    requestId: "r",
    ...(types === undefined ? {} : { types }),
  }) as Request;

describe("task types on the wire", () => {
  it("carries a lease's types and a settle lease's, and refuses a bad list as INVALID_ARGUMENT", () => {
    expect(decodeRequest(encodeRequest(lease(["img", "mail"])))).toEqual(lease(["img", "mail"]));
    const settle: Request = {
      op: "settle",
      completes: [],
      lease: { owner: "w", max: 2, leaseMs: 1_000, requestId: "r", types: ["img"] },
    };
    expect(decodeRequest(encodeRequest(settle))).toEqual(settle);
    for (const [types, why] of [
      [[], "1..64 task types"],
      [Array.from({ length: MAX_LEASE_TYPES + 1 }, (_, i) => `t${i}`), "MAX_LEASE_TYPES"],
      [["has space"], "is not a task type"],
      [["x".repeat(65)], "is not a task type"],
      [["img", "img"], "named twice"],
    ] as const) {
      const r = refusal(() => decode(envelope("request", lease(types))));
      expect(r.code, JSON.stringify(types)).toBe("INVALID_ARGUMENT");
      expect(r.message).toContain(why);
      expect(refusal(() => encodeRequest(lease(types))).code).toBe("INVALID_ARGUMENT");
    }
    expect(refusal(() => decode(envelope("request", lease("img")))).code).toBe("BAD_MESSAGE");
  });

  it("passes a submitted task's type on for the engine to judge, and carries it in leases and views", () => {
    const submit: Request = {
      op: "submit",
      idempotencyKey: "k",
      tasks: [
        { id: "a", deadline: 1, type: "img" },
        { id: "b", deadline: 1, type: "not valid" },
      ],
    };
    expect(decodeRequest(encodeRequest(submit))).toEqual(submit);
    expect(
      refusal(() => decode(envelope("request", { ...submit, tasks: [{ id: "a", deadline: 1, type: 3 }] })))
        .code,
    ).toBe("BAD_MESSAGE");
    const reply = {
      ok: true as const,
      op: "lease" as const,
      leases: [
        {
          taskId: "a",
          owner: "w",
          token: 1,
          expiresAt: 2,
          attempt: 1,
          task: { id: "a", deadline: 1, prerequisites: [], type: "img" },
        },
      ],
    };
    expect(decodeReply(encodeReply(reply), "lease")).toEqual(reply);
    const bad = {
      ...reply,
      leases: [{ ...reply.leases[0]!, task: { ...reply.leases[0]!.task, type: "a b" } }],
    };
    expect(refusal(() => decode(envelope("reply", bad))).code).toBe("BAD_MESSAGE");
  });

  it("carries per-type frontiers in dispatch order, at most MAX_ANNOUNCED_TYPES", () => {
    const a: FrontierAnnouncement = {
      shardId: "s1",
      deadline: 5,
      key: 5,
      taskId: "t1",
      runnable: 3,
      types: [
        { type: "default", key: 5, deadline: 5, taskId: "t1", runnable: 2, depth: [5, 9] },
        { type: "img", key: 7, deadline: 7, taskId: "t0", runnable: 1 },
      ],
      typesOmitted: 0,
      seq: 1,
      at: 10,
    };
    expect(decodeFrontier(encodeFrontier(a))).toEqual(a);
    const swapped = { ...a, types: [a.types![1]!, a.types![0]!] };
    expect(refusal(() => decode(envelope("frontier", swapped))).message).toContain("dispatch order");
    const twice = { ...a, types: [a.types![0]!, { ...a.types![0]!, key: 6 }] };
    expect(refusal(() => decode(envelope("frontier", twice))).message).toContain("each type once");
    const many = {
      ...a,
      types: Array.from({ length: MAX_ANNOUNCED_TYPES + 1 }, (_, i) => ({
        type: `t${String(i).padStart(2, "0")}`,
        key: 5 + i,
        deadline: 5 + i,
        taskId: "x",
        runnable: 1,
      })),
    };
    expect(refusal(() => decode(envelope("frontier", many))).code).toBe("BAD_MESSAGE");
  });

  it("carries per-type counts in stats, at most MAX_STATS_TYPES", () => {
    const stats = {
      counts: { WAITING: 0, RUNNABLE: 3, LEASED: 1, COMPLETED: 0, FAILED: 0, CANCELLED: 0, EXPIRED: 0 },
      runnable: 3,
      oldestRunnableAgeMs: 0,
      frontierDeadline: 5,
      leaseTimeouts: 0,
      attemptTimeouts: 0,
      deadlineMisses: 0,
      staleRejections: 0,
      retries: 0,
      leased: 1,
      types: [
        { type: "default", runnable: 2, leased: 0 },
        { type: "img", runnable: 1, leased: 1 },
      ],
      typesOmitted: 4,
    };
    const reply = { ok: true as const, op: "stats" as const, stats };
    expect(decodeReply(encodeReply(reply), "stats")).toEqual(reply);
    const many = {
      ...reply,
      stats: {
        ...stats,
        types: Array.from({ length: MAX_STATS_TYPES + 1 }, (_, i) => ({
          type: `t${i}`,
          runnable: 1,
          leased: 0,
        })),
      },
    };
    expect(refusal(() => decode(envelope("reply", many))).code).toBe("BAD_MESSAGE");
  });
});
