/**
 * The client: one NATS connection, requests to `frontier.<cluster>.coord.<op>`
 * (any coordinator of the queue group answers), typed errors, retries.
 *
 * Retries. Every request is safe to send again: a submit carries its
 * idempotency key, a lease its request id, heartbeat / complete / fail /
 * release their fencing token; the same bytes go out on every attempt, except that a
 * lease's resends carry their number (`attempt`). A request is retried
 * with exponential backoff and jitter when its error is retryable — a
 * timeout, no responders, a lost connection, or a reply whose code the
 * catalogue marks retryable (SHARD_UNAVAILABLE, SLOT_NOT_OWNED, OVERLOADED) — and never
 * otherwise.
 */

import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import {
  backoffDelay,
  FrontierError,
  InvalidArgumentError,
  type Lease,
  type SchedulerStats,
  type TaskInput,
  type TaskState,
  type TaskSummary,
  type TaskView,
} from "@frontier/core";
import {
  type ClusterSubjects,
  type CompletedLease,
  decodeReply,
  encodeRequest,
  fromWireError,
  type HeldLease,
  isRetryable,
  type ListCursor,
  type ListTasksRequest,
  type OkReply,
  type Op,
  ProtocolError,
  type RequestOf,
  type ResultOf,
  redactUrl,
  type SettleLease,
  type ShardCoverage,
  type ShardStatsEntry,
  subjectsFor,
} from "@frontier/protocol";
import { NatsAccessError, natsConnectionOptions } from "@frontier/transport";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect as natsConnect } from "@nats-io/transport-node";
import { ClientError, ClientErrorCode, fromTransportError } from "./errors.js";
import {
  type ConnectOptions,
  checkId,
  checkTypes,
  DEFAULT_LEASE_MS,
  type FilledConnectOptions,
  fillConnectOptions,
  fillRetry,
  type RetryPolicy,
  type SubmitterOptions,
  type WorkOptions,
} from "./options.js";
import { SubmitRoute } from "./submit-route.js";
import { BatchSubmitter, type Submitter } from "./submitter.js";
import { type TaskHandler, TaskWorker, type Worker } from "./worker.js";

/** What heartbeat / complete / fail / release need of a lease: a `Lease` as granted, or its fields. */
export type LeaseRef =
  | Lease
  | {
      readonly taskId: string;
      readonly token: number;
      /** The lease's secret, as its grant gave it (`Lease.secret`). */
      readonly secret: string;
      readonly workflowId?: string;
      /** The task is of a large workflow (`Task.large`). */
      readonly large?: boolean;
    };

/** Per-call options of every request. */
export interface RequestOptions {
  /** Reply timeout of one attempt, ms. Default: the client's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Stops waiting (and retrying); the call rejects with ClientError ABORTED. */
  readonly signal?: AbortSignal;
  /** Overrides the client's retry policy for this call (`{ attempts: 1 }` never retries). */
  readonly retry?: Partial<RetryPolicy>;
}

export interface SubmitOptions extends RequestOptions {
  /** Makes the submit idempotent: the same key again returns the first outcome. Default: a fresh UUID. */
  readonly idempotencyKey?: string;
}

export interface SubmitResult {
  /** Tasks the batch added. */
  readonly accepted: number;
  /** True when the key had been seen: the first outcome, replayed. */
  readonly replayed: boolean;
  /** The key the submit went out with (the one given, or the generated one). */
  readonly idempotencyKey: string;
}

export interface LeaseOptions extends RequestOptions {
  /** Most tasks to lease, 1..MAX_LEASES_PER_REQUEST. Default 1. */
  readonly max?: number;
  /** Lease length, ms. Default DEFAULT_LEASE_MS. */
  readonly leaseMs?: number;
  /** Long-poll: how long to wait for a runnable task, ms, 0..MAX_WAIT_MS. Default 0 (answer at once). */
  readonly waitMs?: number;
  /** The lease holder. Default: the client's name. */
  readonly owner?: string;
  /**
   * Lease only tasks of these types (1..MAX_LEASE_TYPES), earliest deadline
   * first among them. Default: the default type only (`"default"`).
   */
  readonly types?: readonly string[];
  /**
   * Makes the lease idempotent: a retry with the same id gets the same grant.
   * This client numbers the sends under an id across calls, so a later call
   * under it is a resend to the cluster. Default: a fresh UUID per call.
   */
  readonly requestId?: string;
}

export interface CompleteOptions extends RequestOptions {
  /**
   * The task's result: any msgpack value up to MAX_RESULT_BYTES encoded
   * (a larger one is refused before sending, PAYLOAD_TOO_LARGE), kept with
   * the task (`getTask`) and handed to its dependents' leases
   * (`Lease.results`). A resent complete keeps the first result.
   */
  readonly result?: unknown;
}

export interface FailOptions extends RequestOptions {
  /** False fails the task for good, whatever attempts it has left. Default true. */
  readonly retryable?: boolean;
  /** Why it failed; at most MAX_REASON_LENGTH characters. Default "". */
  readonly reason?: string;
}

/**
 * The cluster's stats: every answering shard's `SchedulerStats`, merged, and
 * which shards that covers. A non-empty `shards.missing` means the numbers
 * are partial: those shards did not answer (each with the wire error code of
 * its failure, e.g. TIMEOUT, SHARD_UNAVAILABLE). Both lists are empty when
 * the coordinator did not say. `byShard`: each answering shard's own stats
 * and the slots it owns, in `shards.answered`'s order.
 */
export type ClusterStats = SchedulerStats & {
  readonly shards: ShardCoverage;
  readonly byShard: readonly ShardStatsEntry[];
};

/** Options of calls that name a task: its workflow routes the call to its shard without a lookup. */
export interface TaskCallOptions extends RequestOptions {
  readonly workflowId?: string;
  /** The task is of a large workflow: with its workflowId, that names its shard (by (workflowId, id)). */
  readonly large?: boolean;
}

/** What `listTasks` filters on (see ListTasksRequest). */
export type TaskListQuery = Omit<ListTasksRequest, "op">;

export interface TaskListPage {
  readonly tasks: readonly TaskSummary[];
  readonly next: ListCursor | null;
  readonly shards: ShardCoverage;
}

export interface CancelOptions extends TaskCallOptions {
  readonly reason?: string;
}

/** A connection to one Frontier cluster. */
export interface FrontierClient {
  /** The cluster name the client talks to. */
  readonly cluster: string;
  /** This client's name; the default lease owner. */
  readonly name: string;
  /** The NATS connection (shared with the caller when given to `connect`). */
  readonly nats: NatsConnection;
  /** Add a batch of tasks atomically (at most MAX_TASKS_PER_BATCH, within MAX_MESSAGE_BYTES). */
  submit(tasks: readonly TaskInput[], options?: SubmitOptions): Promise<SubmitResult>;
  /** Lease up to `max` runnable tasks, earliest deadline first across the cluster; possibly none. */
  lease(options?: LeaseOptions): Promise<readonly Lease[]>;
  /** Extend a live lease by `leaseMs` from now; resolves with the new expiry. */
  heartbeat(lease: LeaseRef, options?: RequestOptions & { leaseMs?: number }): Promise<{ expiresAt: number }>;
  /** Complete a leased task. `duplicate`: it was already completed under this token (a retried complete). */
  complete(lease: LeaseRef, options?: CompleteOptions): Promise<{ duplicate: boolean }>;
  /** Fail a leased task; resolves with its state after: WAITING (will retry) or FAILED. */
  fail(lease: LeaseRef, options?: FailOptions): Promise<{ state: TaskState }>;
  /**
   * Hand a held lease back without spending an attempt: the task is runnable
   * again at once (no backoff), for any worker, as the same attempt; this
   * lease's token is fenced (its heartbeat, complete, fail: STALE_LEASE).
   * `duplicate`: released already under this token, no lease granted since
   * (a resend after a lost reply); a lease that is not live any more (it
   * expired, another holds the task) rejects with STALE_LEASE.
   */
  release(lease: LeaseRef, options?: RequestOptions): Promise<{ duplicate: boolean }>;
  cancel(taskId: string, options?: CancelOptions): Promise<void>;
  updateDeadline(taskId: string, deadline: number, options?: TaskCallOptions): Promise<void>;
  /** The task, or null when the cluster does not know it. */
  getTask(taskId: string, options?: TaskCallOptions): Promise<TaskView | null>;
  /** Counters of the whole cluster, with the shards they cover (partial when `shards.missing` is not empty). */
  stats(options?: RequestOptions): Promise<ClusterStats>;
  /**
   * A page of tasks across the cluster, by (deadline, id, shard); pass the
   * page's `next` as `after` for the next one. Partial when `shards.missing`
   * is not empty.
   */
  listTasks(query: TaskListQuery, options?: RequestOptions): Promise<TaskListPage>;
  /** A page of one workflow's tasks with their prerequisites (its graph). */
  getWorkflow(
    workflowId: string,
    page: { readonly after?: ListCursor; readonly limit: number },
    options?: RequestOptions,
  ): Promise<{ readonly tasks: readonly TaskSummary[]; readonly next: ListCursor | null }>;
  /**
   * Run a task that ended FAILED, CANCELLED or EXPIRED again from its first
   * attempt (admin role); resolves with its state: RUNNABLE, or WAITING on
   * prerequisites. A resend after a lost reply is refused INVALID_STATE.
   */
  retry(
    taskId: string,
    options?: TaskCallOptions & { readonly deadline?: number },
  ): Promise<{ state: TaskState }>;
  /**
   * Move one slot, with its tasks, to shard `target` (admin role;
   * docs/cluster.md, "Slot movement"); resolves with the tasks moved once
   * the move has ended. Retried under its `moveId` (made up when not
   * given), which joins the move in progress or finds it done (0 tasks).
   */
  moveSlot(
    slot: number,
    target: string,
    options?: RequestOptions & { readonly moveId?: string },
  ): Promise<{ tasks: number }>;
  /** Run `handler` for each leased task, `concurrency` at a time, with heartbeats; see `Worker`. */
  work(handler: TaskHandler, options?: WorkOptions): Worker;
  /** Gather single tasks into batches by size and time, with backpressure; see `Submitter`. */
  submitter(options?: SubmitterOptions): Submitter;
  /** Stop workers and submitters gracefully, then close the connection (unless it was given). Idempotent. */
  close(): Promise<void>;
}

/**
 * Connect to a cluster. Rejects with ClientError CONNECT_FAILED when NATS
 * cannot be reached within `connectTimeoutMs`, and with InvalidArgumentError
 * for a bad option. Connecting does not check that a coordinator answers;
 * the first request does (NoRespondersError).
 */
export async function connect(options: ConnectOptions = {}): Promise<FrontierClient> {
  const filled = fillConnectOptions(options, defaultName());
  if (options.nats !== undefined) return new NatsFrontierClient(options.nats, false, filled);
  let access: ReturnType<typeof natsConnectionOptions>;
  try {
    access = natsConnectionOptions(filled.servers, options);
  } catch (error) {
    if (!(error instanceof NatsAccessError)) throw error;
    throw new InvalidArgumentError(`connect: ${error.message}`);
  }
  let nc: NatsConnection;
  try {
    nc = await natsConnect({
      ...access,
      name: filled.name,
      timeout: filled.connectTimeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ClientError(
      ClientErrorCode.CONNECT_FAILED,
      `cannot reach NATS at ${redactUrl(filled.servers.join(","))}: ${why}`,
      { cause },
    );
  }
  return new NatsFrontierClient(nc, true, filled);
}

function defaultName(): string {
  return `${hostname().slice(0, 200)}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/**
 * What a worker needs of its client beyond the public calls: where a lease
 * was granted, and the batched complete that goes there (see `settle`).
 */
export interface WorkerChannel {
  /** The shard that granted `lease`, when the cluster said (leases from `lease` and `settle`). */
  routeOf(lease: Lease): string | undefined;
  /**
   * Completes `completes` in one request: straight to `shardId` (with the
   * next leases, `lease`, in the same commit) or, without a shard, through a
   * coordinator (then no leases). One outcome per complete, in order.
   * With leases asked for, the shard is asked until it answers while
   * `keepTrying` says so (a grant whose reply was lost must be asked for
   * again), else within the retry budget.
   */
  settle(
    shardId: string | undefined,
    completes: readonly CompletedLease[],
    lease: Omit<SettleLease, "attempt"> | undefined,
    keepTrying?: () => boolean,
  ): Promise<ResultOf<"settle">>;
}

/** Ops a client sends (the shard-only phases are not among them). */
type ClientOp = Exclude<Op, "prepare" | "commit" | "abort" | "check">;

const Mode = { OPEN: "OPEN", CLOSING: "CLOSING", CLOSED: "CLOSED" } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

class NatsFrontierClient implements FrontierClient, WorkerChannel {
  readonly cluster: string;
  readonly name: string;
  private readonly subjects: ClusterSubjects;
  private mode: Mode = Mode.OPEN;
  private closing: Promise<void> | null = null;
  private readonly workers = new Set<TaskWorker>();
  private readonly submitters = new Set<BatchSubmitter>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * Sends so far of lease requests under ids the caller chose, by (owner,
   * id). A later call under the same id goes on counting, so the cluster
   * takes it for the resend it is: it gets back a grant an earlier call's
   * lost reply carried, and the earlier sends are fenced off (a first send
   * of its own would be neither). The oldest are forgotten past
   * MAX_TRACKED_LEASE_IDS.
   */
  private readonly leaseSends = new Map<string, number>();
  /**
   * The shard that granted each lease this client handed out, when the
   * cluster said: its heartbeat, complete and fail go straight there (one
   * hop, not two), and through a coordinator when that shard cannot answer.
   */
  private readonly routes = new WeakMap<Lease, string>();
  /** Where a submit goes first (submit-route.ts). */
  private readonly submitRoute: SubmitRoute;

  constructor(
    readonly nats: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly options: FilledConnectOptions,
  ) {
    this.cluster = options.cluster;
    this.name = options.name;
    this.subjects = subjectsFor(options.cluster);
    this.submitRoute = new SubmitRoute(nats, options.cluster, options.directSubmit);
  }

  async submit(tasks: readonly TaskInput[], options: SubmitOptions = {}): Promise<SubmitResult> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    // Nothing to submit: nothing to send (the wire refuses an empty batch).
    if (tasks.length === 0) return { accepted: 0, replayed: false, idempotencyKey };
    const shardId = this.submitRoute.shardFor(tasks);
    const reply = await this.request({ op: "submit", tasks, idempotencyKey }, options, 0, shardId);
    return { accepted: reply.accepted, replayed: reply.replayed, idempotencyKey };
  }

  async lease(options: LeaseOptions = {}): Promise<readonly Lease[]> {
    const waitMs = options.waitMs ?? 0;
    const owner = options.owner ?? this.name;
    const requestId = options.requestId ?? randomUUID();
    const types = checkTypes("lease", options.types);
    const sent = options.requestId === undefined ? 0 : this.trackLeaseId(owner, requestId);
    const reply = await this.request(
      {
        op: "lease",
        owner,
        max: options.max ?? 1,
        leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
        waitMs,
        requestId,
        ...(types === undefined ? {} : { types }),
        ...(sent > 0 ? { attempt: sent + 1 } : {}),
      },
      options,
      // A coordinator (or the shard it hands the long-poll to) holds it open for up to waitMs.
      Number.isFinite(waitMs) && waitMs > 0 ? waitMs : 0,
    );
    const shards = reply.shards;
    if (shards !== undefined) {
      reply.leases.forEach((lease, i) => {
        this.routes.set(lease, shards[i]!);
      });
    }
    return reply.leases;
  }

  routeOf(lease: Lease): string | undefined {
    return this.shardOf(lease);
  }

  async settle(
    shardId: string | undefined,
    completes: readonly CompletedLease[],
    lease: Omit<SettleLease, "attempt"> | undefined,
    keepTrying?: () => boolean,
  ): Promise<ResultOf<"settle">> {
    if (shardId !== undefined) {
      const direct = await this.settleAt(shardId, completes, lease, keepTrying);
      if (direct !== undefined) return direct;
    }
    const { results, leases } = await this.request({ op: "settle", completes }, {});
    return { results, leases };
  }

  /**
   * A settle sent to the shard that granted its leases, resent there (the
   * lease numbered, so a grant whose reply was lost comes back) while the
   * error is retryable. Undefined when a coordinator should route the
   * completes instead: without leases asked for, when the shard is not
   * there (no responders, or it says the slot moved) or the retry budget
   * ran out; with them, once the budget ran out and `keepTrying` says stop.
   */
  private async settleAt(
    shardId: string,
    completes: readonly CompletedLease[],
    lease: Omit<SettleLease, "attempt"> | undefined,
    keepTrying: (() => boolean) | undefined,
  ): Promise<ResultOf<"settle"> | undefined> {
    const site = new Error();
    const subject = this.subjects.shard(shardId, "settle");
    const timeoutMs = this.options.requestTimeoutMs;
    const retry = this.options.retry;
    for (let tries = 1; ; tries++) {
      const request: RequestOf<"settle"> = {
        op: "settle",
        completes,
        ...(lease === undefined ? {} : { lease: tries > 1 ? { ...lease, attempt: tries } : lease }),
      };
      const answer = await this.exchange("settle", subject, encodeRequest(request), timeoutMs, site);
      if ("reply" in answer) {
        const { reply } = answer;
        for (const granted of reply.leases) this.routes.set(granted, shardId);
        const moved =
          reply.grantsMoved === true && lease !== undefined ? await this.movedGrants(lease, tries) : [];
        return {
          results: reply.results,
          leases: moved.length === 0 ? reply.leases : [...reply.leases, ...moved],
        };
      }
      const { error } = answer;
      if (lease === undefined) {
        // No leases asked for: nothing here is worth waiting for; a coordinator finds the tasks.
        if (notThere(error)) return undefined;
        if (!shouldRetry(error)) throw error;
        if (tries >= retry.attempts || this.mode === Mode.CLOSED) return undefined;
      } else {
        if (!shouldRetry(error)) throw error;
        // An earlier send may have been granted (its reply lost): the shard is asked again, also
        // while it restarts (a restarted one replays the grant from its journal), as a worker
        // resends a lease request until it is answered — past the retry budget while the worker
        // runs. A worker that stops gives up after the budget; the completes then go through a
        // coordinator, and a grant an earlier send got expires like a dead worker's.
        const giveUp = tries >= retry.attempts && !(keepTrying?.() ?? false);
        if (this.mode === Mode.CLOSED || giveUp) return undefined;
      }
      await sleep(backoffDelay(retry, Math.min(tries, retry.attempts), Math.random), "settle", undefined);
    }
  }

  /**
   * The grants an earlier send of a settle's lease got that left with their
   * slot before the resend (the shard said `grantsMoved`): the same request
   * id, its next send, through a coordinator, whose replay-only lookup of
   * every shard finds them where they are now (and grants anew only when
   * there are none). Nothing when it cannot be asked: the settle itself went
   * through, and such a grant then waits out its lease, as it did before.
   */
  private async movedGrants(lease: Omit<SettleLease, "attempt">, sent: number): Promise<readonly Lease[]> {
    const { owner, requestId, max, leaseMs, types } = lease;
    this.trackLeaseId(owner, requestId);
    this.leaseSends.set(leaseIdKey(owner, requestId), sent);
    try {
      return await this.lease({
        owner,
        requestId,
        max,
        leaseMs,
        waitMs: 0,
        ...(types === undefined ? {} : { types }),
      });
    } catch {
      return [];
    }
  }

  async heartbeat(
    lease: LeaseRef,
    options: RequestOptions & { leaseMs?: number } = {},
  ): Promise<{ expiresAt: number }> {
    const reply = await this.request(
      { op: "heartbeat", ...refOf(lease), leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS },
      options,
      0,
      this.shardOf(lease),
    );
    return { expiresAt: reply.expiresAt };
  }

  async complete(lease: LeaseRef, options: CompleteOptions = {}): Promise<{ duplicate: boolean }> {
    const request: RequestOf<"complete"> = {
      op: "complete",
      ...refOf(lease),
      ...(options.result === undefined ? {} : { result: options.result }),
    };
    const reply = await this.request(request, options, 0, this.shardOf(lease));
    return { duplicate: reply.duplicate };
  }

  async fail(lease: LeaseRef, options: FailOptions = {}): Promise<{ state: TaskState }> {
    const reply = await this.request(
      { op: "fail", ...refOf(lease), retryable: options.retryable ?? true, reason: options.reason ?? "" },
      options,
      0,
      this.shardOf(lease),
    );
    return { state: reply.state };
  }

  async release(lease: LeaseRef, options: RequestOptions = {}): Promise<{ duplicate: boolean }> {
    const reply = await this.request({ op: "release", ...refOf(lease) }, options, 0, this.shardOf(lease));
    return { duplicate: reply.duplicate };
  }

  async cancel(taskId: string, options: CancelOptions = {}): Promise<void> {
    await this.request(
      {
        op: "cancel",
        taskId,
        ...workflow(options.workflowId, options.large),
        ...(options.reason === undefined ? {} : { reason: options.reason }),
      },
      options,
    );
  }

  async updateDeadline(taskId: string, deadline: number, options: TaskCallOptions = {}): Promise<void> {
    await this.request(
      { op: "updateDeadline", taskId, ...workflow(options.workflowId, options.large), deadline },
      options,
    );
  }

  async getTask(taskId: string, options: TaskCallOptions = {}): Promise<TaskView | null> {
    const reply = await this.request(
      { op: "getTask", taskId, ...workflow(options.workflowId, options.large) },
      options,
    );
    return reply.task;
  }

  async moveSlot(
    slot: number,
    target: string,
    options: RequestOptions & { readonly moveId?: string } = {},
  ): Promise<{ tasks: number }> {
    const moveId = options.moveId ?? randomUUID();
    // A move takes a while (its tasks go over the wire twice): a coordinator waits up to two minutes.
    const reply = await this.request(
      { op: "moveSlot", slot, target, moveId },
      {
        timeoutMs: MOVE_SLOT_TIMEOUT_MS,
        ...options,
      },
    );
    return { tasks: reply.tasks };
  }

  async stats(options: RequestOptions = {}): Promise<ClusterStats> {
    const reply = await this.request({ op: "stats" }, options);
    return {
      ...reply.stats,
      shards: reply.shards ?? { answered: [], missing: [] },
      byShard: reply.byShard ?? [],
    };
  }

  async listTasks(query: TaskListQuery, options: RequestOptions = {}): Promise<TaskListPage> {
    const reply = await this.request({ op: "listTasks", ...query }, options);
    return { tasks: reply.tasks, next: reply.next, shards: reply.shards ?? { answered: [], missing: [] } };
  }

  async getWorkflow(
    workflowId: string,
    page: { readonly after?: ListCursor; readonly limit: number },
    options: RequestOptions = {},
  ): Promise<{ readonly tasks: readonly TaskSummary[]; readonly next: ListCursor | null }> {
    const reply = await this.request({ op: "getWorkflow", workflowId, ...page }, options);
    return { tasks: reply.tasks, next: reply.next };
  }

  async retry(
    taskId: string,
    options: TaskCallOptions & { readonly deadline?: number } = {},
  ): Promise<{ state: TaskState }> {
    const deadline = options.deadline === undefined ? {} : { deadline: options.deadline };
    const reply = await this.request(
      { op: "retry", taskId, ...workflow(options.workflowId, options.large), ...deadline },
      options,
    );
    return { state: reply.state };
  }

  work(handler: TaskHandler, options: WorkOptions = {}): Worker {
    this.checkOpen("work");
    const worker = new TaskWorker(
      this,
      this,
      handler,
      options,
      this.options.retry,
      this.options.requestTimeoutMs,
    );
    this.workers.add(worker);
    void worker.done.then(
      () => this.workers.delete(worker),
      () => this.workers.delete(worker),
    );
    return worker;
  }

  submitter(options: SubmitterOptions = {}): Submitter {
    this.checkOpen("submitter");
    const submitter = new BatchSubmitter(this, options);
    this.submitters.add(submitter);
    submitter.onClosed(() => this.submitters.delete(submitter));
    return submitter;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.mode = Mode.CLOSING;
    // Workers and submitters first: they still need the connection to finish.
    await Promise.allSettled([
      ...[...this.workers].map((w) => w.stop()),
      ...[...this.submitters].map((s) => s.close()),
    ]);
    await Promise.allSettled([...this.inFlight]);
    await this.submitRoute.disable();
    this.mode = Mode.CLOSED;
    if (this.ownsConnection && !this.nats.isClosed()) {
      try {
        await this.nats.drain();
      } catch {
        await this.nats.close();
      }
    }
  }

  private shardOf(lease: LeaseRef): string | undefined {
    return "task" in lease ? this.routes.get(lease) : undefined;
  }

  private checkOpen(what: string): void {
    if (this.mode !== Mode.OPEN) {
      throw new ClientError(ClientErrorCode.CLOSED, `${what}: the client is closed`);
    }
  }

  /** Starts or goes on counting the sends under a caller's lease request id; returns the count so far. */
  private trackLeaseId(owner: string, requestId: string): number {
    const key = leaseIdKey(owner, requestId);
    const sent = this.leaseSends.get(key) ?? 0;
    // Re-inserted, so the map's order is recency and the oldest go first.
    this.leaseSends.delete(key);
    this.leaseSends.set(key, sent);
    for (const oldest of this.leaseSends.keys()) {
      if (this.leaseSends.size <= MAX_TRACKED_LEASE_IDS) break;
      this.leaseSends.delete(oldest);
    }
    return sent;
  }

  /**
   * Send one request and return the ok reply, retrying what is retryable.
   * Requests made while the client closes are still served (workers finish
   * their tasks); requests after it closed reject with ClientError CLOSED.
   */
  request<O extends ClientOp>(
    request: RequestOf<O>,
    options: RequestOptions,
    extraTimeoutMs = 0,
    shardId?: string,
  ): Promise<OkReply<O>> {
    // Created now, so a failure later shows the caller's stack, not a timer's.
    const site = new Error();
    const op = (request as { readonly op: Op }).op as O;
    if (this.mode === Mode.CLOSED) {
      return Promise.reject(new ClientError(ClientErrorCode.CLOSED, `${op}: the client is closed`));
    }
    const p = this.send(op, request, options, extraTimeoutMs, site, shardId);
    this.inFlight.add(p);
    void p.then(
      () => this.inFlight.delete(p),
      () => this.inFlight.delete(p),
    );
    return p;
  }

  /**
   * One request and its reply: the ok reply, or the error it amounts to (an
   * error reply decoded to its class, or a transport failure as a
   * ClientError, an abort through `signal` as ABORTED).
   */
  private async exchange<O extends Op>(
    op: O,
    subject: string,
    bytes: Uint8Array,
    timeoutMs: number,
    site: Error,
    signal?: AbortSignal,
  ): Promise<{ reply: OkReply<O> } | { error: unknown }> {
    try {
      const msg = await abortable(this.nats.request(subject, bytes, { timeout: timeoutMs }), op, signal);
      const reply = decodeReply(msg.data, op);
      return reply.ok ? { reply } : { error: fromWireError(reply.error) };
    } catch (err) {
      return { error: fromTransportError(err, op, subject, timeoutMs, site) ?? err };
    }
  }

  private async send<O extends ClientOp>(
    op: O,
    request: RequestOf<O>,
    options: RequestOptions,
    extraTimeoutMs: number,
    site: Error,
    shardId?: string,
  ): Promise<OkReply<O>> {
    let bytes = encodeRequest(request); // a bad request fails here, before the round trip
    const coordinator = this.subjects.coord(op);
    // Straight to the shard holding the task first; every later send (and the first, when that
    // shard is not there to answer) through a coordinator, which finds the task wherever it is.
    let direct = shardId === undefined ? undefined : this.subjects.shard(shardId, op);
    const timeoutMs = (options.timeoutMs ?? this.options.requestTimeoutMs) + extraTimeoutMs;
    const retry = options.retry === undefined ? this.options.retry : fillRetry(op, options.retry);
    const signal = options.signal;
    // A lease's sends are numbered (`attempt`), from where an earlier call under its id left off.
    const lease = op === "lease" ? (request as RequestOf<"lease">) : undefined;
    // Only a caller-chosen id is tracked; a client that never chose one builds no key.
    const tracked = lease && this.leaseSends.size > 0 ? leaseIdKey(lease.owner, lease.requestId) : undefined;
    for (let tries = 1; ; tries++) {
      throwIfAborted(op, signal);
      const attempt = (lease?.attempt ?? 1) + tries - 1;
      if (lease !== undefined && tries > 1) {
        // A resend: an earlier send may have been granted (its reply lost), so the coordinator,
        // whichever answers, asks the shards for that grant before granting anew, and the shards
        // then grant nothing more to the earlier sends (a coordinator may still be filling one).
        bytes = encodeRequest({ ...lease, attempt });
      }
      if (tracked !== undefined && this.leaseSends.has(tracked)) this.leaseSends.set(tracked, attempt);
      const subject = direct ?? coordinator;
      const answer = await this.exchange(op, subject, bytes, timeoutMs, site, signal);
      if ("reply" in answer) return answer.reply;
      const { error } = answer;
      if (direct !== undefined) {
        direct = undefined;
        // Not there (gone, or the task moved): the coordinator at once, as if this send had not been.
        if (notThere(error) || (error instanceof FrontierError && error.code === "UNKNOWN_TASK")) {
          tries--;
          continue;
        }
        // NATS does not let this connection submit at a shard (credentials of an older set, or a
        // custom policy): through coordinators from now on, and this one at once.
        if (
          op === "submit" &&
          error instanceof ClientError &&
          error.code === ClientErrorCode.PERMISSION_DENIED
        ) {
          void this.submitRoute.disable();
          tries--;
          continue;
        }
      }
      if (!shouldRetry(error) || tries >= retry.attempts || this.mode === Mode.CLOSED) throw error;
      await sleep(backoffDelay(retry, tries, Math.random), op, signal);
    }
  }
}

/** How long a `moveSlot` request waits for its move to end, ms (a coordinator waits 120 s). */
const MOVE_SLOT_TIMEOUT_MS = 125_000;

/** Caller-chosen lease request ids whose sends a client keeps counting (the most recent). */
const MAX_TRACKED_LEASE_IDS = 10_000;

/** Owner and request id in one key; the length prefix keeps ("a:b", "c") apart from ("a", "b:c"). */
function leaseIdKey(owner: string, requestId: string): string {
  return `${owner.length}:${owner}${requestId}`;
}

/** A shard that is not there to answer: no responders, or it does not own the slot (any more, or while it moves). */
function notThere(err: unknown): boolean {
  return (
    (err instanceof ProtocolError || err instanceof FrontierError) &&
    (err.code === "NO_RESPONDERS" || err.code === "SLOT_NOT_OWNED" || err.code === "SLOT_MOVING")
  );
}

/** Whether a failed request may succeed if sent again unchanged. */
export function shouldRetry(err: unknown): boolean {
  if (err instanceof ClientError) return err.retryable;
  return isRetryable(err);
}

/** Whether an error says the lease is gone for good: its holder must stop. */
export function isLeaseGone(err: unknown): boolean {
  return (
    err instanceof FrontierError &&
    (err.code === "STALE_LEASE" || err.code === "UNKNOWN_TASK" || err.code === "INVALID_STATE")
  );
}

/** The lease as a request names it: task, token and secret (HeldLease). */
export function refOf(lease: LeaseRef): HeldLease {
  const workflowId = "task" in lease ? lease.task.workflowId : lease.workflowId;
  const large = "task" in lease ? lease.task.large : lease.large;
  checkId("lease", "taskId", lease.taskId);
  if (typeof lease.secret !== "string" || lease.secret.length === 0) {
    throw new InvalidArgumentError(
      `lease of task ${JSON.stringify(lease.taskId)}: no secret (a lease's secret comes only with its grant; ` +
        "heartbeat, complete, fail and release need it)",
    );
  }
  return { taskId: lease.taskId, token: lease.token, secret: lease.secret, ...workflow(workflowId, large) };
}

/** The routing fields of a request naming a task: its workflow, and whether that workflow is large. */
function workflow(
  workflowId: string | undefined,
  large?: boolean | undefined,
): { workflowId?: string; large?: boolean } {
  if (workflowId === undefined) return {};
  return large === true ? { workflowId, large } : { workflowId };
}

function throwIfAborted(op: Op, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(op, signal);
}

function abortedError(op: Op, signal: AbortSignal): ClientError {
  return new ClientError(ClientErrorCode.ABORTED, `${op}: aborted`, { cause: signal.reason });
}

/** `p`, or a rejection as soon as `signal` aborts (the request itself runs on; its outcome is dropped). */
function abortable<T>(p: Promise<T>, op: Op, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(op, signal));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Wait `ms`, or reject early, as ABORTED, when `signal` aborts. */
async function sleep(ms: number, op: Op, signal: AbortSignal | undefined): Promise<void> {
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  } catch (error) {
    if (signal?.aborted) throw abortedError(op, signal);
    throw error;
  }
}
