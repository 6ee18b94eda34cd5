/**
 * The scheduling engine: a single-threaded, in-memory, deterministic state
 * machine. No I/O; time and randomness are injected.
 *
 * Data structures (n live tasks, r runnable, d = dependents of one task,
 * p = prerequisites of one task):
 *   - TaskTable: structure of arrays addressed by integer handles, and an
 *     index from id to handle.
 *   - runnable: one IndexedHeap of RUNNABLE handles per task type
 *     (task-types.ts: types by small code, heaps sharing one position
 *     array), each keyed by (key, id), where key is the deadline (or, under
 *     the starvation guard, the moment the task's wait ran out, if earlier).
 *     A lease for k types takes the least top of their k heaps: O(k + log n)
 *     per task; for one type (the default) exactly the cost of one heap.
 *   - timers: IndexedHeap of handles keyed by (timerAt, id). A task has at
 *     most one pending timer, its kind implied by its state: LEASED → lease
 *     expiry (never later than the attempt's run time limit, timeoutMs);
 *     WAITING with no unmet prerequisite → end of retry backoff, or the
 *     task's notBefore (a task not yet leased);
 *     RUNNABLE with a hard deadline → the deadline; terminal → end of
 *     retention.
 *   - unmet[h] + dependents[h]: Kahn's algorithm run online. unmet counts
 *     prerequisites not yet completed, and is 0 for every task not WAITING
 *     on some (so a count above 0 says WAITING); completing a task walks
 *     only its own dependents list and decrements each one's counter; a
 *     counter reaching 0 moves the task into the runnable heap.
 *   - runnable FIFO (table.fifo): RUNNABLE tasks in the order they became
 *     runnable, so the oldest runnable age is O(1).
 *   - id index (table.index, id-index.ts): id → handle, open addressing over
 *     an Int32Array; a batch's lookups go through it in one pass each
 *     (getMany), so their cache misses overlap.
 *   - forward references (forward-references.ts): prerequisite ids not yet
 *     submitted → the handles waiting on them.
 *
 * State machine: transitions only through `setState`, which checks each
 * against TRANSITIONS (task-table.ts; drawn in the README).
 *
 * Every public call first runs the timers that are due (`advance`), then does
 * its work; every change is reported through `onChange` before the call
 * returns, so a journal can persist them before acknowledging anything.
 */
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import {
  InvalidArgumentError,
  InvalidStateError,
  type Problem,
  ProblemCode,
  StaleLeaseError,
  UnknownTaskError,
  ValidationError,
} from "./errors.js";
import { ForwardReferences } from "./forward-references.js";
import { IndexedHeap } from "./indexed-heap.js";
import type { SchedulerObserver, TaskEvent } from "./observer.js";
import { RemoteEdges } from "./remote-edges.js";
import { ascending, foldChanges, HandleList, StringCache } from "./restore.js";
import { queryTasks, type TaskPage, type TaskQuery } from "./task-query.js";
import { canTransition, Flag, isTerminal, S, STATE_NAMES, TaskTable } from "./task-table.js";
import { MAX_TASK_TYPES_HELD, TaskTypes } from "./task-types.js";
import type {
  Change,
  EngineMeta,
  Lease,
  PrerequisiteResult,
  RemoteApplied,
  RemoteEvent,
  RemoteLink,
  RemoteOutcome,
  RestoreSource,
  SchedulerStats,
  Snapshot,
  Task,
  TaskInput,
  TaskRecord,
  TaskSpec,
  TaskState,
  TaskStatus,
  TaskView,
} from "./types.js";
import { DEFAULT_TASK_TYPE, isTaskType, type TypeCounts } from "./types.js";
import {
  checkBatch,
  type GraphView,
  MAX_MEASURED_PAYLOAD_BYTES,
  type ParsedTask,
  type PayloadMeasure,
} from "./validate.js";

export interface SchedulerOptions {
  /** Clock in milliseconds. Readings that run backwards are clamped to the latest one. Default Date.now. */
  now?: () => number;
  /** Uniform [0, 1) source for retry jitter. Default Math.random. */
  random?: () => number;
  /** Let prerequisites name tasks not submitted yet (they wait for them). Default false. */
  allowForwardReferences?: boolean;
  /** Require prerequisites to share the dependent's workflowId (cluster mode). Default false. */
  sameWorkflowPrerequisites?: boolean;
  /** Attempts per task when the task does not say. Default 5. */
  defaultMaxAttempts?: number;
  /** Retry backoff. Default 1 s base, 5 min cap, 20 % jitter. */
  backoff?: Partial<BackoffPolicy>;
  /** Starvation guard: a task runnable this long is ordered as if due then. Default Infinity (off). */
  maxRunnableWaitMs?: number;
  /** Terminal tasks are forgotten this long after they finish. Default Infinity. */
  retentionMs?: number;
  /** Lease length when `lease` is not told. Default 30 s. */
  defaultLeaseMs?: number;
  /** Receives every change, synchronously and in order. */
  onChange?: (change: Change) => void;
  /** Told of task moves with their times, for metrics (observer.ts). */
  observer?: SchedulerObserver;
  /**
   * Measures payloads for `heldPayloadBytes` (a store passes its encoding's
   * size): once per task with a payload, in the batch check (a throw makes
   * the task MALFORMED) and on restore. Default none: payloads count 0.
   */
  measurePayload?: PayloadMeasure;
  /**
   * Bound of the prerequisites' results one lease carries, counted per
   * entry by `resultEntryBytes` (so in the measure of `measurePayload`):
   * entries are taken in prerequisite order, those that would pass the
   * bound are left out and counted in `Lease.resultsOmitted`. A store sets
   * it so a grant fits its reply. Default Infinity (every result).
   */
  maxLeaseResultBytes?: number;
  /**
   * The partition (a cluster's slot) of a task, for large workflows: a
   * prerequisite of a large task in another partition than the task's is
   * remote (remote-edges.ts): counted unmet until its completion event is
   * applied, never looked up here. Called with the prerequisite named as a
   * task of the dependent's workflow, large. Must be a pure function of its
   * argument. Default none: every prerequisite is local.
   */
  partitionOf?: (task: {
    readonly id: string;
    readonly workflowId?: string;
    readonly large?: true;
  }) => number;
}

/** What `complete` may carry besides the lease. */
export interface CompleteOptions {
  /**
   * The task's result, kept with it and handed to its dependents' leases.
   * Measured by `measurePayload` (a value it cannot measure is refused with
   * INVALID_ARGUMENT, changing nothing). Undefined: no result.
   */
  readonly result?: unknown;
}

/** The prerequisites' results a lease of a task carries (`prerequisiteResults`). */
export interface LeaseResults {
  readonly results: readonly PrerequisiteResult[];
  /** Results left out for the bound. */
  readonly omitted: number;
  /** What the kept entries count for, by `resultEntryBytes`. */
  readonly bytes: number;
}

/**
 * What one `{ taskId, result }` entry of `Lease.results` counts for: the
 * result's measured bytes, plus an upper bound of the entry's msgpack
 * envelope when the measure is msgpack's (a map header, the two keys, and
 * the id at 3 bytes per UTF-16 code unit with its string header).
 */
export function resultEntryBytes(taskId: string, resultBytes: number): number {
  return resultBytes + 3 * taskId.length + 24;
}

/** What a valid batch would add to what the engine holds. */
export interface BatchFootprint {
  /** Tasks in the batch (each is live when added). */
  readonly tasks: number;
  /** Their payloads' bytes, as `measurePayload` counts them. */
  readonly payloadBytes: number;
}

export interface AdmitOptions {
  /**
   * Called with the batch's footprint once the batch is found valid, before
   * anything changes: throw to refuse it whole (a store's limits). Not
   * called for an invalid batch.
   */
  readonly admit?: (footprint: BatchFootprint) => void;
  /**
   * Remote dependents to register on tasks held here or in the batch, with
   * the batch, atomically: each prerequisite must be such a task, of the
   * link's workflow and large (else UNKNOWN_PREREQUISITE or CROSS_WORKFLOW
   * for the link's dependent, and nothing changes). A prerequisite that
   * ended already owes its outcome to the new dependents at once.
   */
  readonly links?: readonly RemoteLink[];
}

export interface LeaseOptions {
  /** Most tasks to lease. Default 1, at most MAX_LEASE_BATCH. */
  max?: number;
  /** Lease length. Default from the engine options. */
  leaseMs?: number;
  /**
   * Lease only tasks whose ordering key (see peekFrontier) is at most this.
   * A router filling one request from several engines uses it to take from
   * each only what comes before the next engine's frontier.
   */
  maxKey?: number;
  /**
   * With `maxKey`: of the tasks whose key equals `maxKey`, lease only those
   * whose id is at most this. The dispatch order is (key, id) everywhere, so
   * a router bounds each engine by the next engine's (key, id): ties between
   * engines go by task id, as they do within one.
   */
  maxTaskId?: string;
  /**
   * Lease only tasks of these types (each a valid task type, at most
   * MAX_LEASE_TYPES), earliest first among them. Absent: the default type
   * only, so a task of another type never reaches a worker that named none.
   */
  types?: readonly string[];
}

/** Most types one lease call may name. */
export const MAX_LEASE_TYPES = 64;

/** One task type's frontier: its first runnable task and how many of its tasks are runnable. */
export interface TypeFrontier {
  readonly type: string;
  readonly id: string;
  readonly deadline: number;
  readonly key: number;
  readonly runnable: number;
}

/** Whether a task of `key` and `id` comes after the bound (`maxKey`, `maxTaskId`) in dispatch order. */
export function pastBound(key: number, id: string, maxKey: number, maxTaskId: string | undefined): boolean {
  return key > maxKey || (key === maxKey && maxTaskId !== undefined && id > maxTaskId);
}

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_LEASE_MS = 30_000;
/** Upper bound on one lease call's `max`. */
export const MAX_LEASE_BATCH = 10_000;

const EMPTY: readonly string[] = Object.freeze([]);
/** The codes of a lease that names no types: the default type's. */
const DEFAULT_CODES: readonly number[] = Object.freeze([0]);

function footprintOf(tasks: readonly ParsedTask[]): BatchFootprint {
  let payloadBytes = 0;
  for (let i = 0; i < tasks.length; i++) payloadBytes += tasks[i]!.payloadBytes;
  return { tasks: tasks.length, payloadBytes };
}

/** A task held without a workflow (Scheduler.holder), shared. */
const NO_WORKFLOW: { readonly workflowId?: string } = Object.freeze({});

export class Scheduler {
  private readonly table = new TaskTable();
  /** Task types by code, each with its runnable heap (task-types.ts). */
  private readonly types: TaskTypes;
  /** RUNNABLE tasks over every type's heap. */
  private runnableTotal = 0;
  private readonly timers: IndexedHeap;
  private readonly forwardWaiters = new ForwardReferences();
  private readonly remote = new RemoteEdges();
  private readonly partitionOf: SchedulerOptions["partitionOf"];
  /** The last large task partitionOfLarge was asked about, and its partition. */
  private lastLargeId: string | undefined;
  private lastLargeWorkflow: string | undefined;
  private lastLargePartition = 0;
  private readonly counts = new Int32Array(STATE_NAMES.length);
  private fifoHead = -1;
  private fifoTail = -1;

  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly forwardRefs: boolean;
  private readonly sameWorkflow: boolean;
  private readonly defaultMaxAttempts: number;
  private readonly backoff: BackoffPolicy;
  private readonly maxWait: number;
  private readonly retentionMs: number;
  private readonly defaultLeaseMs: number;
  private readonly sink: ((change: Change) => void) | undefined;
  private readonly observer: SchedulerObserver | undefined;
  private readonly measurePayload: PayloadMeasure | undefined;
  private readonly maxLeaseResultBytes: number;
  /** Sum of payloadBytes and resultBytes over the tasks held (live or terminal, until dropped). */
  private heldBytes = 0;

  private lastNow = Number.NEGATIVE_INFINITY;
  private tokenSeq = 0;
  private leaseTimeouts = 0;
  private attemptTimeouts = 0;
  private deadlineMisses = 0;
  private staleRejections = 0;
  private retries = 0;
  private metaDirty = false;
  private readonly view: GraphView;

  constructor(options: SchedulerOptions = {}) {
    this.clock = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.forwardRefs = options.allowForwardReferences ?? false;
    this.sameWorkflow = options.sameWorkflowPrerequisites ?? false;
    this.partitionOf = options.partitionOf;
    this.defaultMaxAttempts = positiveInt(
      "defaultMaxAttempts",
      options.defaultMaxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    );
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    if (!(this.backoff.baseMs >= 0 && this.backoff.maxMs >= this.backoff.baseMs))
      throw new InvalidArgumentError("backoff needs 0 <= baseMs <= maxMs");
    if (!(this.backoff.jitter >= 0 && this.backoff.jitter <= 1))
      throw new InvalidArgumentError("backoff.jitter must be in [0, 1]");
    this.maxWait = nonNegative("maxRunnableWaitMs", options.maxRunnableWaitMs ?? Number.POSITIVE_INFINITY);
    this.retentionMs = nonNegative("retentionMs", options.retentionMs ?? Number.POSITIVE_INFINITY);
    this.defaultLeaseMs = positive("defaultLeaseMs", options.defaultLeaseMs ?? DEFAULT_LEASE_MS);
    this.sink = options.onChange;
    this.observer = options.observer;
    this.measurePayload = options.measurePayload;
    this.maxLeaseResultBytes = nonNegative(
      "maxLeaseResultBytes",
      options.maxLeaseResultBytes ?? Number.POSITIVE_INFINITY,
    );

    const t = this.table;
    // The heaps cache each entry's key (keyOf) and order by it; the
    // comparator only breaks ties between equal keys, by id.
    const byId = (a: number, b: number) => t.ids[a]! < t.ids[b]!;
    this.types = new TaskTypes((positions) => new IndexedHeap(byId, 16, (h) => this.keyOf(h), positions));
    this.timers = new IndexedHeap(byId, 16, (h) => t.timerAt[h]!);
    const self = this;
    this.view = {
      allowForwardReferences: this.forwardRefs,
      sameWorkflowPrerequisites: this.sameWorkflow,
      has: (id) => t.index.has(id),
      resolve: (id) => t.index.get(id),
      resolveMany: (ids, out) => t.index.getMany(ids, out),
      workflowAt: (h) => t.workflowId[h],
      largeOf: (id) => {
        const h = t.index.get(id);
        return h >= 0 && (t.flags[h]! & Flag.LARGE) !== 0;
      },
      largeAt: (h) => (t.flags[h]! & Flag.LARGE) !== 0,
      isRemote: (spec, p) => this.isRemote(spec.workflowId, spec.id, p),
      workflowOf: (id) => {
        const h = t.index.get(id);
        return h < 0 ? undefined : t.workflowId[h];
      },
      *waitingOn(id) {
        const h = t.index.get(id);
        if (h < 0) {
          for (const d of self.forwardWaiters.waitingFor(id)) if (!isTerminal(t.state[d]!)) yield t.ids[d]!;
          return;
        }
        for (let e = t.firstEdge(h); e >= 0; e = t.nextEdge(e)) {
          const d = t.edgeTarget(e);
          if (!isTerminal(t.state[d]!)) yield t.ids[d]!;
        }
      },
    };
  }

  /**
   * Rebuilds an engine from a snapshot (or rows streamed from a journal, see
   * RestoreSource) and the changes recorded after it. Cost O(n + e), plus
   * O(r log r) when the runnable tasks' FIFO order is not already their
   * record order: derived structures (counters, dependents, heaps) are
   * recomputed from the task records, so no history is needed.
   */
  static restore(
    snapshot: RestoreSource,
    changes: Iterable<Change> = [],
    options: SchedulerOptions = {},
  ): Scheduler {
    if (snapshot.version !== 1)
      throw new InvalidArgumentError(`unsupported snapshot version ${snapshot.version}`);
    const pending = Array.isArray(changes) ? changes : [...changes];
    if (pending.length === 0) {
      // The usual recovery (a journal of live rows): load them as they are.
      const engine = new Scheduler(options);
      const count = Array.isArray(snapshot.tasks) ? snapshot.tasks.length : (snapshot.taskCount ?? 0);
      engine.load(snapshot.meta, snapshot.tasks, count);
      return engine;
    }
    const { meta, records } = foldChanges(snapshot, pending as readonly Change[]);
    const engine = new Scheduler(options);
    engine.load(meta, records.values(), records.size);
    return engine;
  }

  // ---------------------------------------------------------------- Parts 1–2

  /**
   * Adds one task or a batch, atomically: if any task is invalid nothing is
   * added and a ValidationError lists every problem. A task whose
   * prerequisites are all completed is runnable at once. Returns the number
   * of tasks added. Cost O(b·(p + log n)) for a batch of b tasks, plus the
   * cycle check (see validate.ts). `options.admit` may refuse a valid batch.
   */
  addTasks(input: TaskInput | readonly TaskInput[], options: AdmitOptions = {}): number {
    const batch: readonly unknown[] = Array.isArray(input) ? input : [input];
    this.advance();
    const { tasks, problems, prerequisiteHandles } = checkBatch(batch, {
      defaults: { maxAttempts: this.defaultMaxAttempts },
      view: this.view,
      measurePayload: this.measurePayload,
    });
    if (options.links !== undefined) problems.push(...this.linkProblems(options.links, tasks));
    if (problems.length > 0) throw new ValidationError(problems);
    const crowded = this.typeRoomProblems(tasks);
    if (crowded.length > 0) throw new ValidationError(crowded);
    options.admit?.(footprintOf(tasks));
    this.insert(tasks, prerequisiteHandles);
    if (options.links !== undefined) this.addLinks(options.links);
    this.observer?.added(tasks.length);
    this.flushMeta();
    return tasks.length;
  }

  /**
   * Checks a batch as addTasks would, without adding it: the problems found
   * (empty when addTasks would accept it now). `alsoTaken` names ids to treat
   * as already known (a router's reservations for batches not yet committed).
   * When there is no problem, `options.admit` is called as addTasks would,
   * and what it throws is thrown.
   */
  check(
    input: TaskInput | readonly TaskInput[],
    alsoTaken?: ReadonlySet<string>,
    options: AdmitOptions = {},
  ): Problem[] {
    const batch: readonly unknown[] = Array.isArray(input) ? input : [input];
    this.advance();
    const view: GraphView = alsoTaken?.size
      ? {
          ...this.view,
          has: (id) => alsoTaken.has(id) || this.view.has(id),
          waitingOn: this.view.waitingOn,
          resolve: undefined,
          resolveMany: undefined,
        }
      : this.view;
    const { tasks, problems } = checkBatch(batch, {
      defaults: { maxAttempts: this.defaultMaxAttempts },
      view,
      measurePayload: this.measurePayload,
    });
    if (options.links !== undefined) problems.push(...this.linkProblems(options.links, tasks));
    if (problems.length === 0) problems.push(...this.typeRoomProblems(tasks));
    if (problems.length === 0) options.admit?.(footprintOf(tasks));
    return problems;
  }

  /**
   * MALFORMED for the tasks of the batch's new types past MAX_TASK_TYPES_HELD
   * types held at once (codes are 16-bit). O(b).
   */
  private typeRoomProblems(tasks: readonly ParsedTask[]): Problem[] {
    const problems: Problem[] = [];
    let room = MAX_TASK_TYPES_HELD - this.types.size;
    const fresh = new Set<string>();
    for (const { spec } of tasks) {
      const type = spec.type;
      if (type === undefined || this.types.find(type) >= 0 || fresh.has(type)) continue;
      if (room > 0) {
        room--;
        fresh.add(type);
        continue;
      }
      problems.push({
        taskId: spec.id,
        code: "MALFORMED",
        message: `type ${q(type)} is one more than the ${MAX_TASK_TYPES_HELD} task types an engine holds at once`,
      });
    }
    return problems;
  }

  /**
   * Removes the earliest-deadline runnable task (ties by id) of `types`
   * (absent: the default type, as for `lease`) and returns it, or null. The
   * task is LEASED with no expiry until completeTask. O(k + log n).
   */
  consumeTask(types?: readonly string[]): Task | null {
    const codes = this.codesOf(types);
    this.advance();
    const h = this.topOf(codes);
    if (h < 0) return null;
    this.grant(h, undefined, Number.POSITIVE_INFINITY);
    this.flushMeta();
    return this.taskOf(h);
  }

  /** Marks a consumed (or leased) task done and unblocks its dependents. O(d + d·log n). */
  completeTask(id: string): void {
    this.advance();
    const h = this.handle(id);
    const state = this.table.state[h]!;
    if (state !== S.LEASED) {
      throw new InvalidStateError(
        id,
        STATE_NAMES[state]!,
        `task ${q(id)} is ${STATE_NAMES[state]}, not LEASED`,
      );
    }
    this.finishCompleted(h);
    this.flushMeta();
  }

  // ------------------------------------------------------------------ leases

  /**
   * Leases up to `max` runnable tasks in (deadline, id) order to `owner`.
   * Each lease carries a fencing token larger than any issued before.
   * O(max · log n).
   */
  lease(owner: string, options: LeaseOptions = {}): Lease[] {
    if (typeof owner !== "string" || owner.length === 0)
      throw new InvalidArgumentError("owner must be a non-empty string");
    const max = options.max ?? 1;
    if (!Number.isInteger(max) || max < 1 || max > MAX_LEASE_BATCH)
      throw new InvalidArgumentError(`max must be an integer in 1..${MAX_LEASE_BATCH}, got ${max}`);
    const leaseMs = positive("leaseMs", options.leaseMs ?? this.defaultLeaseMs);
    const maxKey = options.maxKey ?? Number.POSITIVE_INFINITY;
    if (typeof maxKey !== "number" || Number.isNaN(maxKey))
      throw new InvalidArgumentError("maxKey must be a number");
    const maxTaskId = options.maxTaskId;
    if (maxTaskId !== undefined && typeof maxTaskId !== "string")
      throw new InvalidArgumentError("maxTaskId must be a string");
    const codes = this.codesOf(options.types);
    const now = this.advance();
    const leases: Lease[] = [];
    if (codes.length === 1) {
      // One type (the default, usually): its heap alone, as an engine without types.
      const heap = this.types.heaps[codes[0]!]!;
      while (leases.length < max) {
        const h = heap.peek();
        if (h < 0 || pastBound(heap.peekKey(), this.table.ids[h]!, maxKey, maxTaskId)) break;
        this.grant(h, owner, now + leaseMs);
        leases.push(this.leaseOf(h, true));
      }
    } else {
      while (leases.length < max) {
        const h = this.topOf(codes);
        if (h < 0 || pastBound(this.heapOf(h).peekKey(), this.table.ids[h]!, maxKey, maxTaskId)) break;
        this.grant(h, owner, now + leaseMs);
        leases.push(this.leaseOf(h, true));
      }
    }
    this.flushMeta();
    return leases;
  }

  /**
   * The codes of the named types that have tasks held (a type with none
   * has nothing to lease); absent: the default type. INVALID_ARGUMENT for a
   * name that is not a task type or more than MAX_LEASE_TYPES names. O(k).
   */
  private codesOf(types: readonly string[] | undefined): readonly number[] {
    if (types === undefined) return DEFAULT_CODES;
    if (!Array.isArray(types) || types.length > MAX_LEASE_TYPES)
      throw new InvalidArgumentError(`types must be a list of at most ${MAX_LEASE_TYPES} task types`);
    const codes: number[] = [];
    for (const type of types) {
      if (!isTaskType(type)) throw new InvalidArgumentError(`${q(type)} is not a task type`);
      const code = this.types.find(type);
      if (code >= 0 && !codes.includes(code)) codes.push(code);
    }
    return codes;
  }

  /** The runnable heap of `h`'s type. */
  private heapOf(h: number): IndexedHeap {
    return this.types.heaps[this.table.typeCode[h]!]!;
  }

  /** The task first in dispatch order, (key, id), among the tops of the heaps of `codes`, or -1. O(k). */
  private topOf(codes: readonly number[]): number {
    const heaps = this.types.heaps;
    const ids = this.table.ids;
    let best = -1;
    let bestKey = 0;
    for (let i = 0; i < codes.length; i++) {
      const heap = heaps[codes[i]!]!;
      const h = heap.peek();
      if (h < 0) continue;
      const key = heap.peekKey();
      if (best < 0 || key < bestKey || (key === bestKey && ids[h]! < ids[best]!)) {
        best = h;
        bestKey = key;
      }
    }
    return best;
  }

  /** Codes of every type with runnable tasks. O(types registered). */
  private runnableCodes(): number[] {
    const codes: number[] = [];
    const heaps = this.types.heaps;
    for (let c = 0; c < heaps.length; c++) if (heaps[c]!.size > 0) codes.push(c);
    return codes;
  }

  /**
   * Extends a live lease, never past the attempt's run time limit (grant +
   * timeoutMs): once that has passed the attempt is over (the timer ran
   * first), so the token is stale. STALE_LEASE unless `token` is the live
   * lease's. O(log n).
   */
  heartbeat(taskId: string, token: number, options: { leaseMs?: number } = {}): Lease {
    const leaseMs = positive("leaseMs", options.leaseMs ?? this.defaultLeaseMs);
    const now = this.advance();
    const h = this.handle(taskId);
    this.checkLive(h, token);
    const t = this.table;
    // A consumed task (no owner) keeps its expiry: none, or its run time limit.
    if (t.owner[h] !== undefined) {
      t.timerAt[h] = this.capToTimeout(h, now + leaseMs);
      this.timers.update(h);
    }
    this.emitSet(h);
    return this.leaseOf(h);
  }

  /**
   * Completes a leased task, keeping `options.result` with it. A repeat with
   * the token that completed it is acknowledged as a duplicate and changes
   * nothing, its result included: the first accepted complete's result
   * stays (dependents are unblocked exactly once, and may already hold it).
   * A stale token is refused before the result is looked at, so a refused
   * complete stores nothing. O(d · log n).
   */
  complete(taskId: string, token: number, options: CompleteOptions = {}): { duplicate: boolean } {
    this.advance();
    const h = this.handle(taskId);
    const t = this.table;
    if (t.state[h] === S.COMPLETED && t.token[h] === token) {
      this.observer?.duplicate("complete");
      return { duplicate: true };
    }
    this.checkLive(h, token);
    const result = options.result;
    if (result !== undefined) {
      // Measured before anything changes: a result the store cannot take is refused whole.
      const bytes = this.measureResult(taskId, result);
      t.result[h] = result;
      t.resultBytes[h] = bytes;
      this.heldBytes += bytes;
    }
    this.finishCompleted(h);
    this.flushMeta();
    return { duplicate: false };
  }

  /**
   * Reports a failed attempt. Retryable with attempts left: WAITING until a
   * backoff with jitter has passed, then RUNNABLE. Otherwise FAILED, and the
   * dependents follow their policy. A repeat with the same token is a no-op.
   */
  fail(taskId: string, token: number, options: { retryable?: boolean; reason?: string } = {}): TaskView {
    const now = this.advance();
    const h = this.handle(taskId);
    const t = this.table;
    const state = t.state[h]!;
    // attempts > 0: a task waiting for its notBefore was never leased (token 0 holds nothing).
    const inBackoff = state === S.WAITING && t.unmet[h] === 0 && t.attempts[h]! > 0 && t.token[h] === token;
    if (t.token[h] === token && (inBackoff || state === S.FAILED)) {
      this.observer?.duplicate("fail");
      return this.viewOf(h);
    }
    this.checkLive(h, token);
    const reason = truncate(options.reason ?? "failed");
    if ((options.retryable ?? true) && t.attempts[h]! < t.maxAttempts[h]!) {
      this.retries++;
      this.metaDirty = true;
      this.observer?.retried();
      this.leaveLeased(h);
      t.reason[h] = `attempt ${t.attempts[h]} of ${t.maxAttempts[h]} failed: ${reason}`;
      this.taskEvent(h, "retrying");
      this.setState(h, S.WAITING);
      t.timerAt[h] = now + backoffDelay(this.backoff, t.attempts[h]!, this.random);
      this.timers.push(h);
      this.emitSet(h);
    } else {
      const why =
        options.retryable === false
          ? `failed (not retryable): ${reason}`
          : `failed after ${t.attempts[h]} attempt(s): ${reason}`;
      this.finishBadly(h, S.FAILED, why);
    }
    this.flushMeta();
    return this.viewOf(h);
  }

  /**
   * Hands a live lease back without spending an attempt, as if it had never
   * been granted: LEASED → RUNNABLE at once (no backoff), the attempt count
   * back to what it was before the grant, the reason and everything else as
   * they were; only the fencing token stays spent, so the released lease is
   * fenced (its heartbeat, complete, fail: STALE_LEASE) and the next grant
   * gets a larger one. A task whose hard deadline passed meanwhile EXPIRES,
   * as it would have, runnable; its wait for the starvation guard starts
   * again now. A repeat with the token it released, while no lease was
   * granted since (TaskStatus.released), is a duplicate and changes nothing;
   * any other token not live is STALE_LEASE. O(log n).
   */
  release(taskId: string, token: number): { duplicate: boolean } {
    const now = this.advance();
    const h = this.handle(taskId);
    const t = this.table;
    if (t.flags[h]! & Flag.RELEASED && t.token[h] === token) {
      this.observer?.duplicate("release");
      return { duplicate: true };
    }
    this.checkLive(h, token);
    this.observer?.released();
    this.taskEvent(h, "released");
    this.leaveLeased(h);
    t.attempts[h]!--;
    t.flags[h]! |= Flag.RELEASED;
    this.enterRunnable(h, now);
    this.flushMeta();
    return { duplicate: false };
  }

  // ------------------------------------------------- cancellation, deadlines

  /**
   * Cancels a task in any live state (a held lease becomes stale); its
   * dependents follow their policy. Cancelling a cancelled task is a no-op.
   * O(log n) plus the cascade.
   */
  cancel(taskId: string, reason = "cancelled"): void {
    this.advance();
    const h = this.handle(taskId);
    const state = this.table.state[h]!;
    if (state === S.CANCELLED) return;
    if (isTerminal(state)) {
      throw new InvalidStateError(
        taskId,
        STATE_NAMES[state]!,
        `task ${q(taskId)} already ended ${STATE_NAMES[state]}`,
      );
    }
    this.finishBadly(h, S.CANCELLED, truncate(reason));
    this.flushMeta();
  }

  /** Moves a live task's deadline, in place in the runnable heap (sifts either way). O(log n). */
  updateDeadline(taskId: string, deadline: number): void {
    if (typeof deadline !== "number" || !Number.isFinite(deadline))
      throw new InvalidArgumentError(`deadline must be a finite number, got ${String(deadline)}`);
    const now = this.advance();
    const h = this.handle(taskId);
    const t = this.table;
    const state = t.state[h]!;
    if (isTerminal(state)) {
      throw new InvalidStateError(
        taskId,
        STATE_NAMES[state]!,
        `task ${q(taskId)} already ended ${STATE_NAMES[state]}`,
      );
    }
    t.deadline[h] = deadline;
    if (state === S.RUNNABLE) {
      this.heapOf(h).update(h);
      if (t.flags[h]! & Flag.HARD_DEADLINE) {
        if (deadline <= now) {
          this.expire(h);
          this.flushMeta();
          return;
        }
        t.timerAt[h] = deadline;
        this.timers.update(h);
      }
    }
    this.emitSet(h);
  }

  // -------------------------------------------------------------- inspection

  /**
   * Whether a task of id `id` is held (any state), and its workflow: what
   * an id's claim needs, without running timers or building a view. O(1).
   */
  holder(id: string): { readonly workflowId?: string; readonly large?: true } | undefined {
    const h = typeof id === "string" ? this.table.index.get(id) : undefined;
    if (h === undefined || h < 0) return undefined;
    const workflowId = this.table.workflowId[h];
    if (workflowId === undefined) return NO_WORKFLOW;
    return (this.table.flags[h]! & Flag.LARGE) !== 0 ? { workflowId, large: true } : { workflowId };
  }

  /**
   * The task as a lease of it carries it, and its payload's bytes as
   * `measurePayload` counted them at submit (0 without a payload or without
   * a measure), or undefined for an unknown id: what a server sizes a grant
   * by before it makes it, without building a whole view. Due timers are not
   * run. O(1).
   */
  leaseTask(id: string): { readonly task: Task; readonly payloadBytes: number } | undefined {
    const h = typeof id === "string" ? this.table.index.get(id) : -1;
    return h < 0 ? undefined : { task: this.taskOf(h), payloadBytes: this.table.payloadBytes[h]! };
  }

  /** The task as of now (due timers run first), or undefined for an unknown id. O(1). */
  getTask(id: string): TaskView | undefined {
    this.advance();
    const h = typeof id === "string" ? this.table.index.get(id) : -1;
    return h < 0 ? undefined : this.viewOf(h);
  }

  /**
   * The prerequisites' results a lease of task `id` carries now (see
   * `Lease.results`), or undefined for an unknown id. A store measures a
   * grant with it before making it. Due timers are not run. O(p).
   */
  prerequisiteResults(id: string): LeaseResults | undefined {
    const h = typeof id === "string" ? this.table.index.get(id) : -1;
    return h < 0 ? undefined : this.resultsOf(h);
  }

  /**
   * A page of tasks matching `query`, in (deadline, id) order, without
   * payloads (see task-query.ts). Due timers run first. O(handles) — a pass
   * over two typed arrays — plus O(log limit) per task inside the page.
   */
  listTasks(query: TaskQuery): TaskPage {
    const { limit } = query;
    if (!Number.isInteger(limit) || limit < 1)
      throw new InvalidArgumentError(`limit must be a positive integer, got ${String(limit)}`);
    for (const s of query.states ?? [])
      if (!STATE_NAMES.includes(s)) throw new InvalidArgumentError(`unknown state ${q(String(s))}`);
    for (const type of query.types ?? [])
      if (!isTaskType(type)) throw new InvalidArgumentError(`${q(type)} is not a task type`);
    this.advance();
    return queryTasks(this.table, query, this.types.names);
  }

  /**
   * Runs a task that ended FAILED, CANCELLED or EXPIRED again, from the
   * start: attempts back to 0, reason cleared, RUNNABLE when every
   * prerequisite is met, else WAITING for those still live (`deadline`
   * replaces its deadline first). Only the task moves: dependents cancelled
   * because it ended are retried one by one, each after its prerequisites.
   *
   * Refused (InvalidStateError, nothing changes) when the task is live or
   * COMPLETED; when a prerequisite ended badly and the task's policy is
   * "cancel" (it would be cancelled again: retry that one first); when a
   * prerequisite was compacted away (its outcome is no longer known); when
   * a dependent already runs without it ("continue" policy: it cannot wait
   * again); or when its hard deadline has passed and no new one is given.
   * O(p + d + dependents of each prerequisite).
   */
  retry(taskId: string, options: { deadline?: number } = {}): TaskView {
    const { deadline } = options;
    if (deadline !== undefined && (typeof deadline !== "number" || !Number.isFinite(deadline)))
      throw new InvalidArgumentError(`deadline must be a finite number, got ${String(deadline)}`);
    const now = this.advance();
    const h = this.handle(taskId);
    const t = this.table;
    const state = t.state[h]!;
    const refuse = (why: string): never => {
      throw new InvalidStateError(taskId, STATE_NAMES[state]!, `cannot retry task ${q(taskId)}: ${why}`);
    };
    if (!isTerminal(state) || state === S.COMPLETED) refuse(`it is ${STATE_NAMES[state]}, not ended badly`);
    // Its remote neighbours were told it ended (or told it of theirs) by events that cannot be taken back.
    if (this.remote.dependents.has(h) || t.prerequisites[h]!.some((p) => this.isRemoteAt(h, p)))
      refuse("it has prerequisites or dependents in other partitions of its large workflow");
    const continues = (t.flags[h]! & Flag.CONTINUE_ON_PREREQUISITE_FAILURE) !== 0;
    const prerequisites: number[] = [];
    let unmet = 0;
    for (const p of t.prerequisites[h]!) {
      const ph = t.index.get(p);
      // A rebuilt engine would take an unknown prerequisite of a live task for a forward reference.
      if (ph < 0) refuse(`prerequisite ${q(p)} is no longer known (compacted after its retention)`);
      const ps = t.state[ph]!;
      if (isTerminal(ps) && ps !== S.COMPLETED && !continues)
        refuse(`prerequisite ${q(p)} ended ${STATE_NAMES[ps]}: retry it first`);
      if (!isTerminal(ps)) unmet++;
      prerequisites.push(ph);
    }
    // A dependent waiting on other prerequisites waits on this one again (as a rebuilt engine
    // counts it); one already past waiting ("continue" policy) cannot be made to wait.
    const waiting: number[] = [];
    for (let e = t.firstEdge(h); e >= 0; e = t.nextEdge(e)) {
      const d = t.edgeTarget(e);
      const ds = t.state[d]!;
      if (isTerminal(ds)) continue;
      if (ds === S.WAITING && t.unmet[d]! > 0) waiting.push(d);
      else refuse(`dependent ${q(t.ids[d]!)} is ${STATE_NAMES[ds]} without it`);
    }
    const newDeadline = deadline ?? t.deadline[h]!;
    if (t.flags[h]! & Flag.HARD_DEADLINE && newDeadline <= now)
      refuse(`its hard deadline ${newDeadline} has passed: give a new deadline`);

    // Checked: now change. Its prerequisites keep it among their dependents (a compaction may
    // have taken it off the list of one that ended while it was terminal).
    for (const ph of prerequisites) {
      let listed = false;
      for (let e = t.firstEdge(ph); e >= 0 && !listed; e = t.nextEdge(e)) listed = t.edgeTarget(e) === h;
      if (!listed) t.addDependent(ph, h);
    }
    for (const d of waiting) t.unmet[d]!++;
    this.timers.remove(h); // its retention timer
    t.deadline[h] = newDeadline;
    t.attempts[h] = 0;
    t.reason[h] = undefined;
    t.flags[h]! &= ~Flag.UNBLOCKED;
    t.unmet[h] = unmet;
    if (unmet > 0) {
      this.setState(h, S.WAITING);
      this.emitSet(h);
    } else this.enterRunnable(h, now);
    this.flushMeta();
    return this.viewOf(h);
  }

  // ------------------------------------------------- large workflows (remote-edges.ts)

  /**
   * Applies completion events of remote prerequisites, each to its
   * dependent held here, as a local completion (or bad end) would: the
   * dependent's unmet count falls (RUNNABLE at zero), or, for an outcome
   * other than COMPLETED under the "cancel" policy, it is cancelled (and
   * its dependents in turn). Exactly once per (dependent, prerequisite):
   * the pair is recorded in the dependent's status with the change (see
   * RemoteApplied for each answer). O(k) per event for k remote
   * prerequisites of its dependent, plus what it unblocks.
   */
  applyRemote(events: readonly RemoteEvent[]): RemoteApplied[] {
    const now = this.advance();
    const t = this.table;
    const answers: RemoteApplied[] = [];
    for (const event of events) {
      const h = t.index.get(event.dependent);
      if (h < 0 || t.workflowId[h] !== event.workflowId || !(t.flags[h]! & Flag.LARGE)) {
        answers.push("unknown");
        continue;
      }
      const p = event.prerequisite;
      const waits = t.prerequisites[h]!.includes(p) && this.isRemoteAt(h, p);
      if (!waits || this.remote.hasMet(h, p) || isTerminal(t.state[h]!)) {
        answers.push("duplicate");
        continue;
      }
      this.remote.addMet(h, p);
      answers.push("applied");
      if (event.outcome !== "COMPLETED" && !(t.flags[h]! & Flag.CONTINUE_ON_PREREQUISITE_FAILURE)) {
        this.finishBadly(h, S.CANCELLED, `prerequisite ${q(p)} ended ${event.outcome}`);
        continue;
      }
      // Unmet counts a remote prerequisite until now: a WAITING task has it above zero.
      if (t.unmet[h]! > 0 && --t.unmet[h]! === 0) {
        t.flags[h]! |= Flag.UNBLOCKED;
        this.enterRunnable(h, now);
      } else this.emitSet(h);
    }
    this.flushMeta();
    return answers;
  }

  /**
   * The outbox: for each task here that ended with remote dependents not
   * yet acknowledged, one event per such dependent, at most `limit` in all,
   * leaving out those `skip` names (a relay's events waiting for a retry).
   * What a relay sends (only once the changes that made them are durable).
   * O(returned).
   */
  remoteOutbox(
    limit = Number.POSITIVE_INFINITY,
    skip?: (prerequisite: string, dependent: string) => boolean,
  ): RemoteEvent[] {
    const t = this.table;
    const events: RemoteEvent[] = [];
    for (const [h, due] of this.remote.undelivered) {
      const outcome = STATE_NAMES[t.state[h]!] as RemoteOutcome;
      const workflowId = t.workflowId[h]!;
      const prerequisite = t.ids[h]!;
      for (const dependent of due) {
        if (events.length >= limit) return events;
        if (skip?.(prerequisite, dependent)) continue;
        events.push({ prerequisite, dependent, workflowId, outcome });
      }
    }
    return events;
  }

  /** Outcomes owed by the outbox (remoteOutbox without a limit, counted). O(1). */
  get remoteOutboxSize(): number {
    return this.remote.owing;
  }

  /**
   * Dependents acknowledged their events (applied or duplicate there): they
   * leave the outbox. A prerequisite whose last one this was records it
   * (remoteDelivered) and may be dropped after its retention again.
   * Unknown pairs (a task that moved away meanwhile, an event acknowledged
   * twice) are ignored. O(acknowledged).
   */
  acknowledgeRemote(acks: readonly { readonly prerequisite: string; readonly dependent: string }[]): void {
    const now = this.advance();
    const t = this.table;
    for (const { prerequisite, dependent } of acks) {
      const h = t.index.get(prerequisite);
      if (h < 0 || !this.remote.acknowledge(h, dependent)) continue;
      this.emitSet(h);
      // tryDrop kept it without a timer while the outbox owed something.
      if (this.retentionMs !== Number.POSITIVE_INFINITY && !this.timers.has(h))
        this.armTimer(h, Math.max(now, t.stamp[h]! + this.retentionMs));
    }
    this.flushMeta();
  }

  /** Whether `p`, a prerequisite of the large task (workflowId, id), is in another partition. */
  private isRemote(workflowId: string | undefined, id: string, p: string): boolean {
    const partitionOf = this.partitionOf;
    if (partitionOf === undefined || workflowId === undefined) return false;
    return (
      partitionOf({ id: p, workflowId, large: true }) !== this.partitionOfLarge(partitionOf, workflowId, id)
    );
  }

  /**
   * The partition of the large task (workflowId, id), kept for the last task
   * asked about: a task's prerequisites are asked about one after another,
   * so it is computed once per task, not once per prerequisite. Sound
   * because partitionOf is a pure function of its argument.
   */
  private partitionOfLarge(
    partitionOf: NonNullable<SchedulerOptions["partitionOf"]>,
    workflowId: string,
    id: string,
  ): number {
    if (id !== this.lastLargeId || workflowId !== this.lastLargeWorkflow) {
      this.lastLargePartition = partitionOf({ id, workflowId, large: true });
      this.lastLargeId = id;
      this.lastLargeWorkflow = workflowId;
    }
    return this.lastLargePartition;
  }

  /** isRemote for a prerequisite of the task at `h`. */
  private isRemoteAt(h: number, p: string): boolean {
    const t = this.table;
    return (t.flags[h]! & Flag.LARGE) !== 0 && this.isRemote(t.workflowId[h], t.ids[h]!, p);
  }

  /**
   * The problems of `links` against what is held here plus `tasks`. A
   * prerequisite merely reserved (another batch's prepared part) is not
   * held: a cluster has no forward references. O(links).
   */
  private linkProblems(links: readonly RemoteLink[], tasks: readonly ParsedTask[]): Problem[] {
    const t = this.table;
    const inBatch = new Map<string, TaskSpec>();
    for (const { spec } of tasks) inBatch.set(spec.id, spec);
    const problems: Problem[] = [];
    for (const link of links) {
      const spec = inBatch.get(link.prerequisite);
      const h = spec === undefined ? t.index.get(link.prerequisite) : -1;
      if (spec === undefined && h < 0) {
        problems.push({
          taskId: link.dependent,
          code: ProblemCode.UNKNOWN_PREREQUISITE,
          message: `prerequisite ${q(link.prerequisite)} is not a known task of workflow ${q(link.workflowId)} and is not in the batch`,
        });
        continue;
      }
      const workflowId = spec !== undefined ? spec.workflowId : t.workflowId[h];
      const large = spec !== undefined ? spec.large === true : (t.flags[h]! & Flag.LARGE) !== 0;
      if (workflowId !== link.workflowId || !large) {
        problems.push({
          taskId: link.dependent,
          code: ProblemCode.CROSS_WORKFLOW,
          message: `prerequisite ${q(link.prerequisite)} is not a task of the large workflow ${q(link.workflowId)} (it is in ${q(workflowId)}${large ? "" : ", not large"})`,
        });
      }
    }
    return problems;
  }

  /** Registers checked links (linkProblems found none): one status change per prerequisite. */
  private addLinks(links: readonly RemoteLink[]): void {
    const t = this.table;
    const byPrerequisite = new Map<number, string[]>();
    for (const link of links) {
      const h = t.index.get(link.prerequisite);
      let list = byPrerequisite.get(h);
      if (list === undefined) byPrerequisite.set(h, (list = []));
      list.push(link.dependent);
    }
    for (const [h, dependents] of byPrerequisite) {
      const ended = isTerminal(t.state[h]!);
      this.remote.addDependents(h, dependents, ended);
      // An ended task kept only for its retention now owes outcomes: tryDrop waits for them.
      this.emitSet(h);
    }
  }

  // ------------------------------------------------------------ slot movement

  /**
   * Takes the tasks `select` picks out of the engine, in every state
   * (terminal ones too, until they are dropped), and returns them as
   * records, in id order, for `adoptTasks` in another engine: a slot moving
   * between shards (docs/cluster.md, "Slot movement"). Each leaves with a
   * `drop` change; nothing is left of them here (heaps, timers, links,
   * counts, held bytes). Due timers run first, as for any call.
   *
   * The selection must be closed under prerequisites: no task it takes may
   * have a prerequisite or a dependent it leaves (a cluster keeps a
   * workflow in one slot, so a slot is always closed). Otherwise
   * InvalidStateError, and nothing changes. Cost: one pass over the table
   * (`select` once per task) plus O(k · (p + d + log n)) for the k taken.
   */
  exportTasks(select: (workflowId: string | undefined, id: string, large: boolean) => boolean): TaskRecord[] {
    this.advance();
    const t = this.table;
    const taken: number[] = [];
    const inSet = new Set<number>();
    for (const h of t.live()) {
      if (!select(t.workflowId[h], t.ids[h]!, (t.flags[h]! & Flag.LARGE) !== 0)) continue;
      taken.push(h);
      inSet.add(h);
    }
    for (const h of taken) {
      for (const p of t.prerequisites[h]!) {
        if (this.isRemoteAt(h, p)) continue;
        const ph = t.index.get(p);
        if (ph >= 0 && !inSet.has(ph))
          throw new InvalidStateError(
            t.ids[h]!,
            STATE_NAMES[t.state[h]!]!,
            `task ${q(t.ids[h])} cannot move without its prerequisite ${q(p)}`,
          );
      }
      for (let e = t.firstEdge(h); e >= 0; e = t.nextEdge(e)) {
        const d = t.edgeTarget(e);
        if (!inSet.has(d))
          throw new InvalidStateError(
            t.ids[h]!,
            STATE_NAMES[t.state[h]!]!,
            `task ${q(t.ids[h])} cannot move without its dependent ${q(t.ids[d])}`,
          );
      }
    }
    taken.sort((a, b) => (t.ids[a]! < t.ids[b]! ? -1 : 1));
    const records: TaskRecord[] = taken.map((h) => ({ spec: this.specOf(h), status: this.statusOf(h) }));
    for (const h of taken) {
      if (this.heapOf(h).remove(h)) this.runnableTotal--;
      this.timers.remove(h);
      this.fifoUnlink(h);
      // Links to tasks that leave too go with them (release); forward references are kept apart.
      for (const p of t.prerequisites[h]!)
        if (!this.isRemoteAt(h, p) && t.index.get(p) < 0) this.forwardWaiters.remove(p, h);
      this.counts[t.state[h]!]!--;
      if (t.state[h] === S.LEASED) this.types.leased[t.typeCode[h]!]!--;
      this.heldBytes -= t.payloadBytes[h]! + t.resultBytes[h]!;
    }
    for (const h of taken) {
      const id = t.ids[h]!;
      this.types.release(t.typeCode[h]!);
      this.remote.forget(h);
      t.release(h);
      this.emit({ kind: "drop", id });
    }
    this.flushMeta();
    return records;
  }

  /**
   * Takes in the records another engine's `exportTasks` gave, as they are:
   * state, attempts, token, lease expiry, results. Each arrives with an
   * `add` change. The token counter is raised above every adopted token, so
   * fencing stays monotonic per task and a live lease's holder can still
   * heartbeat, complete or fail with its token. Runnable ones join the heap
   * (and the FIFO, by when they became runnable), timers are armed as a
   * restore arms them.
   *
   * Atomic: refused whole (InvalidArgumentError, nothing changes) when an id
   * is held here already, a record names a prerequisite held here that it
   * does not bring, or a task here waits for one of the ids as a forward
   * reference. Cost O(k · (p + log n)) for k records, plus the FIFO merge
   * (O(r) when some adopted task is runnable).
   */
  adoptTasks(records: readonly TaskRecord[]): number {
    this.advance();
    const t = this.table;
    const ids = new Set<string>();
    let maxToken = 0;
    for (const { spec, status } of records) {
      const id = spec.id;
      if (typeof id !== "string" || id.length === 0)
        throw new InvalidArgumentError("an adopted task has no id");
      if (stateCode(status.state) < 0)
        throw new InvalidArgumentError(`task ${q(id)} has unknown state ${q(status.state)}`);
      if (ids.has(id)) throw new InvalidArgumentError(`task ${q(id)} appears twice`);
      if (t.index.has(id)) throw new InvalidArgumentError(`task ${q(id)} is held here already`);
      if (this.forwardWaiters.waitingFor(id).length > 0)
        throw new InvalidArgumentError(`task ${q(id)} is a forward reference of tasks held here`);
      ids.add(id);
      if (status.token > maxToken) maxToken = status.token;
    }
    for (const { spec } of records) {
      for (const p of spec.prerequisites) {
        if (spec.large === true && this.isRemote(spec.workflowId, spec.id, p)) continue;
        if (!ids.has(p) && t.index.has(p))
          throw new InvalidArgumentError(
            `task ${q(spec.id)} names prerequisite ${q(p)}, which is held here and not adopted with it`,
          );
      }
    }
    // Types new here count against MAX_TASK_TYPES_HELD, as a submit's do (checked before any change).
    const newTypes = new Set<string>();
    for (const { spec } of records) {
      const type = spec.type === DEFAULT_TASK_TYPE ? undefined : spec.type;
      if (type !== undefined && this.types.find(type) < 0) newTypes.add(type);
    }
    if (this.types.size + newTypes.size > MAX_TASK_TYPES_HELD)
      throw new InvalidArgumentError(
        `the tasks bring ${newTypes.size} task types new here, past the ${MAX_TASK_TYPES_HELD} an engine holds at once`,
      );
    if (records.length === 0) return 0;
    const strings = new StringCache();
    const handles = new Int32Array(records.length);
    this.types.positions.reserve(t.handleLimit + records.length);
    for (let i = 0; i < records.length; i++) {
      const { spec, status } = records[i]!;
      const h = t.allocate(spec.id);
      handles[i] = h;
      t.unmet[h] = 0;
      this.fill(h, spec, status, stateCode(status.state) as S, strings);
    }
    // Links, as restore's pass 3 makes them: prerequisites are all among the records, or not held.
    for (let i = 0; i < records.length; i++) {
      const h = handles[i]!;
      const own = t.prerequisites[h]! as string[];
      if (own.length === 0) continue;
      const live = !isTerminal(t.state[h]!);
      const large = (t.flags[h]! & Flag.LARGE) !== 0;
      let unmet = 0;
      for (let k = 0; k < own.length; k++) {
        if (large && this.isRemote(t.workflowId[h], t.ids[h]!, own[k]!)) {
          if (live && !this.remote.hasMet(h, own[k]!)) unmet++;
          continue;
        }
        const ph = t.index.get(own[k]!);
        if (ph < 0) {
          if (!live) continue;
          this.forwardWaiters.add(own[k]!, h);
          unmet++;
          continue;
        }
        own[k] = t.ids[ph]!;
        t.addDependent(ph, h);
        if (live && !isTerminal(t.state[ph]!)) unmet++;
      }
      Object.freeze(own);
      t.unmet[h] = unmet;
    }
    // Heaps and timers, each task's pending timer implied by its state (see `timers`).
    const ready: number[] = [];
    for (let i = 0; i < records.length; i++) {
      const h = handles[i]!;
      const status = records[i]!.status;
      switch (t.state[h]) {
        case S.RUNNABLE:
          this.heapOf(h).push(h);
          this.runnableTotal++;
          ready.push(h);
          if (t.flags[h]! & Flag.HARD_DEADLINE) this.armTimer(h, t.deadline[h]!);
          break;
        case S.LEASED: {
          const at = status.leaseExpiresAt ?? Number.POSITIVE_INFINITY;
          t.timerAt[h] = at;
          if (at !== Number.POSITIVE_INFINITY) this.timers.push(h);
          break;
        }
        case S.WAITING:
          if (status.retryAt !== undefined) this.armTimer(h, status.retryAt);
          else if (t.flags[h]! & Flag.NOT_BEFORE && status.attempts === 0 && t.unmet[h] === 0)
            this.armTimer(h, t.notBefore[h]!);
          break;
        default:
          if (this.retentionMs !== Number.POSITIVE_INFINITY) this.armTimer(h, t.stamp[h]! + this.retentionMs);
      }
    }
    this.fifoMerge(ready);
    for (let i = 0; i < records.length; i++) {
      const h = handles[i]!;
      this.emit({ kind: "add", spec: this.specOf(h), status: this.statusOf(h) });
    }
    if (maxToken > this.tokenSeq) {
      this.tokenSeq = maxToken;
      this.metaDirty = true;
    }
    this.flushMeta();
    return records.length;
  }

  /** The last fencing token issued (0 before the first lease). */
  get lastToken(): number {
    return this.tokenSeq;
  }

  /**
   * Every fencing token issued from now on is above `floor`: what a store
   * that reserves tokens ahead (hi-lo) calls after a restart, since tokens
   * handed out in a commit the restart lost are not in the restored state.
   * Journaled with the engine's counters; a floor at or below the last token
   * changes nothing.
   */
  raiseTokenFloor(floor: number): void {
    if (!Number.isSafeInteger(floor) || floor < 0)
      throw new InvalidArgumentError(`token floor must be a non-negative safe integer, got ${String(floor)}`);
    if (floor <= this.tokenSeq) return;
    this.tokenSeq = floor;
    this.metaDirty = true;
    this.flushMeta();
  }

  /** Tasks runnable now, O(1) (stats() without building the rest). Due timers are not run. */
  get runnableCount(): number {
    return this.runnableTotal;
  }

  /** Tasks not in a terminal state (WAITING, RUNNABLE, LEASED), O(1). Due timers are not run. */
  get liveCount(): number {
    return this.counts[S.WAITING]! + this.counts[S.RUNNABLE]! + this.counts[S.LEASED]!;
  }

  /**
   * Bytes of the payloads and results of every task held, live or terminal
   * until it is dropped after retentionMs, as `measurePayload` counts them.
   * O(1).
   */
  get heldPayloadBytes(): number {
    return this.heldBytes;
  }

  /** Runs due timers (so expired leases are counted), then reports. O(1) apart from those. */
  stats(): SchedulerStats {
    const now = this.advance();
    const counts = {} as Record<TaskState, number>;
    for (let s = 0; s < STATE_NAMES.length; s++) counts[STATE_NAMES[s]!] = this.counts[s]!;
    const top = this.topOf(this.runnableCodes());
    const types: TypeCounts[] = [];
    for (const code of this.types.registered()) {
      const runnable = this.types.heaps[code]!.size;
      const leased = this.types.leased[code]!;
      if (runnable > 0 || leased > 0) types.push({ type: this.types.names[code]!, runnable, leased });
    }
    types.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    return {
      counts,
      runnable: this.runnableTotal,
      oldestRunnableAgeMs: this.fifoHead < 0 ? 0 : Math.max(0, now - this.table.stamp[this.fifoHead]!),
      frontierDeadline: top < 0 ? null : this.table.deadline[top]!,
      leaseTimeouts: this.leaseTimeouts,
      attemptTimeouts: this.attemptTimeouts,
      deadlineMisses: this.deadlineMisses,
      staleRejections: this.staleRejections,
      retries: this.retries,
      leased: this.counts[S.LEASED]!,
      types,
      ...(this.remote.owing > 0 ? { remoteOwed: this.remote.owing } : {}),
    };
  }

  /**
   * The runnable task that a lease of `types` would take next, without
   * taking it; absent: of every type (the engine's whole frontier). O(1)
   * for one type, O(types) otherwise.
   */
  peekFrontier(types?: readonly string[]): { id: string; deadline: number; key: number } | null {
    const h = this.topOf(types === undefined ? this.runnableCodes() : this.codesOf(types));
    if (h < 0) return null;
    return { id: this.table.ids[h]!, deadline: this.table.deadline[h]!, key: this.heapOf(h).peekKey() };
  }

  /**
   * The frontiers of the `limit` types whose first runnable tasks come
   * first in dispatch order, in that order, and how many more types have
   * runnable tasks (`omitted`): what a shard announces per type. Every
   * omitted type's first task comes after the last one listed. O(t log t)
   * for t types with runnable tasks.
   */
  typeFrontiers(limit: number): { frontiers: TypeFrontier[]; omitted: number } {
    const codes = this.runnableCodes();
    const { heaps, names } = this.types;
    const ids = this.table.ids;
    const all = codes.map((code): TypeFrontier => {
      const heap = heaps[code]!;
      const h = heap.peek();
      return {
        type: names[code]!,
        id: ids[h]!,
        deadline: this.table.deadline[h]!,
        key: heap.peekKey(),
        runnable: heap.size,
      };
    });
    all.sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const kept = Math.max(0, limit);
    return { frontiers: all.slice(0, kept), omitted: Math.max(0, all.length - kept) };
  }

  /**
   * How the runnable tasks' ordering keys spread: the key of the r-th
   * earliest runnable task for each rank r of `ranks` (ascending, from 1)
   * up to what is runnable. What a shard announces, so a coordinator can
   * fill one lease request from several shards in one parallel round and
   * still hand out exactly the earliest tasks. O(maxRank · log maxRank).
   */
  frontierDepth(ranks: readonly number[], types?: readonly string[]): number[] {
    const keys = this.leastKeys(ranks.length === 0 ? 0 : ranks[ranks.length - 1]!, types);
    const depth: number[] = [];
    for (const rank of ranks) {
      if (rank > keys.length) break;
      depth.push(keys[rank - 1]!);
    }
    return depth;
  }

  /**
   * The ordering keys of the `limit` earliest runnable tasks (of `types`;
   * absent: every type), ascending: what comes first, without taking it.
   * O(limit · log limit) per type.
   */
  leastKeys(limit: number, types?: readonly string[]): number[] {
    const codes = types === undefined ? this.runnableCodes() : this.codesOf(types);
    if (codes.length === 1) {
      const heap = this.types.heaps[codes[0]!]!;
      return heap.leastKeys(Math.min(limit, heap.size));
    }
    // Each type's least keys, merged: the least `limit` of them all.
    const keys: number[] = [];
    for (const code of codes) {
      const heap = this.types.heaps[code]!;
      for (const key of heap.leastKeys(Math.min(limit, heap.size))) keys.push(key);
    }
    keys.sort((a, b) => a - b);
    keys.length = Math.min(keys.length, limit);
    return keys;
  }

  /** Runs the timers that are due. */
  tick(): void {
    this.advance();
  }

  /** When `tick` next has work to do, or null. */
  nextTimerAt(): number | null {
    const h = this.timers.peek();
    return h < 0 ? null : this.table.timerAt[h]!;
  }

  /** The whole state as plain data. O(n). */
  snapshot(): Snapshot {
    const tasks: TaskRecord[] = [];
    for (const h of this.table.live()) tasks.push({ spec: this.specOf(h), status: this.statusOf(h) });
    return { version: 1, meta: this.meta(), tasks };
  }

  // --------------------------------------------------------------- internals

  /** Reads the clock (never backwards) and runs due timers. */
  private advance(): number {
    const reading = this.clock();
    const now = Math.max(reading, this.lastNow);
    this.lastNow = now;
    const t = this.table;
    for (let h = this.timers.peek(); h >= 0 && t.timerAt[h]! <= now; h = this.timers.peek()) {
      this.timers.pop();
      this.fire(h, now);
    }
    this.flushMeta();
    return now;
  }

  private fire(h: number, now: number): void {
    const t = this.table;
    switch (t.state[h]) {
      case S.LEASED: {
        if (this.reachedTimeout(h)) {
          this.timeOut(h, now);
          return;
        }
        this.leaseTimeouts++;
        this.metaDirty = true;
        this.observer?.leaseExpired();
        const owner = t.owner[h] ?? "a consumer";
        if (t.attempts[h]! >= t.maxAttempts[h]!) {
          this.leaveLeased(h);
          this.finishBadly(
            h,
            S.FAILED,
            `lease held by ${owner} expired on attempt ${t.attempts[h]} of ${t.maxAttempts[h]}`,
          );
        } else {
          this.leaveLeased(h);
          t.reason[h] = `lease held by ${owner} expired on attempt ${t.attempts[h]} of ${t.maxAttempts[h]}`;
          this.taskEvent(h, "leaseExpired");
          this.enterRunnable(h, now);
        }
        return;
      }
      case S.WAITING:
        // Retry backoff is over, or notBefore reached (a WAITING task has a timer only then).
        this.enterRunnable(h, now);
        return;
      case S.RUNNABLE:
        // A hard deadline reached while still runnable.
        this.expire(h);
        return;
      default:
        this.tryDrop(h);
    }
  }

  /** `resolved`: checkBatch's prerequisiteHandles for `tasks`, if it had them. */
  private insert(tasks: readonly ParsedTask[], resolved: Int32Array | undefined): void {
    const t = this.table;
    const now = this.lastNow;
    const handles = new Int32Array(tasks.length);
    this.types.positions.reserve(t.handleLimit + tasks.length);
    for (let i = 0; i < tasks.length; i++) {
      const { spec, deadline } = tasks[i]!;
      const h = t.allocate(spec.id, false);
      handles[i] = h;
      t.prerequisites[h] = spec.prerequisites;
      t.workflowId[h] = spec.workflowId;
      t.payload[h] = spec.payload;
      t.payloadBytes[h] = tasks[i]!.payloadBytes;
      this.heldBytes += tasks[i]!.payloadBytes;
      t.deadline[h] = deadline;
      t.maxAttempts[h] = spec.maxAttempts;
      t.flags[h] = flagsOf(spec);
      const code = this.types.code(spec.type);
      t.typeCode[h] = code;
      this.types.hold(code);
      if (spec.notBefore !== undefined) t.notBefore[h] = spec.notBefore;
      if (spec.timeoutMs !== undefined) t.timeoutMs[h] = spec.timeoutMs;
      t.state[h] = S.WAITING;
      this.counts[S.WAITING]!++;
    }
    t.index.addMany(handles);
    // Wire edges once every handle of the batch exists, so order within the batch does not matter.
    const doomed = new Map<number, string>();
    let edge = 0;
    for (let i = 0; i < tasks.length; i++) {
      const h = handles[i]!;
      let unmet = 0;
      let doom: string | undefined;
      const prerequisites = t.prerequisites[h]! as string[];
      for (let k = 0; k < prerequisites.length; k++) {
        const p = prerequisites[k]!;
        const known = resolved ? resolved[edge++]! : -1;
        // Remote: waits for its completion event, whatever this engine holds under the id.
        if (t.flags[h]! & Flag.LARGE && this.isRemote(t.workflowId[h], t.ids[h]!, p)) {
          unmet++;
          continue;
        }
        const ph = known >= 0 ? known : t.index.get(p);
        if (ph < 0) {
          // A forward reference (validation let it through only when allowed).
          this.forwardWaiters.add(p, h);
          unmet++;
          continue;
        }
        prerequisites[k] = t.ids[ph]!; // share the stored id string
        t.addDependent(ph, h);
        const ps = t.state[ph]!;
        if (ps === S.COMPLETED) continue;
        if (isTerminal(ps)) {
          if (!(t.flags[h]! & Flag.CONTINUE_ON_PREREQUISITE_FAILURE))
            doom ??= `prerequisite ${q(p)} ended ${STATE_NAMES[ps]}`;
          continue;
        }
        unmet++;
      }
      Object.freeze(prerequisites);
      t.unmet[h] = unmet;
      // Tasks that held forward references to this id now wait on it directly.
      const id = t.ids[h]!;
      const waiters = this.forwardWaiters.take(id);
      if (waiters) for (const w of waiters) t.addDependent(h, w);
      if (doom !== undefined) doomed.set(h, doom);
    }
    // Initial states first, reported with each task's "add" record; then the
    // transitions that touch other tasks (cascades), as "set" records, so a
    // journal never sees a change for a task before the task itself.
    const expired: number[] = [];
    for (let i = 0; i < tasks.length; i++) {
      const h = handles[i]!;
      if (t.unmet[h] !== 0 || doomed.has(h)) continue;
      if (t.flags[h]! & Flag.HARD_DEADLINE && t.deadline[h]! <= now) expired.push(h);
      else this.enterRunnable(h, now, false);
    }
    if (this.sink) {
      for (let i = 0; i < tasks.length; i++) {
        const h = handles[i]!;
        this.sink({ kind: "add", spec: this.specOf(h), status: this.statusOf(h) });
      }
    }
    for (const h of expired) if (!isTerminal(t.state[h]!)) this.expire(h);
    for (const [h, reason] of doomed) if (!isTerminal(t.state[h]!)) this.finishBadly(h, S.CANCELLED, reason);
  }

  /** Tells the observer's optional taskEvent of a notable move of `h` (built only when it listens). */
  private taskEvent(h: number, kind: TaskEvent["kind"]): void {
    const listen = this.observer?.taskEvent;
    if (listen === undefined) return;
    const t = this.table;
    const state = STATE_NAMES[t.state[h]!];
    const event: TaskEvent = {
      kind,
      taskId: t.ids[h]!,
      workflowId: t.workflowId[h],
      attempt: t.attempts[h]!,
      ...(kind === "ended" ? { state: state as "FAILED" | "CANCELLED" | "EXPIRED" } : {}),
      ...(t.reason[h] === undefined ? {} : { reason: t.reason[h] }),
    };
    try {
      listen.call(this.observer, event);
    } catch {
      // An observer must not throw; if one does, the engine's move stands.
    }
  }

  /** Leases `h`, the top of the runnable heap. */
  private grant(h: number, owner: string | undefined, expiresAt: number): void {
    const t = this.table;
    const now = this.lastNow;
    this.heapOf(h).pop(); // h: no lookup of its position
    this.runnableTotal--;
    this.fifoUnlink(h);
    if (this.observer !== undefined) {
      this.observer.leased(now - t.stamp[h]!, (t.flags[h]! & Flag.UNBLOCKED) !== 0, now >= t.deadline[h]!);
      if (now >= t.deadline[h]!) this.taskEvent(h, "leasedLate");
    }
    t.flags[h]! &= ~(Flag.UNBLOCKED | Flag.RELEASED);
    t.stamp[h] = now; // the lease's start, for the run time
    if (t.flags[h]! & Flag.HARD_DEADLINE) this.timers.remove(h);
    this.setState(h, S.LEASED);
    t.attempts[h]!++;
    t.token[h] = ++this.tokenSeq;
    t.owner[h] = owner;
    const until = this.capToTimeout(h, expiresAt);
    t.timerAt[h] = until;
    if (until !== Number.POSITIVE_INFINITY) this.timers.push(h);
    if (this.lastNow >= t.deadline[h]!) this.deadlineMisses++;
    this.metaDirty = true;
    this.emitSet(h);
  }

  /** STALE_LEASE unless `h` is LEASED under `token`. Changes nothing else. */
  private checkLive(h: number, token: number): void {
    const t = this.table;
    if (t.state[h] === S.LEASED && t.token[h] === token) return;
    this.staleRejections++;
    this.observer?.staleRejected();
    // Journaled before the throw, or a rebuilt engine would count one fewer.
    this.metaDirty = true;
    this.flushMeta();
    const id = t.ids[h]!;
    const why =
      t.state[h] === S.LEASED
        ? `it is leased under token ${t.token[h]}`
        : `it is ${STATE_NAMES[t.state[h]!]}${t.reason[h] ? ` (${t.reason[h]})` : ""}`;
    throw new StaleLeaseError(id, `token ${token} no longer holds task ${q(id)}: ${why}`);
  }

  private leaveLeased(h: number): void {
    this.timers.remove(h);
  }

  private finishCompleted(h: number): void {
    const t = this.table;
    const now = this.lastNow;
    // A lease without expiry (consumeTask) has no timer: no need to look.
    if (t.timerAt[h] !== Number.POSITIVE_INFINITY) this.timers.remove(h);
    if (this.observer !== undefined) {
      const runMs = now - t.stamp[h]!;
      this.observer.completed(Number.isNaN(runMs) ? undefined : runMs, now > t.deadline[h]!);
      if (now > t.deadline[h]!) this.taskEvent(h, "completedLate");
    }
    this.setState(h, S.COMPLETED);
    t.reason[h] = undefined;
    this.markFinished(h, now);
    this.emitSet(h);
    // A dependent with unmet prerequisites is WAITING on them (finishBadly
    // zeroes the count of one that ends early): no need to read its state.
    for (let e = t.firstEdge(h); e >= 0; e = t.nextEdge(e)) {
      const d = t.edgeTarget(e);
      if (t.unmet[d]! > 0 && --t.unmet[d]! === 0) {
        t.flags[d]! |= Flag.UNBLOCKED;
        this.enterRunnable(d, now);
      }
    }
  }

  /**
   * Ends a live task FAILED, CANCELLED or EXPIRED and walks its dependents:
   * those with the "continue" policy count the prerequisite as met, the
   * others are cancelled in turn. Iterative, so long chains cannot overflow
   * the stack; each dependent is visited once per prerequisite.
   */
  private finishBadly(h: number, state: S, reason: string): void {
    const t = this.table;
    const now = this.lastNow;
    const stack: { h: number; state: S; reason: string }[] = [{ h, state, reason }];
    while (stack.length > 0) {
      const item = stack.pop()!;
      const x = item.h;
      if (isTerminal(t.state[x]!)) continue;
      if (this.heapOf(x).remove(x)) this.runnableTotal--;
      this.fifoUnlink(x);
      this.timers.remove(x);
      this.setState(x, item.state);
      t.unmet[x] = 0;
      t.reason[x] = item.reason;
      this.markFinished(x, now);
      this.emitSet(x);
      this.observer?.ended(STATE_NAMES[item.state] as "FAILED" | "CANCELLED" | "EXPIRED");
      this.taskEvent(x, "ended");

      const id = t.ids[x]!;
      for (let e = t.firstEdge(x); e >= 0; e = t.nextEdge(e)) {
        const d = t.edgeTarget(e);
        if (t.state[d] !== S.WAITING) continue;
        if (t.flags[d]! & Flag.CONTINUE_ON_PREREQUISITE_FAILURE) {
          if (--t.unmet[d]! === 0) {
            t.flags[d]! |= Flag.UNBLOCKED;
            this.enterRunnable(d, now);
          }
        } else {
          stack.push({
            h: d,
            state: S.CANCELLED,
            reason: `prerequisite ${q(id)} ended ${STATE_NAMES[item.state]}`,
          });
        }
      }
    }
  }

  private expire(h: number): void {
    this.deadlineMisses++;
    this.metaDirty = true;
    this.finishBadly(h, S.EXPIRED, `hard deadline ${this.table.deadline[h]} passed before it was dispatched`);
  }

  private enterRunnable(h: number, now: number, report = true): void {
    const t = this.table;
    if (t.flags[h]! & Flag.HARD_DEADLINE && t.deadline[h]! <= now) {
      t.state[h] !== S.RUNNABLE && this.setState(h, S.RUNNABLE);
      this.expire(h);
      return;
    }
    if (t.flags[h]! & Flag.NOT_BEFORE && t.notBefore[h]! > now) {
      // Before its notBefore it waits, with a timer there. A WAITING task
      // (on submit, or its prerequisites met) keeps its status: a rebuilt
      // engine arms the same timer. A leased task never gets here (it was
      // runnable after notBefore); any other moves to WAITING first.
      const moved = t.state[h] !== S.WAITING;
      if (moved) this.setState(h, S.WAITING);
      this.armTimer(h, t.notBefore[h]!);
      if (moved && report) this.emitSet(h);
      return;
    }
    this.setState(h, S.RUNNABLE);
    t.stamp[h] = now;
    this.heapOf(h).push(h);
    this.runnableTotal++;
    this.fifoAppend(h);
    if (t.flags[h]! & Flag.HARD_DEADLINE) {
      t.timerAt[h] = t.deadline[h]!;
      this.timers.push(h);
    }
    if (report) this.emitSet(h);
  }

  private keyOf(h: number): number {
    const t = this.table;
    const due = t.stamp[h]! + this.maxWait;
    return Math.min(due, t.deadline[h]!);
  }

  private markFinished(h: number, now: number): void {
    const t = this.table;
    t.stamp[h] = now;
    // Its remote dependents are owed its outcome from this change's commit on (the outbox). Only
    // a large workflow's task has any (links are refused on others): nothing to look up for the rest.
    if (t.flags[h]! & Flag.LARGE) this.remote.ended(h);
    if (this.retentionMs === Number.POSITIVE_INFINITY) return;
    t.timerAt[h] = now + this.retentionMs;
    this.timers.push(h);
    // A prerequisite kept past its retention for its live dependents (see
    // tryDrop) has no timer; one of them ending is when to look again.
    for (const p of t.prerequisites[h]!) {
      const ph = t.index.get(p);
      if (ph >= 0 && isTerminal(t.state[ph]!) && !this.timers.has(ph)) this.armTimer(ph, now);
    }
  }

  /**
   * Forgets a terminal task once retention has passed — unless a live task
   * still lists it as a prerequisite (a rebuilt engine must still see that
   * prerequisite as done). Then it is kept without a timer until one of
   * those dependents ends (markFinished arms it again). So the moment it goes
   * depends only on the task states, which a rebuilt engine shares; a re-arm
   * at "now + retention" would not (and with retentionMs 0 never ended).
   * Ended dependents are popped from its list as they are seen (nothing else
   * reads a terminal task's dependents), so each is looked at once.
   */
  private tryDrop(h: number): void {
    const t = this.table;
    const large = (t.flags[h]! & Flag.LARGE) !== 0;
    // Its outbox still owes outcomes: kept, without a timer, until the last acknowledgement.
    if (large && this.remote.undelivered.has(h)) return;
    while (t.hasDependents(h) && isTerminal(t.state[t.edgeTarget(t.firstEdge(h))]!)) t.shiftDependent(h);
    if (t.hasDependents(h)) return;
    this.unlink(h);
    const id = t.ids[h]!;
    this.counts[t.state[h]!]!--;
    this.heldBytes -= t.payloadBytes[h]! + t.resultBytes[h]!;
    this.types.release(t.typeCode[h]!);
    if (large) this.remote.forget(h);
    t.release(h);
    this.emit({ kind: "drop", id });
  }

  /** Removes `h` from its prerequisites' dependents lists and from forward-reference lists. */
  private unlink(h: number): void {
    const t = this.table;
    for (const p of t.prerequisites[h]!) {
      if (this.isRemoteAt(h, p)) continue;
      const ph = t.index.get(p);
      if (ph >= 0) {
        t.removeDependent(ph, h);
        continue;
      }
      this.forwardWaiters.remove(p, h);
    }
  }

  /** The one place a task's state changes: checked against the state machine (TRANSITIONS). */
  private setState(h: number, state: S): void {
    const from = this.table.state[h]! as S;
    if (!canTransition(from, state)) {
      // An engine bug, never the caller's: refuse it before any index moves.
      throw new Error(
        `internal: task ${JSON.stringify(this.table.ids[h])} cannot go from ${STATE_NAMES[from]} to ${STATE_NAMES[state]}`,
      );
    }
    this.counts[from]!--;
    this.counts[state]!++;
    if (from === S.LEASED) this.types.leased[this.table.typeCode[h]!]!--;
    else if (state === S.LEASED) this.types.leased[this.table.typeCode[h]!]!++;
    this.table.state[h] = state;
  }

  private fifoAppend(h: number): void {
    const fifo = this.table.fifo;
    fifo[2 * h] = this.fifoTail;
    fifo[2 * h + 1] = -1;
    if (this.fifoTail >= 0) fifo[2 * this.fifoTail + 1] = h;
    else this.fifoHead = h;
    this.fifoTail = h;
  }

  /**
   * Puts runnable handles (not in the FIFO yet) into it by (stamp, id),
   * the order they became runnable in: O(r + k log k).
   */
  private fifoMerge(handles: number[]): void {
    if (handles.length === 0) return;
    const t = this.table;
    const before = (a: number, b: number) =>
      t.stamp[a]! < t.stamp[b]! || (t.stamp[a] === t.stamp[b] && t.ids[a]! < t.ids[b]!);
    handles.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    const fifo = t.fifo;
    let at = this.fifoHead;
    for (const h of handles) {
      while (at >= 0 && !before(h, at)) at = fifo[2 * at + 1]!;
      if (at < 0) {
        this.fifoAppend(h);
        continue;
      }
      // Before `at`.
      const p = fifo[2 * at]!;
      fifo[2 * h] = p;
      fifo[2 * h + 1] = at;
      fifo[2 * at] = h;
      if (p >= 0) fifo[2 * p + 1] = h;
      else this.fifoHead = h;
    }
  }

  private fifoUnlink(h: number): void {
    const fifo = this.table.fifo;
    const p = fifo[2 * h]!;
    const n = fifo[2 * h + 1]!;
    if (p < 0 && n < 0 && this.fifoHead !== h) return; // not in the list
    if (p >= 0) fifo[2 * p + 1] = n;
    else this.fifoHead = n;
    if (n >= 0) fifo[2 * n] = p;
    else this.fifoTail = p;
    fifo[2 * h] = -1;
    fifo[2 * h + 1] = -1;
  }

  private handle(id: string): number {
    const h = typeof id === "string" ? this.table.index.get(id) : -1;
    if (h < 0) throw new UnknownTaskError(String(id));
    return h;
  }

  // ----------------------------------------------------------- change records

  private emit(change: Change): void {
    this.sink?.(change);
  }

  private emitSet(h: number): void {
    if (this.sink) this.sink({ kind: "set", id: this.table.ids[h]!, status: this.statusOf(h) });
  }

  private flushMeta(): void {
    if (!this.metaDirty) return;
    this.metaDirty = false;
    if (this.sink) this.sink({ kind: "meta", meta: this.meta() });
  }

  private meta(): EngineMeta {
    return {
      tokenSeq: this.tokenSeq,
      clock: this.lastNow === Number.NEGATIVE_INFINITY ? 0 : this.lastNow,
      leaseTimeouts: this.leaseTimeouts,
      attemptTimeouts: this.attemptTimeouts,
      deadlineMisses: this.deadlineMisses,
      staleRejections: this.staleRejections,
      retries: this.retries,
    };
  }

  private specOf(h: number): TaskSpec {
    const t = this.table;
    const spec: {
      -readonly [K in keyof TaskSpec]: TaskSpec[K];
    } = {
      id: t.ids[h]!,
      prerequisites: t.prerequisites[h]!,
      maxAttempts: t.maxAttempts[h]!,
      hardDeadline: (t.flags[h]! & Flag.HARD_DEADLINE) !== 0,
      onPrerequisiteFailure: t.flags[h]! & Flag.CONTINUE_ON_PREREQUISITE_FAILURE ? "continue" : "cancel",
    };
    if (t.workflowId[h] !== undefined) spec.workflowId = t.workflowId[h];
    if (t.flags[h]! & Flag.LARGE) spec.large = true;
    if (t.payload[h] !== undefined) spec.payload = t.payload[h];
    if (t.typeCode[h] !== 0) spec.type = this.types.names[t.typeCode[h]!]!;
    if (t.flags[h]! & Flag.NOT_BEFORE) spec.notBefore = t.notBefore[h]!;
    if (t.timeoutMs[h] !== 0) spec.timeoutMs = t.timeoutMs[h]!;
    return spec;
  }

  private statusOf(h: number): TaskStatus {
    const t = this.table;
    const state = t.state[h]! as S;
    const status: { -readonly [K in keyof TaskStatus]: TaskStatus[K] } = {
      state: STATE_NAMES[state]!,
      deadline: t.deadline[h]!,
      attempts: t.attempts[h]!,
      token: t.token[h]!,
    };
    if (t.owner[h] !== undefined) status.leaseOwner = t.owner[h];
    if (t.reason[h] !== undefined) status.reason = t.reason[h];
    if (t.result[h] !== undefined) status.result = t.result[h];
    if (t.flags[h]! & Flag.RELEASED) status.released = true;
    if (t.flags[h]! & Flag.LARGE) {
      const met = this.remote.met.get(h);
      if (met !== undefined) status.remoteMet = met.slice();
      const dependents = this.remote.dependents.get(h);
      if (dependents !== undefined) status.remoteDependents = dependents.slice();
      if (isTerminal(state) && this.remote.delivered(h)) status.remoteDelivered = true;
    }
    if (state === S.LEASED) {
      status.leaseExpiresAt = t.timerAt[h]!;
      const at = t.stamp[h]! + t.timeoutMs[h]!;
      if (t.timeoutMs[h] !== 0 && !Number.isNaN(at)) status.timeoutAt = at;
    } else if (state === S.WAITING && t.unmet[h] === 0 && t.attempts[h]! > 0) status.retryAt = t.timerAt[h]!;
    else if (state === S.RUNNABLE) status.runnableSince = t.stamp[h]!;
    else if (isTerminal(state)) status.finishedAt = t.stamp[h]!;
    return status;
  }

  private viewOf(h: number): TaskView {
    // The counter is meaningful only while the task waits: a task that ended
    // while waiting keeps a stale count that a rebuilt engine cannot know.
    const unmet = this.table.state[h] === S.WAITING ? this.table.unmet[h]! : 0;
    return { ...this.specOf(h), ...this.statusOf(h), unmetPrerequisites: unmet };
  }

  private taskOf(h: number): Task {
    const t = this.table;
    const task: { -readonly [K in keyof Task]: Task[K] } = {
      id: t.ids[h]!,
      deadline: t.deadline[h]!,
      prerequisites: t.prerequisites[h] ?? EMPTY,
    };
    if (t.workflowId[h] !== undefined) task.workflowId = t.workflowId[h];
    if (t.flags[h]! & Flag.LARGE) task.large = true;
    if (t.payload[h] !== undefined) task.payload = t.payload[h];
    if (t.typeCode[h] !== 0) task.type = this.types.names[t.typeCode[h]!]!;
    if (t.timeoutMs[h] !== 0) task.timeoutMs = t.timeoutMs[h]!;
    return task;
  }

  /** The live lease of `h`; a grant (`withResults`) also carries its prerequisites' results. */
  private leaseOf(h: number, withResults = false): Lease {
    const t = this.table;
    const lease: { -readonly [K in keyof Lease]: Lease[K] } = {
      taskId: t.ids[h]!,
      owner: t.owner[h] ?? "",
      token: t.token[h]!,
      expiresAt: t.timerAt[h]!,
      attempt: t.attempts[h]!,
      task: this.taskOf(h),
    };
    if (withResults && t.prerequisites[h]!.length > 0) {
      const { results, omitted } = this.resultsOf(h);
      if (results.length > 0) lease.results = results;
      if (omitted > 0) lease.resultsOmitted = omitted;
    }
    return lease;
  }

  /**
   * The results of `h`'s completed prerequisites, in prerequisite order,
   * within maxLeaseResultBytes: an entry that would pass it is left out
   * (and counted), later smaller ones still go in. O(p).
   */
  private resultsOf(h: number): LeaseResults {
    const t = this.table;
    const results: PrerequisiteResult[] = [];
    let omitted = 0;
    let bytes = 0;
    for (const taskId of t.prerequisites[h]!) {
      const ph = t.index.get(taskId);
      if (ph < 0 || t.result[ph] === undefined) continue;
      const size = resultEntryBytes(taskId, t.resultBytes[ph]!);
      if (bytes + size > this.maxLeaseResultBytes) omitted++;
      else {
        bytes += size;
        results.push({ taskId, result: t.result[ph] });
      }
    }
    return { results, omitted, bytes };
  }

  /** A result's measured bytes; INVALID_ARGUMENT for one the store cannot take. */
  private measureResult(taskId: string, result: unknown): number {
    if (this.measurePayload === undefined) return 0;
    let bytes: number;
    try {
      bytes = this.measurePayload(result);
    } catch (error) {
      throw new InvalidArgumentError(
        `the result of task ${q(taskId)} cannot be stored: ${String((error as Error)?.message ?? error)}`,
      );
    }
    if (!(Number.isInteger(bytes) && bytes >= 0 && bytes <= MAX_MEASURED_PAYLOAD_BYTES))
      throw new InvalidArgumentError(
        `the result of task ${q(taskId)} measures ${bytes} bytes, more than can be counted`,
      );
    return bytes;
  }

  // ------------------------------------------------------------------ restore

  /**
   * Loads trusted records (from a snapshot or journal) into this new engine
   * and derives every index. Two passes, so that nothing but the table holds
   * on to a record: rows streamed from a journal are garbage as soon as they
   * are copied (they die young, which is most of what a 10^6-row restore
   * would otherwise spend in GC).
   *  1. Each record is copied into the table. Its pending timer is known
   *     from the record alone.
   *  2. The id index is built in one sweep (TaskTable.indexFrom: in slot
   *     order, not one random slot per record).
   *  3. Prerequisites are resolved (sharing the stored id strings), then
   *     dependents (in record order, as the incremental path would have
   *     added them), unmet counts, forward references.
   * The heaps are then built bottom-up, O(n), rather than by n pushes.
   */
  private load(meta: EngineMeta, records: Iterable<TaskRecord>, sizeHint: number): void {
    const t = this.table;
    this.tokenSeq = meta.tokenSeq;
    this.lastNow = meta.clock;
    this.leaseTimeouts = meta.leaseTimeouts;
    // Absent from meta rows journaled before run time limits existed.
    this.attemptTimeouts = meta.attemptTimeouts ?? 0;
    this.deadlineMisses = meta.deadlineMisses;
    this.staleRejections = meta.staleRejections;
    this.retries = meta.retries;
    if (sizeHint > 0) t.reserve(sizeHint);
    // A new table has no free handles: the records get handles first..end-1, in order.
    const first = t.handleLimit;
    const runnable = new HandleList(sizeHint);
    const timed = new HandleList(sizeHint >> 2);
    // WAITING, never leased, with a notBefore: a timer once the unmet counts are known (pass 3).
    const delayed: number[] = [];
    const strings = new StringCache();
    let previousId = "";
    let idOrder = true;
    for (const record of records) {
      const spec = record.spec;
      const status = record.status;
      const id = spec.id;
      const state = stateCode(status.state);
      if (state < 0) throw new InvalidArgumentError(`task ${q(id)} has unknown state ${q(status.state)}`);
      // Ids in strictly increasing order are distinct: the index then need not look for duplicates.
      if (idOrder && !(previousId < id)) idOrder = false;
      previousId = id;
      const h = t.append(id);
      this.fill(h, spec, status, state as S, strings);
      // The pending timer, its kind implied by the state (see `timers`).
      if (state === S.RUNNABLE) {
        runnable.push(h);
        if (t.flags[h]! & Flag.HARD_DEADLINE) {
          t.timerAt[h] = t.deadline[h]!;
          timed.push(h);
        }
      } else if (state === S.LEASED) {
        const at = status.leaseExpiresAt ?? Number.POSITIVE_INFINITY;
        t.timerAt[h] = at;
        if (at !== Number.POSITIVE_INFINITY) timed.push(h);
      } else if (state === S.WAITING) {
        if (status.retryAt !== undefined) {
          t.timerAt[h] = status.retryAt;
          timed.push(h);
        } else if (spec.notBefore !== undefined && status.attempts === 0) {
          delayed.push(h);
        }
      } else if (this.retentionMs !== Number.POSITIVE_INFINITY) {
        t.timerAt[h] = t.stamp[h]! + this.retentionMs;
        timed.push(h);
      }
    }
    const end = t.handleLimit;
    const duplicate = t.indexFrom(first, idOrder);
    if (duplicate >= 0) throw new InvalidArgumentError(`task ${q(t.ids[duplicate])} appears twice`);
    // Prerequisites, looked up a few thousand at a time (IdIndex.getMany), in record order.
    const names: string[] = [];
    let found = new Int32Array(4096);
    for (let from = first; from < end; ) {
      let to = from;
      names.length = 0;
      for (; to < end && names.length < found.length; to++)
        for (const p of t.prerequisites[to]!) names.push(p);
      if (names.length > found.length) found = new Int32Array(names.length);
      t.index.getMany(names, found);
      this.linkPrerequisites(from, to, found);
      from = to;
    }
    // A task waiting only for its notBefore (no unmet prerequisite) has its timer there, as
    // enterRunnable armed it.
    for (const h of delayed) {
      if (t.unmet[h] !== 0) continue;
      t.timerAt[h] = t.notBefore[h]!;
      timed.push(h);
    }
    const ready = runnable.view();
    this.buildRunnable(ready);
    this.timers.build(timed.view());
    // The FIFO holds the runnable tasks by (runnableSince, id). Records
    // usually come in id order (a journal reads them by key), so handle
    // order breaks ties; often they are in runnableSince order as well.
    const stamp = t.stamp;
    if (!idOrder) ready.sort((a, b) => stamp[a]! - stamp[b]! || (t.ids[a]! < t.ids[b]! ? -1 : 1));
    else if (!ascending(ready, stamp)) ready.sort((a, b) => stamp[a]! - stamp[b]! || a - b);
    for (let i = 0; i < ready.length; i++) this.fifoAppend(ready[i]!);
  }

  /** Restore: the runnable heaps built bottom-up from `ready`, each type's from its own handles. O(r). */
  private buildRunnable(ready: ArrayLike<number>): void {
    const t = this.table;
    const heaps = this.types.heaps;
    this.runnableTotal = ready.length;
    if (heaps.length === 1) {
      heaps[0]!.build(ready);
      return;
    }
    const byType: number[][] = heaps.map(() => []);
    for (let i = 0; i < ready.length; i++) byType[t.typeCode[ready[i]!]!]!.push(ready[i]!);
    for (let code = 0; code < heaps.length; code++) heaps[code]!.build(byType[code]!);
  }

  /**
   * A task's fields from its record (restore and adopt): spec, status,
   * counters and held bytes, and the stamp its state implies. Links,
   * heaps and timers are the caller's.
   */
  private fill(h: number, spec: TaskSpec, status: TaskStatus, state: S, strings: StringCache): void {
    const t = this.table;
    const source = spec.prerequisites;
    // The engine's own copy (resolved in pass 3).
    t.prerequisites[h] = source.length === 0 ? EMPTY : source.slice();
    t.workflowId[h] = strings.share(spec.workflowId);
    t.payload[h] = spec.payload;
    if (spec.payload !== undefined && this.measurePayload !== undefined) {
      // Stored payloads were measured when added; the same measure gives the same count.
      const bytes = this.measurePayload(spec.payload);
      t.payloadBytes[h] = bytes;
      this.heldBytes += bytes;
    }
    t.maxAttempts[h] = spec.maxAttempts;
    t.flags[h] = flagsOf(spec) | (status.released === true ? Flag.RELEASED : 0);
    // A spec without a type (the default, or journaled before types existed) is of the default type.
    const type = spec.type === DEFAULT_TASK_TYPE ? undefined : spec.type;
    if (type !== undefined && this.types.find(type) < 0 && this.types.size >= MAX_TASK_TYPES_HELD)
      throw new InvalidArgumentError(`more than ${MAX_TASK_TYPES_HELD} task types held`);
    const code = this.types.code(type);
    t.typeCode[h] = code;
    this.types.hold(code);
    if (spec.notBefore !== undefined) t.notBefore[h] = spec.notBefore;
    if (spec.timeoutMs !== undefined) t.timeoutMs[h] = spec.timeoutMs;
    t.state[h] = state;
    this.counts[state]!++;
    if (state === S.LEASED) this.types.leased[code]!++;
    if (spec.large === true) this.remote.load(h, status, isTerminal(state));
    t.deadline[h] = status.deadline;
    t.attempts[h] = status.attempts;
    t.token[h] = status.token;
    t.owner[h] = strings.share(status.leaseOwner);
    t.reason[h] = status.reason;
    if (status.result !== undefined) {
      t.result[h] = status.result;
      // Measured when accepted; the same measure gives the same count.
      const bytes = this.measurePayload === undefined ? 0 : this.measurePayload(status.result);
      t.resultBytes[h] = bytes;
      this.heldBytes += bytes;
    }
    // A restored lease's start is journaled only through its run time limit (timeoutAt); else
    // NaN, so its run time is not observed.
    t.stamp[h] =
      state === S.LEASED
        ? status.timeoutAt !== undefined && spec.timeoutMs !== undefined
          ? status.timeoutAt - spec.timeoutMs
          : Number.NaN
        : (status.runnableSince ?? status.finishedAt ?? 0);
  }

  /**
   * Restore, pass 3, for handles from..to-1: `found` holds the handle of
   * each of their prerequisites in order (-1: unknown). Shares the stored
   * id strings, adds dependents, counts unmet prerequisites, records
   * forward references.
   */
  private linkPrerequisites(from: number, to: number, found: Int32Array): void {
    const t = this.table;
    let i = 0;
    for (let h = from; h < to; h++) {
      const own = t.prerequisites[h]! as string[];
      if (own.length === 0) continue;
      const live = !isTerminal(t.state[h]!);
      let unmet = 0;
      const large = (t.flags[h]! & Flag.LARGE) !== 0;
      for (let k = 0; k < own.length; k++) {
        const ph = found[i++]!;
        if (large && this.isRemote(t.workflowId[h], t.ids[h]!, own[k]!)) {
          if (live && !this.remote.hasMet(h, own[k]!)) unmet++;
          continue;
        }
        if (ph < 0) {
          // A dropped prerequisite had no live dependents (see tryDrop), so an
          // unknown id of a live task is a forward reference still pending.
          if (!live) continue;
          this.forwardWaiters.add(own[k]!, h);
          unmet++;
          continue;
        }
        own[k] = t.ids[ph]!; // share the stored string
        t.addDependent(ph, h);
        if (live && !isTerminal(t.state[ph]!)) unmet++;
      }
      Object.freeze(own);
      t.unmet[h] = unmet;
    }
  }

  /** `expiresAt`, or the end of the live attempt's run time limit if that is earlier. */
  private capToTimeout(h: number, expiresAt: number): number {
    const t = this.table;
    const limit = t.timeoutMs[h]!;
    // NaN (a lease restored without its start) compares false: no cap known.
    return limit !== 0 && t.stamp[h]! + limit < expiresAt ? t.stamp[h]! + limit : expiresAt;
  }

  /** Whether the lease timer of `h` that fired is its run time limit (not a lapsed lease). */
  private reachedTimeout(h: number): boolean {
    const t = this.table;
    return t.timeoutMs[h] !== 0 && t.timerAt[h]! >= t.stamp[h]! + t.timeoutMs[h]!;
  }

  /**
   * The live attempt ran out of its run time limit: it fails as a retryable
   * failure would (a backoff while attempts remain, else FAILED), counted in
   * attemptTimeouts rather than leaseTimeouts. A hung handler that still
   * heartbeats loses the task this way.
   */
  private timeOut(h: number, now: number): void {
    const t = this.table;
    this.attemptTimeouts++;
    this.metaDirty = true;
    this.observer?.attemptTimedOut();
    const owner = t.owner[h] ?? "a consumer";
    const what = `timed out after ${t.timeoutMs[h]} ms (lease held by ${owner})`;
    this.leaveLeased(h);
    if (t.attempts[h]! >= t.maxAttempts[h]!) {
      this.finishBadly(h, S.FAILED, `attempt ${t.attempts[h]} of ${t.maxAttempts[h]} ${what}`);
      return;
    }
    this.retries++;
    this.observer?.retried();
    t.reason[h] = `attempt ${t.attempts[h]} of ${t.maxAttempts[h]} ${what}`;
    this.taskEvent(h, "timedOut");
    this.setState(h, S.WAITING);
    this.armTimer(h, now + backoffDelay(this.backoff, t.attempts[h]!, this.random));
    this.emitSet(h);
  }

  private armTimer(h: number, at: number): void {
    this.table.timerAt[h] = at;
    this.timers.push(h);
  }
}

/** State codes by name: the inverse of STATE_NAMES. */
const STATE_CODES: ReadonlyMap<string, S> = new Map(STATE_NAMES.map((name, code) => [name, code as S]));

/** Index of a state name in STATE_NAMES, or -1. */
function stateCode(name: string): S | -1 {
  return STATE_CODES.get(name) ?? -1;
}

function flagsOf(spec: TaskSpec): number {
  return (
    (spec.hardDeadline ? Flag.HARD_DEADLINE : 0) |
    (spec.onPrerequisiteFailure === "continue" ? Flag.CONTINUE_ON_PREREQUISITE_FAILURE : 0) |
    (spec.notBefore !== undefined ? Flag.NOT_BEFORE : 0) |
    (spec.large === true ? Flag.LARGE : 0)
  );
}

function q(value: unknown): string {
  return JSON.stringify(value);
}

function truncate(reason: string): string {
  const s = String(reason);
  return s.length > 1_000 ? `${s.slice(0, 1_000)}…` : s;
}

function positive(name: string, value: number): number {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value))
    throw new InvalidArgumentError(`${name} must be a positive finite number, got ${String(value)}`);
  return value;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0)
    throw new InvalidArgumentError(`${name} must be >= 0, got ${String(value)}`);
  return value;
}
