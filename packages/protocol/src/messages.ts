/**
 * Every message of the wire protocol, as one valibot schema each; the types
 * are derived from the schemas, so a field is written once. Requests and
 * replies are discriminated unions on `op`; a reply is
 * `{ ok: true, op, ...result }` or `{ ok: false, error }`. These are the
 * shapes callers build and read; the codec adds the envelope (`v`, `kind`)
 * on the way out and strips it on the way in (see codec.ts for the layout on
 * the wire), and checks each body with `requestBody`, `replyBody` or
 * `frontierBody` both ways.
 *
 * Data shapes (TaskInput, Lease, TaskView, SchedulerStats) are the engine's
 * own, so a shard passes what the engine returns straight through; their
 * schemas (data.ts) are held to the engine's types.
 */
import type { RemoteApplied, RemoteOutcome } from "@frontier/core";
import * as v from "valibot";
import {
  attemptNumber,
  clientTime,
  detailOnlyWhenUnavailable,
  id,
  lease,
  leaseDuration,
  leaseMax,
  leaseSecret,
  leaseTypes,
  nonEmptyId,
  payload,
  prerequisites,
  problems,
  reason,
  shardToken,
  shardUnavailableDetail,
  slotNumber,
  stateFilter,
  stats,
  statsWithoutTypes,
  taskInput,
  taskRecord,
  taskState,
  taskSummary,
  taskType,
  taskView,
  upTo,
  wireError,
  wireErrorCode,
} from "./data.js";
import { fromWireError, toWireError, WireErrorCode } from "./errors.js";
import {
  MAX_ANNOUNCED_TYPES,
  MAX_DEADLINE,
  MAX_EVENTS_PER_DELIVERY,
  MAX_FRONTIER_DEPTH,
  MAX_LEASES_PER_REQUEST,
  MAX_LINKS_PER_PART,
  MAX_LIST_LIMIT,
  MAX_MOVE_PART_TASKS,
  MAX_MOVE_PARTS,
  MAX_SETTLES_PER_REQUEST,
  MAX_SHARDS,
  MAX_TASKS_PER_BATCH,
  MAX_WAIT_MS,
} from "./limits.js";
import {
  bool,
  bounded,
  count,
  eachOnce,
  expectedText,
  type Failure,
  isPlainMap,
  list,
  type MapOf,
  map,
  nullable,
  num,
  oneOf,
  optional,
  positive,
  refuse,
  rule,
  type Schema,
  say,
} from "./schema.js";
import { SLOT_COUNT } from "./slots.js";

/** The protocol version every envelope carries. Any change to a message's shape bumps it. */
export const PROTOCOL_VERSION = 14;

/** The operations, in the order the README lists them. Each is also the last token of its subject. */
export const OPS = [
  "submit",
  "lease",
  "heartbeat",
  "complete",
  "fail",
  "release",
  "settle",
  "cancel",
  "updateDeadline",
  "getTask",
  "stats",
  // Operators' queries and retry (docs/queries.md).
  "listTasks",
  "getWorkflow",
  "retry",
  // Shard-only: the two phases of a submit that spans several shards (see docs/cluster.md).
  "prepare",
  "commit",
  "abort",
  // Shard-only: a part of a batch already rejected, checked against the shard's state (docs/cluster.md).
  "check",
  // Slot movement (docs/cluster.md): an admin's move of a slot (coordinator, then the slot's shard),
  // and the slot's tasks handed from shard to shard (shards only).
  "moveSlot",
  "adopt",
  // Large workflows (docs/cluster.md): completion events of cross-partition edges, shard to shard.
  "deliverEvents",
  // One id space per cluster (docs/cluster.md): where a task id's claim says its task is
  // (coordinator → the id's home shard), and whether a claim's task is still held (shard → shard).
  "locate",
  "holds",
] as const;
export type Op = (typeof OPS)[number];

export function isOp(value: unknown): value is Op {
  return typeof value === "string" && (OPS as readonly string[]).includes(value);
}

const op = <O extends Op>(name: O) => v.literal(name);

const REMOTE_OUTCOMES: readonly RemoteOutcome[] = ["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"];
const REMOTE_APPLIED: readonly RemoteApplied[] = ["applied", "duplicate", "unknown"];

/** The fields of a request that names one task (see TaskRef). */
const taskRef = {
  taskId: id,
  workflowId: optional(id),
  /** The task is of a large workflow: the request routes by (workflowId, taskId), not by workflowId. */
  large: optional(bool),
};

/** The fields of a request that names a held lease (HeldLease). */
const heldLease = {
  ...taskRef,
  token: count,
  /** LEASE_SECRET_LENGTH base64url characters. */
  secret: leaseSecret,
};
/**
 * A lease as its holder names it: the task, the fencing token, and the
 * lease's secret, which only the grant carried (`Lease.secret`). A shard
 * takes a heartbeat, complete or fail only with the secret of a lease it
 * granted under that token; so the token, which orders leases and is no
 * secret (getTask shows it), authorizes nothing by itself.
 */
export type HeldLease = MapOf<typeof heldLease>;

/** A batch of tasks: at most MAX_TASKS_PER_BATCH, beyond it BATCH_TOO_LARGE. */
const tasks = bounded(taskInput, MAX_TASKS_PER_BATCH, "MAX_TASKS_PER_BATCH", WireErrorCode.BATCH_TOO_LARGE);

const remoteLink = map({ prerequisite: nonEmptyId, dependent: nonEmptyId, workflowId: nonEmptyId });
/**
 * A cross-partition edge of a large workflow, sent with the part that holds
 * its prerequisite (the engine's RemoteLink): the shard checks that the
 * prerequisite is a task of the workflow, large, held there or in the part,
 * and registers the dependent, to tell it the prerequisite's outcome.
 */
export type RemoteLinkMessage = v.InferOutput<typeof remoteLink>;

/** A part's remote links: at most MAX_LINKS_PER_PART. */
const links = optional(
  bounded(remoteLink, MAX_LINKS_PER_PART, "MAX_LINKS_PER_PART", WireErrorCode.BATCH_TOO_LARGE),
);

/** An empty batch changes nothing, yet a shard would keep its key for the retention period. */
const someTasks =
  (what: string) =>
  (r: { readonly tasks: readonly unknown[]; readonly links?: readonly unknown[] }): Failure | undefined =>
    r.tasks.length === 0 && (r.links === undefined || r.links.length === 0)
      ? {
          at: ["tasks"],
          code: WireErrorCode.INVALID_ARGUMENT,
          text: `a ${what} carries at least one task (or remote link)`,
        }
      : undefined;

const idClaim = map({ taskId: nonEmptyId, workflowId: optional(id), large: optional(bool) });
/**
 * A task id's claim, kept by the shard owning the id's home slot
 * (`homeSlotOf`): the id is taken in the cluster by the task of this id in
 * this workflow (none: the task has no workflow), whose slot is
 * `slotOfTask({ id: taskId, workflowId, large })` (`large`: the task is of a
 * large workflow, placed by (workflowId, id)).
 */
export type IdClaim = v.InferOutput<typeof idClaim>;

/** The claim a task makes of its own id. */
export function claimOf(task: {
  readonly id: string;
  readonly workflowId?: string | undefined;
  readonly large?: boolean | undefined;
}): IdClaim {
  if (task.workflowId === undefined) return { taskId: task.id };
  return task.large === true
    ? { taskId: task.id, workflowId: task.workflowId, large: true }
    : { taskId: task.id, workflowId: task.workflowId };
}

/**
 * The claims of `claims` that are not of `tasks`: those of a part's claims
 * whose tasks other shards hold (a task of the part is its own id's claim
 * where it lives), which the claims' home keeps as rows. O(claims + tasks).
 */
export function claimsOfOtherTasks(
  claims: readonly IdClaim[],
  tasks: readonly { readonly id: string }[],
): readonly IdClaim[] {
  if (claims.length === 0 || tasks.length === 0) return claims;
  const own = new Set(tasks.map((t) => t.id));
  return claims.filter((c) => !own.has(c.taskId));
}

/** The claims of a part: at most MAX_TASKS_PER_BATCH (one per task of the batch). */
const claims = bounded(idClaim, MAX_TASKS_PER_BATCH, "MAX_TASKS_PER_BATCH", WireErrorCode.BATCH_TOO_LARGE);

/** A part that carries no task, remote link or claim would change nothing. */
const someTasksOrClaims =
  (what: string) =>
  (r: {
    readonly tasks: readonly unknown[];
    readonly links?: readonly unknown[] | undefined;
    readonly claims?: readonly unknown[] | undefined;
  }): Failure | undefined =>
    r.tasks.length === 0 && (r.links?.length ?? 0) === 0 && (r.claims?.length ?? 0) === 0
      ? {
          at: ["tasks"],
          code: WireErrorCode.INVALID_ARGUMENT,
          text: `a ${what} carries at least one task, remote link or claim`,
        }
      : undefined;

// ---------------------------------------------------------------- requests

const submitRequest = map(
  {
    op: op("submit"),
    tasks,
    /** Chosen by the client, unique per batch, 1..MAX_ID_LENGTH. */
    idempotencyKey: nonEmptyId,
    /** Coordinator → shard only: the part's remote links (large workflows), registered with its tasks. */
    links,
    /**
     * Coordinator → shard only: the claims of the batch's ids homed on this
     * shard (IdClaim). Absent: the coordinator saw one shard owning every
     * slot, so every id of the batch is homed here (the shard checks that it
     * does own every slot).
     */
    claims: optional(claims),
  },
  someTasks("submit"),
);
/** Add a batch of tasks, atomically. Resending the same idempotencyKey returns the first outcome. */
export type SubmitRequest = v.InferOutput<typeof submitRequest>;

const leaseRequest = map(
  {
    op: op("lease"),
    /** The worker that will hold the leases. */
    owner: nonEmptyId,
    /** 1..MAX_LEASES_PER_REQUEST. A reply may hold fewer (also to stay under MAX_MESSAGE_BYTES). */
    max: leaseMax,
    /** Lease duration, ms; a positive integer. */
    leaseMs: leaseDuration,
    /** Long-poll: how long to wait when nothing is runnable, ms, 0..MAX_WAIT_MS. 0 answers at once. */
    waitMs: upTo(0, MAX_WAIT_MS, "MAX_WAIT_MS"),
    /** Chosen by the client, unique per attempt; a retry with the same id gets the same grant. */
    requestId: nonEmptyId,
    /**
     * Lease only tasks of these types (1..MAX_LEASE_TYPES distinct task
     * types), earliest deadline first among them. Absent: the default type
     * only, so a task of another type never reaches a worker that named none.
     */
    types: optional(leaseTypes),
    /**
     * Coordinator → shard only: lease only tasks whose ordering key is at most
     * this (the next shard's frontier), so a request filled from several
     * shards keeps global earliest-deadline-first order.
     */
    maxKey: optional(num),
    /**
     * Coordinator → shard only, with `maxKey`: of the tasks whose key equals
     * `maxKey`, only those whose id is at most this (the next shard's first
     * task), so ties between shards go by task id, as within one.
     */
    maxTaskId: optional(nonEmptyId),
    /**
     * Coordinator → shard only: which ask of one fill at this shard this is,
     * from 1 (absent = 1), 1..MAX_ATTEMPT. A coordinator that fills a request
     * from several shards may ask one shard again in the same fill; each ask
     * is a grant of its own, kept and replayed apart from the others, while
     * every ask stays under the client's `requestId` (its grants are the
     * request's grants: what a replay-only lookup answers).
     */
    ask: optional(attemptNumber),
    /**
     * Which send of `requestId` this is, from 1 (absent = 1), 1..MAX_ATTEMPT.
     * Client → coordinator: a resend (2 and up) may have been granted already
     * (its reply lost), so the coordinator asks every shard for grants kept
     * under the id before granting anew. Coordinator → shard: a shard that was
     * asked under a later attempt grants nothing to an earlier one, whose
     * client gave it up (see `replayOnly`).
     */
    attempt: optional(attemptNumber),
    /**
     * Coordinator → shard only: answer with the grants kept for this owner and
     * client request id (all its asks), or with none;
     * never grant anew. From the answer on, lease asks under that client id
     * from attempts before `attempt` grant nothing (a fence, kept durably).
     */
    replayOnly: optional(bool),
    /**
     * Coordinator → shard only: the ask was published with the worker's own
     * reply subject (NATS reply forwarding: a coordinator parks a long-poll
     * at the only shard there is, and the grant goes from the shard straight
     * to the worker, one hop fewer). So the shard answers as a coordinator
     * would: `shards` names it for every lease, and no `frontier`.
     */
    forwarded: optional(bool),
  },
  (r) =>
    r.maxTaskId !== undefined && r.maxKey === undefined
      ? {
          at: ["maxTaskId"],
          code: WireErrorCode.INVALID_ARGUMENT,
          text: "only with maxKey (it breaks ties at that key)",
        }
      : undefined,
);
/** Lease up to `max` runnable tasks, earliest deadline first, waiting up to `waitMs` for one. */
export type LeaseRequest = v.InferOutput<typeof leaseRequest>;

const heartbeatRequest = map({ op: op("heartbeat"), ...heldLease, leaseMs: leaseDuration });
/** Extend a live lease by `leaseMs` from now. */
export type HeartbeatRequest = v.InferOutput<typeof heartbeatRequest>;

/**
 * The task's result (any msgpack value, at most MAX_RESULT_BYTES encoded
 * and MAX_PAYLOAD_DEPTH deep), kept with the task and handed to its
 * dependents' leases. A resent complete keeps the first one.
 */
const result = optional(payload);

const completeRequest = map({ op: op("complete"), ...heldLease, result });
export type CompleteRequest = v.InferOutput<typeof completeRequest>;

const failRequest = map({
  op: op("fail"),
  ...heldLease,
  /** False: fail the task for good, whatever attempts it has left. */
  retryable: bool,
  /** At most MAX_REASON_LENGTH. */
  reason,
});
export type FailRequest = v.InferOutput<typeof failRequest>;

const releaseRequest = map({ op: op("release"), ...heldLease });
/**
 * Hand a held lease back without spending an attempt: the task is RUNNABLE
 * again at once (no backoff), its attempt count as before the grant; the
 * token stays spent, so the released lease is fenced. Authorized like
 * complete and fail (token and secret). A resend while no lease was granted
 * since answers `duplicate: true`; after one, STALE_LEASE.
 */
export type ReleaseRequest = v.InferOutput<typeof releaseRequest>;

const completedLease = map({ ...heldLease, result });
/** A task a worker finished, named by its lease (token and secret), with its result as a complete's. */
export type CompletedLease = v.InferOutput<typeof completedLease>;

const settleLease = map({
  /** The worker that will hold the leases. */
  owner: nonEmptyId,
  /** 1..MAX_LEASES_PER_REQUEST. */
  max: leaseMax,
  /** Lease duration, ms; a positive integer. */
  leaseMs: leaseDuration,
  /** Chosen by the client, unique per settle; a resend under it gets the same grant. */
  requestId: nonEmptyId,
  /** Lease only tasks of these types, as LeaseRequest.types (absent: the default type only). */
  types: optional(leaseTypes),
  /** Which send of `requestId` this is, from 1 (absent = 1), 1..MAX_ATTEMPT. */
  attempt: optional(attemptNumber),
});
/**
 * The next leases a `settle` sent straight to a shard asks for, granted in
 * the same commit as its completes (as BullMQ's moveToFinished fetches the
 * next job). Idempotent like a lease request: a resend (`attempt` 2 and up)
 * gets back the first send's grant, and fences the earlier sends.
 */
export type SettleLease = v.InferOutput<typeof settleLease>;

const settleRequest = map({
  op: op("settle"),
  /** 0..MAX_SETTLES_PER_REQUEST tasks, each at most once. */
  completes: bounded(
    completedLease,
    MAX_SETTLES_PER_REQUEST,
    "MAX_SETTLES_PER_REQUEST",
    WireErrorCode.BATCH_TOO_LARGE,
  ),
  lease: optional(settleLease),
});
/**
 * A worker's finished tasks in one request: each completed under its lease
 * token, all in one commit. Sent to the shard that granted the leases (or to
 * a coordinator, which splits it by owner). Each task gets its own outcome:
 * one stale token fails only its task. To a shard, `lease` also asks for the
 * next tasks, granted in the same commit, earliest first and never past the
 * other shards' announced frontiers (global earliest-deadline-first); a
 * coordinator leaves the lease out (it grants through `lease`).
 */
export type SettleRequest = v.InferOutput<typeof settleRequest>;

const duplicateOutcome = map({ duplicate: bool });
const errorOutcome = map({ error: wireError });
/** One outcome of a settle: refused when it names an `error`, else completed. */
const settleOutcome = v.lazy((input) =>
  isPlainMap(input) && "error" in input ? errorOutcome : duplicateOutcome,
);
/** What became of one task of a settle: completed (`duplicate`: already, under this token), or refused. */
export type SettleOutcome = v.InferOutput<typeof settleOutcome>;

const cancelRequest = map({
  op: op("cancel"),
  ...taskRef,
  /** At most MAX_REASON_LENGTH. */
  reason: optional(reason),
});
export type CancelRequest = v.InferOutput<typeof cancelRequest>;

const updateDeadlineRequest = map(
  { op: op("updateDeadline"), ...taskRef, deadline: num },
  clientTime("deadline", "taskId"),
);
export type UpdateDeadlineRequest = v.InferOutput<typeof updateDeadlineRequest>;

const getTaskRequest = map({ op: op("getTask"), ...taskRef });
export type GetTaskRequest = v.InferOutput<typeof getTaskRequest>;

const statsRequest = map({ op: op("stats") });
export type StatsRequest = v.InferOutput<typeof statsRequest>;

const listCursor = map({
  deadline: v.pipe(
    num,
    v.check(
      (d: number) => Number.isFinite(d),
      (issue) => expectedText("a finite number", issue.input),
    ),
  ),
  id: nonEmptyId,
  shardId: shardToken,
});
/**
 * Where a page of tasks resumes: right after this task, in the order of
 * (deadline, id, shardId) — the shard id breaks ties between tasks of equal
 * deadline and id on two shards. A typed value of its own: a client sends
 * back the `next` it got, and nobody parses it out of a string.
 */
export type ListCursor = v.InferOutput<typeof listCursor>;

/** A deadline range's bound: a finite number within ±MAX_DEADLINE. */
const deadlineBound = v.pipe(
  num,
  v.check(
    (d) => Number.isFinite(d) && d <= MAX_DEADLINE && d >= -MAX_DEADLINE,
    say(WireErrorCode.INVALID_ARGUMENT, (d) => `${d} is not a deadline (finite, within ±MAX_DEADLINE)`),
  ),
);

/** 1..MAX_LIST_LIMIT. A reply may hold fewer (to stay under MAX_LIST_BYTES) and still have a `next`. */
const listLimit = upTo(1, MAX_LIST_LIMIT, "MAX_LIST_LIMIT");

const listTasksRequest = map({
  op: op("listTasks"),
  /** Only these states, 1..7 distinct. */
  states: optional(stateFilter),
  workflowId: optional(id),
  /** Only tasks of these types, 1..MAX_LEASE_TYPES distinct (`"default"`: those submitted without one). */
  types: optional(leaseTypes),
  /** Only deadlines ≥ this. */
  deadlineFrom: optional(deadlineBound),
  /** Only deadlines < this. */
  deadlineTo: optional(deadlineBound),
  after: optional(listCursor),
  limit: listLimit,
});
/**
 * A page of tasks matching a filter, in (deadline, id, shardId) order,
 * without payloads. A coordinator asks every shard for a page from the same
 * cursor and merges them; the reply's `next` (null: no more) starts the next
 * page. Each filter field narrows; none given lists every task.
 */
export type ListTasksRequest = v.InferOutput<typeof listTasksRequest>;

const getWorkflowRequest = map({
  op: op("getWorkflow"),
  workflowId: nonEmptyId,
  after: optional(listCursor),
  limit: listLimit,
});
/**
 * One workflow's tasks with their prerequisites (its graph), in
 * (deadline, id) order, from the one shard owning the workflow's slot.
 */
export type GetWorkflowRequest = v.InferOutput<typeof getWorkflowRequest>;

const retryRequest = map(
  { op: op("retry"), ...taskRef, deadline: optional(num) },
  clientTime("deadline", "taskId"),
);
/**
 * Run a task that ended FAILED, CANCELLED or EXPIRED again from the start
 * (attempts from 0): RUNNABLE, or WAITING on prerequisites still live. An
 * admin's op. `deadline`: a new deadline (needed when a hard deadline passed).
 */
export type RetryRequest = v.InferOutput<typeof retryRequest>;

// A prepared part has a submit's shape (phase one of a multi-shard submit); it may carry only
// claims (the ids of other shards' tasks homed here) or remote links, then no task.
const prepareRequest = map(
  { op: op("prepare"), tasks, idempotencyKey: nonEmptyId, links, claims: optional(claims) },
  someTasksOrClaims("prepare"),
);
/**
 * Phase one of a submit spanning several shards: check the part against the
 * shard's state and reserve its ids and its claims (for PREPARE_TTL_MS) under the key.
 */
export type PrepareRequest = v.InferOutput<typeof prepareRequest>;

const commitRequest = map({
  op: op("commit"),
  idempotencyKey: nonEmptyId,
  /**
   * Make only the part's claims durable; its tasks stay prepared until a
   * commit without it. A coordinator commits every claim of a batch before
   * any of its tasks (docs/cluster.md, "One id space per cluster"), so a
   * task is never stored without its claim.
   */
  claimsOnly: optional(bool),
});
/** Phase two: make the prepared part durable. Idempotent under the key. */
export type CommitRequest = v.InferOutput<typeof commitRequest>;

const abortRequest = map({ op: op("abort"), idempotencyKey: nonEmptyId });
/** Drop a prepared part (another part was rejected). Unknown keys are fine. */
export type AbortRequest = v.InferOutput<typeof abortRequest>;

const checkRequest = map(
  { op: op("check"), tasks, links, claims: optional(claims) },
  someTasksOrClaims("check"),
);
/**
 * Check a part of a batch the coordinator rejects anyway (it has batch-local
 * problems) against the shard's state, so one rejection lists every problem.
 * Reserves nothing and changes nothing; the shard answers with the problems.
 */
export type CheckRequest = v.InferOutput<typeof checkRequest>;

const moveSlotRequest = map({ op: op("moveSlot"), slot: slotNumber, target: shardToken, moveId: nonEmptyId });
/**
 * Move slot `slot` to shard `target` (admin → coordinator → the slot's
 * shard, which drives the move; docs/cluster.md, "Slot movement"). The
 * reply comes once the move has ended; a resend under the same `moveId`
 * joins or replays it.
 */
export type MoveSlotRequest = v.InferOutput<typeof moveSlotRequest>;

const movedEntry = map({
  key: nonEmptyId,
  taskIds: prerequisites,
  createdAt: num,
  /** Lease-request entries only: the grants' tokens, parallel to taskIds. */
  tokens: optional(list(count)),
  fence: optional(attemptNumber),
});
/** One idempotency or lease-request entry moving with its tasks (the shard's journal row, typed). */
export type MovedEntry = v.InferOutput<typeof movedEntry>;

const movedLease = map({ taskId: nonEmptyId, token: positive, secret: leaseSecret });
/** The proof of a live lease of a moving task, made by the shard that granted it. */
export type MovedLease = v.InferOutput<typeof movedLease>;

/** Tasks, entries or leases of one adopt part: at most MAX_MOVE_PART_TASKS each. */
const partOf = <T>(item: Schema<T>) =>
  bounded(item, MAX_MOVE_PART_TASKS, "MAX_MOVE_PART_TASKS", WireErrorCode.BATCH_TOO_LARGE);

const adoptRequest = map(
  {
    op: op("adopt"),
    moveId: nonEmptyId,
    slot: slotNumber,
    /** The shard the slot leaves. */
    source: shardToken,
    part: count,
    parts: upTo(1, MAX_MOVE_PARTS, "MAX_MOVE_PARTS"),
    tasks: partOf(taskRecord),
    entries: partOf(movedEntry),
    leases: partOf(movedLease),
    /** The claims homed in the slot (its ids' claims move with it); absent: none in this part. */
    claims: optional(partOf(idClaim)),
    /**
     * When the source exported the slot (its clock, ms): the same in every
     * part of one export, and another in an export made again under the
     * same move id, which the target refuses rather than take for the
     * export it adopted. Absent from older sources: not checked.
     */
    exportedAt: optional(num),
  },
  (r) =>
    r.part >= r.parts
      ? {
          at: ["part"],
          code: WireErrorCode.BAD_MESSAGE,
          text: expectedText(`a part below parts (${r.parts})`, r.part),
        }
      : undefined,
);
/**
 * Part `part` (from 0) of `parts` of a slot's export, shard → shard only
 * (docs/cluster.md, "Slot movement"). The target keeps the parts of a move
 * until it has them all, then adopts them in one commit; every part of a
 * move it adopted before answers `adopted` again.
 */
export type AdoptRequest = v.InferOutput<typeof adoptRequest>;

const remoteEvent = map({
  prerequisite: nonEmptyId,
  dependent: nonEmptyId,
  workflowId: nonEmptyId,
  outcome: oneOf(REMOTE_OUTCOMES),
});
/** A cross-partition completion event (the engine's RemoteEvent): `prerequisite` ended `outcome`. */
export type RemoteEventMessage = v.InferOutput<typeof remoteEvent>;

const deliverEventsRequest = map({
  op: op("deliverEvents"),
  /** The sending shard (for logs and metrics; an event is deduped by its pair, not by its sender). */
  source: shardToken,
  events: bounded(
    remoteEvent,
    MAX_EVENTS_PER_DELIVERY,
    "MAX_EVENTS_PER_DELIVERY",
    WireErrorCode.BATCH_TOO_LARGE,
  ),
});
/**
 * Completion events for dependents held by the receiving shard, shard →
 * shard only (docs/cluster.md, "Large workflows across shards"). Each is
 * applied once there, durably, before the reply; see the reply's `results`.
 */
export type DeliverEventsRequest = v.InferOutput<typeof deliverEventsRequest>;
const locateRequest = map({ op: op("locate"), taskId: nonEmptyId });
/**
 * Where the task of id `taskId` is: asked of the shard owning the id's home
 * slot, which answers with the id's claim (or null: no task holds it). A
 * coordinator then sends a request naming the task by id alone to the
 * claim's workflow: one hop instead of asking every shard.
 */
export type LocateRequest = v.InferOutput<typeof locateRequest>;

const holdsRequest = map({
  op: op("holds"),
  taskId: nonEmptyId,
  workflowId: optional(id),
  large: optional(bool),
});
/**
 * Shard → shard only: whether the shard holds the task of this id in this
 * workflow (any state), or holds it in a prepared part or a commit in
 * progress. An id's home asks it of a claim's slot before it gives the id
 * to another task (the claim's task may have been dropped by retention).
 */
export type HoldsRequest = v.InferOutput<typeof holdsRequest>;

/** Each op's request schema. */
const REQUESTS = {
  submit: submitRequest,
  lease: leaseRequest,
  heartbeat: heartbeatRequest,
  complete: completeRequest,
  fail: failRequest,
  release: releaseRequest,
  settle: settleRequest,
  cancel: cancelRequest,
  updateDeadline: updateDeadlineRequest,
  getTask: getTaskRequest,
  stats: statsRequest,
  listTasks: listTasksRequest,
  getWorkflow: getWorkflowRequest,
  retry: retryRequest,
  prepare: prepareRequest,
  commit: commitRequest,
  abort: abortRequest,
  check: checkRequest,
  moveSlot: moveSlotRequest,
  adopt: adoptRequest,
  deliverEvents: deliverEventsRequest,
  locate: locateRequest,
  holds: holdsRequest,
} as const satisfies { readonly [O in Op]: Schema<{ readonly op: O }> };

export type Request = v.InferOutput<(typeof REQUESTS)[Op]>;
export type RequestOf<O extends Op> = Extract<Request, { readonly op: O }>;

/** `one of submit, lease, …` */
const ONE_OF_OPS = `one of ${OPS.join(", ")}`;

/** Not a map, or a map without a known op: named as such. */
const notARequest = refuse((input) =>
  isPlainMap(input)
    ? { at: ["op"], code: WireErrorCode.BAD_MESSAGE, text: expectedText(ONE_OF_OPS, input["op"]) }
    : { code: WireErrorCode.BAD_MESSAGE, text: expectedText("a map", input) },
);

/** A request body (the envelope's fields removed): the schema of its op. */
export const requestBody: Schema<Request> = v.lazy(
  (input): Schema<Request> => (isPlainMap(input) && isOp(input["op"]) ? REQUESTS[input["op"]] : notARequest),
);

// --------------------------------------------------------------- frontier

/** `depth`: at most MAX_FRONTIER_DEPTH keys, ascending (the first one the announcement's key, a rule of the map). */
const depth = v.pipe(
  bounded(num, MAX_FRONTIER_DEPTH, "MAX_FRONTIER_DEPTH", WireErrorCode.BAD_MESSAGE),
  rule<readonly number[]>((keys) => {
    for (let i = 1; i < keys.length; i++) {
      if (keys[i]! < keys[i - 1]!)
        return {
          at: [i],
          code: "BAD_MESSAGE",
          text: expectedText(`a key no less than ${keys[i - 1]}`, keys[i]),
        };
    }
    return undefined;
  }),
);

/** A map's `depth` starts at its `key`. */
const depthFromKey = (a: {
  readonly key: number | null;
  readonly depth?: readonly number[];
}): Failure | undefined =>
  a.depth !== undefined && a.depth.length > 0 && a.depth[0] !== a.key
    ? {
        at: ["depth", 0],
        code: WireErrorCode.BAD_MESSAGE,
        text: expectedText(`the announcement's key (${a.key})`, a.depth[0]),
      }
    : undefined;

const typeFrontier = map({
  type: taskType,
  /** Ordering key of the type's first runnable task (its deadline, or earlier under the starvation guard). */
  key: num,
  deadline: num,
  taskId: id,
  /** Runnable tasks of the type. */
  runnable: positive,
  /** As FrontierAnnouncement.depth, over the type's runnable tasks; `depth[0]` is `key`. */
  depth: optional(depth),
});
/** One task type's frontier on a shard (FrontierAnnouncement.types). */
export type TypeFrontierAnnouncement = v.InferOutput<typeof typeFrontier>;

/**
 * An announcement's per-type frontiers: at most MAX_ANNOUNCED_TYPES, each
 * type once, in dispatch order, each depth from its type's key (checked in
 * that order, so a type listed twice is named as such).
 */
const typeFrontiers = v.pipe(
  bounded(typeFrontier, MAX_ANNOUNCED_TYPES, "MAX_ANNOUNCED_TYPES", WireErrorCode.BAD_MESSAGE),
  eachOnce(
    (t: TypeFrontierAnnouncement) => t.type,
    (t, i): Failure => ({
      at: [i, "type"],
      code: "BAD_MESSAGE",
      text: expectedText("each type once", t.type),
    }),
  ),
  rule<readonly TypeFrontierAnnouncement[]>((types) => {
    for (let i = 1; i < types.length; i++) {
      const [previous, t] = [types[i - 1]!, types[i]!];
      if (t.key < previous.key || (t.key === previous.key && t.taskId < previous.taskId))
        return {
          at: [i, "key"],
          code: "BAD_MESSAGE",
          text: expectedText("types in dispatch order of their first tasks", t.key),
        };
    }
    return undefined;
  }),
  rule<readonly TypeFrontierAnnouncement[]>((types) => {
    for (let i = 0; i < types.length; i++) {
      const failure = depthFromKey(types[i]!);
      if (failure !== undefined) return { ...failure, at: [i, ...(failure.at ?? [])] };
    }
    return undefined;
  }),
);

const frontierAnnouncement = map(
  {
    shardId: shardToken,
    /** Earliest deadline among the shard's runnable tasks; null when none is runnable. */
    deadline: nullable(num),
    /**
     * Ordering key of that task: its deadline, or earlier under the shard's
     * starvation guard. Coordinators route by it; null exactly when `deadline` is.
     */
    key: nullable(num),
    /** The task holding that deadline; null exactly when `deadline` is. */
    taskId: nullable(id),
    /** Runnable tasks on the shard. */
    runnable: count,
    /**
     * The shard's frontier per task type: for each type with runnable tasks,
     * its first task's key, deadline and id, its runnable count and depth, in
     * dispatch order of those first tasks, at most MAX_ANNOUNCED_TYPES. The
     * fields above are the whole shard's (every type); a coordinator routes a
     * lease for types T by these. Absent (or empty) when nothing is runnable.
     */
    types: optional(typeFrontiers),
    /**
     * Types with runnable tasks left out of `types` (past
     * MAX_ANNOUNCED_TYPES). Each one's first task comes after the last
     * listed type's first task, so that key bounds it from below. Absent or 0: none.
     */
    typesOmitted: optional(count),
    /** Increases by one per announcement of one shard process; starts over when it restarts. */
    seq: count,
    /** The shard's clock when it announced, ms since the epoch; lets a coordinator drop stale shards. */
    at: num,
    /**
     * How the runnable tasks' keys spread: `depth[i]` is the ordering key of
     * the `FRONTIER_DEPTH_RANKS[i]`-th earliest runnable task (as deep as
     * there are runnable tasks), ascending; `depth[0]` is `key`. With it a
     * coordinator fills a lease request from several shards in one parallel
     * round, still handing out exactly the earliest tasks. Absent from a shard
     * older than the field.
     */
    depth: optional(depth),
  },
  (a) =>
    (a.deadline === null) !== (a.taskId === null) || (a.deadline === null) !== (a.key === null)
      ? {
          code: WireErrorCode.BAD_MESSAGE,
          text: "deadline, key, taskId: all null (nothing runnable) or all set",
        }
      : undefined,
  depthFromKey,
);
/**
 * What a shard publishes on `frontier.<cluster>.frontier`, periodically and
 * whenever its frontier changes, so coordinators route lease requests to the
 * shard with the earliest runnable deadline without asking every shard.
 * Ordering is NATS's per-publisher order; `seq` detects gaps and restarts.
 */
export type FrontierAnnouncement = v.InferOutput<typeof frontierAnnouncement>;

/** A frontier announcement body (the envelope's fields removed). */
export const frontierBody: Schema<FrontierAnnouncement> = frontierAnnouncement;

// ----------------------------------------------------------------- replies

/** A lease reply's or a settle reply's leases: at most MAX_LEASES_PER_REQUEST. */
const leases = bounded(
  lease,
  MAX_LEASES_PER_REQUEST,
  "MAX_LEASES_PER_REQUEST",
  WireErrorCode.BATCH_TOO_LARGE,
);

const shardStatsEntry = map({
  shardId: shardToken,
  /**
   * Slots (of SLOT_COUNT) the shard owns in the coordinator's slot table;
   * 0 for a shard known only from its frontier announcements.
   */
  slots: v.pipe(
    count,
    v.check(
      (n) => n <= SLOT_COUNT,
      (issue) => expectedText(`at most SLOT_COUNT (${SLOT_COUNT})`, issue.input),
    ),
  ),
  /** The shard's stats, without per-type counts (`types`: the merged stats carry the cluster's). */
  stats: statsWithoutTypes,
});
/** One shard's own stats in a coordinator's stats reply. */
export type ShardStatsEntry = v.InferOutput<typeof shardStatsEntry>;

const shardCoverage = map(
  {
    /** Shards whose stats are in the sum. */
    answered: bounded(nonEmptyId, MAX_SHARDS, "MAX_SHARDS", WireErrorCode.BAD_MESSAGE),
    /**
     * Shards that did not answer in time, with the wire error code of the
     * failure (e.g. TIMEOUT) and, for SHARD_UNAVAILABLE, why (`detail`).
     */
    missing: bounded(
      map(
        { shardId: nonEmptyId, code: wireErrorCode, detail: optional(shardUnavailableDetail) },
        detailOnlyWhenUnavailable,
      ),
      MAX_SHARDS,
      "MAX_SHARDS",
      WireErrorCode.BAD_MESSAGE,
    ),
  },
  (c) => {
    const n = c.answered.length + c.missing.length;
    return n > MAX_SHARDS
      ? { code: WireErrorCode.BAD_MESSAGE, text: `${n} shards exceed MAX_SHARDS (${MAX_SHARDS})` }
      : undefined;
  },
);
/**
 * Which shards a coordinator's cluster stats cover: the stats are the sum of
 * `answered` only, so a non-empty `missing` means they are partial. Together
 * at most MAX_SHARDS entries; each list in shard id order.
 */
export type ShardCoverage = v.InferOutput<typeof shardCoverage>;

/** A page of task summaries: at most MAX_LIST_LIMIT. */
const summaries = bounded(taskSummary, MAX_LIST_LIMIT, "MAX_LIST_LIMIT", WireErrorCode.BAD_MESSAGE);

const ok = v.literal(true);

/** What an ok reply to each op carries besides `ok` and `op`. */
const OK_REPLIES = {
  submit: map({
    ok,
    op: op("submit"),
    /** Tasks added by the batch. */
    accepted: count,
    /** True when the idempotencyKey had been seen: this is the first outcome, replayed. */
    replayed: bool,
  }),
  /**
   * Possibly empty (nothing runnable within waitMs). `frontier`: shard →
   * coordinator only, the shard's frontier right after these grants (an
   * announcement, numbered like the published ones), so lease routing knows
   * the shard's next key without waiting for its next announcement.
   */
  lease: map(
    {
      ok,
      op: op("lease"),
      leases,
      frontier: optional(frontierAnnouncement),
      /**
       * To a worker only (from a coordinator, or from a shard answering a
       * `forwarded` ask): `shards[i]` is the shard that granted `leases[i]`,
       * so a worker settles, heartbeats and fails it there, in one hop.
       * Absent: everything goes through a coordinator.
       */
      shards: optional(list(shardToken)),
      /**
       * Shard → coordinator only, to a replay-only lookup: grants of this
       * request id left this shard with their slot since they were made, so
       * `leases` lacks them. The coordinator looks again at every shard: one
       * that answered before it adopted them holds them now.
       */
      grantsMoved: optional(bool),
    },
    (r) =>
      r.shards !== undefined && r.shards.length !== r.leases.length
        ? {
            at: ["shards"],
            code: WireErrorCode.BAD_MESSAGE,
            text: expectedText(`one shard id per lease (${r.leases.length})`, r.shards),
          }
        : undefined,
  ),
  heartbeat: map({ ok, op: op("heartbeat"), expiresAt: num }),
  /** `duplicate`: the task was already completed under this token (a retried complete). */
  complete: map({ ok, op: op("complete"), duplicate: bool }),
  /** The task's state after the failure: WAITING (will retry) or FAILED. */
  fail: map({ ok, op: op("fail"), state: taskState }),
  /** `duplicate`: the lease under this token was released already (a resent release). */
  release: map({ ok, op: op("release"), duplicate: bool }),
  /**
   * `results[i]` is the outcome of `completes[i]`; `leases`, the next leases
   * (empty unless the request asked, and always from a coordinator);
   * `frontier`, shard only: the shard's frontier after the settle.
   */
  settle: map({
    ok,
    op: op("settle"),
    results: bounded(
      settleOutcome,
      MAX_SETTLES_PER_REQUEST,
      "MAX_SETTLES_PER_REQUEST",
      WireErrorCode.BATCH_TOO_LARGE,
    ),
    leases,
    frontier: optional(frontierAnnouncement),
    /**
     * Shard only, to a resend (`lease.attempt` 2 and up): grants an earlier
     * send of this request got here left with their slot since, so `leases`
     * lacks them. The worker resends the lease under the same request id
     * through a coordinator, whose replay-only lookup of every shard finds
     * them where they are now (else they would wait out their lease).
     */
    grantsMoved: optional(bool),
  }),
  cancel: map({ ok, op: op("cancel") }),
  updateDeadline: map({ ok, op: op("updateDeadline") }),
  /** null: no such task. */
  getTask: map({ ok, op: op("getTask"), task: nullable(taskView) }),
  /**
   * `shards` and `byShard`: coordinator → client only (a shard's own reply
   * leaves them out); `byShard`, each answering shard's own stats, in
   * `shards.answered`'s order.
   */
  stats: map({
    ok,
    op: op("stats"),
    stats,
    shards: optional(shardCoverage),
    byShard: optional(bounded(shardStatsEntry, MAX_SHARDS, "MAX_SHARDS", WireErrorCode.BAD_MESSAGE)),
  }),
  /**
   * `tasks` in (deadline, id, shardId) order; `next`: the cursor of the
   * next page, null when no more match (on the shards that answered);
   * `shards`: coordinator → client only, as for stats — a page is partial
   * when some are missing.
   */
  listTasks: map({
    ok,
    op: op("listTasks"),
    tasks: summaries,
    next: nullable(listCursor),
    shards: optional(shardCoverage),
  }),
  /** As listTasks, each task with its `prerequisites`; empty for an unknown workflow. */
  getWorkflow: map({ ok, op: op("getWorkflow"), tasks: summaries, next: nullable(listCursor) }),
  /** The task's state after the retry: RUNNABLE or WAITING. */
  retry: map({ ok, op: op("retry"), state: taskState }),
  /** Tasks in the prepared part. */
  prepare: map({ ok, op: op("prepare"), accepted: count }),
  commit: map({ ok, op: op("commit"), accepted: count, replayed: bool }),
  abort: map({ ok, op: op("abort") }),
  /** What `submit` would refuse in the part now (empty: nothing), at most MAX_PROBLEMS. */
  check: map({ ok, op: op("check"), problems }),
  /** The move ended: `tasks` moved (0 when the slot held none, or when replayed). */
  moveSlot: map({ ok, op: op("moveSlot"), tasks: count }),
  /** `adopted`: the whole move is adopted (now or before); false: this part is kept until the rest arrive. */
  adopt: map({ ok, op: op("adopt"), adopted: bool }),
  /**
   * `results[i]` for `events[i]`: `applied` (now) and `duplicate` (before,
   * or the dependent no longer waits) both mean "delivered, forget it";
   * `unknown`: the dependent is not held here (not committed yet, or its
   * slot is elsewhere or moving): send it again later, to the slot's owner then.
   */
  deliverEvents: map({
    ok,
    op: op("deliverEvents"),
    results: bounded(
      oneOf(REMOTE_APPLIED),
      MAX_EVENTS_PER_DELIVERY,
      "MAX_EVENTS_PER_DELIVERY",
      WireErrorCode.BAD_MESSAGE,
    ),
  }),
  /** The id's claim; null: no task of the cluster holds the id. */
  locate: map({ ok, op: op("locate"), claim: nullable(idClaim) }),
  /** `held`: the shard holds the task (any state), or holds it prepared or being committed. */
  holds: map({ ok, op: op("holds"), held: bool }),
} as const satisfies { readonly [O in Op]: Schema<{ readonly ok: true; readonly op: O }> };

type OkReplies = { readonly [O in Op]: v.InferOutput<(typeof OK_REPLIES)[O]> };

/** What an ok reply to each op carries besides `ok` and `op`. */
export type ResultMap = { readonly [O in Op]: Omit<OkReplies[O], "ok" | "op"> };

export type ResultOf<O extends Op> = ResultMap[O];

/** An ok reply to `O` (distributes over a union of ops). */
export type OkReply<O extends Op = Op> = OkReplies[O];

const errorReplySchema = map({ ok: v.literal(false), error: wireError });
export type ErrorReply = v.InferOutput<typeof errorReplySchema>;

export type Reply<O extends Op = Op> = OkReply<O> | ErrorReply;

/** Not a map, `ok` not a boolean, or an ok reply without a known op: named as such. */
const notAReply = refuse((input) => {
  if (!isPlainMap(input)) return { code: WireErrorCode.BAD_MESSAGE, text: expectedText("a map", input) };
  if (input["ok"] !== true)
    return { at: ["ok"], code: WireErrorCode.BAD_MESSAGE, text: expectedText("a boolean", input["ok"]) };
  return { at: ["op"], code: WireErrorCode.BAD_MESSAGE, text: expectedText(ONE_OF_OPS, input["op"]) };
});

/** A reply body (the envelope's fields removed): an error reply, or the ok reply of its op. */
export const replyBody: Schema<Reply> = v.lazy((input): Schema<Reply> => {
  if (!isPlainMap(input)) return notAReply;
  if (input["ok"] === false) return errorReplySchema;
  return input["ok"] === true && isOp(input["op"]) ? OK_REPLIES[input["op"]] : notAReply;
});

/** The error reply for anything thrown while handling a request. */
export function errorReply(err: unknown): ErrorReply {
  return { ok: false, error: toWireError(err) };
}

/** The ok reply, or the typed error the error reply stands for, thrown (see `fromWireError`). */
export function unwrapReply<O extends Op>(reply: Reply<O>): OkReply<O> {
  if (reply.ok) return reply as OkReply<O>;
  throw fromWireError((reply as ErrorReply).error);
}

// ---------------------------------------------------------------- messages

/** Any message, tagged with its kind: what `decode` returns and `encode` takes. */
export type Message =
  | { readonly kind: "request"; readonly request: Request }
  | { readonly kind: "reply"; readonly reply: Reply }
  | { readonly kind: "frontier"; readonly frontier: FrontierAnnouncement };

export type MessageKind = Message["kind"];
