/**
 * The shapes of the operators' ops (listTasks, getWorkflow, retry): what the
 * codec refuses, with which code and which field named. Round trips of the
 * good shapes are in codec.test.ts with every other op.
 */
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  MAX_ID_LENGTH,
  MAX_LIST_LIMIT,
  PROTOCOL_VERSION,
  type Reply,
  type Request,
} from "./index.js";

const packr = new Packr({ useRecords: false });
const rawRequest = (body: Record<string, unknown>) =>
  packr.pack({ v: PROTOCOL_VERSION, kind: "request", ...body });
const rawReply = (body: Record<string, unknown>) =>
  packr.pack({ v: PROTOCOL_VERSION, kind: "reply", ...body });

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error("expected a refusal");
}

const cursor = { deadline: 5, id: "t1", shardId: "s0" };

describe("listTasks, getWorkflow and retry requests", () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ["limit missing", { op: "listTasks" }, "BAD_MESSAGE", /limit: expected an integer ≥ 1, missing/],
    ["limit 0", { op: "listTasks", limit: 0 }, "BAD_MESSAGE", /limit: expected an integer ≥ 1/],
    [
      "limit over MAX_LIST_LIMIT",
      { op: "listTasks", limit: MAX_LIST_LIMIT + 1 },
      "INVALID_ARGUMENT",
      /limit: 1001 exceeds MAX_LIST_LIMIT \(1000\)/,
    ],
    [
      "unknown state",
      { op: "listTasks", limit: 1, states: ["DONE"] },
      "BAD_MESSAGE",
      /states\[0\]: expected one of/,
    ],
    [
      "no state",
      { op: "listTasks", limit: 1, states: [] },
      "INVALID_ARGUMENT",
      /states: name at least one state/,
    ],
    [
      "a state twice",
      { op: "listTasks", limit: 1, states: ["FAILED", "FAILED"] },
      "INVALID_ARGUMENT",
      /states: a state appears twice/,
    ],
    [
      "a deadline bound not finite",
      { op: "listTasks", limit: 1, deadlineTo: Number.POSITIVE_INFINITY },
      "INVALID_ARGUMENT",
      /deadlineTo: Infinity is not a deadline/,
    ],
    [
      "a cursor as a string",
      { op: "listTasks", limit: 1, after: "5:t1:s0" },
      "BAD_MESSAGE",
      /after: expected a map, got string/,
    ],
    [
      "a cursor without its shard",
      { op: "listTasks", limit: 1, after: { deadline: 5, id: "t1" } },
      "BAD_MESSAGE",
      /after\.shardId: expected a string, missing/,
    ],
    [
      "a cursor with a shard id not a subject token",
      { op: "listTasks", limit: 1, after: { ...cursor, shardId: "a.b" } },
      "BAD_MESSAGE",
      /after\.shardId: expected a subject-safe token/,
    ],
    [
      "a cursor with an extra field",
      { op: "getWorkflow", workflowId: "w", limit: 1, after: { ...cursor, page: 2 } },
      "BAD_MESSAGE",
      /after: unknown field "page"/,
    ],
    [
      "getWorkflow without its workflow",
      { op: "getWorkflow", limit: 1 },
      "BAD_MESSAGE",
      /workflowId: expected a string/,
    ],
    [
      "getWorkflow with an empty workflow",
      { op: "getWorkflow", workflowId: "", limit: 1 },
      "BAD_MESSAGE",
      /workflowId: expected a non-empty string/,
    ],
    [
      "getWorkflow's workflow too long",
      { op: "getWorkflow", workflowId: "w".repeat(MAX_ID_LENGTH + 1), limit: 1 },
      "ID_TOO_LONG",
      /workflowId: 257 characters exceed MAX_ID_LENGTH/,
    ],
    ["retry without a task", { op: "retry" }, "BAD_MESSAGE", /taskId: expected a string, missing/],
    [
      "retry with a deadline in seconds",
      { op: "retry", taskId: "t", deadline: 1_700_000_000 },
      "INVALID_ARGUMENT",
      /deadline: task "t": deadline 1700000000 looks like seconds/,
    ],
    [
      "retry with an extra field",
      { op: "retry", taskId: "t", force: true },
      "BAD_MESSAGE",
      /unknown field "force"/,
    ],
  ])("refuses %s", (_name, body, code, message) => {
    const got = refusal(() => decodeRequest(rawRequest(body)));
    expect(got.code).toBe(code);
    expect(got.message).toMatch(message);
    // The encoder holds senders to the same shape.
    expect(refusal(() => encodeRequest(body as unknown as Request)).code).toBe(code);
  });
});

describe("listTasks and getWorkflow replies", () => {
  const summary = { id: "t", state: "FAILED", deadline: 1, attempts: 1, maxAttempts: 1 };

  it.each<[string, Record<string, unknown>, RegExp]>([
    ["next missing", { ok: true, op: "listTasks", tasks: [] }, /next: expected a map, missing/],
    [
      "a summary with a payload",
      { ok: true, op: "listTasks", tasks: [{ ...summary, payload: 1 }], next: null },
      /tasks\[0\]: unknown field "payload"/,
    ],
    [
      "a summary in no known state",
      { ok: true, op: "getWorkflow", tasks: [{ ...summary, state: "ZOMBIE" }], next: null },
      /tasks\[0\]\.state: expected one of/,
    ],
    [
      "more summaries than MAX_LIST_LIMIT",
      { ok: true, op: "listTasks", tasks: new Array(MAX_LIST_LIMIT + 1).fill(summary), next: null },
      /tasks: 1001 items exceed MAX_LIST_LIMIT/,
    ],
    [
      "getWorkflow with shards",
      { ok: true, op: "getWorkflow", tasks: [], next: null, shards: { answered: [], missing: [] } },
      /unknown field "shards"/,
    ],
    ["retry in no known state", { ok: true, op: "retry", state: "DONE" }, /state: expected one of/],
  ])("refuses %s", (_name, body, message) => {
    const op = body["op"] as "listTasks";
    const got = refusal(() => decodeReply(rawReply(body), op));
    expect(got.code).toBe("BAD_MESSAGE");
    expect(got.message).toMatch(message);
    expect(refusal(() => encodeReply(body as unknown as Reply)).code).toBe("BAD_MESSAGE");
  });

  it("keeps a summary's prerequisites, and a null next", () => {
    const reply: Reply = {
      ok: true,
      op: "getWorkflow",
      tasks: [{ ...summary, state: "WAITING", prerequisites: ["a", "b"] }],
      next: null,
    } as Reply;
    expect(decodeReply(encodeReply(reply), "getWorkflow")).toEqual(reply);
  });
});
