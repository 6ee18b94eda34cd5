/**
 * Bad input at the boundary, sent as a hostile or buggy client would: raw
 * bytes on the coordinator's (and a shard's) subjects, bypassing the SDK's
 * own checks. Each gets an error reply with a stable code that names what is
 * wrong, and the cluster keeps serving everyone else.
 */

import type { FrontierClient } from "@frontier/client";
import {
  MAX_ID_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PREREQUISITES,
  MAX_REASON_LENGTH,
  MAX_TASKS_PER_BATCH,
  MAX_WAIT_MS,
  PROTOCOL_VERSION,
  subjectsFor,
} from "@frontier/protocol";
import { connect as natsConnect } from "@nats-io/transport-node";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./harness.js";

/** Raw msgpack, as the wire packs it (plain maps, no records), for bytes the codec would refuse to build. */
const packr = new Packr({ useRecords: false });
const pack = (value: unknown): Uint8Array => packr.pack(value);
const unpack = (bytes: Uint8Array): unknown => packr.unpack(bytes);

let cluster: TestCluster;
let client: FrontierClient;
let nc: Awaited<ReturnType<typeof natsConnect>>;

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "edge" });
  client = await cluster.client();
  nc = await natsConnect({ servers: cluster.url });
});

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

interface WireReply {
  v: number;
  kind: string;
  ok: boolean;
  error?: {
    code: string;
    message: string;
    retryable: boolean;
    problems?: { taskId: string; code: string }[];
  };
}

/** Send raw bytes to a coordinator op (or any subject) and decode the reply without the codec's checks. */
async function raw(
  op: string,
  bytes: Uint8Array,
  subject = subjectsFor("edge").coord(op as never),
): Promise<WireReply> {
  const msg = await nc.request(subject, bytes, { timeout: 5_000 });
  return unpack(msg.data) as WireReply;
}

const request = (op: string, body: Record<string, unknown>) =>
  pack({ v: PROTOCOL_VERSION, kind: "request", op, ...body });
const task = (over: Record<string, unknown> = {}) => ({ id: "t", deadline: 1, ...over });

async function expectError(reply: Promise<WireReply>, code: string, mentions?: RegExp): Promise<void> {
  const r = await reply;
  expect(r.kind).toBe("reply");
  expect(r.v).toBe(PROTOCOL_VERSION);
  expect(r.ok).toBe(false);
  expect(r.error?.code).toBe(code);
  if (mentions !== undefined) expect(r.error?.message).toMatch(mentions);
}

describe("the coordinator answers bad input with a stable code", () => {
  it("garbage bytes, empty messages, and msgpack that is not an envelope: BAD_MESSAGE", async () => {
    await expectError(
      raw("submit", new Uint8Array([0xc1, 0xde, 0xad, 0xbe, 0xef])),
      "BAD_MESSAGE",
      /msgpack/,
    );
    await expectError(raw("stats", new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), "BAD_MESSAGE");
    await expectError(raw("stats", new Uint8Array(0)), "BAD_MESSAGE");
    await expectError(raw("stats", pack(42)), "BAD_MESSAGE", /envelope/);
    await expectError(raw("stats", pack({ kind: "request", op: "stats" })), "BAD_MESSAGE", /version/);
    await expectError(
      raw("stats", pack({ v: PROTOCOL_VERSION, kind: "gossip", op: "stats" })),
      "BAD_MESSAGE",
      /kind/,
    );
  });

  it("another protocol version: UNSUPPORTED_VERSION, in a reply the sender can read", async () => {
    await expectError(
      raw("stats", pack({ v: PROTOCOL_VERSION + 1, kind: "request", op: "stats" })),
      "UNSUPPORTED_VERSION",
      new RegExp(`version ${PROTOCOL_VERSION + 1}`),
    );
  });

  it("wrong types, missing and unknown fields: BAD_MESSAGE naming the field", async () => {
    const key = { idempotencyKey: "k-types" };
    await expectError(
      raw("submit", request("submit", { tasks: [task({ deadline: "soon" })], ...key })),
      "BAD_MESSAGE",
      /tasks\[0\]\.deadline/,
    );
    await expectError(
      raw("submit", request("submit", { tasks: [task({ id: 7 })], ...key })),
      "BAD_MESSAGE",
      /tasks\[0\]\.id/,
    );
    await expectError(
      raw("submit", request("submit", { tasks: "all of them", ...key })),
      "BAD_MESSAGE",
      /tasks/,
    );
    await expectError(raw("submit", request("submit", { tasks: [task()] })), "BAD_MESSAGE", /idempotencyKey/);
    await expectError(
      raw("submit", request("submit", { tasks: [task({ maxAtempts: 3 })], ...key })),
      "BAD_MESSAGE",
      /maxAtempts/,
    );
    await expectError(
      raw("lease", request("lease", { owner: "w", max: "3", leaseMs: 1000, waitMs: 0, requestId: "r" })),
      "BAD_MESSAGE",
      /max/,
    );
    await expectError(
      raw("complete", request("complete", { taskId: "t", token: "12" })),
      "BAD_MESSAGE",
      /token/,
    );
    // A lease body on the submit subject: the subject names the op.
    await expectError(
      raw("submit", request("lease", { owner: "w", max: 1, leaseMs: 1000, waitMs: 0, requestId: "r" })),
      "BAD_MESSAGE",
    );
  });

  it("over the limits: each limit's own code", async () => {
    const key = { idempotencyKey: "k-limits" };
    // Over MAX_MESSAGE_BYTES yet under NATS's max_payload, so the coordinator sees it.
    const huge = "x".repeat(MAX_MESSAGE_BYTES - 1_000);
    await expectError(
      raw(
        "submit",
        request("submit", {
          tasks: [task({ payload: huge }), task({ id: "u", payload: "y".repeat(2_000) })],
          ...key,
        }),
      ),
      "MESSAGE_TOO_LARGE",
    );
    const many = Array.from({ length: MAX_TASKS_PER_BATCH + 1 }, (_, i) => task({ id: `m${i}` }));
    await expectError(raw("submit", request("submit", { tasks: many, ...key })), "BATCH_TOO_LARGE");
    await expectError(
      raw("submit", request("submit", { tasks: [task({ id: "i".repeat(MAX_ID_LENGTH + 1) })], ...key })),
      "ID_TOO_LONG",
    );
    await expectError(
      raw(
        "submit",
        request("submit", { tasks: [task({ payload: "p".repeat(MAX_PAYLOAD_BYTES + 1) })], ...key }),
      ),
      "PAYLOAD_TOO_LARGE",
    );
    const prerequisites = Array.from({ length: MAX_PREREQUISITES + 1 }, (_, i) => `p${i}`);
    await expectError(
      raw("submit", request("submit", { tasks: [task({ prerequisites })], ...key })),
      "TOO_MANY_PREREQUISITES",
    );
    await expectError(
      raw("lease", request("lease", { owner: "w", max: 1_001, leaseMs: 1000, waitMs: 0, requestId: "r" })),
      "BATCH_TOO_LARGE",
    );
    await expectError(
      raw(
        "lease",
        request("lease", { owner: "w", max: 1, leaseMs: 1000, waitMs: MAX_WAIT_MS + 1, requestId: "r" }),
      ),
      "INVALID_ARGUMENT",
      /waitMs/,
    );
    await expectError(
      raw(
        "fail",
        request("fail", {
          taskId: "t",
          token: 1,
          secret: "AAAAAAAAAAAAAAAAAAAAAA",
          retryable: true,
          reason: "r".repeat(MAX_REASON_LENGTH + 1),
        }),
      ),
      "INVALID_ARGUMENT",
      /reason/,
    );
  });

  it("a batch the engine refuses: VALIDATION_FAILED listing every problem", async () => {
    const before = await client.stats();
    const r = await raw(
      "submit",
      request("submit", {
        idempotencyKey: "k-engine",
        tasks: [
          task({ id: "same" }),
          task({ id: "same" }),
          task({ id: "self", prerequisites: ["self"] }),
          task({ id: "att", maxAttempts: 0 }),
        ],
      }),
    );
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("VALIDATION_FAILED");
    const codes = (r.error?.problems ?? []).map((p) => `${p.taskId}:${p.code}`);
    expect(codes).toEqual(
      expect.arrayContaining(["same:DUPLICATE_ID", "self:SELF_DEPENDENCY", "att:MALFORMED"]),
    );
    // Nothing of a refused batch is added.
    expect((await client.stats()).counts).toEqual(before.counts);
  });

  it("a shard's own subject refuses garbage the same way", async () => {
    const shardSubject = subjectsFor("edge").shard("shard-0", "submit");
    await expectError(raw("submit", new Uint8Array([0xff, 0x00, 0x13]), shardSubject), "BAD_MESSAGE");
    await expectError(
      raw("submit", pack({ v: 99, kind: "request", op: "submit" }), shardSubject),
      "UNSUPPORTED_VERSION",
    );
  });

  it("keeps serving everyone else, during and after a flood of bad input", async () => {
    const junk = Array.from({ length: 200 }, (_, i) =>
      raw(i % 2 === 0 ? "submit" : "lease", new Uint8Array([0xc1, i & 0xff, 0x00])),
    );
    const good = client.submit([{ id: "still-here", deadline: 1 }]);
    const replies = await Promise.all(junk);
    expect(replies.every((r) => r.ok === false && r.error?.code === "BAD_MESSAGE")).toBe(true);
    expect((await good).accepted).toBe(1);
    const [lease] = await client.lease({ max: 1, waitMs: 2_000 });
    expect(lease?.taskId).toBe("still-here");
    expect(await client.complete(lease!)).toEqual({ duplicate: false });
    expect((await client.stats()).counts.COMPLETED).toBe(1);
  });
});
