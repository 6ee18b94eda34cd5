/**
 * `work()`: lease tasks, run a handler per task, keep the leases alive, and
 * complete or fail each task by its handler's outcome.
 *
 * Modes of a worker (changed only in `setMode`):
 *
 *   RUNNING  --stop() / options.signal / a fatal lease error-->  STOPPING
 *   STOPPING --the last handler and complete settled-->           STOPPED
 *
 * RUNNING: a worker holds up to `concurrency` + `prefetch` leases: the
 *   running handlers and the tasks waiting for a slot, which start the
 *   moment one frees. The prefetch adapts to the handlers' pace unless
 *   fixed (prefetch.ts). It asks for more when at least half that room is free
 *   (or it holds nothing), in one lease request at a time through a
 *   coordinator (global earliest-deadline-first), long-polling `waitMs`
 *   when nothing is runnable.
 * Completes are batched: the tasks finished while SETTLES_IN_FLIGHT
 *   settles are on the way to a shard go together in the next one
 *   (`settle`: many per request and per commit), sent straight to the shard
 *   that granted them, which hands back the next leases in the same reply
 *   (and the same commit), bounded by the other shards' frontiers. A slot is
 *   free as soon as its handler settles; the complete goes on in the
 *   background.
 * STOPPING: no new lease request, and settles ask for no leases. The tasks
 *   waiting for a slot are released (`client.release`: runnable again at
 *   once for other workers, the attempt not spent), and so is what a lease
 *   request already on the wire grants; the running handlers finish, and
 *   their completes and fails go out. So stopping takes up to `waitMs` (the
 *   lease request on the wire) plus the running handlers, never the
 *   buffered ones, and leaves no task waiting for a lease to expire.
 *   `stop({ abortInFlight: true })` does the same and also aborts the
 *   running handlers' signals (what they then settle to is sent as usual).
 *
 * Per task, from its grant: heartbeat every `heartbeatMs`. A heartbeat that
 * says the lease is gone (STALE_LEASE, UNKNOWN_TASK, INVALID_STATE: expired,
 * re-leased, cancelled) or none that succeeded before the lease ran out
 * marks the task lost: its signal aborts with a `LeaseLostError`, a task not
 * started yet never starts, and its outcome is dropped (another worker may
 * own it now; the fencing token would refuse us anyway).
 *
 * Per task with a run time limit (its `timeoutMs`, else the worker's), from
 * its grant: when the limit passes, the signal aborts with an
 * `AttemptTimeoutError`, heartbeats stop (a hung handler no longer keeps the
 * lease; the shard would refuse to extend it anyway) and the task is failed,
 * retryably, with the reason `timed out after N ms`, at once: what the
 * handler does later is ignored. It keeps its slot until it settles.
 * The limit runs from the grant (the shard's clock starts there), so a task
 * that waited for a slot would start with less of it: a task still waiting
 * once BUFFERED_START_SHARE (half) of its limit has passed since its grant
 * (as this worker saw the grant) is released instead of run, the attempt not
 * spent, for a worker with a free slot (or this one, later, with its whole
 * limit). The adaptive prefetch halves then (the buffer outran the slots).
 */
import { randomUUID } from "node:crypto";
import { backoffDelay, DEFAULT_TASK_TYPE, type Lease, type Task, type TaskState } from "@frontier/core";
import {
  type CompletedLease,
  encodeRequest,
  fromWireError,
  MAX_LEASES_PER_REQUEST,
  MAX_REASON_LENGTH,
  MAX_SETTLES_PER_REQUEST,
  ProtocolError,
  type ResultOf,
  WireErrorCode,
} from "@frontier/protocol";
import type { FrontierClient, WorkerChannel } from "./client.js";
import { isLeaseGone, refOf, shouldRetry } from "./client.js";
import { AttemptTimeoutError, ClientError, ClientErrorCode, LeaseLostError, TaskError } from "./errors.js";
import { type FilledWorkOptions, fillWorkOptions, type RetryPolicy, type WorkOptions } from "./options.js";
import { MAX_AUTO_PREFETCH, Prefetch } from "./prefetch.js";

export interface TaskContext {
  /** The lease as granted (its token fences every call about the task). */
  readonly lease: Lease;
  /** 1 for the task's first lease. */
  readonly attempt: number;
  /** The task's type (`"default"` for a task submitted without one). */
  readonly type: string;
  /**
   * Aborted when the lease is lost (reason: `LeaseLostError`), when the
   * attempt's run time limit passes (reason: `AttemptTimeoutError`; the task
   * has already been failed then) or when the worker stops with
   * `abortInFlight`. A handler should stop soon after.
   */
  readonly signal: AbortSignal;
  /** The run time limit of this attempt, ms from the grant (the task's, else the worker's), if any. */
  readonly timeoutMs: number | undefined;
  /**
   * The results of the task's prerequisites that completed with one, by
   * prerequisite id (an object without prototype: any id is a key, and a
   * missing one reads undefined). From the grant (`lease.results`).
   */
  readonly results: Readonly<Record<string, unknown>>;
  /**
   * Prerequisites' results the grant left out to stay within the protocol's
   * LEASE_RESULTS_BYTES (0 almost always): read those with
   * `client.getTask(id)` (`.result`).
   */
  readonly resultsOmitted: number;
}

/**
 * Runs one task. Resolving completes the task, with the resolved value as
 * its result (undefined: none; otherwise any msgpack value up to
 * MAX_RESULT_BYTES encoded, handed to the dependents as `context.results`).
 * A value that cannot be sent fails the task for good, saying why.
 * Throwing (or rejecting) fails it, retryably unless the error is a
 * `TaskError` with `retryable: false`.
 */
export type TaskHandler = (task: Task, context: TaskContext) => unknown;

/** What a worker reports, as it happens. Listeners' errors are swallowed. */
export type WorkerEvent =
  | { readonly type: "task:started"; readonly lease: Lease }
  | { readonly type: "task:completed"; readonly lease: Lease; readonly duplicate: boolean }
  | {
      readonly type: "task:failed";
      readonly lease: Lease;
      readonly error: unknown;
      readonly state: TaskState;
    }
  | { readonly type: "task:lost"; readonly lease: Lease; readonly error: LeaseLostError }
  /**
   * A lease handed back unstarted (`client.release`), the attempt not spent:
   * the worker was stopping, or the task waited for a slot for
   * BUFFERED_START_SHARE of its run time limit.
   */
  | { readonly type: "task:released"; readonly lease: Lease; readonly reason: ReleaseReason }
  /** A lease request came back empty: nothing was runnable within `waitMs`. */
  | { readonly type: "idle"; readonly running: number }
  | {
      readonly type: "error";
      readonly during: "lease" | "heartbeat" | "complete" | "fail" | "release";
      readonly error: unknown;
      readonly lease?: Lease;
    };

/** Why a worker released a lease it had not started. */
export type ReleaseReason =
  /** The worker was stopping. */
  | "stopping"
  /** It waited for a slot for BUFFERED_START_SHARE of its run time limit. */
  | "waitedTooLong";

export interface WorkerStats {
  readonly leased: number;
  readonly completed: number;
  readonly failed: number;
  readonly lost: number;
  /** Leases handed back unstarted (the worker stopping, or a task that waited too long for a slot). */
  readonly released: number;
}

/**
 * A task waiting for a slot starts only while less than this share of its
 * run time limit has passed since its grant; later, it is released.
 */
export const BUFFERED_START_SHARE = 0.5;

export interface Worker {
  /** The lease owner. */
  readonly owner: string;
  /** Handlers running now. */
  readonly running: number;
  /** Leases held now: running handlers and tasks waiting for a slot. */
  readonly leasesHeld: number;
  readonly stats: WorkerStats;
  /** Subscribe to events; returns the unsubscribe function. */
  on(listener: (event: WorkerEvent) => void): () => void;
  /** Stop leasing and wait for the running tasks (see the modes above). Idempotent. */
  stop(options?: { abortInFlight?: boolean }): Promise<void>;
  /** Settles when the worker has stopped; rejects with the error that stopped it, if one did. */
  readonly done: Promise<void>;
}

const Mode = { RUNNING: "RUNNING", STOPPING: "STOPPING", STOPPED: "STOPPED" } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** Pause between empty polls when `waitMs` is 0 (the coordinator answers at once, so we would spin). */
const EMPTY_POLL_PAUSE_MS = 200;

/** Where completes go when the granting shard is unknown: through a coordinator. */
const VIA_COORDINATOR = "";

/** One leased task, from its grant until its handler settled (or it was lost before it started). */
interface Held {
  readonly key: string;
  readonly lease: Lease;
  /** The shard that granted it (its completes go there), when known. */
  readonly shardId: string | undefined;
  readonly controller: AbortController;
  /** Local estimate of the lease's end (our clock): when it was granted or last extended, plus leaseMs. */
  expiresAt: number;
  /** When this worker got the grant (performance.now()): its run time limit counts from about here. */
  readonly grantedAt: number;
  timer: NodeJS.Timeout | undefined;
  started: boolean;
  /** What the handler resolved to: the complete's result. */
  result: unknown;
  /** Set once the handler settled: no heartbeat after that. */
  finished: boolean;
  lost: LeaseLostError | null;
  /**
   * The attempt's run time limit, ms, if any; its timer (before the task
   * starts: when it has waited too long for a slot); set once it passed
   * (then no heartbeat).
   */
  readonly timeoutMs: number | undefined;
  limitTimer: NodeJS.Timeout | undefined;
  timedOut: AttemptTimeoutError | null;
  /** Its complete's sends through a coordinator answered SLOT_MOVING (the task's slot moving). */
  movingRetries?: number;
}

/**
 * Settle requests a worker keeps on the way to one shard. Two, so that the
 * shard applies the next batch while it commits the one before (and the
 * worker runs the handlers of one reply while the next settle is on the
 * way); with one, each side waited for the other (docs/benchmarks.md,
 * "Session 12: the drain's shard thread"). Each carries its own completes and its
 * own lease ask (its own request id), and what they ask is counted against
 * the room together, so two never ask for more than one would.
 */
const SETTLES_IN_FLIGHT = 2;

/** The completes bound for one shard (or a coordinator): sent together, SETTLES_IN_FLIGHT requests at a time. */
interface SettleQueue {
  readonly items: Held[];
  /** Requests on the way (at most SETTLES_IN_FLIGHT); what queues meanwhile goes in the next. */
  sending: number;
  /** A send is due at the next turn of the event loop (so the completes of one turn go together). */
  scheduled: boolean;
  /**
   * Leases this shard's last settle granted, when it granted fewer than asked
   * (undefined: as many as asked). A shard grants a settle only what comes
   * before the other shards' earliest tasks, which with interleaved deadlines
   * is a task or two; what a settle asks for is room the lease stream cannot
   * use meanwhile, so the next settle there asks for twice that, plus one.
   */
  lastShortGrant: number | undefined;
}

export class TaskWorker implements Worker {
  readonly owner: string;
  readonly done: Promise<void>;
  private mode: Mode = Mode.RUNNING;
  private readonly options: FilledWorkOptions;
  /** Leases held beyond the slots. */
  private readonly prefetch: Prefetch;
  /** The last lease request got at least half of what it asked: the cluster may hold more runnable work. */
  private clusterHadMore = false;
  private readonly listeners = new Set<(event: WorkerEvent) => void>();
  /** Every lease held: waiting for a slot or running. */
  private readonly held = new Map<string, Held>();
  /** Granted, waiting for a slot, earliest deadline first (see wait). */
  private readonly waiting: Held[] = [];
  private runningCount = 0;
  private readonly settles = new Map<string, SettleQueue>();
  /** Leases asked for by settles on the way: room they may fill. */
  private settleAsks = 0;
  /** Leases the lease loop's request on the wire asked for: room a settle must not ask for again. */
  private leaseAsks = 0;
  /** Handlers, settles and fails in progress: what stopping waits for. */
  private readonly work = new Set<Promise<void>>();
  /** Aborted on stop: ends an idle wait (backoff, free room) at once. */
  private readonly stopping = new AbortController();
  private roomFreed: (() => void) | null = null;
  private counts = { leased: 0, completed: 0, failed: 0, lost: 0, released: 0 };

  constructor(
    private readonly client: FrontierClient,
    private readonly channel: WorkerChannel,
    private readonly handler: TaskHandler,
    options: WorkOptions,
    private readonly retry: RetryPolicy,
    /** The client's reply timeout of one attempt, ms: heartbeats wait less when the lease runs short. */
    private readonly requestTimeoutMs: number,
  ) {
    this.options = fillWorkOptions(options, client.name);
    this.owner = this.options.owner;
    // From none: a buffer only once the slots starve (fast handlers), never behind slow ones.
    this.prefetch = new Prefetch(0, MAX_AUTO_PREFETCH, this.options.prefetch);
    const signal = this.options.signal;
    const onAbort = () => void this.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.done = this.run().finally(() => signal?.removeEventListener("abort", onAbort));
    // Nobody has to await `done`; an error that stopped the worker is still reported there.
    this.done.catch(() => {});
    if (signal?.aborted) void this.stop();
  }

  get running(): number {
    return this.runningCount;
  }

  get leasesHeld(): number {
    return this.held.size;
  }

  get stats(): WorkerStats {
    return { ...this.counts };
  }

  on(listener: (event: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(options: { abortInFlight?: boolean } = {}): Promise<void> {
    if (this.mode === Mode.RUNNING) this.setMode(Mode.STOPPING);
    if (options.abortInFlight) {
      for (const held of this.held.values()) {
        held.controller.abort(new ClientError(ClientErrorCode.CLOSED, "the worker is stopping"));
      }
    }
    await this.done.catch(() => {});
  }

  private setMode(mode: Mode): void {
    this.mode = mode;
    if (mode === Mode.STOPPING) {
      this.stopping.abort();
      this.pump(); // releases the tasks waiting for a slot
      this.roomFreed?.();
    }
  }

  private async run(): Promise<void> {
    let fatal: unknown = null;
    try {
      await this.leaseLoop();
    } catch (err) {
      if (!(err instanceof ClientError && err.code === ClientErrorCode.CLOSED)) fatal = err;
    }
    if (this.mode === Mode.RUNNING) this.setMode(Mode.STOPPING);
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
    this.setMode(Mode.STOPPED);
    if (fatal !== null) throw fatal;
  }

  /** Leases held at most: running handlers plus tasks waiting for a slot. */
  private capacity(): number {
    return Math.min(MAX_LEASES_PER_REQUEST, this.options.concurrency + this.prefetch.value);
  }

  /** Room for more leases: what is held and what settles on the way may bring, below capacity. */
  private room(): number {
    return this.capacity() - this.held.size - this.settleAsks - this.leaseAsks;
  }

  private async leaseLoop(): Promise<void> {
    const { leaseMs, waitMs, owner, types } = this.options;
    // Kept until a reply arrives: a retry after a timeout gets the grant the first attempt may have made
    // (the client goes on numbering the sends under it, so the retry is a resend to the cluster).
    let requestId: string | null = null;
    let failures = 0;
    while (this.mode === Mode.RUNNING) {
      const room = this.room();
      // Ask when this much room is free (or nothing is held), so leases come in batches; without
      // prefetch, for every free slot.
      const batch = Math.max(1, Math.min(this.prefetch.value, Math.ceil(this.capacity() / 2)));
      if (room <= 0 || (room < batch && this.held.size > 0)) {
        await new Promise<void>((resolve) => {
          this.roomFreed = resolve;
        });
        this.roomFreed = null;
        continue;
      }
      requestId ??= randomUUID();
      let leases: readonly Lease[];
      const sentAt = performance.now();
      this.leaseAsks = room;
      try {
        leases = await this.client.lease({
          max: room,
          leaseMs,
          waitMs,
          owner,
          requestId,
          ...(types === undefined ? {} : { types }),
        });
        // A grant's round trip (an empty long-poll's wait says nothing of the cluster's pace).
        if (leases.length > 0) this.prefetch.roundTrip(performance.now() - sentAt);
        // At least half the ask: a coordinator answers once a round fills half, so the cluster may hold more.
        this.clusterHadMore = leases.length * 2 >= room;
        requestId = null;
        failures = 0;
      } catch (err) {
        this.leaseAsks = 0;
        // Not retryable (a bad option, a protocol mismatch): stop and report it through `done`.
        if (!shouldRetry(err)) throw err;
        // Retryable, and the client's own retries ran out: the cluster is away. Keep trying, slower.
        this.emit({ type: "error", during: "lease", error: err });
        failures++;
        await this.idle(backoffDelay(this.retry, failures + this.retry.attempts, Math.random));
        continue;
      } finally {
        this.leaseAsks = 0;
      }
      this.take(leases);
      if (leases.length === 0) {
        this.emit({ type: "idle", running: this.runningCount });
        if (waitMs === 0) await this.idle(EMPTY_POLL_PAUSE_MS);
      }
    }
  }

  /** Sleep `ms`, or less when the worker stops. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopping.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.stopping.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopping.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Holds granted leases (their heartbeats start now) and starts as many as there are free slots. */
  private take(leases: readonly Lease[]): void {
    for (const lease of leases) {
      const key = `${lease.taskId}\u0000${lease.token}`;
      if (this.held.has(key)) continue; // the same grant twice (a resend's replay): one run
      const timeoutMs = lease.task.timeoutMs ?? this.options.timeoutMs;
      const held: Held = {
        key,
        lease,
        shardId: this.channel.routeOf(lease),
        controller: new AbortController(),
        expiresAt: Date.now() + this.options.leaseMs,
        grantedAt: performance.now(),
        timer: undefined,
        started: false,
        result: undefined,
        finished: false,
        lost: null,
        timeoutMs,
        limitTimer: undefined,
        timedOut: null,
      };
      this.counts.leased++;
      this.held.set(key, held);
      this.wait(held);
      this.scheduleHeartbeat(held);
      if (timeoutMs !== undefined)
        held.limitTimer = setTimeout(() => this.waitedTooLong(held), timeoutMs * BUFFERED_START_SHARE);
    }
    this.pump();
  }

  /**
   * Queues a granted task for a slot, earliest deadline first (ties by id):
   * grants arrive from several requests (leases, settles) in any order.
   */
  private wait(held: Held): void {
    const { deadline } = held.lease.task;
    const id = held.lease.taskId;
    let lo = 0;
    let hi = this.waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = this.waiting[mid]!.lease;
      const before =
        other.task.deadline < deadline || (other.task.deadline === deadline && other.taskId <= id);
      if (before) lo = mid + 1;
      else hi = mid;
    }
    this.waiting.splice(lo, 0, held);
  }

  /**
   * Starts waiting tasks while there are free slots, releasing those that
   * waited too long for one; once stopping, releases every waiting task.
   */
  private pump(): void {
    while (
      this.waiting.length > 0 &&
      (this.mode !== Mode.RUNNING || this.runningCount < this.options.concurrency)
    ) {
      const held = this.waiting.shift()!;
      // Lost or released while it waited (dropped already).
      if (held.lost !== null || held.finished) continue;
      if (this.mode !== Mode.RUNNING) this.release(held, "stopping");
      else if (this.startsTooLate(held)) this.release(held, "waitedTooLong");
      else this.start(held);
    }
  }

  /** Whether `held` waited for a slot for BUFFERED_START_SHARE of its run time limit. */
  private startsTooLate(held: Held): boolean {
    return (
      held.timeoutMs !== undefined &&
      performance.now() - held.grantedAt >= held.timeoutMs * BUFFERED_START_SHARE
    );
  }

  private start(held: Held): void {
    held.started = true;
    const { timeoutMs } = held;
    if (timeoutMs !== undefined) {
      // From here the timer is the limit itself, still counted from the grant.
      clearTimeout(held.limitTimer);
      const left = Math.max(0, held.grantedAt + timeoutMs - performance.now());
      held.limitTimer = setTimeout(() => this.timeOut(held), left);
    }
    this.runningCount++;
    this.track(
      this.execute(held).finally(() => {
        this.runningCount--;
        this.prefetch.finished();
        this.held.delete(held.key);
        this.pump();
        // A slot left idle although the cluster had more: the prefetch is too small for the pace.
        if (this.runningCount < this.options.concurrency && this.waiting.length === 0 && this.clusterHadMore)
          this.prefetch.starved();
        this.roomFreed?.();
      }),
    );
  }

  private track(p: Promise<void>): void {
    this.work.add(p);
    void p.finally(() => this.work.delete(p));
  }

  private async execute(held: Held): Promise<void> {
    const { lease } = held;
    this.emit({ type: "task:started", lease });
    let failure: { error: unknown } | null = null;
    try {
      held.result = await this.handler(lease.task, {
        lease,
        attempt: lease.attempt,
        type: lease.task.type ?? DEFAULT_TASK_TYPE,
        signal: held.controller.signal,
        timeoutMs: held.timeoutMs,
        results: resultsByTask(lease),
        resultsOmitted: lease.resultsOmitted ?? 0,
      });
      // Checked here, alone: a result the wire refuses would fail the whole settle it went in.
      if (held.result !== undefined) checkResult(lease, held.result);
    } catch (error) {
      failure = { error };
    } finally {
      held.finished = true;
      clearTimeout(held.timer);
      clearTimeout(held.limitTimer);
    }
    if (held.timedOut !== null) return; // failed when the limit passed: the outcome is moot
    if (held.lost !== null) return this.lose(held, held.lost);
    if (failure === null) return this.queueComplete(held);
    // Failures are rare: each goes alone (to the granting shard when known), in the background.
    this.track(this.failTask(held, failure.error));
  }

  private async failTask(held: Held, error: unknown): Promise<void> {
    const { lease } = held;
    try {
      const { state } = await this.client.fail(lease, {
        retryable: !(error instanceof TaskError && !error.retryable),
        reason: reasonOf(error),
      });
      this.counts.failed++;
      this.emit({ type: "task:failed", lease, error, state });
    } catch (err) {
      this.settleError(held, "fail", err);
    }
  }

  // ---------------------------------------------------------------- completes

  private queueComplete(held: Held, destination = held.shardId ?? VIA_COORDINATOR): void {
    let queue = this.settles.get(destination);
    if (queue === undefined) {
      queue = { items: [], sending: 0, scheduled: false, lastShortGrant: undefined };
      this.settles.set(destination, queue);
    }
    queue.items.push(held);
    if (queue.sending >= SETTLES_IN_FLIGHT || queue.scheduled) return;
    queue.scheduled = true;
    // The next turn: the completes of handlers that settle in this one go in the same request.
    const q = queue;
    this.track(
      new Promise<void>((resolve) =>
        setImmediate(() => {
          q.scheduled = false;
          resolve(this.sendSettle(destination, q));
        }),
      ),
    );
  }

  /**
   * Sends what is queued for `destination` (up to MAX_SETTLES_PER_REQUEST),
   * asking a shard for as many next leases as there is room; then, what
   * queued meanwhile.
   */
  private async sendSettle(destination: string, queue: SettleQueue): Promise<void> {
    while (queue.sending < SETTLES_IN_FLIGHT && queue.items.length > 0) {
      const items = queue.items.splice(0, MAX_SETTLES_PER_REQUEST);
      const completes: CompletedLease[] = items.map(({ lease, result }) =>
        result === undefined ? refOf(lease) : { ...refOf(lease), result },
      );
      const shardId = destination === VIA_COORDINATOR ? undefined : destination;
      const room = shardId !== undefined && this.mode === Mode.RUNNING ? Math.max(0, this.room()) : 0;
      const ask = queue.lastShortGrant === undefined ? room : Math.min(room, queue.lastShortGrant * 2 + 1);
      const { owner, leaseMs, types } = this.options;
      queue.sending++;
      this.settleAsks += ask;
      let reply: ResultOf<"settle"> | undefined;
      const sentAt = performance.now();
      try {
        reply = await this.channel.settle(
          shardId,
          completes,
          ask > 0
            ? { owner, max: ask, leaseMs, requestId: randomUUID(), ...(types === undefined ? {} : { types }) }
            : undefined,
          () => this.mode === Mode.RUNNING,
        );
      } catch (err) {
        for (const held of items) this.settleError(held, "complete", err);
      } finally {
        this.settleAsks -= ask;
        queue.sending--;
      }
      if (reply !== undefined) {
        this.prefetch.roundTrip(performance.now() - sentAt);
        if (ask > 0) queue.lastShortGrant = reply.leases.length < ask ? reply.leases.length : undefined;
        items.forEach((held, i) => {
          this.settled(held, reply.results[i], destination);
        });
        this.take(reply.leases);
      }
      this.roomFreed?.();
    }
  }

  private settled(
    held: Held,
    outcome: ResultOf<"settle">["results"][number] | undefined,
    from: string,
  ): void {
    const { lease } = held;
    if (outcome !== undefined && "duplicate" in outcome) {
      this.counts.completed++;
      this.emit({ type: "task:completed", lease, duplicate: outcome.duplicate });
      return;
    }
    const error =
      outcome === undefined
        ? new ProtocolError(WireErrorCode.INTERNAL, "settle: the reply has no outcome for this task")
        : fromWireError(outcome.error);
    // A shard that could not answer for this task, or does not hold it (its slot moved away after
    // an earlier send was applied there, whose reply was lost): once more through a coordinator,
    // which finds it wherever it is (a complete applied before the move is then a duplicate).
    if (from !== VIA_COORDINATOR && (shouldRetry(error) || isUnknownTask(error)))
      this.queueComplete(held, VIA_COORDINATOR);
    else if (
      isSlotMoving(error) &&
      (held.movingRetries ?? 0) < MAX_MOVING_RETRIES &&
      this.mode !== Mode.STOPPED
    ) {
      // The task's slot is between two shards for a moment (docs/cluster.md, "Slot movement"):
      // nothing was applied; the coordinator reaches the new shard once the move is done.
      held.movingRetries = (held.movingRetries ?? 0) + 1;
      const delay = Math.min(1_000, 25 * 2 ** held.movingRetries);
      this.track(
        new Promise<void>((resolve) =>
          setTimeout(() => {
            this.queueComplete(held, VIA_COORDINATOR);
            resolve();
          }, delay).unref(),
        ),
      );
    } else this.settleError(held, "complete", error);
  }

  /** A complete / fail / release that did not go through: the lease was gone (lost), or the cluster is away (error). */
  private settleError(held: Held, during: "complete" | "fail" | "release", err: unknown): void {
    if (isLeaseGone(err)) {
      this.lose(held, this.lostError(held, `${during}: ${messageOf(err)}`, err));
    } else {
      this.emit({ type: "error", during, error: err, lease: held.lease });
    }
  }

  private lose(held: Held, error: LeaseLostError): void {
    this.counts.lost++;
    this.emit({ type: "task:lost", lease: held.lease, error });
  }

  // -------------------------------------------------------- run time limits

  /**
   * The attempt's run time limit passed (armed when the task started): stop
   * heartbeating, abort the handler's signal and fail the task now
   * (retryably), without waiting for a handler that may never return. If the
   * shard timed the attempt out first, the fail is acknowledged as a repeat.
   */
  private timeOut(held: Held): void {
    if (held.finished || held.lost !== null) return;
    const error = new AttemptTimeoutError(held.timeoutMs!);
    held.timedOut = error;
    clearTimeout(held.timer);
    held.controller.abort(error);
    this.track(this.failTask(held, error));
  }

  /** A task still waiting for a slot at BUFFERED_START_SHARE of its limit: released, not run. */
  private waitedTooLong(held: Held): void {
    if (held.started || held.finished || held.lost !== null) return;
    const at = this.waiting.indexOf(held);
    if (at >= 0) this.waiting.splice(at, 1);
    this.release(held, "waitedTooLong");
  }

  // ----------------------------------------------------------------- release

  /**
   * Hands back a lease whose task never started (taken off `waiting` by the
   * caller): no heartbeat from now, its room freed at once; the release goes
   * out in the background (stopping waits for it). The cluster answers it
   * as a duplicate if resent; a lease already gone (expired, cancelled) is
   * reported lost; an error otherwise (the lease then expires as a dead
   * worker's would: nothing is lost, the attempt is spent).
   */
  private release(held: Held, reason: ReleaseReason): void {
    held.finished = true;
    clearTimeout(held.timer);
    clearTimeout(held.limitTimer);
    this.held.delete(held.key);
    // The buffer outran the slots: hold less (an adaptive prefetch; a fixed one stays).
    if (reason === "waitedTooLong") this.prefetch.overheld();
    this.roomFreed?.();
    this.track(this.sendRelease(held, reason));
  }

  private async sendRelease(held: Held, reason: ReleaseReason): Promise<void> {
    try {
      await this.client.release(held.lease);
      this.counts.released++;
      this.emit({ type: "task:released", lease: held.lease, reason });
    } catch (err) {
      this.settleError(held, "release", err);
    }
  }

  // --------------------------------------------------------------- heartbeats

  private scheduleHeartbeat(held: Held): void {
    held.timer = setTimeout(() => this.track(this.heartbeat(held)), this.options.heartbeatMs);
  }

  private async heartbeat(held: Held): Promise<void> {
    const { leaseMs } = this.options;
    for (let attempt = 1; ; attempt++) {
      if (held.finished || held.lost !== null || held.timedOut !== null) return;
      const remaining = held.expiresAt - Date.now();
      if (remaining <= 0) return this.markLost(held, "no heartbeat succeeded before the lease ran out", null);
      // One attempt per call (the retries are here), so a success extends the estimate from when
      // that attempt was sent: after a lost reply, the retry that got through is what the shard
      // extended from, not the first attempt.
      const sentAt = Date.now();
      try {
        // Retrying past the lease's end is pointless: by then someone else may hold the task.
        // Each attempt waits at most a third of what is left, so a lost reply leaves time for
        // two more attempts before the lease ends (a request timeout as long as the lease would
        // let one lost reply lose the lease).
        await this.client.heartbeat(held.lease, {
          leaseMs,
          signal: AbortSignal.timeout(remaining),
          timeoutMs: heartbeatAttemptTimeout(remaining, this.requestTimeoutMs),
          retry: { attempts: 1 },
        });
        held.expiresAt = sentAt + leaseMs;
        break;
      } catch (err) {
        if (held.finished) return;
        if (isLeaseGone(err)) return this.markLost(held, `heartbeat: ${messageOf(err)}`, err);
        if (Date.now() >= held.expiresAt) {
          return this.markLost(held, "no heartbeat succeeded before the lease ran out", err);
        }
        if (shouldRetry(err) && attempt < this.retry.attempts) {
          const wait = Math.min(backoffDelay(this.retry, attempt, Math.random), held.expiresAt - Date.now());
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
          continue;
        }
        this.emit({ type: "error", during: "heartbeat", error: err, lease: held.lease });
        break;
      }
    }
    if (!held.finished && held.lost === null && held.timedOut === null) this.scheduleHeartbeat(held);
  }

  private markLost(held: Held, why: string, cause: unknown): void {
    if (held.timedOut !== null) return; // failed already, as timed out
    held.lost = this.lostError(held, why, cause);
    clearTimeout(held.limitTimer);
    held.controller.abort(held.lost);
    if (!held.started) {
      // Never started: dropped now (the lease is gone, so is the room it took).
      clearTimeout(held.timer);
      this.held.delete(held.key);
      this.lose(held, held.lost);
      this.roomFreed?.();
    }
  }

  private lostError(held: Held, why: string, cause: unknown): LeaseLostError {
    const { taskId, token } = held.lease;
    return new LeaseLostError(
      taskId,
      token,
      `lease of task ${JSON.stringify(taskId)} (token ${token}) lost: ${why}`,
      cause === null ? undefined : { cause },
    );
  }

  private emit(event: WorkerEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener must not break the worker.
      }
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Sends of one complete through a coordinator that a moving slot may answer SLOT_MOVING (about 10 s in all). */
const MAX_MOVING_RETRIES = 14;

function isUnknownTask(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "UNKNOWN_TASK";
}

function isSlotMoving(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "SLOT_MOVING";
}

/** A lease's prerequisites' results by task id, in an object without prototype (ids such as `__proto__` are plain keys). */
function resultsByTask(lease: Lease): Readonly<Record<string, unknown>> {
  const byTask: Record<string, unknown> = Object.create(null);
  for (const { taskId, result } of lease.results ?? []) byTask[taskId] = result;
  return byTask;
}

/**
 * Throws a non-retryable TaskError when the complete carrying `result` would
 * be refused (above MAX_RESULT_BYTES, nested too deep, not encodable): the
 * handler would return the same on a retry.
 */
function checkResult(lease: Lease, result: unknown): void {
  try {
    encodeRequest({ op: "complete", ...refOf(lease), result });
  } catch (err) {
    throw new TaskError(
      `the handler's result cannot be sent: ${err instanceof Error ? err.message : String(err)}`,
      {
        retryable: false,
        cause: err,
      },
    );
  }
}

/** The failure reason sent with `fail`: the error's message, clipped to what the wire takes. */
export function reasonOf(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : `non-error thrown: ${String(err)}`;
  if (text.length <= MAX_REASON_LENGTH) return text;
  let cut = MAX_REASON_LENGTH - 1;
  // Never split a surrogate pair: ids and reasons must be well-formed UTF-16 on the wire.
  if (/[\uD800-\uDBFF]/.test(text.charAt(cut - 1))) cut--;
  return `${text.slice(0, cut)}…`;
}

/** Shortest wait for one heartbeat attempt, ms: below it even a healthy round trip may not make it. */
export const MIN_HEARTBEAT_ATTEMPT_MS = 50;

/** How long one heartbeat attempt waits for its reply, with `remainingMs` of the lease left. */
export function heartbeatAttemptTimeout(remainingMs: number, requestTimeoutMs: number): number {
  return Math.max(MIN_HEARTBEAT_ATTEMPT_MS, Math.min(requestTimeoutMs, Math.floor(remainingMs / 3)));
}
