import {
  MAX_ID_LENGTH as CORE_MAX_ID_LENGTH,
  FrontierError,
  InvalidArgumentError,
  type Lease,
  MAX_LEASE_BATCH,
  type SchedulerStats,
  type TaskInput,
  type TaskView,
} from "@frontier/core";
import fc from "fast-check";
import { Packr, Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decode,
  decodeFrontier,
  decodeReply,
  decodeRequest,
  encode,
  encodedByteLength,
  encodeFrontier,
  encodeReply,
  encodeRequest,
  errorReply,
  type FrontierAnnouncement,
  fromWireError,
  MAX_ATTEMPT,
  MAX_DEADLINE,
  MAX_FRONTIER_DEPTH,
  MAX_ID_LENGTH,
  MAX_LEASE_MS,
  MAX_LEASES_PER_REQUEST,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PAYLOAD_DEPTH,
  MAX_PREREQUISITES,
  MAX_REASON_LENGTH,
  MAX_SETTLES_PER_REQUEST,
  MAX_SHARDS,
  MAX_TASKS_PER_BATCH,
  MAX_TIMEOUT_MS,
  MAX_TOKEN_LENGTH,
  MAX_WAIT_MS,
  NATS_DEFAULT_MAX_PAYLOAD,
  OPS,
  PREPARE_TTL_MS,
  PROTOCOL_VERSION,
  ProtocolError,
  type Reply,
  type Request,
  SECONDS_LIKE_DEADLINES,
  SHARD_UNAVAILABLE_DETAILS,
  SLOT_COUNT,
  toWireError,
  unwrapReply,
  WIRE_ERRORS,
  type WireError,
  type WireErrorCode,
} from "./index.js";

// ------------------------------------------------------------------ helpers

/** Packs anything, unchecked: how a buggy or hostile peer would build bytes. */
const rawPackr = new Packr({ useRecords: false });
const raw = (value: unknown): Uint8Array => rawPackr.pack(value);
const envelope = (kind: string, body: object): Uint8Array => raw({ v: PROTOCOL_VERSION, kind, ...body });
/** A version this peer does not speak (the next one: what a newer peer would send). */
const NEXT_VERSION = PROTOCOL_VERSION + 1;

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a throw");
}

/** Asserts `fn` throws a ProtocolError / FrontierError with `code`, and a message matching `message`. */
function expectCode(fn: () => unknown, code: WireErrorCode, message?: string | RegExp): Error {
  const err = thrown(fn);
  if (!(err instanceof ProtocolError) && !(err instanceof FrontierError)) throw err;
  expect(err.code, err.message).toBe(code);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

/** The same bad request must be refused alike by the sender's encode and the receiver's decode. */
function expectRefusedBothWays(request: unknown, code: WireErrorCode, message?: string | RegExp): void {
  const onEncode = expectCode(() => encodeRequest(request as Request), code, message);
  const onDecode = expectCode(() => decode(envelope("request", request as object)), code, message);
  expect(onDecode.message).toBe(onEncode.message);
  expect(onDecode.constructor).toBe(onEncode.constructor);
}

function expectReplyRefusedBothWays(reply: unknown, code: WireErrorCode, message?: string | RegExp): void {
  const onEncode = expectCode(() => encodeReply(reply as Reply), code, message);
  const onDecode = expectCode(() => decode(envelope("reply", reply as object)), code, message);
  expect(onDecode.message).toBe(onEncode.message);
}

// ----------------------------------------------------------------- fixtures

const fullTask: TaskInput = {
  id: "t1",
  deadline: 1_700_000_000_123,
  prerequisites: ["t0", "t-1"],
  workflowId: "wf-9",
  payload: { url: "s3://bucket/key", sizes: [1, 2.5, -3], nested: { ok: true, none: null }, at: new Date(5) },
  maxAttempts: 3,
  hardDeadline: true,
  onPrerequisiteFailure: "continue",
};

/** A lease secret as a shard makes them: 22 base64url characters. */
const SECRET = "AAAAAAAAAAAAAAAAAAAAAA";

const requests: Request[] = [
  { op: "submit", tasks: [fullTask, { id: "t2", deadline: 5 }], idempotencyKey: "batch-1" },
  { op: "lease", owner: "worker-1", max: 10, leaseMs: 30_000, waitMs: 5_000, requestId: "r-1" },
  { op: "heartbeat", taskId: "t1", workflowId: "wf-9", token: 12, secret: SECRET, leaseMs: 10_000 },
  { op: "complete", taskId: "t1", token: 12, secret: SECRET },
  { op: "release", taskId: "t1", token: 12, secret: SECRET },
  { op: "release", taskId: "t1", workflowId: "wf-9", token: Number.MAX_SAFE_INTEGER, secret: SECRET },
  {
    op: "fail",
    taskId: "t1",
    workflowId: "wf-9",
    token: 12,
    secret: SECRET,
    retryable: true,
    reason: "exit code 3",
  },
  // Client → coordinator: completes only, with and without a workflow id.
  {
    op: "settle",
    completes: [
      { taskId: "t1", workflowId: "wf-9", token: 12, secret: SECRET },
      { taskId: "t2", token: 0, secret: SECRET },
    ],
  },
  // Client → shard: completes and the next leases, in one commit.
  {
    op: "settle",
    completes: [{ taskId: "t1", token: Number.MAX_SAFE_INTEGER, secret: SECRET }],
    lease: { owner: "worker-1", max: 10, leaseMs: 30_000, requestId: "r-4" },
  },
  // A resend of the above; and a settle that only asks for leases (nothing finished yet).
  {
    op: "settle",
    completes: [{ taskId: "t1", workflowId: "wf-9", token: 12, secret: SECRET }],
    lease: { owner: "worker-1", max: 1, leaseMs: 1, requestId: "r-4", attempt: 2 },
  },
  { op: "settle", completes: [], lease: { owner: "worker-1", max: 5, leaseMs: 30_000, requestId: "r-5" } },
  { op: "settle", completes: [] },
  { op: "cancel", taskId: "t1", reason: "user asked" },
  { op: "cancel", taskId: "t1" },
  { op: "updateDeadline", taskId: "t1", deadline: 1_800_000_000_000 },
  { op: "getTask", taskId: "t1", workflowId: "wf-9" },
  { op: "stats" },
  { op: "listTasks", limit: 1 },
  {
    op: "listTasks",
    states: ["FAILED", "EXPIRED"],
    workflowId: "wf-9",
    deadlineFrom: 0,
    deadlineTo: 1_800_000_000_000,
    after: { deadline: 1_700_000_000_000, id: "t1", shardId: "shard-2" },
    limit: 1_000,
  },
  { op: "getWorkflow", workflowId: "wf-9", limit: 100 },
  { op: "getWorkflow", workflowId: "wf-9", after: { deadline: 5, id: "t1", shardId: "s0" }, limit: 2 },
  { op: "retry", taskId: "t1", workflowId: "wf-9" },
  { op: "retry", taskId: "t1", deadline: 1_800_000_000_000 },
  { op: "prepare", tasks: [fullTask, { id: "t2", deadline: 5 }], idempotencyKey: "batch-1" },
  { op: "prepare", tasks: [{ id: "t3", deadline: 7 }], idempotencyKey: "one" },
  // A part that keeps only the claims of ids homed on its shard (one id space per cluster).
  {
    op: "prepare",
    tasks: [],
    idempotencyKey: "claims",
    claims: [{ taskId: "t9", workflowId: "wf-9" }, { taskId: "t8" }],
  },
  {
    op: "prepare",
    tasks: [{ id: "t3", deadline: 7, workflowId: "w" }],
    idempotencyKey: "both",
    claims: [{ taskId: "t3", workflowId: "w" }],
  },
  { op: "submit", tasks: [{ id: "t3", deadline: 7 }], idempotencyKey: "k", claims: [{ taskId: "t3" }] },
  { op: "submit", tasks: [{ id: "t3", deadline: 7, workflowId: "w" }], idempotencyKey: "k", claims: [] },
  { op: "commit", idempotencyKey: "batch-1" },
  { op: "commit", idempotencyKey: "batch-1", claimsOnly: true },
  { op: "abort", idempotencyKey: "batch-1" },
  { op: "check", tasks: [fullTask, { id: "t2", deadline: 5 }] },
  // A large workflow's part: its tasks, and the links of edges from its prerequisites to other slots.
  {
    op: "prepare",
    tasks: [{ id: "a", deadline: 5, workflowId: "big", large: true }],
    idempotencyKey: "batch-2",
    links: [{ prerequisite: "a", dependent: "b", workflowId: "big" }],
  },
  // A part that only registers links: its prerequisites were submitted before.
  {
    op: "submit",
    tasks: [],
    idempotencyKey: "batch-3",
    links: [{ prerequisite: "a", dependent: "c", workflowId: "big" }],
  },
  {
    op: "check",
    tasks: [{ id: "b", deadline: 5, workflowId: "big", large: true, prerequisites: ["a"] }],
    links: [],
  },
  { op: "complete", taskId: "b", workflowId: "big", large: true, token: 3, secret: "qL0c3hJ2yXo8cW1uV9sTbA" },
  {
    op: "deliverEvents",
    source: "shard-0",
    events: [
      { prerequisite: "a", dependent: "b", workflowId: "big", outcome: "COMPLETED" },
      { prerequisite: "a", dependent: "c", workflowId: "big", outcome: "FAILED" },
    ],
  },
  { op: "deliverEvents", source: "shard-1", events: [] },
  { op: "check", tasks: [], claims: [{ taskId: "t9", workflowId: "wf-9" }] },
  { op: "locate", taskId: "t1" },
  { op: "holds", taskId: "t1", workflowId: "wf-9" },
  { op: "holds", taskId: "t1" },
  { op: "moveSlot", slot: 1023, target: "shard-2", moveId: "m-1" },
  {
    op: "adopt",
    moveId: "m-1",
    slot: 7,
    source: "shard-0",
    part: 1,
    parts: 2,
    tasks: [
      {
        spec: {
          id: "t1",
          prerequisites: [],
          workflowId: "w",
          payload: { a: [1, "x"] },
          maxAttempts: 3,
          hardDeadline: false,
          onPrerequisiteFailure: "cancel",
        },
        status: {
          state: "LEASED",
          deadline: 10,
          attempts: 1,
          token: 12,
          leaseOwner: "worker-1",
          leaseExpiresAt: 1_700_000_030_000,
        },
      },
      {
        spec: {
          id: "t0",
          prerequisites: [],
          maxAttempts: 5,
          hardDeadline: true,
          onPrerequisiteFailure: "continue",
        },
        status: { state: "COMPLETED", deadline: 5, attempts: 1, token: 3, finishedAt: 9, result: { ok: 1 } },
      },
      {
        spec: {
          id: "t2",
          prerequisites: ["t0"],
          workflowId: "w",
          type: "render",
          maxAttempts: 2,
          hardDeadline: false,
          onPrerequisiteFailure: "cancel",
          notBefore: 3,
          timeoutMs: 1_000,
        },
        status: { state: "WAITING", deadline: 7, attempts: 1, token: 4, retryAt: 12, reason: "boom" },
      },
    ],
    entries: [
      { key: "k", taskIds: ["t0", "t1"], createdAt: 100 },
      { key: "lease:1:w:r", taskIds: ["t1"], createdAt: 101, tokens: [12], fence: 2 },
    ],
    leases: [{ taskId: "t1", token: 12, secret: "qL0c3hJ2yXo8cW1uV9sTbA" }],
  },
  {
    op: "adopt",
    moveId: "m-2",
    slot: 0,
    source: "shard-0",
    part: 0,
    parts: 1,
    tasks: [],
    entries: [],
    leases: [],
  },
  {
    op: "adopt",
    moveId: "m-3",
    slot: 0,
    source: "shard-0",
    part: 1,
    parts: 2,
    tasks: [],
    entries: [],
    leases: [],
    claims: [{ taskId: "t1", workflowId: "w" }, { taskId: "t2" }],
    exportedAt: 1_796_613_346_005,
  },
  // Coordinator → shard: only tasks whose ordering key is at most maxKey.
  {
    op: "lease",
    owner: "worker-1",
    max: 10,
    leaseMs: 30_000,
    waitMs: 0,
    requestId: "r-2",
    maxKey: 1_700_000_000_000,
  },
  // Client → coordinator: a resend that may have been granted already.
  { op: "lease", owner: "worker-1", max: 2, leaseMs: 30_000, waitMs: 0, requestId: "r-3", attempt: 2 },
  // Coordinator → shard: only a grant kept for the request id, never a new one; fences attempt 1.
  {
    op: "lease",
    owner: "worker-1",
    max: 2,
    leaseMs: 30_000,
    waitMs: 0,
    requestId: "r-3:s1",
    attempt: 2,
    replayOnly: true,
  },
  // Coordinator → shard, with the worker's reply subject: the shard answers the worker itself.
  {
    op: "lease",
    owner: "worker-1",
    max: 8,
    leaseMs: 30_000,
    waitMs: 5_000,
    requestId: "r-4",
    ask: 2,
    forwarded: true,
  },
];

const lease: Lease = {
  taskId: "t1",
  owner: "worker-1",
  token: 12,
  expiresAt: 1_700_000_030_000,
  attempt: 2,
  task: {
    id: "t1",
    deadline: 1_700_000_000_123,
    prerequisites: ["t0"],
    workflowId: "wf-9",
    payload: { x: 1 },
  },
};

const view: TaskView = {
  id: "t1",
  prerequisites: ["t0"],
  workflowId: "wf-9",
  payload: "p",
  maxAttempts: 3,
  hardDeadline: false,
  onPrerequisiteFailure: "cancel",
  state: "LEASED",
  deadline: 1_700_000_000_123,
  attempts: 1,
  token: 12,
  leaseOwner: "worker-1",
  leaseExpiresAt: 1_700_000_030_000,
  runnableSince: 1_699_999_999_000,
  unmetPrerequisites: 0,
};

const stats: SchedulerStats = {
  counts: { WAITING: 1, RUNNABLE: 2, LEASED: 3, COMPLETED: 4, FAILED: 5, CANCELLED: 6, EXPIRED: 7 },
  runnable: 2,
  oldestRunnableAgeMs: 12.5,
  frontierDeadline: 1_700_000_000_123,
  leaseTimeouts: 1,
  attemptTimeouts: 2,
  deadlineMisses: 2,
  staleRejections: 3,
  retries: 4,
  leased: 3,
};

const staleLease: Reply = {
  ok: false,
  error: { code: "STALE_LEASE", message: "token 11 is stale", retryable: false, taskId: "t1" },
};
const validationFailed: Reply = {
  ok: false,
  error: {
    code: "VALIDATION_FAILED",
    message: "batch rejected",
    retryable: false,
    problems: [{ taskId: "t1", code: "CYCLE", message: "t1 -> t2 -> t1" }],
  },
};

const replies: Reply[] = [
  { ok: true, op: "submit", accepted: 2, replayed: false },
  { ok: true, op: "lease", leases: [lease, { ...lease, taskId: "t2", task: { ...lease.task, id: "t2" } }] },
  { ok: true, op: "lease", leases: [] },
  // Coordinator → client: the shard that granted each lease.
  {
    ok: true,
    op: "lease",
    leases: [lease, { ...lease, taskId: "t2", task: { ...lease.task, id: "t2" } }],
    shards: ["s1", "shard_B-2"],
  },
  { ok: true, op: "lease", leases: [lease], shards: ["s".repeat(64)] },
  { ok: true, op: "lease", leases: [], shards: [] },
  // To a replay-only lookup: grants of the request left with their slot (look again elsewhere).
  { ok: true, op: "lease", leases: [], grantsMoved: true },
  // Shard → coordinator: the shard's frontier after the grant.
  {
    ok: true,
    op: "lease",
    leases: [lease],
    frontier: {
      shardId: "s1",
      deadline: 9,
      key: 9,
      taskId: "t9",
      runnable: 4,
      seq: 17,
      at: 1_700_000_000_000,
    },
  },
  {
    ok: true,
    op: "lease",
    leases: [],
    frontier: { shardId: "s1", deadline: null, key: null, taskId: null, runnable: 0, seq: 18, at: 1 },
  },
  { ok: true, op: "heartbeat", expiresAt: 1_700_000_040_000 },
  { ok: true, op: "complete", duplicate: true },
  { ok: true, op: "fail", state: "WAITING" },
  { ok: true, op: "release", duplicate: false },
  { ok: true, op: "release", duplicate: true },
  // One outcome per complete, in order: done now, done already, refused.
  {
    ok: true,
    op: "settle",
    results: [
      { duplicate: false },
      { duplicate: true },
      { error: { code: "STALE_LEASE", message: "token 11 is stale", retryable: false, taskId: "t3" } },
    ],
    leases: [],
  },
  // Shard → client: the next leases too, and the shard's frontier after the settle.
  {
    ok: true,
    op: "settle",
    results: [
      {
        error: {
          code: "INVALID_STATE",
          message: "t1 is CANCELLED",
          retryable: false,
          taskId: "t1",
          state: "CANCELLED",
        },
      },
      { error: { code: "SLOT_NOT_OWNED", message: "slot 12 moved", retryable: true } },
      { duplicate: false },
    ],
    leases: [lease, { ...lease, taskId: "t2", task: { ...lease.task, id: "t2" } }],
    frontier: { shardId: "s1", deadline: 9, key: 9, taskId: "t9", runnable: 4, seq: 19, at: 1 },
  },
  { ok: true, op: "settle", results: [], leases: [] },
  // To a resend: what an earlier send was granted left with its slot (ask a coordinator for it).
  { ok: true, op: "settle", results: [{ duplicate: true }], leases: [], grantsMoved: true },
  { ok: true, op: "cancel" },
  { ok: true, op: "updateDeadline" },
  { ok: true, op: "getTask", task: view },
  // Released by its holder: runnable again under the spent token, the attempt not counted.
  {
    ok: true,
    op: "getTask",
    task: { ...view, state: "RUNNABLE", attempts: 0, leaseExpiresAt: undefined, released: true },
  },
  { ok: true, op: "getTask", task: null },
  { ok: true, op: "stats", stats },
  { ok: true, op: "stats", stats: { ...stats, frontierDeadline: null } },
  // Coordinator → client: which shards the sum covers.
  {
    ok: true,
    op: "stats",
    stats,
    shards: { answered: ["s0", "s2"], missing: [{ shardId: "s1", code: "TIMEOUT" }] },
  },
  { ok: true, op: "stats", stats, shards: { answered: ["s0"], missing: [] } },
  { ok: true, op: "stats", stats, shards: { answered: [], missing: [] } },
  // Coordinator → client: each answering shard's own stats.
  {
    ok: true,
    op: "stats",
    stats,
    shards: { answered: ["s0", "s2"], missing: [{ shardId: "s1", code: "TIMEOUT" }] },
    byShard: [
      { shardId: "s0", slots: 512, stats },
      { shardId: "s2", slots: 0, stats: { ...stats, frontierDeadline: null } },
    ],
  },
  { ok: true, op: "listTasks", tasks: [], next: null },
  {
    ok: true,
    op: "listTasks",
    tasks: [
      {
        id: "t1",
        workflowId: "wf-9",
        state: "FAILED",
        deadline: 5,
        attempts: 3,
        maxAttempts: 3,
        reason: "failed after 3 attempt(s): boom",
        finishedAt: 9,
      },
      { id: "t2", state: "RUNNABLE", deadline: 6, attempts: 0, maxAttempts: 5 },
    ],
    next: { deadline: 6, id: "t2", shardId: "s0" },
    shards: {
      answered: ["s0"],
      missing: [{ shardId: "s1", code: "SHARD_UNAVAILABLE", detail: "RESTARTING" }],
    },
  },
  {
    ok: true,
    op: "getWorkflow",
    tasks: [
      {
        id: "t2",
        workflowId: "w",
        state: "WAITING",
        deadline: 6,
        attempts: 0,
        maxAttempts: 5,
        prerequisites: ["t1"],
      },
    ],
    next: null,
  },
  { ok: true, op: "retry", state: "RUNNABLE" },
  { ok: true, op: "prepare", accepted: 2 },
  { ok: true, op: "prepare", accepted: 0 },
  { ok: true, op: "commit", accepted: 2, replayed: false },
  { ok: true, op: "commit", accepted: 2, replayed: true },
  { ok: true, op: "abort" },
  { ok: true, op: "check", problems: [] },
  {
    ok: true,
    op: "check",
    problems: [
      { taskId: "t1", code: "DUPLICATE_ID", message: 'id "t1" is already taken' },
      { taskId: "t2", code: "UNKNOWN_PREREQUISITE", message: 'prerequisite "p" is not a known task' },
    ],
  },
  { ok: true, op: "moveSlot", tasks: 42 },
  { ok: true, op: "adopt", adopted: false },
  { ok: true, op: "adopt", adopted: true },
  { ok: true, op: "deliverEvents", results: ["applied", "duplicate", "unknown"] },
  { ok: true, op: "locate", claim: null },
  { ok: true, op: "locate", claim: { taskId: "t1", workflowId: "wf-9" } },
  { ok: true, op: "locate", claim: { taskId: "t1" } },
  { ok: true, op: "holds", held: true },
  { ok: true, op: "holds", held: false },
  staleLease,
  validationFailed,
];

const frontier: FrontierAnnouncement = {
  shardId: "shard-3",
  deadline: 1_700_000_000_123,
  // Earlier than the deadline: the shard's starvation guard moved the task up.
  key: 1_699_999_990_000,
  taskId: "t1",
  runnable: 42,
  seq: 7,
  at: 1_700_000_000_500,
};

// -------------------------------------------------------------- round trips

describe("round trips", () => {
  it("covers every op, as request and as ok reply", () => {
    expect(new Set(requests.map((r) => r.op))).toEqual(new Set(OPS));
    expect(new Set(replies.filter((r) => r.ok).map((r) => (r.ok ? r.op : "")))).toEqual(new Set(OPS));
  });

  it.each(requests.map((r) => [r.op, r] as const))("request %s", (op, request) => {
    const back = decodeRequest(encodeRequest(request), op);
    expect(back).toEqual(request);
    expect(back).not.toBe(request);
    expect(decode(encodeRequest(request))).toEqual({ kind: "request", request });
  });

  it.each(replies.map((r) => [r.ok ? r.op : `error ${r.error.code}`, r] as const))(
    "reply %s",
    (_name, reply) => {
      const op = reply.ok ? reply.op : "submit";
      expect(decodeReply(encodeReply(reply), op)).toEqual(reply);
    },
  );

  it("frontier announcement, with and without a runnable task", () => {
    expect(decodeFrontier(encodeFrontier(frontier))).toEqual(frontier);
    const deep = { ...frontier, depth: [frontier.key!, frontier.key!, frontier.key! + 9] };
    expect(decodeFrontier(encodeFrontier(deep))).toEqual(deep);
    const idle = { ...frontier, deadline: null, key: null, taskId: null, runnable: 0 };
    expect(decodeFrontier(encodeFrontier(idle))).toEqual(idle);
    expect(decode(encodeFrontier(idle))).toEqual({ kind: "frontier", frontier: idle });
  });

  it("encode takes the same tagged messages decode returns", () => {
    for (const request of requests)
      expect(decode(encode({ kind: "request", request }))).toEqual({ kind: "request", request });
    for (const reply of replies)
      expect(decode(encode({ kind: "reply", reply }))).toEqual({ kind: "reply", reply });
  });

  it("carries binary payloads (as Buffer, Node's Uint8Array)", () => {
    const payload = new Uint8Array([0, 1, 2, 255]);
    const back = decodeRequest(
      encodeRequest({ op: "submit", tasks: [{ id: "t", deadline: 1, payload }], idempotencyKey: "k" }),
    );
    const got = back.op === "submit" ? back.tasks[0]!.payload : null;
    expect(got).toBeInstanceOf(Uint8Array);
    expect(Uint8Array.from(got as Uint8Array)).toEqual(payload);
  });

  it("drops optional fields set to undefined, and keeps a null payload", () => {
    const task = {
      id: "t",
      deadline: 1,
      workflowId: undefined,
      prerequisites: undefined,
      payload: undefined,
    };
    const back = decodeRequest(encodeRequest({ op: "submit", tasks: [task], idempotencyKey: "k" }));
    expect(back.op === "submit" && Object.keys(back.tasks[0]!)).toEqual(["id", "deadline"]);
    const withNull = decodeRequest(
      encodeRequest({ op: "submit", tasks: [{ id: "t", deadline: 1, payload: null }], idempotencyKey: "k" }),
    );
    expect(withNull.op === "submit" && withNull.tasks[0]).toEqual({ id: "t", deadline: 1, payload: null });
  });

  it("carries numbers exactly: epoch-ms deadlines, safe-integer tokens, floats, infinities", () => {
    const big = Number.MAX_SAFE_INTEGER;
    const back = decodeRequest(encodeRequest({ op: "complete", taskId: "t", token: big, secret: SECRET }));
    expect(back).toEqual({ op: "complete", taskId: "t", token: big, secret: SECRET });
    for (const deadline of [
      0,
      -1,
      0.1,
      1_700_000_000_123,
      MAX_DEADLINE,
      -MAX_DEADLINE,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]) {
      const r = decodeRequest(encodeRequest({ op: "updateDeadline", taskId: "t", deadline }));
      expect(r.op === "updateDeadline" && r.deadline).toBe(deadline);
    }
  });

  it("keeps a ValidationError usable by the client after the trip", () => {
    const reply = decodeReply(encodeReply(validationFailed), "submit");
    expect(() => unwrapReply(reply)).toThrow(/batch rejected/);
  });

  it("carries why a shard is unavailable as a typed detail, to the client's ProtocolError", () => {
    const error = new ProtocolError("SHARD_UNAVAILABLE", "shard s1 is unavailable: disk full", {
      detail: "STORAGE_FULL",
    });
    const reply = decodeReply(encodeReply({ ok: false, error: toWireError(error) }), "submit");
    expect(reply).toMatchObject({ ok: false, error: { code: "SHARD_UNAVAILABLE", detail: "STORAGE_FULL" } });
    const back = fromWireError((reply as { error: WireError }).error);
    expect(back).toBeInstanceOf(ProtocolError);
    expect((back as ProtocolError).detail).toBe("STORAGE_FULL");
    // Only SHARD_UNAVAILABLE has one, and only from the list.
    expect(new ProtocolError("TIMEOUT", "x", { detail: "STORAGE_FULL" }).detail).toBeUndefined();
    const unavailable = { code: "SHARD_UNAVAILABLE", message: "m", retryable: true };
    expectReplyRefusedBothWays(
      { ok: false, error: { ...unavailable, detail: "DISK_ON_FIRE" } },
      "BAD_MESSAGE",
    );
    expectReplyRefusedBothWays(
      { ok: false, error: { code: "TIMEOUT", message: "m", retryable: true, detail: "STORAGE_FULL" } },
      "BAD_MESSAGE",
    );
    for (const detail of SHARD_UNAVAILABLE_DETAILS) {
      expect(
        decodeReply(encodeReply({ ok: false, error: { ...unavailable, detail } } as Reply), "stats"),
      ).toMatchObject({
        error: { detail },
      });
    }
  });
});

describe("the wire layout", () => {
  it("is one plain msgpack map with v and kind first, readable by any msgpack decoder", () => {
    const bytes = encodeRequest(requests[0]!);
    const firstByte = bytes[0]!;
    expect((firstByte & 0xf0) === 0x80 || firstByte === 0xde).toBe(true); // fixmap or map16
    // A default msgpackr reader (records on, maps as Map, its own state) reads the same map.
    const map = new Unpackr().unpack(bytes) as Map<string, unknown>;
    expect([...map.keys()].slice(0, 3)).toEqual(["v", "kind", "op"]);
    expect(Object.fromEntries(map)).toMatchObject({
      v: PROTOCOL_VERSION,
      kind: "request",
      op: "submit",
      idempotencyKey: "batch-1",
    });
    expect(
      Object.fromEntries(new Unpackr().unpack(encodeReply(replies[0]!)) as Map<string, unknown>),
    ).toEqual({
      v: PROTOCOL_VERSION,
      kind: "reply",
      ok: true,
      op: "submit",
      accepted: 2,
      replayed: false,
    });
  });

  it("returns bytes that later encodes do not overwrite", () => {
    const first = encodeRequest(requests[4]!);
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 5_000; i++) encodeRequest(requests[i % requests.length]!);
    expect(Uint8Array.from(first)).toEqual(copy);
    expect(decodeRequest(first)).toEqual(requests[4]);
  });

  it("measures encoded sizes for budgeting replies", () => {
    expect(encodedByteLength("abc")).toBe(4);
    expect(encodedByteLength(lease)).toBe(rawPackr.pack(lease).byteLength);
  });
});

// ------------------------------------------------------------ bad envelopes

describe("bytes that are not a message", () => {
  it.each([
    ["empty", new Uint8Array([])],
    ["the reserved byte 0xc1", new Uint8Array([0xc1])],
    ["an unknown extension", new Uint8Array([0xd4, 0x05, 0x00])],
    ["plain text", new TextEncoder().encode("hello, world")],
    ["JSON", new TextEncoder().encode(`{"v":${PROTOCOL_VERSION},"kind":"request","op":"stats"}`)],
    ["a truncated message", encodeRequest(requests[0]!).subarray(0, 20)],
    ["a message with trailing bytes", Uint8Array.from([...encodeRequest(requests[4]!), 0x01])],
    ["an array header claiming 4 billion items", new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ["a string header claiming 4 GB", new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])],
    ["100k nested arrays", Uint8Array.from({ length: 100_001 }, (_, i) => (i < 100_000 ? 0x91 : 0x01))],
  ])("refuses %s as BAD_MESSAGE", (_name, bytes) => {
    expectCode(() => decode(bytes), "BAD_MESSAGE");
  });

  it.each([
    ["a number", 5],
    ["a string", "request"],
    ["an array", [1, "request"]],
    ["null", null],
    ["a boolean", true],
    ["binary", new Uint8Array(4)],
    ["a timestamp", new Date(0)],
  ])("refuses %s as envelope", (_name, value) => {
    expectCode(() => decode(raw(value)), "BAD_MESSAGE", /not an envelope: expected a map/);
  });

  it("refuses a non-Uint8Array", () => {
    expectCode(() => decode("bytes" as unknown as Uint8Array), "BAD_MESSAGE", /expected bytes/);
  });

  it("refuses oversized bytes before even unpacking them", () => {
    const big = new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(0xc1);
    expectCode(() => decode(big), "MESSAGE_TOO_LARGE", /1032193 bytes exceeds MAX_MESSAGE_BYTES/);
  });

  it("requires the protocol version", () => {
    expectCode(() => decode(raw({ kind: "request", op: "stats" })), "BAD_MESSAGE", /no protocol version/);
    for (const v of ["1", 0, -1, 1.5, null, true]) {
      expectCode(
        () => decode(raw({ v, kind: "request", op: "stats" })),
        "BAD_MESSAGE",
        /must be a positive integer/,
      );
    }
  });

  it("refuses another version with UNSUPPORTED_VERSION, before looking at the rest", () => {
    const err = expectCode(
      () => decode(raw({ v: NEXT_VERSION, kind: "request", op: "stats" })),
      "UNSUPPORTED_VERSION",
    );
    expect(err.message).toBe(
      `protocol version ${NEXT_VERSION} is not supported; this peer speaks version ${PROTOCOL_VERSION}`,
    );
    expectCode(() => decode(raw({ v: NEXT_VERSION + 1, whatever: [1, 2, 3] })), "UNSUPPORTED_VERSION");
    // An older peer too, even with a message that is valid in this version.
    for (let v = 1; v < PROTOCOL_VERSION; v++) {
      expectCode(
        () => decode(raw({ v, kind: "request", op: "stats" })),
        "UNSUPPORTED_VERSION",
        `protocol version ${v} is not supported; this peer speaks version ${PROTOCOL_VERSION}`,
      );
    }
  });

  it("tells a peer of another version why, in a reply it can read", () => {
    // What a responder does with any request it cannot decode:
    const respond = (bytes: Uint8Array): Uint8Array => {
      try {
        decodeRequest(bytes, "submit");
        return encodeReply({ ok: true, op: "submit", accepted: 0, replayed: false });
      } catch (err) {
        return encodeReply(errorReply(err));
      }
    };
    const reply = decodeReply(
      respond(raw({ v: NEXT_VERSION, kind: "request", op: "submit", batch: "new shape" })),
      "submit",
    );
    expect(reply).toEqual({
      ok: false,
      error: {
        code: "UNSUPPORTED_VERSION",
        message: `protocol version ${NEXT_VERSION} is not supported; this peer speaks version ${PROTOCOL_VERSION}`,
        retryable: false,
      },
    });
    const err = thrown(() => unwrapReply(reply));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("UNSUPPORTED_VERSION");
  });

  it("requires a known kind", () => {
    expectCode(
      () => decode(raw({ v: PROTOCOL_VERSION, op: "stats" })),
      "BAD_MESSAGE",
      /kind must be one of request, reply, frontier, got none/,
    );
    expectCode(() => decode(raw({ v: PROTOCOL_VERSION, kind: "event" })), "BAD_MESSAGE", /got "event"/);
    expectCode(() => decode(raw({ v: PROTOCOL_VERSION, kind: 7 })), "BAD_MESSAGE", /got number/);
  });

  it("checks the kind and op a typed decoder expects", () => {
    const reply = encodeReply(replies[0]!);
    expectCode(() => decodeRequest(reply), "BAD_MESSAGE", "expected a request message, got a reply message");
    expectCode(
      () => decodeFrontier(reply),
      "BAD_MESSAGE",
      "expected a frontier message, got a reply message",
    );
    expectCode(() => decodeReply(encodeFrontier(frontier), "lease"), "BAD_MESSAGE", /got a frontier message/);
    expectCode(
      () => decodeRequest(encodeRequest(requests[0]!), "lease"),
      "BAD_MESSAGE",
      'expected a "lease" request, got a "submit" request',
    );
    expectCode(
      () => decodeReply(reply, "lease"),
      "BAD_MESSAGE",
      'expected a reply to "lease", got a reply to "submit"',
    );
    // An error reply answers any op.
    expect(decodeReply(encodeReply(staleLease), "lease").ok).toBe(false);
  });
});

// --------------------------------------------------------- bad request shapes

describe("request shapes", () => {
  const submit = (task: unknown, extra: object = {}) => ({
    op: "submit",
    tasks: [task],
    idempotencyKey: "k",
    ...extra,
  });
  const leaseReq = { op: "lease", owner: "w", max: 1, leaseMs: 1000, waitMs: 0, requestId: "r" };
  const settle = (completes: unknown[], lease?: object) => ({ op: "settle", completes, lease });
  const done = { taskId: "t", token: 1, secret: SECRET };
  const next = { owner: "w", max: 1, leaseMs: 1000, requestId: "r" };

  it.each<[string, unknown, RegExp | string]>([
    ["op missing", { tasks: [] }, "op: expected one of submit, lease, heartbeat"],
    ["op unknown", { op: "launch" }, `op: expected one of ${OPS.join(", ")}, got string "launch"`],
    ["op of the wrong type", { op: 3 }, "got number 3"],
    [
      "unknown top-level field",
      { op: "stats", verbose: true },
      'message: unknown field "verbose" (expected only op)',
    ],
    [
      "tasks not an array",
      { op: "submit", tasks: { 0: {} }, idempotencyKey: "k" },
      "tasks: expected an array, got a map",
    ],
    ["a task not a map", submit(5), "tasks[0]: expected a map, got number 5"],
    ["a task as an array", submit([]), "tasks[0]: expected a map, got an array"],
    ["task id missing", submit({ deadline: 1 }), "tasks[0].id: expected a string, missing"],
    ["task id a number", submit({ id: 7, deadline: 1 }), "tasks[0].id: expected a string, got number 7"],
    [
      "task id binary",
      submit({ id: new Uint8Array([0x61]), deadline: 1 }),
      "tasks[0].id: expected a string, got binary",
    ],
    [
      "deadline a string",
      submit({ id: "t", deadline: "soon" }),
      'tasks[0].deadline: expected a number, got string "soon"',
    ],
    ["deadline missing", submit({ id: "t" }), "tasks[0].deadline: expected a number, missing"],
    ["deadline null", submit({ id: "t", deadline: null }), "tasks[0].deadline: expected a number, got null"],
    [
      "deadline a timestamp",
      submit({ id: "t", deadline: new Date(5) }),
      "tasks[0].deadline: expected a number, got a timestamp",
    ],
    [
      "prerequisites a string",
      submit({ id: "t", deadline: 1, prerequisites: "a" }),
      "tasks[0].prerequisites: expected an array",
    ],
    [
      "a prerequisite a number",
      submit({ id: "t", deadline: 1, prerequisites: ["a", 3] }),
      "tasks[0].prerequisites[1]: expected a string, got number 3",
    ],
    [
      "workflowId null",
      submit({ id: "t", deadline: 1, workflowId: null }),
      "tasks[0].workflowId: expected a string, got null",
    ],
    [
      "maxAttempts a string",
      submit({ id: "t", deadline: 1, maxAttempts: "3" }),
      "tasks[0].maxAttempts: expected a number",
    ],
    [
      "hardDeadline a string",
      submit({ id: "t", deadline: 1, hardDeadline: "yes" }),
      "tasks[0].hardDeadline: expected a boolean",
    ],
    [
      "onPrerequisiteFailure unknown",
      submit({ id: "t", deadline: 1, onPrerequisiteFailure: "ignore" }),
      "tasks[0].onPrerequisiteFailure: expected one of cancel, continue",
    ],
    [
      "a typo in a task field",
      submit({ id: "t", deadline: 1, maxAtempts: 3 }),
      'tasks[0]: unknown field "maxAtempts"',
    ],
    ["idempotencyKey missing", { op: "submit", tasks: [] }, "idempotencyKey: expected a string, missing"],
    [
      "idempotencyKey empty",
      { op: "submit", tasks: [], idempotencyKey: "" },
      'idempotencyKey: expected a non-empty string, got string ""',
    ],
    ["lease owner a number", { ...leaseReq, owner: 5 }, "owner: expected a string"],
    ["lease owner empty", { ...leaseReq, owner: "" }, "owner: expected a non-empty string"],
    ["lease max 0", { ...leaseReq, max: 0 }, "max: expected an integer ≥ 1, got number 0"],
    ["lease max a fraction", { ...leaseReq, max: 1.5 }, "max: expected an integer ≥ 1, got number 1.5"],
    ["lease max NaN", { ...leaseReq, max: Number.NaN }, "max: expected an integer ≥ 1, got number NaN"],
    ["lease leaseMs 0", { ...leaseReq, leaseMs: 0 }, "leaseMs: expected an integer ≥ 1"],
    [
      "lease waitMs negative",
      { ...leaseReq, waitMs: -1 },
      "waitMs: expected a non-negative integer, got number -1",
    ],
    [
      "lease waitMs a string",
      { ...leaseReq, waitMs: "5" },
      'waitMs: expected a non-negative integer, got string "5"',
    ],
    [
      "lease requestId missing",
      { ...leaseReq, requestId: undefined },
      "requestId: expected a string, missing",
    ],
    [
      "heartbeat token negative",
      { op: "heartbeat", taskId: "t", token: -1, secret: SECRET, leaseMs: 5 },
      "token: expected a non-negative integer",
    ],
    [
      "heartbeat token infinite",
      { op: "heartbeat", taskId: "t", token: Number.POSITIVE_INFINITY, secret: SECRET, leaseMs: 5 },
      "token: expected a non-negative integer, got number Infinity",
    ],
    [
      "heartbeat token unsafe",
      { op: "heartbeat", taskId: "t", token: 2 ** 53, secret: SECRET, leaseMs: 5 },
      "token: expected a non-negative integer",
    ],
    [
      "heartbeat leaseMs missing",
      { op: "heartbeat", taskId: "t", token: 1, secret: SECRET },
      "leaseMs: expected an integer ≥ 1, missing",
    ],
    [
      "complete taskId missing",
      { op: "complete", token: 1, secret: SECRET },
      "taskId: expected a string, missing",
    ],
    [
      "complete workflowId a number",
      { op: "complete", taskId: "t", workflowId: 1, token: 1, secret: SECRET },
      "workflowId: expected a string",
    ],
    [
      "release taskId missing",
      { op: "release", token: 1, secret: SECRET },
      "taskId: expected a string, missing",
    ],
    [
      "release token missing",
      { op: "release", taskId: "t", secret: SECRET },
      "token: expected a non-negative integer, missing",
    ],
    [
      "release token a fraction",
      { op: "release", taskId: "t", token: 1.5, secret: SECRET },
      "token: expected a non-negative integer, got number 1.5",
    ],
    [
      "release without its secret",
      { op: "release", taskId: "t", token: 1 },
      "secret: expected a string, missing",
    ],
    [
      "release with a short secret",
      { op: "release", taskId: "t", token: 1, secret: "abc" },
      'secret: expected a lease secret (22 base64url characters), got string "abc"',
    ],
    [
      "release carrying a reason (it is no fail)",
      { op: "release", taskId: "t", token: 1, secret: SECRET, reason: "busy" },
      'message: unknown field "reason" (expected only op, taskId, workflowId, large, token, secret)',
    ],
    [
      "release carrying a result (it is no complete)",
      { op: "release", taskId: "t", token: 1, secret: SECRET, result: 1 },
      'message: unknown field "result" (expected only op, taskId, workflowId, large, token, secret)',
    ],
    [
      "fail retryable a string",
      { op: "fail", taskId: "t", token: 1, secret: SECRET, retryable: "yes", reason: "r" },
      "retryable: expected a boolean",
    ],
    [
      "fail reason missing",
      { op: "fail", taskId: "t", token: 1, secret: SECRET, retryable: true },
      "reason: expected a string, missing",
    ],
    ["settle completes missing", { op: "settle" }, "completes: expected an array, missing"],
    [
      "settle completes a map",
      { op: "settle", completes: { 0: done } },
      "completes: expected an array, got a map",
    ],
    ["settle completes null", { op: "settle", completes: null }, "completes: expected an array, got null"],
    ["a complete not a map", settle([done, "t"]), 'completes[1]: expected a map, got string "t"'],
    ["a complete as an array", settle([["t", 1]]), "completes[0]: expected a map, got an array"],
    ["a complete without taskId", settle([{ token: 1 }]), "completes[0].taskId: expected a string, missing"],
    [
      "a complete taskId a number",
      settle([{ taskId: 7, token: 1, secret: SECRET }]),
      "completes[0].taskId: expected a string",
    ],
    [
      "a complete workflowId a number",
      settle([done, { ...done, workflowId: 1 }]),
      "completes[1].workflowId: expected a string, got number 1",
    ],
    [
      "a complete workflowId null",
      settle([{ ...done, workflowId: null }]),
      "completes[0].workflowId: expected a string, got null",
    ],
    [
      "a complete without its secret",
      settle([{ taskId: "t", token: 1 }]),
      "completes[0].secret: expected a string, missing",
    ],
    [
      "a complete with a short secret",
      settle([{ ...done, secret: "abc" }]),
      'completes[0].secret: expected a lease secret (22 base64url characters), got string "abc"',
    ],
    [
      "a complete with a secret of another alphabet",
      { op: "complete", taskId: "t", token: 1, secret: "AAAAAAAAAAAAAAAAAAAA+/" },
      "secret: expected a lease secret (22 base64url characters)",
    ],
    [
      "a heartbeat without its secret",
      { op: "heartbeat", taskId: "t", token: 1, leaseMs: 5 },
      "secret: expected a string, missing",
    ],
    [
      "a complete without token",
      settle([{ taskId: "t" }]),
      "completes[0].token: expected a non-negative integer, missing",
    ],
    [
      "a complete token negative",
      settle([done, { taskId: "t2", token: -1, secret: SECRET }]),
      "completes[1].token: expected a non-negative integer, got number -1",
    ],
    [
      "a complete token a fraction",
      settle([{ taskId: "t", token: 1.5, secret: SECRET }]),
      "completes[0].token: expected a non-negative integer, got number 1.5",
    ],
    [
      "a complete token a string",
      settle([{ taskId: "t", token: "12", secret: SECRET }]),
      'completes[0].token: expected a non-negative integer, got string "12"',
    ],
    [
      "a complete token NaN",
      settle([{ taskId: "t", token: Number.NaN, secret: SECRET }]),
      "completes[0].token: expected a non-negative integer, got number NaN",
    ],
    [
      "a complete token unsafe",
      settle([{ taskId: "t", token: 2 ** 53, secret: SECRET }]),
      "completes[0].token: expected a non-negative integer, got number 9007199254740992",
    ],
    [
      "a typo in a complete",
      settle([done, { taskId: "t2", tokn: 1 }]),
      'completes[1]: unknown field "tokn" (expected only taskId, workflowId, large, token, secret, result)',
    ],
    [
      "a complete carrying a reason",
      settle([{ ...done, reason: "done" }]),
      'completes[0]: unknown field "reason" (expected only taskId, workflowId, large, token, secret, result)',
    ],
    ["settle lease null", { op: "settle", completes: [], lease: null }, "lease: expected a map, got null"],
    ["settle lease a string", settle([], "w" as unknown as object), 'lease: expected a map, got string "w"'],
    [
      "settle lease with waitMs (a settle never waits)",
      settle([], { ...next, waitMs: 0 }),
      'lease: unknown field "waitMs" (expected only owner, max, leaseMs, requestId, types, attempt)',
    ],
    [
      "settle lease with maxKey",
      settle([], { ...next, maxKey: 5 }),
      'lease: unknown field "maxKey" (expected only owner, max, leaseMs, requestId, types, attempt)',
    ],
    ["settle lease with a typo", settle([done], { ...next, ownr: "w" }), 'lease: unknown field "ownr"'],
    [
      "settle lease owner missing",
      settle([], { ...next, owner: undefined }),
      "lease.owner: expected a string",
    ],
    [
      "settle lease owner empty",
      settle([], { ...next, owner: "" }),
      'lease.owner: expected a non-empty string, got string ""',
    ],
    [
      "settle lease max 0",
      settle([], { ...next, max: 0 }),
      "lease.max: expected an integer ≥ 1, got number 0",
    ],
    [
      "settle lease max a fraction",
      settle([], { ...next, max: 2.5 }),
      "lease.max: expected an integer ≥ 1, got number 2.5",
    ],
    [
      "settle lease max missing",
      settle([], { ...next, max: undefined }),
      "lease.max: expected an integer ≥ 1, missing",
    ],
    [
      "settle lease leaseMs 0",
      settle([], { ...next, leaseMs: 0 }),
      "lease.leaseMs: expected an integer ≥ 1, got number 0",
    ],
    [
      "settle lease requestId missing",
      settle([], { ...next, requestId: undefined }),
      "lease.requestId: expected a string, missing",
    ],
    [
      "settle lease requestId empty",
      settle([], { ...next, requestId: "" }),
      'lease.requestId: expected a non-empty string, got string ""',
    ],
    // Like a lease request's: 0 is no send number at all (a shape error); past MAX_ATTEMPT, out of range.
    [
      "settle lease attempt 0",
      settle([], { ...next, attempt: 0 }),
      "lease.attempt: expected an integer ≥ 1, got number 0",
    ],
    [
      "settle lease attempt a string",
      settle([], { ...next, attempt: "2" }),
      'lease.attempt: expected an integer ≥ 1, got string "2"',
    ],
    [
      "settle with a top-level taskId",
      { op: "settle", taskId: "t", token: 1, completes: [] },
      'message: unknown field "taskId" (expected only op, completes, lease)',
    ],
    [
      "settle with fails",
      { op: "settle", completes: [], fails: [] },
      'message: unknown field "fails" (expected only op, completes, lease)',
    ],
    ["cancel reason a number", { op: "cancel", taskId: "t", reason: 5 }, "reason: expected a string"],
    ["cancel with a token", { op: "cancel", taskId: "t", token: 1 }, 'unknown field "token"'],
    [
      "updateDeadline deadline a string",
      { op: "updateDeadline", taskId: "t", deadline: "x" },
      "deadline: expected a number",
    ],
    ["getTask extra field", { op: "getTask", taskId: "t", full: true }, 'unknown field "full"'],
    ["stats extra field", { op: "stats", shard: "s1" }, 'unknown field "shard"'],
    ["lease maxKey a string", { ...leaseReq, maxKey: "10" }, 'maxKey: expected a number, got string "10"'],
    ["lease maxKey null", { ...leaseReq, maxKey: null }, "maxKey: expected a number, got null"],
    ["lease maxKey a boolean", { ...leaseReq, maxKey: true }, "maxKey: expected a number, got boolean true"],
    ["lease maxKey an array", { ...leaseReq, maxKey: [1] }, "maxKey: expected a number, got an array"],
    [
      "lease attempt a string",
      { ...leaseReq, attempt: "2" },
      'attempt: expected an integer ≥ 1, got string "2"',
    ],
    ["lease attempt zero", { ...leaseReq, attempt: 0 }, "attempt: expected an integer ≥ 1, got number 0"],
    [
      "lease attempt a fraction",
      { ...leaseReq, attempt: 1.5 },
      "attempt: expected an integer ≥ 1, got number 1.5",
    ],
    ["lease retry (no such field)", { ...leaseReq, retry: true }, 'unknown field "retry"'],
    [
      "lease replayOnly a number",
      { ...leaseReq, replayOnly: 1 },
      "replayOnly: expected a boolean, got number 1",
    ],
    [
      "lease forwarded a string",
      { ...leaseReq, forwarded: "yes" },
      'forwarded: expected a boolean, got string "yes"',
    ],
    [
      "lease maxKey a timestamp",
      { ...leaseReq, maxKey: new Date(5) },
      "maxKey: expected a number, got a timestamp",
    ],
    ["lease maxkey misspelt", { ...leaseReq, maxkey: 5 }, 'unknown field "maxkey"'],
    [
      "prepare idempotencyKey missing",
      { op: "prepare", tasks: [] },
      "idempotencyKey: expected a string, missing",
    ],
    [
      "prepare idempotencyKey empty",
      { op: "prepare", tasks: [], idempotencyKey: "" },
      'idempotencyKey: expected a non-empty string, got string ""',
    ],
    [
      "prepare idempotencyKey a number",
      { op: "prepare", tasks: [], idempotencyKey: 7 },
      "idempotencyKey: expected a string, got number 7",
    ],
    ["prepare tasks missing", { op: "prepare", idempotencyKey: "k" }, "tasks: expected an array, missing"],
    [
      "prepare tasks a map",
      { op: "prepare", tasks: { 0: {} }, idempotencyKey: "k" },
      "tasks: expected an array, got a map",
    ],
    [
      "a prepared task with a string deadline",
      { op: "prepare", tasks: [{ id: "t", deadline: "soon" }], idempotencyKey: "k" },
      'tasks[0].deadline: expected a number, got string "soon"',
    ],
    [
      "a typo in a prepared task",
      { op: "prepare", tasks: [{ id: "t", deadline: 1, maxAtempts: 3 }], idempotencyKey: "k" },
      'tasks[0]: unknown field "maxAtempts"',
    ],
    [
      "prepare with a requestId",
      { op: "prepare", tasks: [], idempotencyKey: "k", requestId: "r" },
      'message: unknown field "requestId" (expected only op, tasks, idempotencyKey, links, claims)',
    ],
    ["commit idempotencyKey missing", { op: "commit" }, "idempotencyKey: expected a string, missing"],
    [
      "commit idempotencyKey empty",
      { op: "commit", idempotencyKey: "" },
      'idempotencyKey: expected a non-empty string, got string ""',
    ],
    [
      "commit idempotencyKey a number",
      { op: "commit", idempotencyKey: 1 },
      "idempotencyKey: expected a string, got number 1",
    ],
    [
      "commit idempotencyKey binary",
      { op: "commit", idempotencyKey: new Uint8Array([0x6b]) },
      "idempotencyKey: expected a string, got binary",
    ],
    [
      "commit carrying tasks",
      { op: "commit", tasks: [], idempotencyKey: "k" },
      'message: unknown field "tasks" (expected only op, idempotencyKey, claimsOnly)',
    ],
    [
      "commit claimsOnly a string",
      { op: "commit", idempotencyKey: "k", claimsOnly: "yes" },
      'claimsOnly: expected a boolean, got string "yes"',
    ],
    [
      "a claim without its task id",
      { op: "prepare", tasks: [], idempotencyKey: "k", claims: [{ workflowId: "w" }] },
      "claims[0].taskId: expected a string, missing",
    ],
    [
      "a claim with its workflow packed into its id's field",
      { op: "prepare", tasks: [], idempotencyKey: "k", claims: [{ taskId: "t", workflow: "w" }] },
      'claims[0]: unknown field "workflow"',
    ],
    ["locate without a task id", { op: "locate" }, "taskId: expected a string, missing"],
    [
      "locate with an empty task id",
      { op: "locate", taskId: "" },
      'taskId: expected a non-empty string, got string ""',
    ],
    [
      "locate naming a workflow (the home answers it)",
      { op: "locate", taskId: "t", workflowId: "w" },
      'message: unknown field "workflowId" (expected only op, taskId)',
    ],
    ["holds with a numeric task id", { op: "holds", taskId: 7 }, "taskId: expected a string, got number 7"],
    ["abort idempotencyKey missing", { op: "abort" }, "idempotencyKey: expected a string, missing"],
    [
      "abort idempotencyKey null",
      { op: "abort", idempotencyKey: null },
      "idempotencyKey: expected a string, got null",
    ],
    [
      "abort with a reason",
      { op: "abort", idempotencyKey: "k", reason: "part 2 rejected" },
      'message: unknown field "reason" (expected only op, idempotencyKey)',
    ],
    ["check without tasks", { op: "check" }, "tasks: expected an array, missing"],
    [
      "moveSlot to slot 1024",
      { op: "moveSlot", slot: 1024, target: "s", moveId: "m" },
      "slot: expected a slot below 1024",
    ],
    [
      "moveSlot to a bad shard id",
      { op: "moveSlot", slot: 1, target: "a.b", moveId: "m" },
      "target: expected",
    ],
    [
      "adopt with a part past its parts",
      {
        op: "adopt",
        moveId: "m",
        slot: 1,
        source: "s",
        part: 1,
        parts: 1,
        tasks: [],
        entries: [],
        leases: [],
      },
      "part",
    ],
    [
      "adopt with a task's field in the wrong place",
      {
        op: "adopt",
        moveId: "m",
        slot: 1,
        source: "s",
        part: 0,
        parts: 1,
        tasks: [{ spec: { id: "t", state: "WAITING" }, status: {} }],
        entries: [],
        leases: [],
      },
      'tasks[0].spec: unknown field "state"',
    ],
    [
      "check under an idempotency key (it reserves nothing)",
      { op: "check", tasks: [{ id: "t", deadline: 1 }], idempotencyKey: "k" },
      'message: unknown field "idempotencyKey" (expected only op, tasks, links, claims)',
    ],
  ])("refuses %s (BAD_MESSAGE)", (_name, request, message) => {
    expectRefusedBothWays(request, "BAD_MESSAGE", typeof message === "string" ? message : message);
  });

  it("refuses integers beyond 2^53 (they arrive as bigint) and other msgpack-only types", () => {
    expectCode(
      () => decode(envelope("request", { op: "complete", taskId: "t", token: 2n ** 60n, secret: SECRET })),
      "BAD_MESSAGE",
      "token: expected a non-negative integer, got bigint 1152921504606846976",
    );
    expectCode(
      () => decode(envelope("request", { op: "getTask", taskId: new Set(["t"]) })),
      "BAD_MESSAGE",
      "taskId: expected a string",
    );
    expectCode(
      () => decode(envelope("request", { ...leaseReq, maxKey: 2n ** 60n })),
      "BAD_MESSAGE",
      "maxKey: expected a number, got bigint 1152921504606846976",
    );
  });

  it("refuses what the sender cannot encode", () => {
    expectCode(
      () =>
        encodeRequest({
          op: "submit",
          tasks: [{ id: "t", deadline: 1, payload: { s: Symbol("s") } }],
          idempotencyKey: "k",
        }),
      "BAD_MESSAGE",
      "cannot encode the message: Unknown type: symbol",
    );
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expectCode(
      () =>
        encodeRequest({
          op: "submit",
          tasks: [{ id: "t", deadline: 1, payload: cyclic }],
          idempotencyKey: "k",
        }),
      "BAD_MESSAGE",
      // Refused by the shape's walk of the payload, before the encoder would recurse forever.
      /cannot encode the message|nested deeper than MAX_PAYLOAD_DEPTH/,
    );
    // A lone surrogate would arrive as U+FFFD (UTF-8 cannot carry it): another id. Only a sender can have one.
    expectCode(
      () => encodeRequest({ op: "complete", taskId: "t\uD800", token: 1, secret: SECRET }),
      "BAD_MESSAGE",
      "taskId: expected well-formed Unicode (no lone surrogate)",
    );
    expect(
      decodeRequest(encodeRequest({ op: "complete", taskId: "t\uD83D\uDE00", token: 1, secret: SECRET })),
    ).toMatchObject({
      taskId: "t😀",
    });
    class Job {
      id = "t";
      deadline = 1;
    }
    expectCode(
      () => encodeRequest({ op: "submit", tasks: [new Job()], idempotencyKey: "k" }),
      "BAD_MESSAGE",
      "tasks[0]: expected a map, got an object (Job)",
    );
  });

  it("leaves the meaning of task definitions to the engine", () => {
    // Empty ids, NaN deadlines, silly attempts, self-dependencies: shape-valid, so they pass.
    const tasks = [
      { id: "", deadline: Number.NaN, maxAttempts: -5, prerequisites: [""] },
      { id: "a", deadline: 1, prerequisites: ["a", "a"] },
    ];
    const back = decodeRequest(encodeRequest({ op: "submit", tasks, idempotencyKey: "k" }));
    expect(back).toEqual({ op: "submit", tasks, idempotencyKey: "k" });
  });

  it("is immune to __proto__ keys", () => {
    const hostile = JSON.parse(
      `{"v":${PROTOCOL_VERSION},"kind":"request","op":"submit","idempotencyKey":"k","tasks":[{"id":"t","deadline":1,"payload":{"__proto__":{"polluted":true}}}]}`,
    );
    const request = decodeRequest(raw(hostile));
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    const payload = request.op === "submit" ? (request.tasks[0]!.payload as object) : null;
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
    expect((payload as Record<string, unknown>)["polluted"]).toBeUndefined();
    const top = JSON.parse(
      `{"v":${PROTOCOL_VERSION},"kind":"request","op":"stats","__proto__":{"polluted":true}}`,
    );
    expectCode(() => decode(raw(top)), "BAD_MESSAGE", /unknown field "__proto_"/);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });
});

// ------------------------------------------------------------------- limits

describe("limits", () => {
  const long = "x".repeat(MAX_ID_LENGTH + 1);
  const max = "x".repeat(MAX_ID_LENGTH);
  const task = (extra: object = {}) => ({ id: "t", deadline: 1, ...extra });
  const submit = (tasks: unknown[]) => ({ op: "submit", tasks, idempotencyKey: "k" });

  it("are the documented values, consistent with NATS and the engine", () => {
    expect(MAX_MESSAGE_BYTES).toBe(1_032_192);
    expect(MAX_MESSAGE_BYTES).toBeLessThan(NATS_DEFAULT_MAX_PAYLOAD);
    expect(MAX_ID_LENGTH).toBe(CORE_MAX_ID_LENGTH);
    expect(MAX_LEASES_PER_REQUEST).toBeLessThanOrEqual(MAX_LEASE_BATCH);
    expect(PREPARE_TTL_MS).toBe(30_000);
    expect(MAX_SHARDS).toBe(SLOT_COUNT);
  });

  it("caps tasks per batch (BATCH_TOO_LARGE)", () => {
    const ok = Array.from({ length: MAX_TASKS_PER_BATCH }, (_, i) => task({ id: `t${i}` }));
    expect(decodeRequest(encodeRequest(submit(ok) as Request)).op).toBe("submit");
    expectRefusedBothWays(
      submit([...ok, task()]),
      "BATCH_TOO_LARGE",
      "tasks: 1001 items exceed MAX_TASKS_PER_BATCH (1000)",
    );
  });

  it("caps leases per request (BATCH_TOO_LARGE), in the request and in the reply", () => {
    const req = {
      op: "lease",
      owner: "w",
      max: MAX_LEASES_PER_REQUEST,
      leaseMs: 1,
      waitMs: 0,
      requestId: "r",
    };
    expect(decodeRequest(encodeRequest(req as Request))).toEqual(req);
    expectRefusedBothWays(
      { ...req, max: MAX_LEASES_PER_REQUEST + 1 },
      "BATCH_TOO_LARGE",
      "max: 1001 exceeds MAX_LEASES_PER_REQUEST (1000)",
    );
    const leases = Array.from({ length: MAX_LEASES_PER_REQUEST + 1 }, () => ({
      ...lease,
      task: { ...lease.task, payload: undefined },
    }));
    expectReplyRefusedBothWays({ ok: true, op: "lease", leases }, "BATCH_TOO_LARGE");
  });

  it("refuses a payload nested deeper than MAX_PAYLOAD_DEPTH, however it was built (BAD_MESSAGE)", () => {
    const nested = (depth: number): unknown => {
      let p: unknown = 1;
      for (let i = 0; i < depth; i++) p = i % 2 === 0 ? [p] : { k: p };
      return p;
    };
    const submit = (payload: unknown) =>
      ({ op: "submit", tasks: [{ id: "t", deadline: 1, payload }], idempotencyKey: "k" }) as Request;
    expect(decodeRequest(encodeRequest(submit(nested(MAX_PAYLOAD_DEPTH))))).toEqual(
      submit(nested(MAX_PAYLOAD_DEPTH)),
    );
    expectRefusedBothWays(
      submit(nested(MAX_PAYLOAD_DEPTH + 1)),
      "BAD_MESSAGE",
      `tasks[0].payload: nested deeper than MAX_PAYLOAD_DEPTH (${MAX_PAYLOAD_DEPTH})`,
    );
    // Deeper than an encoder would go: bytes built by hand, the payload `depth` one-element arrays.
    const handBuilt = (depth: number): Uint8Array => {
      const marker = "@payload@";
      const bytes = new Packr({ useRecords: false }).pack({
        v: PROTOCOL_VERSION,
        kind: "request",
        ...submit(marker),
      });
      const at = Buffer.from(bytes).indexOf(Buffer.from([0xa0 | marker.length, ...Buffer.from(marker)]));
      const nestedBytes = [...new Array<number>(depth).fill(0x91), 0x01];
      return new Uint8Array([
        ...bytes.subarray(0, at),
        ...nestedBytes,
        ...bytes.subarray(at + 1 + marker.length),
      ]);
    };
    expect(decodeRequest(handBuilt(MAX_PAYLOAD_DEPTH))).toMatchObject({ op: "submit" });
    expectCode(() => decodeRequest(handBuilt(1_000)), "BAD_MESSAGE", /nested deeper than MAX_PAYLOAD_DEPTH/);
    expectCode(() => decodeRequest(handBuilt(200_000)), "BAD_MESSAGE");
  });

  it("bounds leaseMs by MAX_LEASE_MS and refuses an empty submit (INVALID_ARGUMENT)", () => {
    const lease = {
      op: "lease",
      owner: "w",
      max: 1,
      leaseMs: MAX_LEASE_MS,
      waitMs: 0,
      requestId: "r",
    } as Request;
    expect(decodeRequest(encodeRequest(lease))).toEqual(lease);
    expectRefusedBothWays(
      { ...lease, leaseMs: MAX_LEASE_MS + 1 },
      "INVALID_ARGUMENT",
      `leaseMs: ${MAX_LEASE_MS + 1} exceeds MAX_LEASE_MS (${MAX_LEASE_MS})`,
    );
    expectRefusedBothWays(
      { op: "heartbeat", taskId: "t", token: 1, secret: SECRET, leaseMs: 2 ** 53 - 1 },
      "INVALID_ARGUMENT",
      "leaseMs",
    );
    expectRefusedBothWays(
      {
        op: "settle",
        completes: [],
        lease: { owner: "w", max: 1, leaseMs: MAX_LEASE_MS + 1, requestId: "r" },
      },
      "INVALID_ARGUMENT",
      "lease.leaseMs",
    );
    expectRefusedBothWays(
      { op: "submit", tasks: [], idempotencyKey: "empty" },
      "INVALID_ARGUMENT",
      "tasks: a submit carries at least one task",
    );
    // A prepare or a check may carry claims alone, but not nothing.
    expectRefusedBothWays(
      { op: "prepare", tasks: [], idempotencyKey: "k", claims: [] },
      "INVALID_ARGUMENT",
      "tasks: a prepare carries at least one task, remote link or claim",
    );
    expectRefusedBothWays(
      { op: "check", tasks: [] },
      "INVALID_ARGUMENT",
      "tasks: a check carries at least one task, remote link or claim",
    );
  });

  it("refuses deadlines past ±MAX_DEADLINE, and ones that look like seconds, naming the task (INVALID_ARGUMENT)", () => {
    const submit = (deadline: number) =>
      ({
        op: "submit",
        tasks: [
          { id: "fine", deadline: 1 },
          { id: "bad", deadline },
        ],
        idempotencyKey: "k",
      }) as Request;
    expectRefusedBothWays(
      submit(1_700_000_000),
      "INVALID_ARGUMENT",
      'tasks[1].deadline: task "bad": deadline 1700000000 looks like seconds since the epoch (2023-11-14T22:13:20.000Z); deadlines are milliseconds',
    );
    expectRefusedBothWays(
      submit(1e300),
      "INVALID_ARGUMENT",
      `tasks[1].deadline: task "bad": deadline 1e+300 is outside ±MAX_DEADLINE (${MAX_DEADLINE}); deadlines are milliseconds since the epoch`,
    );
    expectRefusedBothWays(submit(-MAX_DEADLINE - 1), "INVALID_ARGUMENT", "MAX_DEADLINE");
    expectRefusedBothWays(
      { ...(submit(2e9) as object), op: "prepare" },
      "INVALID_ARGUMENT",
      "looks like seconds",
    );
    expectRefusedBothWays(
      { op: "updateDeadline", taskId: "t9", deadline: 1_700_000_000.5 },
      "INVALID_ARGUMENT",
      /^deadline: task "t9": deadline 1700000000.5 looks like seconds/,
    );
    expectRefusedBothWays(
      { op: "updateDeadline", taskId: "t9", deadline: 1e16 },
      "INVALID_ARGUMENT",
      "MAX_DEADLINE",
    );
    // The edges: seconds-like is strictly inside the range; small ordering numbers stay valid.
    for (const fine of [
      1,
      100,
      1_000,
      SECONDS_LIKE_DEADLINES.above,
      SECONDS_LIKE_DEADLINES.below,
      Date.now(),
    ]) {
      expect(decodeRequest(encodeRequest(submit(fine)))).toEqual(submit(fine));
    }
    // What a shard sends back is not checked: a task stored before this limit can still be read.
    const old = { id: "old", deadline: 1e300, prerequisites: [] };
    const reply = {
      ok: true,
      op: "lease",
      leases: [{ taskId: "old", owner: "w", token: 1, expiresAt: 5, attempt: 1, task: old }],
    };
    expect(decodeReply(encodeReply(reply as Reply), "lease")).toEqual(reply);
  });

  it("carries notBefore and timeoutMs: notBefore checked as a deadline is, timeoutMs up to MAX_TIMEOUT_MS", () => {
    const submit = (extra: object) =>
      ({ op: "submit", tasks: [{ id: "t", deadline: 5, ...extra }], idempotencyKey: "k" }) as Request;
    const fine = submit({ notBefore: Date.now(), timeoutMs: MAX_TIMEOUT_MS });
    expect(decodeRequest(encodeRequest(fine))).toEqual(fine);
    expectRefusedBothWays(
      submit({ notBefore: 1_700_000_000 }),
      "INVALID_ARGUMENT",
      'tasks[0].notBefore: task "t": notBefore 1700000000 looks like seconds since the epoch (2023-11-14T22:13:20.000Z); notBefore is in milliseconds',
    );
    expectRefusedBothWays(submit({ notBefore: 1e300 }), "INVALID_ARGUMENT", "MAX_DEADLINE");
    expectRefusedBothWays(
      submit({ timeoutMs: MAX_TIMEOUT_MS + 1 }),
      "INVALID_ARGUMENT",
      `tasks[0].timeoutMs: ${MAX_TIMEOUT_MS + 1} exceeds MAX_TIMEOUT_MS (${MAX_TIMEOUT_MS})`,
    );
    expectRefusedBothWays(submit({ timeoutMs: 0 }), "BAD_MESSAGE", "tasks[0].timeoutMs");
    expectRefusedBothWays(submit({ timeoutMs: "5s" }), "BAD_MESSAGE", "tasks[0].timeoutMs");
    // A lease's task carries the limit to the worker; a task view shows the spec and the live attempt's end.
    const reply = {
      ok: true,
      op: "lease",
      leases: [
        {
          taskId: "t",
          owner: "w",
          token: 1,
          expiresAt: 5,
          attempt: 1,
          task: { id: "t", deadline: 5, prerequisites: [], timeoutMs: 250 },
        },
      ],
    };
    expect(decodeReply(encodeReply(reply as Reply), "lease")).toEqual(reply);
  });

  it("accepts a request's deadline exactly when it is finite-and-sane or left to the engine (property)", () => {
    const sane = (d: number) =>
      !Number.isFinite(d) ||
      (Math.abs(d) <= MAX_DEADLINE &&
        !(d > SECONDS_LIKE_DEADLINES.above && d < SECONDS_LIKE_DEADLINES.below));
    const deadline = fc.oneof(
      fc.double(),
      fc.integer({ min: 0, max: 2e11 }),
      fc.double({ min: 9e8, max: 2e11 }),
      fc.constantFrom(1e9, 1e11, MAX_DEADLINE, -MAX_DEADLINE),
    );
    fc.assert(
      fc.property(deadline, (d) => {
        let accepted = true;
        try {
          encodeRequest({ op: "updateDeadline", taskId: "t", deadline: d });
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidArgumentError);
          accepted = false;
        }
        expect(accepted).toBe(sane(d));
      }),
    );
  });

  it("caps the tasks one settle completes, and the leases it asks for (BATCH_TOO_LARGE)", () => {
    const completes = Array.from({ length: MAX_SETTLES_PER_REQUEST }, (_, i) => ({
      taskId: `t${i}`,
      token: i,
      secret: SECRET,
    }));
    const next = { owner: "w", max: MAX_LEASES_PER_REQUEST, leaseMs: 1, requestId: "r" };
    const req = { op: "settle", completes, lease: next };
    expect(decodeRequest(encodeRequest(req as Request), "settle")).toEqual(req);
    expectRefusedBothWays(
      { op: "settle", completes: [...completes, { taskId: "one more", token: 1, secret: SECRET }] },
      "BATCH_TOO_LARGE",
      "completes: 1001 items exceed MAX_SETTLES_PER_REQUEST (1000)",
    );
    expectRefusedBothWays(
      { op: "settle", completes: [], lease: { ...next, max: MAX_LEASES_PER_REQUEST + 1 } },
      "BATCH_TOO_LARGE",
      "lease.max: 1001 exceeds MAX_LEASES_PER_REQUEST (1000)",
    );
  });

  it("caps the outcomes and the leases of a settle reply (BATCH_TOO_LARGE)", () => {
    const results = Array.from({ length: MAX_SETTLES_PER_REQUEST }, (_, i) => ({ duplicate: i % 2 === 0 }));
    const fits = { ok: true, op: "settle", results, leases: [] };
    expect(decodeReply(encodeReply(fits as Reply), "settle")).toEqual(fits);
    expectReplyRefusedBothWays(
      { ...fits, results: [...results, { duplicate: false }] },
      "BATCH_TOO_LARGE",
      "results: 1001 items exceed MAX_SETTLES_PER_REQUEST (1000)",
    );
    const leases = Array.from({ length: MAX_LEASES_PER_REQUEST + 1 }, () => ({
      ...lease,
      task: { ...lease.task, payload: undefined },
    }));
    expectReplyRefusedBothWays(
      { ok: true, op: "settle", results: [], leases },
      "BATCH_TOO_LARGE",
      "leases: 1001 items exceed MAX_LEASES_PER_REQUEST (1000)",
    );
  });

  it("caps every id's length (ID_TOO_LONG)", () => {
    expect(
      decodeRequest(
        encodeRequest(submit([task({ id: max, workflowId: max, prerequisites: [max] })]) as Request),
      ).op,
    ).toBe("submit");
    const cases: [unknown, string][] = [
      [submit([task({ id: long })]), "tasks[0].id"],
      [submit([task({ workflowId: long })]), "tasks[0].workflowId"],
      [submit([task({ prerequisites: ["a", long] })]), "tasks[0].prerequisites[1]"],
      [{ op: "submit", tasks: [], idempotencyKey: long }, "idempotencyKey"],
      [{ op: "lease", owner: long, max: 1, leaseMs: 1, waitMs: 0, requestId: "r" }, "owner"],
      [{ op: "lease", owner: "w", max: 1, leaseMs: 1, waitMs: 0, requestId: long }, "requestId"],
      [{ op: "complete", taskId: long, token: 1, secret: SECRET }, "taskId"],
      [{ op: "getTask", taskId: "t", workflowId: long }, "workflowId"],
      [{ op: "prepare", tasks: [], idempotencyKey: long }, "idempotencyKey"],
      [{ op: "prepare", tasks: [task({ id: long })], idempotencyKey: "k" }, "tasks[0].id"],
      [{ op: "commit", idempotencyKey: long }, "idempotencyKey"],
      [{ op: "abort", idempotencyKey: long }, "idempotencyKey"],
      [
        {
          op: "settle",
          completes: [
            { taskId: "t", token: 1, secret: SECRET },
            { taskId: long, token: 1, secret: SECRET },
          ],
        },
        "completes[1].taskId",
      ],
      [
        { op: "settle", completes: [{ taskId: "t", workflowId: long, token: 1, secret: SECRET }] },
        "completes[0].workflowId",
      ],
      [
        { op: "settle", completes: [], lease: { owner: long, max: 1, leaseMs: 1, requestId: "r" } },
        "lease.owner",
      ],
      [
        { op: "settle", completes: [], lease: { owner: "w", max: 1, leaseMs: 1, requestId: long } },
        "lease.requestId",
      ],
    ];
    for (const [request, path] of cases) {
      expectRefusedBothWays(request, "ID_TOO_LONG", `${path}: 257 characters exceed MAX_ID_LENGTH (256)`);
    }
    expectReplyRefusedBothWays(
      { ok: true, op: "lease", leases: [{ ...lease, owner: long }] },
      "ID_TOO_LONG",
      "leases[0].owner",
    );
    expectReplyRefusedBothWays(
      { ok: true, op: "settle", results: [], leases: [lease, { ...lease, taskId: long }] },
      "ID_TOO_LONG",
      "leases[1].taskId: 257 characters exceed MAX_ID_LENGTH (256)",
    );
    expectReplyRefusedBothWays(
      { ok: true, op: "stats", stats, shards: { answered: ["s0", long], missing: [] } },
      "ID_TOO_LONG",
      "shards.answered[1]: 257 characters exceed MAX_ID_LENGTH (256)",
    );
    expectReplyRefusedBothWays(
      {
        ok: true,
        op: "stats",
        stats,
        shards: { answered: [], missing: [{ shardId: long, code: "TIMEOUT" }] },
      },
      "ID_TOO_LONG",
      "shards.missing[0].shardId: 257 characters exceed MAX_ID_LENGTH (256)",
    );
  });

  it("caps the shards a stats reply names (BAD_MESSAGE), each list and both together", () => {
    const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    const missing = (n: number) => ids(n, "m").map((shardId) => ({ shardId, code: "TIMEOUT" as const }));
    const fits = { ok: true, op: "stats", stats, shards: { answered: ids(1000, "a"), missing: missing(24) } };
    expect(decodeReply(encodeReply(fits as Reply), "stats")).toEqual(fits);
    expectReplyRefusedBothWays(
      { ok: true, op: "stats", stats, shards: { answered: ids(MAX_SHARDS + 1, "a"), missing: [] } },
      "BAD_MESSAGE",
      "shards.answered: 1025 items exceed MAX_SHARDS (1024)",
    );
    expectReplyRefusedBothWays(
      { ok: true, op: "stats", stats, shards: { answered: [], missing: missing(MAX_SHARDS + 1) } },
      "BAD_MESSAGE",
      "shards.missing: 1025 items exceed MAX_SHARDS (1024)",
    );
    expectReplyRefusedBothWays(
      { ok: true, op: "stats", stats, shards: { answered: ids(1000, "a"), missing: missing(25) } },
      "BAD_MESSAGE",
      "shards: 1025 shards exceed MAX_SHARDS (1024)",
    );
  });

  it("caps prerequisites per task (TOO_MANY_PREREQUISITES)", () => {
    const prereqs = Array.from({ length: MAX_PREREQUISITES }, (_, i) => `p${i}`);
    expect(decodeRequest(encodeRequest(submit([task({ prerequisites: prereqs })]) as Request)).op).toBe(
      "submit",
    );
    expectRefusedBothWays(
      submit([task(), task({ prerequisites: [...prereqs, "one more"] })]),
      "TOO_MANY_PREREQUISITES",
      "tasks[1].prerequisites: 1001 items exceed MAX_PREREQUISITES (1000)",
    );
  });

  it("caps each payload's encoded size (PAYLOAD_TOO_LARGE), wherever a task travels", () => {
    const fits = "x".repeat(MAX_PAYLOAD_BYTES - 3); // str16: 3 header bytes.
    expect(encodedByteLength(fits)).toBe(MAX_PAYLOAD_BYTES);
    const tooBig = "x".repeat(MAX_PAYLOAD_BYTES); // str32: 5 header bytes.
    expect(decodeRequest(encodeRequest(submit([task({ payload: fits })]) as Request)).op).toBe("submit");
    expectRefusedBothWays(
      submit([task({ payload: "small" }), task({ payload: { blob: tooBig } })]),
      "PAYLOAD_TOO_LARGE",
      `tasks[1].payload: payload of ${MAX_PAYLOAD_BYTES + 13} bytes exceeds MAX_PAYLOAD_BYTES (65536)`,
    );
    expectReplyRefusedBothWays(
      { ok: true, op: "lease", leases: [{ ...lease, task: { ...lease.task, payload: tooBig } }] },
      "PAYLOAD_TOO_LARGE",
      "leases[0].task.payload",
    );
    expectReplyRefusedBothWays(
      { ok: true, op: "getTask", task: { ...view, payload: tooBig } },
      "PAYLOAD_TOO_LARGE",
      "task.payload",
    );
    expectReplyRefusedBothWays(
      {
        ok: true,
        op: "settle",
        results: [{ duplicate: false }],
        leases: [lease, { ...lease, task: { ...lease.task, payload: tooBig } }],
      },
      "PAYLOAD_TOO_LARGE",
      "leases[1].task.payload",
    );
  });

  it("caps the whole message (MESSAGE_TOO_LARGE), when encoding and when decoding", () => {
    const tasks = Array.from({ length: 20 }, (_, i) => task({ id: `t${i}`, payload: "y".repeat(60_000) }));
    expectRefusedBothWays(submit(tasks), "MESSAGE_TOO_LARGE", /bytes exceeds MAX_MESSAGE_BYTES \(1032192\)/);
  });

  it("bounds request arguments: waitMs and reasons (INVALID_ARGUMENT, the engine's class)", () => {
    const req = { op: "lease", owner: "w", max: 1, leaseMs: 1, waitMs: MAX_WAIT_MS, requestId: "r" };
    expect(decodeRequest(encodeRequest(req as Request))).toEqual(req);
    expectRefusedBothWays(
      { ...req, waitMs: MAX_WAIT_MS + 1 },
      "INVALID_ARGUMENT",
      "waitMs: 30001 exceeds MAX_WAIT_MS (30000)",
    );
    expect(thrown(() => encodeRequest({ ...req, waitMs: MAX_WAIT_MS + 1 } as Request))).toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(decodeRequest(encodeRequest({ ...req, attempt: MAX_ATTEMPT } as Request))).toEqual({
      ...req,
      attempt: MAX_ATTEMPT,
    });
    expectRefusedBothWays(
      { ...req, attempt: MAX_ATTEMPT + 1 },
      "INVALID_ARGUMENT",
      "attempt: 2147483648 exceeds MAX_ATTEMPT (2147483647)",
    );
    const next = { owner: "w", max: 1, leaseMs: 1, requestId: "r" };
    const settle = { op: "settle", completes: [], lease: { ...next, attempt: MAX_ATTEMPT } };
    expect(decodeRequest(encodeRequest(settle as Request))).toEqual(settle);
    expectRefusedBothWays(
      { op: "settle", completes: [], lease: { ...next, attempt: MAX_ATTEMPT + 1 } },
      "INVALID_ARGUMENT",
      "lease.attempt: 2147483648 exceeds MAX_ATTEMPT (2147483647)",
    );
    expect(
      thrown(() =>
        encodeRequest({ op: "settle", completes: [], lease: { ...next, attempt: MAX_ATTEMPT + 1 } }),
      ),
    ).toBeInstanceOf(InvalidArgumentError);
    const reason = "r".repeat(MAX_REASON_LENGTH);
    expect(
      decodeRequest(
        encodeRequest({ op: "fail", taskId: "t", token: 1, secret: SECRET, retryable: false, reason }),
      ).op,
    ).toBe("fail");
    expectRefusedBothWays(
      { op: "fail", taskId: "t", token: 1, secret: SECRET, retryable: false, reason: `${reason}!` },
      "INVALID_ARGUMENT",
      "reason: 1025 characters exceed MAX_REASON_LENGTH (1024)",
    );
    expectRefusedBothWays({ op: "cancel", taskId: "t", reason: `${reason}!` }, "INVALID_ARGUMENT");
  });

  it("let one task at every limit at once travel alone, so a lease reply can always carry one grant", () => {
    const wide = "\u0800"; // Three bytes in UTF-8: the most per UTF-16 code unit.
    const id = (n: number) => `${n}`.padEnd(MAX_ID_LENGTH, wide);
    const prerequisites = Array.from({ length: MAX_PREREQUISITES }, (_, i) => id(i + 1));
    let payload = wide.repeat(21_000);
    while (encodedByteLength(payload) <= MAX_PAYLOAD_BYTES - 3) payload += wide;
    payload = payload.slice(0, -1);
    expect(encodedByteLength(payload)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const worst = { id: id(0), deadline: 1, prerequisites, workflowId: id(0), payload };

    const bytes = encodeReply({
      ok: true,
      op: "lease",
      leases: [{ taskId: worst.id, owner: id(0), token: 1, expiresAt: 2, attempt: 1, task: worst }],
    });
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(
      encodeRequest({ op: "submit", tasks: [worst], idempotencyKey: id(0) }).byteLength,
    ).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });

  it("let a stats reply carry MAX_SHARDS shards' own stats, each id a token at its longest, in one message", () => {
    const big = 2 ** 53 - 1;
    const worst: SchedulerStats = {
      counts: {
        WAITING: big,
        RUNNABLE: big,
        LEASED: big,
        COMPLETED: big,
        FAILED: big,
        CANCELLED: big,
        EXPIRED: big,
      },
      runnable: big,
      oldestRunnableAgeMs: 0.1 + big,
      frontierDeadline: -8.64e15,
      leaseTimeouts: big,
      attemptTimeouts: big,
      deadlineMisses: big,
      staleRejections: big,
      retries: big,
      leased: big,
    };
    const shardIds = Array.from({ length: MAX_SHARDS }, (_, i) => `${i}`.padEnd(MAX_TOKEN_LENGTH, "s"));
    const reply = {
      ok: true as const,
      op: "stats" as const,
      stats: worst,
      shards: { answered: shardIds, missing: [] },
      byShard: shardIds.map((shardId) => ({ shardId, slots: SLOT_COUNT, stats: worst })),
    };
    const bytes = encodeReply(reply);
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(decodeReply(bytes, "stats")).toEqual(reply);
  });

  it("let a stats reply name MAX_SHARDS shards, each id at MAX_ID_LENGTH, in one message", () => {
    const wide = "\u0800"; // Three bytes in UTF-8: the most per UTF-16 code unit.
    const id = (n: number) => `${n}`.padEnd(MAX_ID_LENGTH, wide);
    const codes = Object.keys(WIRE_ERRORS) as WireErrorCode[];
    const longestCode = codes.reduce((a, b) => (b.length > a.length ? b : a));
    const shardIds = Array.from({ length: MAX_SHARDS }, (_, i) => id(i));
    for (const shards of [
      { answered: shardIds, missing: [] },
      { answered: [], missing: shardIds.map((shardId) => ({ shardId, code: longestCode })) },
    ]) {
      const bytes = encodeReply({ ok: true, op: "stats", stats, shards });
      expect(bytes.byteLength).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      expect(decodeReply(bytes, "stats")).toEqual({ ok: true, op: "stats", stats, shards });
    }
  });
});

// --------------------------------------------------------- bad reply shapes

describe("reply and announcement shapes", () => {
  it.each<[string, unknown, string]>([
    ["ok missing", { op: "submit", accepted: 1, replayed: false }, "ok: expected a boolean, missing"],
    ["ok a string", { ok: "yes", op: "submit" }, 'ok: expected a boolean, got string "yes"'],
    ["op unknown", { ok: true, op: "launch" }, "op: expected one of"],
    [
      "accepted negative",
      { ok: true, op: "submit", accepted: -1, replayed: false },
      "accepted: expected a non-negative integer",
    ],
    ["leases not an array", { ok: true, op: "lease", leases: null }, "leases: expected an array, got null"],
    [
      "a lease without a task",
      { ok: true, op: "lease", leases: [{ ...lease, task: undefined }] },
      "leases[0].task: expected a map, missing",
    ],
    [
      "a lease with attempt 0",
      { ok: true, op: "lease", leases: [{ ...lease, attempt: 0 }] },
      "leases[0].attempt: expected an integer ≥ 1",
    ],
    [
      "a leased task without prerequisites",
      { ok: true, op: "lease", leases: [{ ...lease, task: { id: "t", deadline: 1 } }] },
      "leases[0].task.prerequisites: expected an array, missing",
    ],
    [
      "lease shards fewer than leases",
      { ok: true, op: "lease", leases: [lease, lease], shards: ["s1"] },
      "shards: expected one shard id per lease (2), got an array",
    ],
    [
      "lease shards more than leases",
      { ok: true, op: "lease", leases: [lease], shards: ["s1", "s2"] },
      "shards: expected one shard id per lease (1), got an array",
    ],
    [
      "lease shards without leases",
      { ok: true, op: "lease", leases: [], shards: ["s1"] },
      "shards: expected one shard id per lease (0), got an array",
    ],
    [
      "a lease shard id that is not a subject token",
      { ok: true, op: "lease", leases: [lease, lease], shards: ["s1", "a.b"] },
      'shards[1]: expected a subject-safe token ([A-Za-z0-9_-], 1..64), got string "a.b"',
    ],
    [
      "a lease shard id that is a wildcard",
      { ok: true, op: "lease", leases: [lease], shards: [">"] },
      'shards[0]: expected a subject-safe token ([A-Za-z0-9_-], 1..64), got string ">"',
    ],
    [
      "an empty lease shard id",
      { ok: true, op: "lease", leases: [lease], shards: [""] },
      'shards[0]: expected a subject-safe token ([A-Za-z0-9_-], 1..64), got string ""',
    ],
    [
      "a lease shard id over 64 characters",
      { ok: true, op: "lease", leases: [lease], shards: ["s".repeat(65)] },
      "shards[0]: expected a subject-safe token ([A-Za-z0-9_-], 1..64)",
    ],
    [
      "a lease shard id not a string",
      { ok: true, op: "lease", leases: [lease], shards: [1] },
      "shards[0]: expected a string, got number 1",
    ],
    [
      "lease shards a map",
      { ok: true, op: "lease", leases: [], shards: { answered: [], missing: [] } },
      "shards: expected an array, got a map",
    ],
    [
      "lease shards null",
      { ok: true, op: "lease", leases: [], shards: null },
      "shards: expected an array, got null",
    ],
    [
      "a lease reply with results",
      { ok: true, op: "lease", leases: [], results: [] },
      'message: unknown field "results" (expected only ok, op, leases, frontier, shards, grantsMoved)',
    ],
    ["settle results missing", { ok: true, op: "settle", leases: [] }, "results: expected an array, missing"],
    ["settle leases missing", { ok: true, op: "settle", results: [] }, "leases: expected an array, missing"],
    [
      "settle results a map",
      { ok: true, op: "settle", results: { 0: { duplicate: true } }, leases: [] },
      "results: expected an array, got a map",
    ],
    [
      "a settle outcome not a map",
      { ok: true, op: "settle", results: [{ duplicate: true }, true], leases: [] },
      "results[1]: expected a map, got boolean true",
    ],
    [
      "an empty settle outcome",
      { ok: true, op: "settle", results: [{}], leases: [] },
      "results[0].duplicate: expected a boolean, missing",
    ],
    [
      "a settle outcome duplicate a number",
      { ok: true, op: "settle", results: [{ duplicate: 1 }], leases: [] },
      "results[0].duplicate: expected a boolean, got number 1",
    ],
    [
      "a settle outcome both done and refused",
      {
        ok: true,
        op: "settle",
        results: [{ duplicate: false, error: { code: "INTERNAL", message: "m", retryable: false } }],
        leases: [],
      },
      'results[0]: unknown field "duplicate" (expected only error)',
    ],
    [
      "a settle outcome with a typo",
      { ok: true, op: "settle", results: [{ duplicate: false, dupe: true }], leases: [] },
      'results[0]: unknown field "dupe" (expected only duplicate)',
    ],
    [
      "a settle outcome error with an unknown code",
      {
        ok: true,
        op: "settle",
        results: [{ duplicate: true }, { error: { code: "STALE", message: "m", retryable: false } }],
        leases: [],
      },
      'results[1].error.code: expected a code of the wire error catalogue, got string "STALE"',
    ],
    [
      "a settle outcome error without retryable",
      { ok: true, op: "settle", results: [{ error: { code: "STALE_LEASE", message: "m" } }], leases: [] },
      "results[0].error.retryable: expected a boolean, missing",
    ],
    [
      "a settle outcome error null",
      { ok: true, op: "settle", results: [{ error: null }], leases: [] },
      "results[0].error: expected a map, got null",
    ],
    [
      "a settle lease with attempt 0",
      { ok: true, op: "settle", results: [], leases: [lease, { ...lease, attempt: 0 }] },
      "leases[1].attempt: expected an integer ≥ 1",
    ],
    [
      "a settle reply with shards",
      { ok: true, op: "settle", results: [], leases: [lease], shards: ["s1"] },
      'message: unknown field "shards" (expected only ok, op, results, leases, frontier, grantsMoved)',
    ],
    [
      "a settle reply whose frontier is half set",
      { ok: true, op: "settle", results: [], leases: [], frontier: { ...frontier, taskId: null } },
      "deadline, key, taskId: all null (nothing runnable) or all set",
    ],
    [
      "a settle reply whose frontier names no valid shard",
      { ok: true, op: "settle", results: [], leases: [], frontier: { ...frontier, shardId: "a b" } },
      "shardId: expected a subject-safe token",
    ],
    ["expiresAt a string", { ok: true, op: "heartbeat", expiresAt: "later" }, "expiresAt: expected a number"],
    ["duplicate missing", { ok: true, op: "complete" }, "duplicate: expected a boolean, missing"],
    [
      "fail state unknown",
      { ok: true, op: "fail", state: "DONE" },
      "state: expected one of WAITING, RUNNABLE, LEASED, COMPLETED, FAILED, CANCELLED, EXPIRED",
    ],
    ["cancel with data", { ok: true, op: "cancel", cancelled: 3 }, 'unknown field "cancelled"'],
    [
      "prepare accepted missing",
      { ok: true, op: "prepare" },
      "accepted: expected a non-negative integer, missing",
    ],
    [
      "prepare accepted negative",
      { ok: true, op: "prepare", accepted: -1 },
      "accepted: expected a non-negative integer, got number -1",
    ],
    [
      "prepare accepted a fraction",
      { ok: true, op: "prepare", accepted: 1.5 },
      "accepted: expected a non-negative integer, got number 1.5",
    ],
    [
      "prepare with replayed",
      { ok: true, op: "prepare", accepted: 1, replayed: false },
      'message: unknown field "replayed" (expected only ok, op, accepted)',
    ],
    [
      "commit replayed missing",
      { ok: true, op: "commit", accepted: 1 },
      "replayed: expected a boolean, missing",
    ],
    [
      "commit accepted a string",
      { ok: true, op: "commit", accepted: "2", replayed: false },
      'accepted: expected a non-negative integer, got string "2"',
    ],
    ["abort with data", { ok: true, op: "abort", aborted: 3 }, 'unknown field "aborted"'],
    ["getTask task missing", { ok: true, op: "getTask" }, "task: expected a map, missing"],
    [
      "a task view with an unknown state",
      { ok: true, op: "getTask", task: { ...view, state: "ZOMBIE" } },
      "task.state: expected one of",
    ],
    [
      "a task view released false (only true is sent)",
      { ok: true, op: "getTask", task: { ...view, released: false } },
      "task.released: expected true, got boolean false",
    ],
    [
      "a release reply without duplicate",
      { ok: true, op: "release" },
      "duplicate: expected a boolean, missing",
    ],
    [
      "a release reply with a state (it is no fail)",
      { ok: true, op: "release", duplicate: false, state: "RUNNABLE" },
      'unknown field "state"',
    ],
    [
      "a task view with an extra field",
      { ok: true, op: "getTask", task: { ...view, secret: 1 } },
      'task: unknown field "secret"',
    ],
    [
      "stats counts missing a state",
      { ok: true, op: "stats", stats: { ...stats, counts: { WAITING: 1 } } },
      "stats.counts.RUNNABLE: expected a non-negative integer, missing",
    ],
    [
      "stats with an unknown count",
      { ok: true, op: "stats", stats: { ...stats, counts: { ...stats.counts, LOST: 0 } } },
      'stats.counts: unknown field "LOST"',
    ],
    [
      "a shard's stats with a slot count over SLOT_COUNT",
      { ok: true, op: "stats", stats, byShard: [{ shardId: "s0", slots: 1025, stats }] },
      "byShard[0].slots: expected at most SLOT_COUNT (1024)",
    ],
    [
      "a shard's stats under an id that is not a subject token",
      { ok: true, op: "stats", stats, byShard: [{ shardId: "a.b", slots: 1, stats }] },
      "byShard[0].shardId: expected a subject-safe token",
    ],
    [
      "a shard's stats with an unknown field",
      { ok: true, op: "stats", stats, byShard: [{ shardId: "s0", slots: 1, stats, at: 1 }] },
      'byShard[0]: unknown field "at"',
    ],
    [
      "a shard's stats with a malformed count",
      {
        ok: true,
        op: "stats",
        stats,
        byShard: [{ shardId: "s0", slots: 1, stats: { ...stats, leased: -1 } }],
      },
      "byShard[0].stats.leased: expected a non-negative integer",
    ],
    [
      "more shards' stats than MAX_SHARDS",
      {
        ok: true,
        op: "stats",
        stats,
        byShard: Array.from({ length: MAX_SHARDS + 1 }, (_, i) => ({ shardId: `s${i}`, slots: 0, stats })),
      },
      "byShard: 1025 items exceed MAX_SHARDS (1024)",
    ],
    [
      "stats with an unknown field",
      { ok: true, op: "stats", stats, partial: true },
      'message: unknown field "partial" (expected only ok, op, stats, shards, byShard)',
    ],
    [
      "shards not a map",
      { ok: true, op: "stats", stats, shards: ["s0"] },
      "shards: expected a map, got an array",
    ],
    [
      "shards with an unknown field",
      { ok: true, op: "stats", stats, shards: { answered: [], missing: [], partial: true } },
      'shards: unknown field "partial" (expected only answered, missing)',
    ],
    [
      "shards without answered",
      { ok: true, op: "stats", stats, shards: { missing: [] } },
      "shards.answered: expected an array, missing",
    ],
    [
      "shards without missing",
      { ok: true, op: "stats", stats, shards: { answered: ["s0"] } },
      "shards.missing: expected an array, missing",
    ],
    [
      "an answered shard id not a string",
      { ok: true, op: "stats", stats, shards: { answered: ["s0", 1], missing: [] } },
      "shards.answered[1]: expected a string, got number 1",
    ],
    [
      "an empty answered shard id",
      { ok: true, op: "stats", stats, shards: { answered: [""], missing: [] } },
      'shards.answered[0]: expected a non-empty string, got string ""',
    ],
    [
      "a missing shard as a string",
      { ok: true, op: "stats", stats, shards: { answered: [], missing: ["s1"] } },
      'shards.missing[0]: expected a map, got string "s1"',
    ],
    [
      "a missing shard without its id",
      { ok: true, op: "stats", stats, shards: { answered: [], missing: [{ code: "TIMEOUT" }] } },
      "shards.missing[0].shardId: expected a string, missing",
    ],
    [
      "a missing shard without its code",
      { ok: true, op: "stats", stats, shards: { answered: [], missing: [{ shardId: "s1" }] } },
      "shards.missing[0].code: expected a code of the wire error catalogue, missing",
    ],
    [
      "a missing shard with an unknown code",
      {
        ok: true,
        op: "stats",
        stats,
        shards: { answered: [], missing: [{ shardId: "s1", code: "SLOW" }] },
      },
      'shards.missing[0].code: expected a code of the wire error catalogue, got string "SLOW"',
    ],
    [
      "a missing shard with a code not a string",
      { ok: true, op: "stats", stats, shards: { answered: [], missing: [{ shardId: "s1", code: 408 }] } },
      "shards.missing[0].code: expected a code of the wire error catalogue, got number 408",
    ],
    [
      "a missing shard with an extra field",
      {
        ok: true,
        op: "stats",
        stats,
        shards: { answered: [], missing: [{ shardId: "s1", code: "TIMEOUT", message: "slow" }] },
      },
      'shards.missing[0]: unknown field "message" (expected only shardId, code, detail)',
    ],
    [
      "a missing shard with a detail on another code than SHARD_UNAVAILABLE",
      {
        ok: true,
        op: "stats",
        stats,
        shards: { answered: [], missing: [{ shardId: "s1", code: "TIMEOUT", detail: "STORAGE_FULL" }] },
      },
      'shards.missing[0].detail: expected absent: only SHARD_UNAVAILABLE carries a detail, got string "STORAGE_FULL"',
    ],
    ["error missing", { ok: false }, "error: expected a map, missing"],
    [
      "error with an unknown code",
      { ok: false, error: { code: "OOPS", message: "m", retryable: false } },
      'error.code: expected a code of the wire error catalogue, got string "OOPS"',
    ],
    [
      "error without retryable",
      { ok: false, error: { code: "INTERNAL", message: "m" } },
      "error.retryable: expected a boolean, missing",
    ],
    [
      "error with a bad problem",
      {
        ok: false,
        error: {
          code: "VALIDATION_FAILED",
          message: "m",
          retryable: false,
          problems: [{ taskId: "t", code: "WEIRD", message: "m" }],
        },
      },
      "error.problems[0].code: expected one of MALFORMED",
    ],
    [
      "an error reply with data",
      { ok: false, error: { code: "INTERNAL", message: "m", retryable: false }, op: "submit" },
      'unknown field "op"',
    ],
    [
      "an error message over MAX_ERROR_MESSAGE_LENGTH",
      { ok: false, error: { code: "INTERNAL", message: "m".repeat(4097), retryable: false } },
      "error.message: 4097 characters exceed the limit of 4096",
    ],
    [
      "a check reply with more than MAX_PROBLEMS problems",
      {
        ok: true,
        op: "check",
        problems: Array.from({ length: 201 }, () => ({ taskId: "t", code: "CYCLE", message: "m" })),
      },
      "problems: 201 items exceed MAX_PROBLEMS (200)",
    ],
    [
      "a check reply with a problem code not in the catalogue",
      { ok: true, op: "check", problems: [{ taskId: "t", code: "TAKEN", message: "m" }] },
      "problems[0].code",
    ],
    [
      "more than MAX_PROBLEMS problems",
      {
        ok: false,
        error: {
          code: "VALIDATION_FAILED",
          message: "m",
          retryable: false,
          problems: Array.from({ length: 201 }, () => ({ taskId: "t", code: "CYCLE", message: "m" })),
        },
      },
      "error.problems: 201 items exceed MAX_PROBLEMS (200)",
    ],
    [
      "a lease reply whose frontier is half set",
      { ok: true, op: "lease", leases: [], frontier: { ...frontier, key: null } },
      "deadline, key, taskId: all null (nothing runnable) or all set",
    ],
  ])("refuses a reply with %s (BAD_MESSAGE)", (_name, reply, message) => {
    expectReplyRefusedBothWays(reply, "BAD_MESSAGE", message);
  });

  it.each<[string, unknown, string]>([
    [
      "a shard id that is not a subject token",
      { ...frontier, shardId: "a.b" },
      "shardId: expected a subject-safe token",
    ],
    [
      "a deadline without a task",
      { ...frontier, taskId: null },
      "deadline, key, taskId: all null (nothing runnable) or all set",
    ],
    ["a task without a deadline", { ...frontier, deadline: null }, "all null (nothing runnable) or all set"],
    [
      "a deadline and task without a key",
      { ...frontier, key: null },
      "all null (nothing runnable) or all set",
    ],
    [
      "a key with nothing runnable",
      { ...frontier, deadline: null, taskId: null, runnable: 0 },
      "all null (nothing runnable) or all set",
    ],
    [
      "a key alone missing its deadline",
      { ...frontier, deadline: null, key: 5, taskId: null },
      "all null (nothing runnable) or all set",
    ],
    ["no key (a pre-key shard)", { ...frontier, key: undefined }, "key: expected a number, missing"],
    ["a key of the wrong type", { ...frontier, key: "soon" }, 'key: expected a number, got string "soon"'],
    ["a key as a boolean", { ...frontier, key: true }, "key: expected a number, got boolean true"],
    ["a negative count", { ...frontier, runnable: -1 }, "runnable: expected a non-negative integer"],
    ["no seq", { ...frontier, seq: undefined }, "seq: expected a non-negative integer, missing"],
    ["an extra field", { ...frontier, load: 0.5 }, 'unknown field "load"'],
    [
      "a depth not starting at the key",
      { ...frontier, depth: [frontier.key! + 1] },
      "depth[0]: expected the announcement's key",
    ],
    [
      "a depth that goes back",
      { ...frontier, depth: [frontier.key!, frontier.key! + 5, frontier.key! + 4] },
      "depth[2]: expected a key no less than",
    ],
    [
      "a depth deeper than MAX_FRONTIER_DEPTH",
      { ...frontier, depth: Array.from({ length: MAX_FRONTIER_DEPTH + 1 }, () => frontier.key!) },
      "MAX_FRONTIER_DEPTH",
    ],
    ["a depth of strings", { ...frontier, depth: ["soon"] }, "depth[0]: expected a number"],
  ])("refuses an announcement with %s (BAD_MESSAGE)", (_name, announcement, message) => {
    expectCode(() => encodeFrontier(announcement as FrontierAnnouncement), "BAD_MESSAGE", message);
    expectCode(() => decode(envelope("frontier", announcement as object)), "BAD_MESSAGE", message);
  });
});

// ------------------------------------------- multi-shard submit, lease routing

describe("the shard-only ops and fields", () => {
  const task = (extra: object = {}) => ({ id: "t", deadline: 1, ...extra });
  const prepare = (tasks: unknown[]) => ({ op: "prepare", tasks, idempotencyKey: "k" });
  const leaseReq = { op: "lease", owner: "w", max: 5, leaseMs: 1_000, waitMs: 0, requestId: "r" } as const;

  it("carries maxTaskId with maxKey, and refuses it alone (it breaks ties at that key)", () => {
    const withBoth = { ...leaseReq, maxKey: 5, maxTaskId: "b" };
    expect(decode(encodeRequest(withBoth))).toMatchObject({ kind: "request", request: withBoth });
    expectRefusedBothWays({ ...leaseReq, maxTaskId: "b" }, "INVALID_ARGUMENT", /maxTaskId: only with maxKey/);
  });

  it("carries maxKey exactly, and leaves it absent when not given or undefined", () => {
    for (const maxKey of [
      0,
      -1,
      0.5,
      1_700_000_000_000,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]) {
      const back = decodeRequest(encodeRequest({ ...leaseReq, maxKey }), "lease");
      expect(back).toEqual({ ...leaseReq, maxKey });
    }
    expect(Object.keys(decodeRequest(encodeRequest(leaseReq)))).not.toContain("maxKey");
    const dropped = decodeRequest(encodeRequest({ ...leaseReq, maxKey: undefined }));
    expect(dropped).toEqual(leaseReq);
    expect(Object.keys(dropped)).not.toContain("maxKey");
  });

  it("settle: drops undefined optionals, in each complete and in the lease", () => {
    const back = decodeRequest(
      encodeRequest({
        op: "settle",
        completes: [{ taskId: "t", workflowId: undefined, token: 3, secret: SECRET }],
        lease: { owner: "w", max: 2, leaseMs: 10, requestId: "r", attempt: undefined },
      }),
      "settle",
    );
    expect(back).toEqual({
      op: "settle",
      completes: [{ taskId: "t", token: 3, secret: SECRET }],
      lease: { owner: "w", max: 2, leaseMs: 10, requestId: "r" },
    });
    expect(back.op === "settle" && Object.keys(back.completes[0]!)).toEqual(["taskId", "token", "secret"]);
    expect(back.op === "settle" && Object.keys(back.lease!)).toEqual([
      "owner",
      "max",
      "leaseMs",
      "requestId",
    ]);
    const noLease = decodeRequest(encodeRequest({ op: "settle", completes: [], lease: undefined }));
    expect(Object.keys(noLease)).toEqual(["op", "completes"]);
  });

  it("settle: one outcome per complete, in order; an error outcome rebuilds its error", () => {
    const reply = decodeReply(encodeReply(replies.find((r) => r.ok && r.op === "settle")!), "settle");
    if (!reply.ok) throw new Error("expected an ok reply");
    expect(reply.results.map((r) => ("error" in r ? r.error.code : r.duplicate))).toEqual([
      false,
      true,
      "STALE_LEASE",
    ]);
    const refused = reply.results[2]!;
    expect("error" in refused && refused.error).toEqual({
      code: "STALE_LEASE",
      message: "token 11 is stale",
      retryable: false,
      taskId: "t3",
    });
    // The error reply of the whole settle is another thing: ok false, no results.
    expect(decodeReply(encodeReply(staleLease), "settle").ok).toBe(false);
  });

  it("settle: keeps its request and reply apart from complete's and lease's", () => {
    const settle = encodeRequest({ op: "settle", completes: [{ taskId: "t", token: 1, secret: SECRET }] });
    expectCode(
      () => decodeRequest(settle, "complete"),
      "BAD_MESSAGE",
      'expected a "complete" request, got a "settle" request',
    );
    const reply = encodeReply({ ok: true, op: "settle", results: [{ duplicate: true }], leases: [] });
    expectCode(
      () => decodeReply(reply, "lease"),
      "BAD_MESSAGE",
      'expected a reply to "lease", got a reply to "settle"',
    );
    expectCode(
      () => decodeReply(encodeReply({ ok: true, op: "complete", duplicate: true }), "settle"),
      "BAD_MESSAGE",
      'expected a reply to "settle", got a reply to "complete"',
    );
  });

  it("lease shards: one per lease, kept in order, absent when not given", () => {
    const leases = [lease, { ...lease, taskId: "t2" }, { ...lease, taskId: "t3" }];
    const shards = ["s2", "s0", "s2"];
    const back = decodeReply(encodeReply({ ok: true, op: "lease", leases, shards }), "lease");
    expect(back.ok && back.shards).toEqual(shards);
    const without = decodeReply(encodeReply({ ok: true, op: "lease", leases }), "lease");
    expect(Object.keys(without)).toEqual(["ok", "op", "leases"]);
    const dropped = decodeReply(encodeReply({ ok: true, op: "lease", leases, shards: undefined }), "lease");
    expect(Object.keys(dropped)).toEqual(["ok", "op", "leases"]);
  });

  it("keeps commit and abort apart, though their requests have one shape", () => {
    const abort = encodeRequest({ op: "abort", idempotencyKey: "k" });
    expect(decodeRequest(abort, "abort")).toEqual({ op: "abort", idempotencyKey: "k" });
    expectCode(
      () => decodeRequest(abort, "commit"),
      "BAD_MESSAGE",
      'expected a "commit" request, got a "abort" request',
    );
  });

  it("keeps a commit reply apart from a submit reply, though they have one shape", () => {
    const commit = encodeReply({ ok: true, op: "commit", accepted: 3, replayed: true });
    expect(decodeReply(commit, "commit")).toEqual({ ok: true, op: "commit", accepted: 3, replayed: true });
    expectCode(
      () => decodeReply(commit, "submit"),
      "BAD_MESSAGE",
      'expected a reply to "submit", got a reply to "commit"',
    );
    // An error reply answers a prepare like any other op.
    expect(decodeReply(encodeReply(validationFailed), "prepare").ok).toBe(false);
  });

  it("apply the submit limits to a prepared part", () => {
    const ok = Array.from({ length: MAX_TASKS_PER_BATCH }, (_, i) => task({ id: `t${i}` }));
    expect(decodeRequest(encodeRequest(prepare(ok) as Request), "prepare").op).toBe("prepare");
    expectRefusedBothWays(
      prepare([...ok, task()]),
      "BATCH_TOO_LARGE",
      "tasks: 1001 items exceed MAX_TASKS_PER_BATCH (1000)",
    );
    const prereqs = Array.from({ length: MAX_PREREQUISITES + 1 }, (_, i) => `p${i}`);
    expectRefusedBothWays(
      prepare([task({ prerequisites: prereqs })]),
      "TOO_MANY_PREREQUISITES",
      "tasks[0].prerequisites: 1001 items exceed MAX_PREREQUISITES (1000)",
    );
    expectRefusedBothWays(
      prepare([task(), task({ payload: "x".repeat(MAX_PAYLOAD_BYTES) })]),
      "PAYLOAD_TOO_LARGE",
      `tasks[1].payload: payload of ${MAX_PAYLOAD_BYTES + 5} bytes exceeds MAX_PAYLOAD_BYTES (65536)`,
    );
    const big = Array.from({ length: 20 }, (_, i) => task({ id: `t${i}`, payload: "y".repeat(60_000) }));
    expectRefusedBothWays(prepare(big), "MESSAGE_TOO_LARGE", /bytes exceeds MAX_MESSAGE_BYTES \(1032192\)/);
  });

  it("announces a key that may differ from the deadline, and all of deadline, key, taskId or none", () => {
    const sameAsDeadline = { ...frontier, key: frontier.deadline };
    expect(decodeFrontier(encodeFrontier(sameAsDeadline))).toEqual(sameAsDeadline);
    const back = decodeFrontier(encodeFrontier(frontier));
    expect(back.key).toBe(1_699_999_990_000);
    expect(back.key).not.toBe(back.deadline);
    for (const announcement of [
      { ...frontier, deadline: null },
      { ...frontier, key: null },
      { ...frontier, taskId: null },
      { ...frontier, deadline: null, key: null },
      { ...frontier, key: null, taskId: null },
      { ...frontier, deadline: null, taskId: null },
    ]) {
      expectCode(
        () => encodeFrontier(announcement as FrontierAnnouncement),
        "BAD_MESSAGE",
        "deadline, key, taskId: all null (nothing runnable) or all set",
      );
    }
  });
});
