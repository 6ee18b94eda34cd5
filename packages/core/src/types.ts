/**
 * Public data types of the engine. Everything here is plain data: it can be
 * structured-cloned, msgpack-encoded and journaled as it is.
 */

/**
 * A task's life. Transitions happen only in `Scheduler.setState`, checked
 * against TRANSITIONS (task-table.ts, drawn in the README):
 *
 *   WAITING  --all prerequisites met / retry backoff over-->  RUNNABLE
 *            (and its notBefore reached: until then it stays WAITING)
 *   RUNNABLE --consume / lease-->                             LEASED
 *   LEASED   --complete-->                                    COMPLETED
 *   LEASED   --fail (retryable, attempts left)-->             WAITING (backoff)
 *   LEASED   --run time limit (timeoutMs) passed, attempts left--> WAITING (backoff)
 *   LEASED   --lease expired (attempts left)-->               RUNNABLE
 *   LEASED   --released by its holder (attempt not spent)-->  RUNNABLE
 *   LEASED   --fail / expiry / timeout, no attempts left-->   FAILED
 *   WAITING | RUNNABLE --hard deadline passed-->              EXPIRED
 *   any non-terminal --cancel, or a prerequisite ended badly
 *                      under the "cancel" policy-->           CANCELLED
 *
 * COMPLETED, FAILED, CANCELLED and EXPIRED are terminal.
 */
export const TaskState = {
  WAITING: "WAITING",
  RUNNABLE: "RUNNABLE",
  LEASED: "LEASED",
  COMPLETED: "COMPLETED",
  FAILED: "FAILED",
  CANCELLED: "CANCELLED",
  EXPIRED: "EXPIRED",
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

/** What happens to a task when one of its prerequisites ends FAILED, CANCELLED or EXPIRED. */
export type PrerequisiteFailurePolicy =
  /** The dependent is cancelled, and so on transitively (the default). */
  | "cancel"
  /** The dependent runs as if the prerequisite had succeeded. */
  | "continue";

/** The type of a task that names none: what a worker that names no types leases. */
export const DEFAULT_TASK_TYPE = "default";
/** Longest task type. */
export const MAX_TASK_TYPE_LENGTH = 64;
/** What a task type may be: 1..64 of letters, digits, `_`, `.` and `-` (a token, never parsed). */
export const TASK_TYPE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whether `value` is a valid task type (TASK_TYPE_PATTERN). */
export function isTaskType(value: unknown): value is string {
  return typeof value === "string" && TASK_TYPE_PATTERN.test(value);
}

/** A task as submitted. */
export interface TaskInput {
  /** Unique among all tasks the engine knows. 1..256 characters. */
  id: string;
  /** Orderable deadline, in the clock's unit (milliseconds since the epoch by default). */
  deadline: number;
  /** Ids of tasks that must complete before this one runs. */
  prerequisites?: readonly string[];
  /** Partition key in a cluster; prerequisites must share it there. */
  workflowId?: string;
  /**
   * The task belongs to a large workflow: in a cluster it is placed by
   * (workflowId, id) rather than by workflowId, so the workflow spreads
   * over shards (docs/cluster.md, "Large workflows across shards"). Needs a
   * workflowId; every task of the workflow says the same.
   */
  large?: boolean;
  /** Opaque data handed to the worker. */
  payload?: unknown;
  /**
   * What kind of work it is (TASK_TYPE_PATTERN): only a worker that names
   * this type leases it. Default DEFAULT_TASK_TYPE ("default").
   */
  type?: string;
  /** Attempts before the task is FAILED (each lease is one attempt). Default from the engine options. */
  maxAttempts?: number;
  /** When true, a task still runnable after its deadline is never dispatched: it becomes EXPIRED. */
  hardDeadline?: boolean;
  /** See `PrerequisiteFailurePolicy`. */
  onPrerequisiteFailure?: PrerequisiteFailurePolicy;
  /**
   * Not runnable before this time (the clock's unit), even with every
   * prerequisite met: it waits in WAITING until then. With `hardDeadline`
   * it must be before the deadline.
   */
  notBefore?: number;
  /**
   * Run time limit of one attempt, in the clock's unit (a positive
   * integer): a lease cannot be extended past its grant + timeoutMs, and
   * the attempt then fails (retried after a backoff while attempts remain).
   */
  timeoutMs?: number;
}

/** The immutable definition of a task, as the engine stores it. */
export interface TaskSpec {
  readonly id: string;
  readonly prerequisites: readonly string[];
  readonly workflowId?: string;
  /** Present (true) for a task of a large workflow (TaskInput.large); absent otherwise. */
  readonly large?: true;
  readonly payload?: unknown;
  /** The task's type; absent for DEFAULT_TASK_TYPE (so journals written before types read as it). */
  readonly type?: string;
  readonly maxAttempts: number;
  readonly hardDeadline: boolean;
  readonly onPrerequisiteFailure: PrerequisiteFailurePolicy;
  readonly notBefore?: number;
  readonly timeoutMs?: number;
}

/** The mutable part of a task. Every change record carries it whole. */
export interface TaskStatus {
  readonly state: TaskState;
  readonly deadline: number;
  /** Leases granted so far (each lease is an attempt), but those their holders released. */
  readonly attempts: number;
  /** Fencing token of the current or last lease; 0 before the first. */
  readonly token: number;
  /** Owner of the current or last lease. */
  readonly leaseOwner?: string;
  /** Expiry of the live lease (LEASED only). Infinity for consumeTask. */
  readonly leaseExpiresAt?: number;
  /**
   * When the live attempt's run time limit passes: its grant + timeoutMs
   * (LEASED tasks with a timeoutMs only). The lease never outlives it.
   */
  readonly timeoutAt?: number;
  /**
   * True when the lease under `token` was handed back by its holder
   * (`release`) and no lease was granted since: a resent release under that
   * token is answered as a duplicate. Absent otherwise.
   */
  readonly released?: true;
  /** When a WAITING task in retry backoff becomes runnable again. */
  readonly retryAt?: number;
  /** When the task last became RUNNABLE (drives the starvation guard and oldest-runnable age). */
  readonly runnableSince?: number;
  /** When the task reached a terminal state. */
  readonly finishedAt?: number;
  /** Why the task is where it is: last failure, cancellation cause, expiry. */
  readonly reason?: string;
  /**
   * COMPLETED only: the value the accepted `complete` carried (its
   * dependents' leases hand it on, see `Lease.results`). Kept, like the
   * payload, until the task is dropped after retention.
   */
  readonly result?: unknown;
  /**
   * Large workflows only (see RemoteEdges in remote-edges.ts): the
   * remote prerequisites whose outcome arrived and was applied, in arrival
   * order. A second arrival of one of them is a duplicate: this list is the
   * receiver's durable dedupe, journaled with the count it changed.
   */
  readonly remoteMet?: readonly string[];
  /**
   * Large workflows only: the dependents in other partitions (slots) that
   * wait on this task, each to be told its outcome once it ends (the
   * outbox). Absent when none.
   */
  readonly remoteDependents?: readonly string[];
  /** True once every one of `remoteDependents` acknowledged this task's outcome. */
  readonly remoteDelivered?: true;
}

/** A task as `getTask` shows it. */
export interface TaskView extends TaskSpec, TaskStatus {
  /** Prerequisites not yet completed (0 once runnable). */
  readonly unmetPrerequisites: number;
}

/** What `consumeTask` returns: the task as submitted. */
export interface Task {
  readonly id: string;
  readonly deadline: number;
  readonly prerequisites: readonly string[];
  readonly workflowId?: string;
  /** Present (true) for a task of a large workflow: requests about it route by (workflowId, id). */
  readonly large?: true;
  readonly payload?: unknown;
  /** The task's type; absent for DEFAULT_TASK_TYPE. */
  readonly type?: string;
  /** The task's run time limit per attempt, when it has one (a worker aborts the attempt then). */
  readonly timeoutMs?: number;
}

export interface Lease {
  readonly taskId: string;
  readonly owner: string;
  /** Fencing token: strictly increasing per task (and across the engine). Orders leases; no secret. */
  readonly token: number;
  /**
   * The holder's proof of the lease: set by a shard served over the network
   * (never by the engine), returned only in the grant; heartbeat, complete and
   * fail sent over the network must present it.
   */
  readonly secret?: string;
  readonly expiresAt: number;
  /** 1 for the first lease of the task. */
  readonly attempt: number;
  readonly task: Task;
  /**
   * The results of the task's prerequisites that completed with one, in
   * prerequisite order (a list, not a map keyed by id: any string is an id,
   * `__proto__` included). Absent when there are none. Only grants carry
   * them (not heartbeats); see `resultsOmitted` for the bound.
   */
  readonly results?: readonly PrerequisiteResult[];
  /**
   * How many prerequisites' results were left out because the lease would
   * have passed `maxLeaseResultBytes` (SchedulerOptions): read those with
   * `getTask`. Absent when none was.
   */
  readonly resultsOmitted?: number;
}

/** How a task ended, as a cross-partition completion event tells it to a dependent. */
export type RemoteOutcome = "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";

/**
 * A remote dependent to register at its prerequisite's engine: `dependent`
 * (in the prerequisite's workflow, in another partition) waits on
 * `prerequisite`, held here.
 */
export interface RemoteLink {
  readonly prerequisite: string;
  readonly dependent: string;
  readonly workflowId: string;
}

/** A cross-partition completion event: `prerequisite` ended `outcome`; `dependent` waits on it. */
export interface RemoteEvent {
  readonly prerequisite: string;
  readonly dependent: string;
  readonly workflowId: string;
  readonly outcome: RemoteOutcome;
}

/**
 * What applying one RemoteEvent did at the dependent's engine:
 * - `applied`: counted now (the dependent's unmet count fell, or it was
 *   cancelled under its policy);
 * - `duplicate`: counted before, or the dependent ended already, or it
 *   does not wait on that prerequisite: nothing to do, ever;
 * - `unknown`: no such task here (not submitted yet, or elsewhere): try again later.
 */
export type RemoteApplied = "applied" | "duplicate" | "unknown";

/** One prerequisite's result, as a dependent's lease carries it. */
export interface PrerequisiteResult {
  readonly taskId: string;
  readonly result: unknown;
}

/**
 * A change record: one per state change, plain data. Applying the records, in
 * order, to the snapshot taken before them rebuilds the engine exactly.
 * - `add`: a task arrived (its spec and first status).
 * - `set`: a task's status changed (the whole new status).
 * - `drop`: a terminal task was compacted away after the retention period.
 * - `meta`: the engine-wide counters changed (absolute values).
 */
export type Change =
  | { readonly kind: "add"; readonly spec: TaskSpec; readonly status: TaskStatus }
  | { readonly kind: "set"; readonly id: string; readonly status: TaskStatus }
  | { readonly kind: "drop"; readonly id: string }
  | { readonly kind: "meta"; readonly meta: EngineMeta };

/** Engine-wide durable counters. */
export interface EngineMeta {
  /** Last fencing token issued. */
  readonly tokenSeq: number;
  /** Latest clock reading the engine acted on; time never runs backwards past it. */
  readonly clock: number;
  readonly leaseTimeouts: number;
  /** Attempts ended by their run time limit (timeoutMs); not counted in leaseTimeouts. */
  readonly attemptTimeouts: number;
  readonly deadlineMisses: number;
  readonly staleRejections: number;
  readonly retries: number;
}

/** The counters of an engine that has done nothing yet: where a store with no meta starts from. */
export const FRESH_ENGINE_META: EngineMeta = Object.freeze({
  tokenSeq: 0,
  clock: 0,
  leaseTimeouts: 0,
  attemptTimeouts: 0,
  deadlineMisses: 0,
  staleRejections: 0,
  retries: 0,
});

/** One task in a snapshot. */
export interface TaskRecord {
  readonly spec: TaskSpec;
  readonly status: TaskStatus;
}

export interface Snapshot {
  readonly version: 1;
  readonly meta: EngineMeta;
  readonly tasks: readonly TaskRecord[];
}

/**
 * What `Scheduler.restore` rebuilds from: a `Snapshot`, or the same with the
 * tasks as any iterable, read once, in order (rows streamed from a journal,
 * so they need not all be in memory at once).
 */
export interface RestoreSource {
  readonly version: 1;
  readonly meta: EngineMeta;
  readonly tasks: Iterable<TaskRecord>;
  /** How many tasks `tasks` yields, when known beforehand: the tables are sized once. A hint only. */
  readonly taskCount?: number;
}

export interface SchedulerStats {
  readonly counts: Readonly<Record<TaskState, number>>;
  /** Tasks in the runnable heap. */
  readonly runnable: number;
  /** Age of the longest-waiting runnable task (0 when none). */
  readonly oldestRunnableAgeMs: number;
  /** Earliest deadline among runnable tasks (the frontier), or null. */
  readonly frontierDeadline: number | null;
  readonly leaseTimeouts: number;
  /** Attempts ended by their run time limit (timeoutMs); not counted in leaseTimeouts. */
  readonly attemptTimeouts: number;
  readonly deadlineMisses: number;
  readonly staleRejections: number;
  readonly retries: number;
  /** Tasks currently held under a lease. */
  readonly leased: number;
  /**
   * Runnable and leased tasks per task type, for the types that have any
   * (a type with neither is left out), in type order. Absent from stats
   * older than task types.
   */
  readonly types?: readonly TypeCounts[];
  /** Types with runnable or leased tasks left out of `types` by a bound (a stats reply's). Absent: none. */
  readonly typesOmitted?: number;
  /**
   * Completion events of large workflows this engine owes other partitions
   * (its outbox, remote-edges.ts): a relay that cannot deliver shows here.
   * Absent when none.
   */
  readonly remoteOwed?: number;
}

/** One task type's share of the runnable and leased tasks (SchedulerStats.types). */
export interface TypeCounts {
  readonly type: string;
  readonly runnable: number;
  readonly leased: number;
}
