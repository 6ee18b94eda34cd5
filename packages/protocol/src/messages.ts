/**
 * Every message of the wire protocol. Requests and replies are discriminated
 * unions on `op`; a reply is `{ ok: true, op, ...result }` or
 * `{ ok: false, error }`. These are the shapes callers build and read; the
 * codec adds the envelope (`v`, `kind`) on the way out and strips it on the
 * way in (see codec.ts for the layout on the wire).
 *
 * Data shapes (TaskInput, Lease, TaskView, SchedulerStats) are the engine's
 * own, so a shard passes what the engine returns straight through.
 */
import type {
  Lease,
  Problem,
  SchedulerStats,
  TaskInput,
  TaskRecord,
  TaskState,
  TaskSummary,
  TaskView,
} from "@frontier/core";
import {
  fromWireError,
  type ShardUnavailableDetail,
  toWireError,
  type WireError,
  type WireErrorCode,
} from "./errors.js";
import type { TaskRef } from "./slots.js";

/** The protocol version every envelope carries. Any change to a message's shape bumps it. */
export const PROTOCOL_VERSION = 8;

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
] as const;
export type Op = (typeof OPS)[number];

export function isOp(value: unknown): value is Op {
  return typeof value === "string" && (OPS as readonly string[]).includes(value);
}

// ---------------------------------------------------------------- requests

/** Add a batch of tasks, atomically. Resending the same idempotencyKey returns the first outcome. */
export interface SubmitRequest {
  readonly op: "submit";
  readonly tasks: readonly TaskInput[];
  /** Chosen by the client, unique per batch, 1..MAX_ID_LENGTH. */
  readonly idempotencyKey: string;
}

/** Lease up to `max` runnable tasks, earliest deadline first, waiting up to `waitMs` for one. */
export interface LeaseRequest {
  readonly op: "lease";
  /** The worker that will hold the leases. */
  readonly owner: string;
  /** 1..MAX_LEASES_PER_REQUEST. A reply may hold fewer (also to stay under MAX_MESSAGE_BYTES). */
  readonly max: number;
  /** Lease duration, ms; a positive integer. */
  readonly leaseMs: number;
  /** Long-poll: how long to wait when nothing is runnable, ms, 0..MAX_WAIT_MS. 0 answers at once. */
  readonly waitMs: number;
  /** Chosen by the client, unique per attempt; a retry with the same id gets the same grant. */
  readonly requestId: string;
  /**
   * Lease only tasks of these types (1..MAX_LEASE_TYPES distinct task
   * types), earliest deadline first among them. Absent: the default type
   * only, so a task of another type never reaches a worker that named none.
   */
  readonly types?: readonly string[];
  /**
   * Coordinator → shard only: lease only tasks whose ordering key is at most
   * this (the next shard's frontier), so a request filled from several
   * shards keeps global earliest-deadline-first order.
   */
  readonly maxKey?: number;
  /**
   * Coordinator → shard only, with `maxKey`: of the tasks whose key equals
   * `maxKey`, only those whose id is at most this (the next shard's first
   * task), so ties between shards go by task id, as within one.
   */
  readonly maxTaskId?: string;
  /**
   * Coordinator → shard only: which ask of one fill at this shard this is,
   * from 1 (absent = 1), 1..MAX_ATTEMPT. A coordinator that fills a request
   * from several shards may ask one shard again in the same fill; each ask
   * is a grant of its own, kept and replayed apart from the others, while
   * every ask stays under the client's `requestId` (its grants are the
   * request's grants: what a replay-only lookup answers).
   */
  readonly ask?: number;
  /**
   * Which send of `requestId` this is, from 1 (absent = 1), 1..MAX_ATTEMPT.
   * Client → coordinator: a resend (2 and up) may have been granted already
   * (its reply lost), so the coordinator asks every shard for grants kept
   * under the id before granting anew. Coordinator → shard: a shard that was
   * asked under a later attempt grants nothing to an earlier one, whose
   * client gave it up (see `replayOnly`).
   */
  readonly attempt?: number;
  /**
   * Coordinator → shard only: answer with the grants kept for this owner and
   * client request id (all its asks), or with none;
   * never grant anew. From the answer on, lease asks under that client id
   * from attempts before `attempt` grant nothing (a fence, kept durably).
   */
  readonly replayOnly?: boolean;
}

/**
 * A lease as its holder names it: the task, the fencing token, and the
 * lease's secret, which only the grant carried (`Lease.secret`). A shard
 * takes a heartbeat, complete or fail only with the secret of a lease it
 * granted under that token; so the token, which orders leases and is no
 * secret (getTask shows it), authorizes nothing by itself.
 */
export interface HeldLease extends TaskRef {
  readonly token: number;
  /** LEASE_SECRET_LENGTH base64url characters. */
  readonly secret: string;
}

/** Extend a live lease by `leaseMs` from now. */
export interface HeartbeatRequest extends HeldLease {
  readonly op: "heartbeat";
  readonly leaseMs: number;
}

export interface CompleteRequest extends HeldLease {
  readonly op: "complete";
  /**
   * The task's result (any msgpack value, at most MAX_RESULT_BYTES encoded
   * and MAX_PAYLOAD_DEPTH deep), kept with the task and handed to its
   * dependents' leases. A resent complete keeps the first one.
   */
  readonly result?: unknown;
}

export interface FailRequest extends HeldLease {
  readonly op: "fail";
  /** False: fail the task for good, whatever attempts it has left. */
  readonly retryable: boolean;
  /** At most MAX_REASON_LENGTH. */
  readonly reason: string;
}

/**
 * Hand a held lease back without spending an attempt: the task is RUNNABLE
 * again at once (no backoff), its attempt count as before the grant; the
 * token stays spent, so the released lease is fenced. Authorized like
 * complete and fail (token and secret). A resend while no lease was granted
 * since answers `duplicate: true`; after one, STALE_LEASE.
 */
export interface ReleaseRequest extends HeldLease {
  readonly op: "release";
}

/** A task a worker finished, named by its lease (token and secret), with its result as a complete's. */
export interface CompletedLease extends HeldLease {
  readonly result?: unknown;
}

/**
 * The next leases a `settle` sent straight to a shard asks for, granted in
 * the same commit as its completes (as BullMQ's moveToFinished fetches the
 * next job). Idempotent like a lease request: a resend (`attempt` 2 and up)
 * gets back the first send's grant, and fences the earlier sends.
 */
export interface SettleLease {
  /** The worker that will hold the leases. */
  readonly owner: string;
  /** 1..MAX_LEASES_PER_REQUEST. */
  readonly max: number;
  /** Lease duration, ms; a positive integer. */
  readonly leaseMs: number;
  /** Chosen by the client, unique per settle; a resend under it gets the same grant. */
  readonly requestId: string;
  /** Lease only tasks of these types, as LeaseRequest.types (absent: the default type only). */
  readonly types?: readonly string[];
  /** Which send of `requestId` this is, from 1 (absent = 1), 1..MAX_ATTEMPT. */
  readonly attempt?: number;
}

/**
 * A worker's finished tasks in one request: each completed under its lease
 * token, all in one commit. Sent to the shard that granted the leases (or to
 * a coordinator, which splits it by owner). Each task gets its own outcome:
 * one stale token fails only its task. To a shard, `lease` also asks for the
 * next tasks, granted in the same commit, earliest first and never past the
 * other shards' announced frontiers (global earliest-deadline-first); a
 * coordinator leaves the lease out (it grants through `lease`).
 */
export interface SettleRequest {
  readonly op: "settle";
  /** 0..MAX_SETTLES_PER_REQUEST tasks, each at most once. */
  readonly completes: readonly CompletedLease[];
  readonly lease?: SettleLease;
}

/** What became of one task of a settle: completed (`duplicate`: already, under this token), or refused. */
export type SettleOutcome = { readonly duplicate: boolean } | { readonly error: WireError };

export interface CancelRequest extends TaskRef {
  readonly op: "cancel";
  /** At most MAX_REASON_LENGTH. */
  readonly reason?: string;
}

export interface UpdateDeadlineRequest extends TaskRef {
  readonly op: "updateDeadline";
  readonly deadline: number;
}

export interface GetTaskRequest extends TaskRef {
  readonly op: "getTask";
}

export interface StatsRequest {
  readonly op: "stats";
}

/**
 * Where a page of tasks resumes: right after this task, in the order of
 * (deadline, id, shardId) — the shard id breaks ties between tasks of equal
 * deadline and id on two shards. A typed value of its own: a client sends
 * back the `next` it got, and nobody parses it out of a string.
 */
export interface ListCursor {
  readonly deadline: number;
  readonly id: string;
  readonly shardId: string;
}

/**
 * A page of tasks matching a filter, in (deadline, id, shardId) order,
 * without payloads. A coordinator asks every shard for a page from the same
 * cursor and merges them; the reply's `next` (null: no more) starts the next
 * page. Each filter field narrows; none given lists every task.
 */
export interface ListTasksRequest {
  readonly op: "listTasks";
  /** Only these states, 1..7 distinct. */
  readonly states?: readonly TaskState[];
  readonly workflowId?: string;
  /** Only tasks of these types, 1..MAX_LEASE_TYPES distinct (`"default"`: those submitted without one). */
  readonly types?: readonly string[];
  /** Only deadlines ≥ this. */
  readonly deadlineFrom?: number;
  /** Only deadlines < this. */
  readonly deadlineTo?: number;
  readonly after?: ListCursor;
  /** 1..MAX_LIST_LIMIT. A reply may hold fewer (to stay under MAX_LIST_BYTES) and still have a `next`. */
  readonly limit: number;
}

/**
 * One workflow's tasks with their prerequisites (its graph), in
 * (deadline, id) order, from the one shard owning the workflow's slot.
 */
export interface GetWorkflowRequest {
  readonly op: "getWorkflow";
  readonly workflowId: string;
  readonly after?: ListCursor;
  /** 1..MAX_LIST_LIMIT. */
  readonly limit: number;
}

/**
 * Run a task that ended FAILED, CANCELLED or EXPIRED again from the start
 * (attempts from 0): RUNNABLE, or WAITING on prerequisites still live. An
 * admin's op. `deadline`: a new deadline (needed when a hard deadline passed).
 */
export interface RetryRequest extends TaskRef {
  readonly op: "retry";
  readonly deadline?: number;
}

/**
 * Phase one of a submit spanning several shards: check the part against the
 * shard's state and reserve its ids (for PREPARE_TTL_MS) under the key.
 */
export interface PrepareRequest {
  readonly op: "prepare";
  readonly tasks: readonly TaskInput[];
  readonly idempotencyKey: string;
}

/** Phase two: make the prepared part durable. Idempotent under the key. */
export interface CommitRequest {
  readonly op: "commit";
  readonly idempotencyKey: string;
}

/** Drop a prepared part (another part was rejected). Unknown keys are fine. */
export interface AbortRequest {
  readonly op: "abort";
  readonly idempotencyKey: string;
}

/**
 * Check a part of a batch the coordinator rejects anyway (it has batch-local
 * problems) against the shard's state, so one rejection lists every problem.
 * Reserves nothing and changes nothing; the shard answers with the problems.
 */
export interface CheckRequest {
  readonly op: "check";
  readonly tasks: readonly TaskInput[];
}

/**
 * Move slot `slot` to shard `target` (admin → coordinator → the slot's
 * shard, which drives the move; docs/cluster.md, "Slot movement"). The
 * reply comes once the move has ended; a resend under the same `moveId`
 * joins or replays it.
 */
export interface MoveSlotRequest {
  readonly op: "moveSlot";
  readonly slot: number;
  readonly target: string;
  readonly moveId: string;
}

/** One idempotency or lease-request entry moving with its tasks (the shard's journal row, typed). */
export interface MovedEntry {
  readonly key: string;
  readonly taskIds: readonly string[];
  readonly createdAt: number;
  /** Lease-request entries only: the grants' tokens, parallel to taskIds. */
  readonly tokens?: readonly number[];
  readonly fence?: number;
}

/** The proof of a live lease of a moving task, made by the shard that granted it. */
export interface MovedLease {
  readonly taskId: string;
  readonly token: number;
  readonly secret: string;
}

/**
 * Part `part` (from 0) of `parts` of a slot's export, shard → shard only
 * (docs/cluster.md, "Slot movement"). The target keeps the parts of a move
 * until it has them all, then adopts them in one commit; every part of a
 * move it adopted before answers `adopted` again.
 */
export interface AdoptRequest {
  readonly op: "adopt";
  readonly moveId: string;
  readonly slot: number;
  /** The shard the slot leaves. */
  readonly source: string;
  readonly part: number;
  readonly parts: number;
  readonly tasks: readonly TaskRecord[];
  readonly entries: readonly MovedEntry[];
  readonly leases: readonly MovedLease[];
}

export type Request =
  | SubmitRequest
  | LeaseRequest
  | HeartbeatRequest
  | CompleteRequest
  | FailRequest
  | ReleaseRequest
  | SettleRequest
  | CancelRequest
  | UpdateDeadlineRequest
  | GetTaskRequest
  | StatsRequest
  | ListTasksRequest
  | GetWorkflowRequest
  | RetryRequest
  | PrepareRequest
  | CommitRequest
  | AbortRequest
  | CheckRequest
  | MoveSlotRequest
  | AdoptRequest;

export type RequestOf<O extends Op> = Extract<Request, { readonly op: O }>;

// ----------------------------------------------------------------- results

/** What an ok reply to each op carries besides `ok` and `op`. */
export interface ResultMap {
  readonly submit: {
    /** Tasks added by the batch. */
    readonly accepted: number;
    /** True when the idempotencyKey had been seen: this is the first outcome, replayed. */
    readonly replayed: boolean;
  };
  /**
   * Possibly empty (nothing runnable within waitMs). `frontier`: shard →
   * coordinator only, the shard's frontier right after these grants (an
   * announcement, numbered like the published ones), so lease routing knows
   * the shard's next key without waiting for its next announcement.
   */
  readonly lease: {
    readonly leases: readonly Lease[];
    readonly frontier?: FrontierAnnouncement;
    /**
     * Coordinator → client only: `shards[i]` is the shard that granted
     * `leases[i]`, so a worker settles, heartbeats and fails it there, in one
     * hop. Absent from a reply older than the field; then everything goes
     * through a coordinator.
     */
    readonly shards?: readonly string[];
  };
  readonly heartbeat: { readonly expiresAt: number };
  /** `duplicate`: the task was already completed under this token (a retried complete). */
  readonly complete: { readonly duplicate: boolean };
  /** The task's state after the failure: WAITING (will retry) or FAILED. */
  readonly fail: { readonly state: TaskState };
  /** `duplicate`: the lease under this token was released already (a resent release). */
  readonly release: { readonly duplicate: boolean };
  /**
   * `results[i]` is the outcome of `completes[i]`; `leases`, the next leases
   * (empty unless the request asked, and always from a coordinator);
   * `frontier`, shard only: the shard's frontier after the settle.
   */
  readonly settle: {
    readonly results: readonly SettleOutcome[];
    readonly leases: readonly Lease[];
    readonly frontier?: FrontierAnnouncement;
  };
  readonly cancel: Record<never, never>;
  readonly updateDeadline: Record<never, never>;
  /** null: no such task. */
  readonly getTask: { readonly task: TaskView | null };
  /**
   * `shards` and `byShard`: coordinator → client only (a shard's own reply
   * leaves them out); `byShard`, each answering shard's own stats, in
   * `shards.answered`'s order.
   */
  readonly stats: {
    readonly stats: SchedulerStats;
    readonly shards?: ShardCoverage;
    readonly byShard?: readonly ShardStatsEntry[];
  };
  /**
   * `tasks` in (deadline, id, shardId) order; `next`: the cursor of the
   * next page, null when no more match (on the shards that answered);
   * `shards`: coordinator → client only, as for stats — a page is partial
   * when some are missing.
   */
  readonly listTasks: {
    readonly tasks: readonly TaskSummary[];
    readonly next: ListCursor | null;
    readonly shards?: ShardCoverage;
  };
  /** As listTasks, each task with its `prerequisites`; empty for an unknown workflow. */
  readonly getWorkflow: { readonly tasks: readonly TaskSummary[]; readonly next: ListCursor | null };
  /** The task's state after the retry: RUNNABLE or WAITING. */
  readonly retry: { readonly state: TaskState };
  /** Tasks in the prepared part. */
  readonly prepare: { readonly accepted: number };
  readonly commit: { readonly accepted: number; readonly replayed: boolean };
  readonly abort: Record<never, never>;
  /** What `submit` would refuse in the part now (empty: nothing), at most MAX_PROBLEMS. */
  readonly check: { readonly problems: readonly Problem[] };
  /** The move ended: `tasks` moved (0 when the slot held none, or when replayed). */
  readonly moveSlot: { readonly tasks: number };
  /** `adopted`: the whole move is adopted (now or before); false: this part is kept until the rest arrive. */
  readonly adopt: { readonly adopted: boolean };
}

export type ResultOf<O extends Op> = ResultMap[O];

/** One shard's own stats in a coordinator's stats reply. */
export interface ShardStatsEntry {
  readonly shardId: string;
  /**
   * Slots (of SLOT_COUNT) the shard owns in the coordinator's slot table;
   * 0 for a shard known only from its frontier announcements.
   */
  readonly slots: number;
  /** The shard's stats, without per-type counts (`types`: the merged stats carry the cluster's). */
  readonly stats: SchedulerStats;
}

/**
 * Which shards a coordinator's cluster stats cover: the stats are the sum of
 * `answered` only, so a non-empty `missing` means they are partial. Together
 * at most MAX_SHARDS entries; each list in shard id order.
 */
export interface ShardCoverage {
  /** Shards whose stats are in the sum. */
  readonly answered: readonly string[];
  /**
   * Shards that did not answer in time, with the wire error code of the
   * failure (e.g. TIMEOUT) and, for SHARD_UNAVAILABLE, why (`detail`).
   */
  readonly missing: readonly {
    readonly shardId: string;
    readonly code: WireErrorCode;
    readonly detail?: ShardUnavailableDetail;
  }[];
}

// ----------------------------------------------------------------- replies

/** An ok reply to `O` (distributes over a union of ops). */
export type OkReply<O extends Op = Op> = O extends Op
  ? { readonly ok: true; readonly op: O } & ResultMap[O]
  : never;

export interface ErrorReply {
  readonly ok: false;
  readonly error: WireError;
}

export type Reply<O extends Op = Op> = OkReply<O> | ErrorReply;

/** The error reply for anything thrown while handling a request. */
export function errorReply(err: unknown): ErrorReply {
  return { ok: false, error: toWireError(err) };
}

/** The ok reply, or the typed error the error reply stands for, thrown (see `fromWireError`). */
export function unwrapReply<O extends Op>(reply: Reply<O>): OkReply<O> {
  if (reply.ok) return reply;
  throw fromWireError(reply.error);
}

// ----------------------------------------------------------------- frontier

/**
 * What a shard publishes on `frontier.<cluster>.frontier`, periodically and
 * whenever its frontier changes, so coordinators route lease requests to the
 * shard with the earliest runnable deadline without asking every shard.
 * Ordering is NATS's per-publisher order; `seq` detects gaps and restarts.
 */
export interface FrontierAnnouncement {
  readonly shardId: string;
  /** Earliest deadline among the shard's runnable tasks; null when none is runnable. */
  readonly deadline: number | null;
  /**
   * Ordering key of that task: its deadline, or earlier under the shard's
   * starvation guard. Coordinators route by it; null exactly when `deadline` is.
   */
  readonly key: number | null;
  /** The task holding that deadline; null exactly when `deadline` is. */
  readonly taskId: string | null;
  /** Runnable tasks on the shard. */
  readonly runnable: number;
  /**
   * How the runnable tasks' keys spread: `depth[i]` is the ordering key of
   * the `FRONTIER_DEPTH_RANKS[i]`-th earliest runnable task (as deep as
   * there are runnable tasks), ascending; `depth[0]` is `key`. With it a
   * coordinator fills a lease request from several shards in one parallel
   * round, still handing out exactly the earliest tasks. Absent from a shard
   * older than the field.
   */
  readonly depth?: readonly number[];
  /**
   * The shard's frontier per task type: for each type with runnable tasks,
   * its first task's key, deadline and id, its runnable count and depth, in
   * dispatch order of those first tasks, at most MAX_ANNOUNCED_TYPES. The
   * fields above are the whole shard's (every type); a coordinator routes a
   * lease for types T by these. Absent (or empty) when nothing is runnable.
   */
  readonly types?: readonly TypeFrontierAnnouncement[];
  /**
   * Types with runnable tasks left out of `types` (past
   * MAX_ANNOUNCED_TYPES). Each one's first task comes after the last
   * listed type's first task, so that key bounds it from below. Absent or 0: none.
   */
  readonly typesOmitted?: number;
  /** Increases by one per announcement of one shard process; starts over when it restarts. */
  readonly seq: number;
  /** The shard's clock when it announced, ms since the epoch; lets a coordinator drop stale shards. */
  readonly at: number;
}

/** One task type's frontier on a shard (FrontierAnnouncement.types). */
export interface TypeFrontierAnnouncement {
  readonly type: string;
  /** Ordering key of the type's first runnable task (its deadline, or earlier under the starvation guard). */
  readonly key: number;
  readonly deadline: number;
  readonly taskId: string;
  /** Runnable tasks of the type. */
  readonly runnable: number;
  /** As FrontierAnnouncement.depth, over the type's runnable tasks; `depth[0]` is `key`. */
  readonly depth?: readonly number[];
}

// ---------------------------------------------------------------- messages

/** Any message, tagged with its kind: what `decode` returns and `encode` takes. */
export type Message =
  | { readonly kind: "request"; readonly request: Request }
  | { readonly kind: "reply"; readonly reply: Reply }
  | { readonly kind: "frontier"; readonly frontier: FrontierAnnouncement };

export type MessageKind = Message["kind"];
