/**
 * Bad input at the coordinator's boundary: every case gets an error reply
 * with a stable code, and the coordinator keeps serving everyone else.
 */
import {
  decodeReply,
  MAX_ID_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PREREQUISITES,
  MAX_TASKS_PER_BATCH,
  MAX_WAIT_MS,
  PROTOCOL_VERSION,
  subjectsFor,
  type WireErrorCode,
} from "@frontier/protocol";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ok, refused, startTestCluster, type TestCluster } from "./test-shard.fixture.js";

const packr = new Packr({ useRecords: false });
const request = (op: string, fields: Record<string, unknown>) =>
  packr.pack({ v: PROTOCOL_VERSION, kind: "request", op, ...fields });
const task = (id: string, extra: Record<string, unknown> = {}) => ({ id, deadline: 1_000, ...extra });

let c: TestCluster;

beforeAll(async () => {
  c = await startTestCluster(2);
  await c.startCoordinator();
});
afterAll(() => c.stop());

async function raw(op: string, bytes: Uint8Array) {
  const msg = await c.nc.request(`${subjectsFor(c.cluster).coordAll.slice(0, -1)}${op}`, bytes, {
    timeout: 5_000,
  });
  return decodeReply(msg.data, "stats");
}

async function stillServing(): Promise<void> {
  const reply = await ok(c.nc, c.cluster, { op: "stats" });
  expect(reply.stats.runnable).toBeGreaterThanOrEqual(0);
}

const cases: [string, string, () => Uint8Array, WireErrorCode, RegExp?][] = [
  ["garbage bytes", "stats", () => Uint8Array.from([0xc1, 0xff, 0x00]), "BAD_MESSAGE", /msgpack/],
  ["empty message", "stats", () => new Uint8Array(0), "BAD_MESSAGE"],
  ["msgpack that is not a map", "stats", () => packr.pack(42), "BAD_MESSAGE", /envelope/],
  ["no version", "stats", () => packr.pack({ kind: "request", op: "stats" }), "BAD_MESSAGE", /version/],
  [
    "a version from the future",
    "stats",
    () => packr.pack({ v: PROTOCOL_VERSION + 1, kind: "request", op: "stats" }),
    "UNSUPPORTED_VERSION",
  ],
  [
    "a reply sent as a request",
    "stats",
    () => packr.pack({ v: PROTOCOL_VERSION, kind: "reply", ok: true, op: "cancel" }),
    "BAD_MESSAGE",
  ],
  [
    "the body's op differs from the subject's",
    "lease",
    () => request("stats", {}),
    "BAD_MESSAGE",
    /expected a "lease" request/,
  ],
  [
    "an unknown field",
    "stats",
    () => request("stats", { verbose: true }),
    "BAD_MESSAGE",
    /unknown field "verbose"/,
  ],
  [
    "a field of the wrong type",
    "submit",
    () => request("submit", { tasks: [task("a", { deadline: "soon" })], idempotencyKey: "k" }),
    "BAD_MESSAGE",
    /tasks\[0\]\.deadline/,
  ],
  ["a missing field", "complete", () => request("complete", { taskId: "a" }), "BAD_MESSAGE", /token/],
  ["an oversized message", "submit", () => new Uint8Array(MAX_MESSAGE_BYTES + 1), "MESSAGE_TOO_LARGE"],
  [
    "too many tasks",
    "submit",
    () =>
      request("submit", {
        tasks: Array.from({ length: MAX_TASKS_PER_BATCH + 1 }, (_, i) => task(`t${i}`)),
        idempotencyKey: "k",
      }),
    "BATCH_TOO_LARGE",
  ],
  [
    "too many leases",
    "lease",
    () => request("lease", { owner: "w", max: 1_001, leaseMs: 1_000, waitMs: 0, requestId: "r" }),
    "BATCH_TOO_LARGE",
  ],
  [
    "an id over the limit",
    "submit",
    () => request("submit", { tasks: [task("x".repeat(MAX_ID_LENGTH + 1))], idempotencyKey: "k" }),
    "ID_TOO_LONG",
  ],
  [
    "an idempotency key over the limit",
    "submit",
    () => request("submit", { tasks: [task("a")], idempotencyKey: "k".repeat(MAX_ID_LENGTH + 1) }),
    "ID_TOO_LONG",
  ],
  [
    "a payload over the limit",
    "submit",
    () =>
      request("submit", {
        tasks: [task("a", { payload: "p".repeat(MAX_PAYLOAD_BYTES + 1) })],
        idempotencyKey: "k",
      }),
    "PAYLOAD_TOO_LARGE",
  ],
  [
    "too many prerequisites",
    "submit",
    () =>
      request("submit", {
        tasks: [
          task("a", { prerequisites: Array.from({ length: MAX_PREREQUISITES + 1 }, (_, i) => `p${i}`) }),
        ],
        idempotencyKey: "k",
      }),
    "TOO_MANY_PREREQUISITES",
  ],
  [
    "a long-poll over the limit",
    "lease",
    () => request("lease", { owner: "w", max: 1, leaseMs: 1_000, waitMs: MAX_WAIT_MS + 1, requestId: "r" }),
    "INVALID_ARGUMENT",
  ],
  ["a subject naming no op", "bogus", () => request("stats", {}), "BAD_MESSAGE", /names no coordinator op/],
  [
    "prepare (shard-only)",
    "prepare",
    () => request("prepare", { tasks: [task("a")], idempotencyKey: "k" }),
    "BAD_MESSAGE",
    /shard-only/,
  ],
  [
    "commit (shard-only)",
    "commit",
    () => request("commit", { idempotencyKey: "k" }),
    "BAD_MESSAGE",
    /shard-only/,
  ],
  [
    "abort (shard-only)",
    "abort",
    () => request("abort", { idempotencyKey: "k" }),
    "BAD_MESSAGE",
    /shard-only/,
  ],
  [
    "check (shard-only)",
    "check",
    () => request("check", { tasks: [task("a")] }),
    "BAD_MESSAGE",
    /shard-only/,
  ],
  [
    "maxKey from a client",
    "lease",
    () => request("lease", { owner: "w", max: 1, leaseMs: 1_000, waitMs: 0, requestId: "r", maxKey: 5 }),
    "BAD_MESSAGE",
    /maxKey/,
  ],
];

describe("bad input gets an error reply with a stable code", () => {
  it.each(cases)("%s", async (_name, op, bytes, code, message) => {
    const reply = await raw(op, bytes());
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe(code);
    expect(reply.error.retryable).toBe(false);
    if (message) expect(reply.error.message).toMatch(message);
    await stillServing();
  });

  it("keeps serving while bad requests arrive in a burst", async () => {
    const bad = Array.from({ length: 50 }, () => raw("submit", Uint8Array.from([0xc1])));
    const good = Array.from({ length: 10 }, () => ok(c.nc, c.cluster, { op: "stats" }));
    const [bads, goods] = await Promise.all([Promise.all(bad), Promise.all(good)]);
    expect(bads.every((r) => !r.ok && r.error.code === "BAD_MESSAGE")).toBe(true);
    expect(goods).toHaveLength(10);
  });

  it("ignores a publish without a reply subject", async () => {
    c.nc.publish(subjectsFor(c.cluster).coord("stats"), Uint8Array.from([0xc1]));
    await c.nc.flush();
    await stillServing();
  });
});

describe("batch rules are checked before any shard stores or reserves the batch", () => {
  it.each([
    ["duplicate ids", [task("d"), task("d")], "DUPLICATE_ID"],
    ["a cycle", [task("x", { prerequisites: ["y"] }), task("y", { prerequisites: ["x"] })], "CYCLE"],
    ["a self-dependency", [task("s", { prerequisites: ["s"] })], "SELF_DEPENDENCY"],
    [
      "a prerequisite in another workflow",
      [task("a", { workflowId: "w1" }), task("b", { workflowId: "w2", prerequisites: ["a"] })],
      "CROSS_WORKFLOW",
    ],
    [
      "a dependent without a workflowId (placed by its own id, away from its prerequisite)",
      [task("p"), task("q", { prerequisites: ["p"] })],
      "CROSS_WORKFLOW",
    ],
    ["attempts out of range", [task("m", { maxAttempts: 0 })], "MALFORMED"],
    ["an empty id", [task("")], "MALFORMED"],
  ] as const)("%s → VALIDATION_FAILED", async (_name, tasks, problem) => {
    const before = c.shards.map((s) => s.received.length);
    const stored = () =>
      c.shards.map((s) => Object.values(s.engine.stats().counts).reduce((a, b) => a + b, 0));
    const storedBefore = stored();
    const error = await refused(c.nc, c.cluster, {
      op: "submit",
      tasks: tasks as never,
      idempotencyKey: `v-${problem}`,
    });
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.problems?.map((p) => p.code)).toContain(problem);
    // Shards were at most asked to check their parts (which reserves nothing), never to take them.
    const sent = c.shards.flatMap((s, i) => s.received.slice(before[i]));
    expect(sent.map((r) => r.op).filter((op) => op !== "check")).toEqual([]);
    expect(c.shards.map((s) => s.prepared.size)).toEqual(c.shards.map(() => 0));
    expect(stored()).toEqual(storedBefore);
  });
});
