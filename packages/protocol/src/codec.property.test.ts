import { FrontierError, ProblemCode, TaskState } from "@frontier/core";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { sizeBound } from "./codec.js";
import {
  decode,
  decodeReply,
  encode,
  encodeReply,
  errorReply,
  fromWireError,
  isValidToken,
  MAX_DEADLINE,
  MAX_LEASE_MS,
  type Message,
  OPS,
  PROTOCOL_VERSION,
  ProtocolError,
  type Reply,
  SECONDS_LIKE_DEADLINES,
  unwrapReply,
  WIRE_ERRORS,
  type WireErrorCode,
} from "./index.js";

// -------------------------------------------------------------- arbitraries

/** Well-formed strings (no lone surrogates: those cannot cross UTF-8, see codec.test.ts). */
const id = fc.string({ unit: "binary", maxLength: 24 });
const nonEmptyId = fc.string({ unit: "binary", minLength: 1, maxLength: 24 });
/** A task id's claim (one id space per cluster): its task's id, and its workflow when it has one. */
const claim = fc.record({ taskId: nonEmptyId, workflowId: id }, { requiredKeys: ["taskId"] });
/** Any number msgpack carries exactly; -0 arrives as 0, so it is left out. */
const number = fc.double().map((x) => (Object.is(x, -0) ? 0 : x));
/**
 * A deadline a request may carry: within ±MAX_DEADLINE and not seconds-like
 * (SECONDS_LIKE_DEADLINES), or not finite (the engine's to refuse).
 */
const deadline = number.filter(
  (d) =>
    !Number.isFinite(d) ||
    (Math.abs(d) <= MAX_DEADLINE && !(d > SECONDS_LIKE_DEADLINES.above && d < SECONDS_LIKE_DEADLINES.below)),
);
const count = fc.nat();
const token = fc.maxSafeNat();
/** A lease secret: 22 base64url characters. */
const secret = fc
  .array(fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), {
    minLength: 22,
    maxLength: 22,
  })
  .map((c) => c.join(""));
const text = fc.string({ maxLength: 60 });
/** A shard id: a subject token. */
const shardId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
/** Opaque JSON-like payloads; `__proto__` keys are renamed by msgpackr on the way in, so left out. */
const payload = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  .filter((v) => !JSON.stringify(v).includes('"__proto__"'));

const taskInput = fc.record(
  {
    id,
    deadline,
    prerequisites: fc.array(id, { maxLength: 4 }),
    workflowId: id,
    large: fc.boolean(),
    payload,
    maxAttempts: number,
    hardDeadline: fc.boolean(),
    onPrerequisiteFailure: fc.constantFrom("cancel" as const, "continue" as const),
  },
  { requiredKeys: ["id", "deadline"] },
);

const ref = {
  taskId: id,
  workflowId: fc.option(id, { nil: undefined }),
  large: fc.option(fc.boolean(), { nil: undefined }),
};
/** A large workflow's cross-partition edge (RemoteLink), as submit, prepare and check parts carry them. */
const remoteLink = fc.record({ prerequisite: nonEmptyId, dependent: nonEmptyId, workflowId: nonEmptyId });
const links = fc.option(fc.array(remoteLink, { maxLength: 4 }), { nil: undefined });
const remoteEvent = fc.record({
  prerequisite: nonEmptyId,
  dependent: nonEmptyId,
  workflowId: nonEmptyId,
  outcome: fc.constantFrom("COMPLETED" as const, "FAILED" as const, "CANCELLED" as const, "EXPIRED" as const),
});
const stripUndefined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const request = fc
  .oneof(
    fc.record({
      op: fc.constant("submit" as const),
      tasks: fc.array(taskInput, { minLength: 1, maxLength: 4 }),
      idempotencyKey: nonEmptyId,
      links,
    }),
    fc.record({
      op: fc.constant("lease" as const),
      owner: nonEmptyId,
      max: fc.integer({ min: 1, max: 1000 }),
      leaseMs: fc.integer({ min: 1, max: MAX_LEASE_MS }),
      waitMs: fc.integer({ min: 0, max: 30_000 }),
      requestId: nonEmptyId,
      maxKey: fc.option(number, { nil: undefined }),
      attempt: fc.option(fc.integer({ min: 1, max: 2 ** 31 - 1 }), { nil: undefined }),
      replayOnly: fc.option(fc.boolean(), { nil: undefined }),
      forwarded: fc.option(fc.boolean(), { nil: undefined }),
    }),
    fc.record({
      op: fc.constant("heartbeat" as const),
      ...ref,
      token,
      secret,
      leaseMs: fc.integer({ min: 1, max: MAX_LEASE_MS }),
    }),
    fc.record({ op: fc.constant("complete" as const), ...ref, token, secret }),
    fc.record({
      op: fc.constant("fail" as const),
      ...ref,
      token,
      secret,
      retryable: fc.boolean(),
      reason: text,
    }),
    fc.record(
      {
        op: fc.constant("settle" as const),
        completes: fc.array(
          fc.record(
            { taskId: id, workflowId: id, token, secret },
            { requiredKeys: ["taskId", "token", "secret"] },
          ),
          { maxLength: 4 },
        ),
        lease: fc.record(
          {
            owner: nonEmptyId,
            max: fc.integer({ min: 1, max: 1000 }),
            leaseMs: fc.integer({ min: 1, max: MAX_LEASE_MS }),
            requestId: nonEmptyId,
            attempt: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
          },
          { requiredKeys: ["owner", "max", "leaseMs", "requestId"] },
        ),
      },
      { requiredKeys: ["op", "completes"] },
    ),
    fc.record({ op: fc.constant("cancel" as const), ...ref, reason: fc.option(text, { nil: undefined }) }),
    fc.record({ op: fc.constant("updateDeadline" as const), ...ref, deadline }),
    fc.record({ op: fc.constant("getTask" as const), ...ref }),
    fc.record({ op: fc.constant("stats" as const) }),
    fc.record({
      op: fc.constant("prepare" as const),
      tasks: fc.array(taskInput, { minLength: 1, maxLength: 4 }),
      idempotencyKey: nonEmptyId,
      links,
    }),
    // A part that only registers links (its prerequisites exist already): no task, some links.
    fc.record({
      op: fc.constant("prepare" as const),
      tasks: fc.constant([]),
      idempotencyKey: nonEmptyId,
      links: fc.array(remoteLink, { minLength: 1, maxLength: 4 }),
    }),
    // A part of claims alone (one id space per cluster), and one of tasks with their claims.
    fc.record(
      {
        op: fc.constant("prepare" as const),
        tasks: fc.array(taskInput, { maxLength: 2 }),
        idempotencyKey: nonEmptyId,
        claims: fc.array(claim, { minLength: 1, maxLength: 4 }),
      },
      { requiredKeys: ["op", "tasks", "idempotencyKey", "claims"] },
    ),
    fc.record({ op: fc.constantFrom("commit" as const, "abort" as const), idempotencyKey: nonEmptyId }),
    fc.record({
      op: fc.constant("deliverEvents" as const),
      source: shardId,
      events: fc.array(remoteEvent, { maxLength: 4 }),
    }),
    fc.record({ op: fc.constant("commit" as const), idempotencyKey: nonEmptyId, claimsOnly: fc.boolean() }),
    fc.record({ op: fc.constant("locate" as const), taskId: nonEmptyId }),
    fc.record(
      { op: fc.constant("holds" as const), taskId: nonEmptyId, workflowId: id },
      { requiredKeys: ["op", "taskId"] },
    ),
  )
  .map(stripUndefined);

const task = fc.record(
  { id, deadline: number, prerequisites: fc.array(id, { maxLength: 3 }), workflowId: id, payload },
  { requiredKeys: ["id", "deadline", "prerequisites"] },
);
const lease = fc.record(
  {
    taskId: id,
    owner: id,
    token,
    secret,
    expiresAt: number,
    attempt: fc.integer({ min: 1, max: 100 }),
    task,
  },
  { requiredKeys: ["taskId", "owner", "token", "expiresAt", "attempt", "task"] },
);
const taskView = fc.record(
  {
    id,
    prerequisites: fc.array(id, { maxLength: 3 }),
    workflowId: id,
    payload,
    maxAttempts: fc.integer({ min: 1, max: 1000 }),
    hardDeadline: fc.boolean(),
    onPrerequisiteFailure: fc.constantFrom("cancel" as const, "continue" as const),
    state: fc.constantFrom(...Object.values(TaskState)),
    deadline: number,
    attempts: count,
    token,
    leaseOwner: id,
    leaseExpiresAt: number,
    retryAt: number,
    runnableSince: number,
    finishedAt: number,
    reason: text,
    unmetPrerequisites: count,
  },
  {
    requiredKeys: [
      "id",
      "prerequisites",
      "maxAttempts",
      "hardDeadline",
      "onPrerequisiteFailure",
      "state",
      "deadline",
      "attempts",
      "token",
      "unmetPrerequisites",
    ],
  },
);
const stats = fc.record({
  counts: fc.record(
    Object.fromEntries(Object.values(TaskState).map((s) => [s, count])) as Record<TaskState, typeof count>,
  ),
  runnable: count,
  oldestRunnableAgeMs: number,
  frontierDeadline: fc.option(number, { nil: null }),
  leaseTimeouts: count,
  attemptTimeouts: count,
  deadlineMisses: count,
  staleRejections: count,
  retries: count,
  leased: count,
});
const wireError = fc.record(
  {
    code: fc.constantFrom(...(Object.keys(WIRE_ERRORS) as WireErrorCode[])),
    message: text,
    retryable: fc.boolean(),
    problems: fc.array(
      fc.record({ taskId: id, code: fc.constantFrom(...Object.values(ProblemCode)), message: text }),
      { maxLength: 3 },
    ),
    taskId: id,
    state: id,
  },
  { requiredKeys: ["code", "message", "retryable"] },
);

const frontier = fc
  .record({
    shardId,
    head: fc.option(fc.record({ deadline: number, key: number, taskId: id }), { nil: null }),
    runnable: count,
    seq: count,
    at: number,
  })
  .map(({ head, ...rest }) => ({
    ...rest,
    deadline: head?.deadline ?? null,
    key: head?.key ?? null,
    taskId: head?.taskId ?? null,
  }));
const settleOutcome = fc.oneof(fc.record({ duplicate: fc.boolean() }), fc.record({ error: wireError }));

const reply = fc.oneof(
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("submit" as const),
    accepted: count,
    replayed: fc.boolean(),
  }),
  // Each grant with the shard that made it; `shards` (one per lease) and `frontier` sent or not.
  fc
    .record({
      grants: fc.array(fc.record({ lease, shard: shardId }), { maxLength: 3 }),
      withShards: fc.boolean(),
      frontier: fc.option(frontier, { nil: undefined }),
      grantsMoved: fc.option(fc.boolean(), { nil: undefined }),
    })
    .map(({ grants, withShards, frontier, grantsMoved }) =>
      stripUndefined({
        ok: true as const,
        op: "lease" as const,
        leases: grants.map((g) => g.lease),
        frontier,
        shards: withShards ? grants.map((g) => g.shard) : undefined,
        grantsMoved,
      }),
    ),
  fc.record({ ok: fc.constant(true as const), op: fc.constant("heartbeat" as const), expiresAt: number }),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("complete" as const),
    duplicate: fc.boolean(),
  }),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("fail" as const),
    state: fc.constantFrom(...Object.values(TaskState)),
  }),
  fc.record(
    {
      ok: fc.constant(true as const),
      op: fc.constant("settle" as const),
      results: fc.array(settleOutcome, { maxLength: 4 }),
      leases: fc.array(lease, { maxLength: 3 }),
      frontier,
      grantsMoved: fc.boolean(),
    },
    { requiredKeys: ["ok", "op", "results", "leases"] },
  ),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constantFrom("cancel" as const, "updateDeadline" as const),
  }),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("getTask" as const),
    task: fc.option(taskView, { nil: null }),
  }),
  fc.record(
    {
      ok: fc.constant(true as const),
      op: fc.constant("stats" as const),
      stats,
      shards: fc.record({
        answered: fc.array(nonEmptyId, { maxLength: 4 }),
        missing: fc.array(
          fc.record({
            shardId: nonEmptyId,
            code: fc.constantFrom(...(Object.keys(WIRE_ERRORS) as WireErrorCode[])),
          }),
          { maxLength: 4 },
        ),
      }),
    },
    { requiredKeys: ["ok", "op", "stats"] },
  ),
  fc.record({ ok: fc.constant(true as const), op: fc.constant("prepare" as const), accepted: count }),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("commit" as const),
    accepted: count,
    replayed: fc.boolean(),
  }),
  fc.record({ ok: fc.constant(true as const), op: fc.constant("abort" as const) }),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("deliverEvents" as const),
    results: fc.array(fc.constantFrom("applied" as const, "duplicate" as const, "unknown" as const), {
      maxLength: 4,
    }),
  }),
  fc.record({
    ok: fc.constant(true as const),
    op: fc.constant("locate" as const),
    claim: fc.option(claim, { nil: null }),
  }),
  fc.record({ ok: fc.constant(true as const), op: fc.constant("holds" as const), held: fc.boolean() }),
  fc.record({ ok: fc.constant(false as const), error: wireError }),
);

const message: fc.Arbitrary<Message> = fc.oneof(
  request.map((r) => ({ kind: "request" as const, request: r }) as Message),
  reply.map((r) => ({ kind: "reply" as const, reply: r }) as Message),
  frontier.map((f) => ({ kind: "frontier" as const, frontier: f })),
);

/** What a field may be changed to: wrong types, near-misses of valid values, small nested values. */
const fieldValue = fc.anything({
  maxDepth: 2,
  maxKeys: 3,
  key: fc.constantFrom("taskId", "workflowId", "token", "duplicate", "error", "code", "owner", "extra"),
  values: [
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -2, max: 3 }),
    number,
    token,
    fc.constantFrom(2 ** 31, 2 ** 53, 1.5, Number.NaN),
    fc.string({ maxLength: 6 }),
    fc.constantFrom("", "s1", "a.b", "x".repeat(257), "STALE_LEASE", "settle", "lease"),
  ],
});

/** A change somewhere in a message body: replace, remove or add a field, at a path chosen by `steps`. */
const mutation = fc.record({
  steps: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
  action: fc.constantFrom("set" as const, "delete" as const, "add" as const),
  value: fieldValue,
});

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

const isContainer = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype);

/** A deep copy of `body` with `m` applied (below the top level's `op` and `ok`, which pick the parser). */
function mutate(body: object, m: Mutation): Record<string, unknown> {
  const copy = structuredClone(body) as Record<string, unknown>;
  let node: Record<string, unknown> = copy;
  for (let i = 0; i < m.steps.length; i++) {
    const keys = Object.keys(node).filter((k) => node !== copy || (k !== "op" && k !== "ok"));
    const key = keys.length > 0 ? keys[m.steps[i]! % keys.length]! : undefined;
    const child = key === undefined ? undefined : node[key];
    if (i < m.steps.length - 1 && isContainer(child)) {
      node = child;
      continue;
    }
    if (m.action === "add" || key === undefined) {
      if (Array.isArray(node)) node.push(m.value);
      else node["extra"] = m.value;
    } else if (m.action === "delete") {
      if (Array.isArray(node)) node.splice(Number(key), 1);
      else delete node[key];
    } else node[key] = m.value;
    break;
  }
  return copy;
}

/** The error `fn` throws, or undefined. */
function refusal(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

/** The only errors decode may throw: anything else is a crash a peer could trigger. */
function decodesOrRefuses(bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (err) {
    if (!(err instanceof ProtocolError) && !(err instanceof FrontierError)) throw err;
  }
}

// --------------------------------------------------------------- properties

describe("codec properties", () => {
  it("decode(encode(m)) equals m, for every valid message", () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decode(encode(m))).toEqual(m);
      }),
      { numRuns: 500 },
    );
  });

  it("re-encoding a decoded message gives the same bytes", () => {
    fc.assert(
      fc.property(message, (m) => {
        const bytes = encode(m);
        expect(Buffer.compare(encode(decode(bytes)), bytes)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it("encode accepts exactly what decode accepts, refusing alike, for valid and broken messages", () => {
    const packr = new Packr({ useRecords: false });
    fc.assert(
      fc.property(message, fc.option(mutation, { nil: undefined }), (m, change) => {
        const original = m.kind === "request" ? m.request : m.kind === "reply" ? m.reply : m.frontier;
        const body = change === undefined ? { ...original } : mutate(original, change);
        const sent = { kind: m.kind, [m.kind]: body } as unknown as Message;
        let bytes: Uint8Array | undefined;
        const onEncode = refusal(() => (bytes = encode(sent)));
        let decoded: Message | undefined;
        const onDecode = refusal(
          () => (decoded = decode(packr.pack({ v: PROTOCOL_VERSION, kind: m.kind, ...body }))),
        );
        if (onEncode === undefined || onDecode === undefined) {
          expect(onDecode, `decode: ${onDecode?.message}`).toBeUndefined();
          expect(onEncode, `encode: ${onEncode?.message}`).toBeUndefined();
          // What was sent is what arrives, and what the bytes say.
          expect(decode(bytes!)).toEqual(decoded);
          return;
        }
        for (const err of [onEncode, onDecode]) {
          if (!(err instanceof ProtocolError) && !(err instanceof FrontierError)) throw err;
        }
        expect(onDecode.constructor).toBe(onEncode.constructor);
        expect((onDecode as ProtocolError).code).toBe((onEncode as ProtocolError).code);
        expect(onDecode.message).toBe(onEncode.message);
      }),
      { numRuns: 2_000 },
    );
  });

  it("a lease reply's shards are accepted exactly when they name one valid shard per lease", () => {
    const maybeShardId = fc.oneof(
      shardId,
      fc.constantFrom("", "a.b", "*", ">", "s 1", "x".repeat(65), "é"),
      fc.string({ maxLength: 5 }),
    );
    fc.assert(
      fc.property(
        fc.array(lease, { maxLength: 3 }),
        fc.array(maybeShardId, { maxLength: 4 }),
        (leases, shards) => {
          const reply = { ok: true, op: "lease", leases, shards } as unknown as Reply;
          const valid = shards.length === leases.length && shards.every((s) => isValidToken(s));
          const err = refusal(() => decodeReply(encodeReply(reply), "lease"));
          if (valid) expect(err).toBeUndefined();
          else {
            expect(err).toBeInstanceOf(ProtocolError);
            expect((err as ProtocolError).code).toBe("BAD_MESSAGE");
            expect(err!.message).toMatch(/^shards(\[\d+\])?: expected /);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("decode of arbitrary bytes returns a message or throws a typed error, never anything else", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodesOrRefuses), { numRuns: 2_000 });
  });

  it("decode of a corrupted valid message does the same", () => {
    const corruption = fc.oneof(
      fc.record({
        kind: fc.constant("flip" as const),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant("append" as const),
        extra: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
    );
    fc.assert(
      fc.property(message, fc.array(corruption, { minLength: 1, maxLength: 3 }), (m, corruptions) => {
        let bytes = Uint8Array.from(encode(m));
        for (const c of corruptions) {
          if (c.kind === "flip" && bytes.length > 0) bytes[c.at % bytes.length] = c.value;
          if (c.kind === "truncate") bytes = bytes.subarray(0, c.at % (bytes.length + 1));
          if (c.kind === "append") bytes = Uint8Array.from([...bytes, ...c.extra]);
        }
        decodesOrRefuses(bytes);
      }),
      { numRuns: 1_000 },
    );
  });

  it("decode of an envelope whose known fields hold arbitrary values only throws typed errors", () => {
    const packr = new Packr({ useRecords: false });
    const keys = [
      "op",
      "tasks",
      "idempotencyKey",
      "owner",
      "max",
      "leaseMs",
      "waitMs",
      "requestId",
      "maxKey",
      "attempt",
      "replayOnly",
      "forwarded",
      "taskId",
      "workflowId",
      "token",
      "retryable",
      "reason",
      "deadline",
      "ok",
      "error",
      "leases",
      "task",
      "stats",
      "shards",
      "shardId",
      "key",
      "runnable",
      "seq",
      "at",
      "accepted",
      "replayed",
      "expiresAt",
      "duplicate",
      "state",
      "completes",
      "lease",
      "results",
      "frontier",
      "extra",
    ];
    const body = fc.dictionary(fc.constantFrom(...keys), fc.anything({ maxDepth: 3 }), { maxKeys: 6 });
    const op = fc.constantFrom(...OPS);
    fc.assert(
      fc.property(fc.constantFrom("request", "reply", "frontier"), op, body, (kind, o, fields) => {
        let bytes: Uint8Array;
        try {
          bytes = packr.pack({ v: PROTOCOL_VERSION, kind, op: o, ...fields });
        } catch {
          return; // Not packable (fc.anything can make such values); nothing to decode.
        }
        decodesOrRefuses(bytes);
      }),
      { numRuns: 2_000 },
    );
  });

  it("sizeBound never underestimates what msgpackr encodes (the payload check relies on it)", () => {
    const value = fc.oneof(
      fc.anything({ maxDepth: 3, withDate: true, withTypedArray: true, withNullPrototype: true }),
      fc.uint8Array(),
      fc.string({ unit: "binary" }),
      fc.array(fc.double()),
    );
    fc.assert(
      fc.property(value, (v) => {
        let exact: number;
        try {
          exact = new Packr({ useRecords: false }).pack(v).byteLength;
        } catch {
          return;
        }
        expect(sizeBound(v, Number.MAX_SAFE_INTEGER)).toBeGreaterThanOrEqual(exact);
      }),
      { numRuns: 2_000 },
    );
    // Past the limit it stops counting early.
    expect(sizeBound(["x".repeat(100), "y".repeat(1e6)], 50)).toBeGreaterThan(50);
  });

  it("an error reply for anything thrown always encodes, decodes, and rebuilds the same code", () => {
    const thrownValue = fc.oneof(
      fc.anything({ maxDepth: 2 }),
      text.map((m) => new Error(m)),
      wireError.map((w) => fromWireError(w)),
    );
    fc.assert(
      fc.property(thrownValue, (value) => {
        const sent = errorReply(value);
        const received = decodeReply(encodeReply(sent), "stats");
        expect(received).toEqual(sent);
        try {
          unwrapReply(received);
        } catch (err) {
          expect((err as ProtocolError | FrontierError).code).toBe(sent.error.code);
          return;
        }
        throw new Error("unwrapReply did not throw");
      }),
      { numRuns: 500 },
    );
  });
});
