/**
 * Results on the wire: a complete's and each settle complete's `result`, a
 * lease's prerequisites' `results`, a TaskView's `result` — their shapes,
 * MAX_RESULT_BYTES and the depth limit, checked the same way on encode and
 * on decode, and the budget that keeps a grant with results in one message.
 */
import { MAX_ID_LENGTH as CORE_MAX_ID_LENGTH, resultEntryBytes, type TaskView } from "@frontier/core";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decode,
  decodeReply,
  decodeRequest,
  encodedByteLength,
  encodeReply,
  encodeRequest,
  LEASE_RESULTS_BYTES,
  MAX_ID_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PAYLOAD_DEPTH,
  MAX_PREREQUISITES,
  MAX_RESULT_BYTES,
  PROTOCOL_VERSION,
  type ProtocolError,
  type Reply,
  type Request,
} from "./index.js";

const SECRET = "AAAAAAAAAAAAAAAAAAAAAA";
const rawPackr = new Packr({ useRecords: false });
/** Bytes built without the codec's checks: what a buggy or hostile peer sends. */
const envelope = (kind: string, body: object): Uint8Array =>
  rawPackr.pack({ v: PROTOCOL_VERSION, kind, ...body });

/** The code and message of the ProtocolError (or FrontierError) `fn` throws. */
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { code: (e as ProtocolError).code, message: (e as Error).message };
  }
  throw new Error("expected a refusal");
}

function refusedBothWays(kind: "request" | "reply", body: object): { code: string; message: string } {
  const onEncode = refusal(() =>
    kind === "request" ? encodeRequest(body as Request) : encodeReply(body as Reply),
  );
  const onDecode = refusal(() => decode(envelope(kind, body)));
  expect(onDecode).toEqual(onEncode);
  return onEncode;
}

/** A string that encodes to exactly `bytes` msgpack bytes (whatever its header's size: 1, 2, 3 or 5). */
function stringOfBytes(bytes: number): string {
  for (const header of [1, 2, 3, 5]) {
    const s = "r".repeat(bytes - header);
    if (encodedByteLength(s) === bytes) return s;
  }
  throw new Error(`no string encodes to ${bytes} bytes`);
}

/** An array nested `depth` deep. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const lease = {
  taskId: "b",
  owner: "w",
  token: 2,
  expiresAt: 10,
  attempt: 1,
  task: { id: "b", deadline: 5, prerequisites: ["a", "c"] },
};

describe("results on the wire", () => {
  it("carries a complete's result and each settle complete's, any msgpack value", () => {
    for (const result of [{ rows: 3, files: ["x"] }, "text", 0, null, false, [1, [2]]]) {
      const complete = { op: "complete", taskId: "t", token: 1, secret: SECRET, result } as const;
      expect(decodeRequest(encodeRequest(complete))).toEqual(complete);
      const settle = {
        op: "settle",
        completes: [
          { taskId: "t", token: 1, secret: SECRET, result },
          { taskId: "u", token: 2, secret: SECRET },
        ],
      } as const;
      expect(decodeRequest(encodeRequest(settle))).toEqual(settle);
    }
  });

  it("refuses a result above MAX_RESULT_BYTES with PAYLOAD_TOO_LARGE, and takes one at it", () => {
    const atLimit = stringOfBytes(MAX_RESULT_BYTES);
    const over = stringOfBytes(MAX_RESULT_BYTES + 1);
    const complete = { op: "complete", taskId: "t", token: 1, secret: SECRET };
    expect(decodeRequest(encodeRequest({ ...complete, result: atLimit } as Request))).toMatchObject({
      result: atLimit,
    });
    expect(refusedBothWays("request", { ...complete, result: over })).toEqual({
      code: "PAYLOAD_TOO_LARGE",
      message: `result: result of ${MAX_RESULT_BYTES + 1} bytes exceeds MAX_RESULT_BYTES (${MAX_RESULT_BYTES})`,
    });
    const settle = {
      op: "settle",
      completes: [
        { taskId: "a", token: 1, secret: SECRET, result: "small" },
        { taskId: "b", token: 2, secret: SECRET, result: over },
      ],
    };
    expect(refusedBothWays("request", settle).message).toMatch(
      /^completes\[1\]\.result: result of 65537 bytes exceeds MAX_RESULT_BYTES/,
    );
    // A reply carrying one (a lease's results, a TaskView) is held to the same limit.
    const reply = { ok: true, op: "lease", leases: [{ ...lease, results: [{ taskId: "a", result: over }] }] };
    expect(refusedBothWays("reply", reply).message).toMatch(/^leases\[0\]\.results\[0\]\.result: result of/);
  });

  it("refuses a result nested deeper than MAX_PAYLOAD_DEPTH, as payloads", () => {
    const complete = { op: "complete", taskId: "t", token: 1, secret: SECRET };
    expect(
      decodeRequest(encodeRequest({ ...complete, result: nested(MAX_PAYLOAD_DEPTH) } as Request)),
    ).toEqual({
      ...complete,
      result: nested(MAX_PAYLOAD_DEPTH),
    });
    expect(refusedBothWays("request", { ...complete, result: nested(MAX_PAYLOAD_DEPTH + 1) })).toEqual({
      code: "BAD_MESSAGE",
      message: `result: nested deeper than MAX_PAYLOAD_DEPTH (${MAX_PAYLOAD_DEPTH})`,
    });
  });

  it("carries a lease's prerequisites' results and its count of those left out", () => {
    const reply = {
      ok: true,
      op: "lease",
      leases: [
        {
          ...lease,
          results: [
            { taskId: "c", result: { n: 1 } },
            { taskId: "a", result: "x" },
          ],
          resultsOmitted: 2,
        },
      ],
    } as const;
    expect(decodeReply(encodeReply(reply), "lease")).toEqual(reply);
  });

  it.each<[string, unknown, RegExp]>([
    ["not a list", { a: 1 }, /results: expected an array/],
    ["an entry without its result", [{ taskId: "a" }], /results\[0\]\.result: expected a value/],
    ["an entry with another field", [{ taskId: "a", result: 1, extra: 1 }], /results\[0\]/],
    ["an entry without a task id", [{ result: 1 }], /results\[0\]\.taskId/],
  ])("refuses a lease whose results are %s", (_, results, message) => {
    const reply = { ok: true, op: "lease", leases: [{ ...lease, results }] };
    const { code, message: text } = refusedBothWays("reply", reply);
    expect(code).toBe("BAD_MESSAGE");
    expect(text).toMatch(message);
  });

  it("refuses more result entries than a task can have prerequisites, and a zero or fractional omitted count", () => {
    const many = Array.from({ length: MAX_PREREQUISITES + 1 }, (_, i) => ({ taskId: `p${i}`, result: i }));
    expect(
      refusedBothWays("reply", { ok: true, op: "lease", leases: [{ ...lease, results: many }] }).code,
    ).toBe("BAD_MESSAGE");
    for (const resultsOmitted of [0, 1.5, -1]) {
      const reply = { ok: true, op: "lease", leases: [{ ...lease, resultsOmitted }] };
      expect(refusedBothWays("reply", reply).code).toBe("BAD_MESSAGE");
    }
  });

  it("shows a completed task's result in a getTask reply", () => {
    const task: TaskView = {
      id: "a",
      prerequisites: [],
      maxAttempts: 5,
      hardDeadline: false,
      onPrerequisiteFailure: "cancel",
      state: "COMPLETED",
      deadline: 1,
      attempts: 1,
      token: 1,
      finishedAt: 2,
      result: { rows: [1, 2] },
      unmetPrerequisites: 0,
    };
    const reply = { ok: true, op: "getTask", task } as const;
    expect(decodeReply(encodeReply(reply), "getTask")).toEqual(reply);
  });

  it("keeps the limits consistent: results checked whenever a message could hold one too large, one at the limit always fits a lease", () => {
    // The codec measures results only in a message larger than MAX_PAYLOAD_BYTES.
    expect(MAX_RESULT_BYTES).toBeGreaterThanOrEqual(MAX_PAYLOAD_BYTES);
    expect(MAX_ID_LENGTH).toBe(CORE_MAX_ID_LENGTH);
    const wide = "\u0800"; // three bytes in UTF-8: the most per UTF-16 code unit
    const longId = (n: number) => `${n}`.padEnd(MAX_ID_LENGTH, wide);
    expect(resultEntryBytes(longId(0), MAX_RESULT_BYTES)).toBeLessThanOrEqual(LEASE_RESULTS_BYTES);
    // resultEntryBytes bounds an entry's encoded size, the longest id included.
    const entry = { taskId: longId(0), result: stringOfBytes(MAX_RESULT_BYTES) };
    expect(encodedByteLength(entry)).toBeLessThanOrEqual(resultEntryBytes(entry.taskId, MAX_RESULT_BYTES));
  });

  it("lets one task at every limit, with LEASE_RESULTS_BYTES of results, travel alone in a lease reply", () => {
    const wide = "\u0800";
    const id = (n: number) => `${n}`.padEnd(MAX_ID_LENGTH, wide);
    const prerequisites = Array.from({ length: MAX_PREREQUISITES }, (_, i) => id(i + 1));
    let payload = wide.repeat(21_000);
    while (encodedByteLength(payload) <= MAX_PAYLOAD_BYTES - 3) payload += wide;
    payload = payload.slice(0, -1);
    expect(encodedByteLength(payload)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    // Results as a shard picks them: entries counted by resultEntryBytes, up to the budget.
    const results: { taskId: string; result: unknown }[] = [];
    let budget = LEASE_RESULTS_BYTES;
    for (let i = 0; i < prerequisites.length; i++) {
      const size = Math.min(MAX_RESULT_BYTES, budget - resultEntryBytes(prerequisites[i]!, 0));
      if (size < 6) break;
      const result = stringOfBytes(size);
      budget -= resultEntryBytes(prerequisites[i]!, size);
      results.push({ taskId: prerequisites[i]!, result });
    }
    expect(budget).toBeLessThan(resultEntryBytes(prerequisites[0]!, 6));
    const task = { id: id(0), deadline: 1, prerequisites, workflowId: id(0), payload, timeoutMs: 2 ** 31 };
    const worst = {
      taskId: task.id,
      owner: id(0),
      token: Number.MAX_SAFE_INTEGER,
      expiresAt: Number.MAX_SAFE_INTEGER,
      attempt: 2 ** 31 - 1,
      secret: SECRET,
      task,
      results,
      resultsOmitted: MAX_PREREQUISITES,
    };
    const bytes = encodeReply({ ok: true, op: "lease", leases: [worst] });
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });
});
