/**
 * `work()`: lease tasks, run a handler per task, keep the leases alive, and
 * complete or fail each task by its handler's outcome.
 *
 * Modes of a worker (changed only in `setMode`):
 *
 *   RUNNING  --stop() / options.signal / a fatal lease error-->  STOPPING
 *   STOPPING --the last handler settled-->                        STOPPED
 *
 * RUNNING: one lease request at a time, for as many tasks as there are free
 *   slots (`concurrency` − running), long-polling `waitMs` when nothing is
 *   runnable. With no free slot it waits for a handler to finish: it never
 *   holds a lease it has no slot for.
 * STOPPING: no new lease request. A lease request already on the wire is
 *   awaited and what it grants is run (a grant cannot be handed back without
 *   spending an attempt), so stopping takes up to `waitMs` plus the running
 *   handlers. `stop({ abortInFlight: true })` also aborts the handlers' signals.
 *
 * Per task: heartbeat every `heartbeatMs`. A heartbeat that says the lease is
 * gone (STALE_LEASE, UNKNOWN_TASK, INVALID_STATE: expired, re-leased,
 * cancelled) or none that succeeded before the lease ran out marks the task
 * lost: its signal aborts with a `LeaseLostError`, and its outcome is dropped
 * (another worker may own it now; the fencing token would refuse us anyway).
 */
import { randomUUID } from "node:crypto";
import { backoffDelay, type Lease, type Task, type TaskState } from "@frontier/core";
import { MAX_REASON_LENGTH } from "@frontier/protocol";
import type { FrontierClient } from "./client.js";
import { isLeaseGone, shouldRetry } from "./client.js";
import { ClientError, ClientErrorCode, LeaseLostError, TaskError } from "./errors.js";
import { type FilledWorkOptions, fillWorkOptions, type RetryPolicy, type WorkOptions } from "./options.js";

export interface TaskContext {
  /** The lease as granted (its token fences every call about the task). */
  readonly lease: Lease;
  /** 1 for the task's first lease. */
  readonly attempt: number;
  /**
   * Aborted when the lease is lost (reason: `LeaseLostError`) or when the
   * worker stops with `abortInFlight`. A handler should stop soon after.
   */
  readonly signal: AbortSignal;
}

/**
 * Runs one task. Resolving completes the task; throwing (or rejecting) fails
 * it, retryably unless the error is a `TaskError` with `retryable: false`.
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
  /** A lease request came back empty: nothing was runnable within `waitMs`. */
  | { readonly type: "idle"; readonly running: number }
  | {
      readonly type: "error";
      readonly during: "lease" | "heartbeat" | "complete" | "fail";
      readonly error: unknown;
      readonly lease?: Lease;
    };

export interface WorkerStats {
  readonly leased: number;
  readonly completed: number;
  readonly failed: number;
  readonly lost: number;
}

export interface Worker {
  /** The lease owner. */
  readonly owner: string;
  /** Handlers running now. */
  readonly running: number;
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

/** One task whose handler runs. */
interface Running {
  readonly lease: Lease;
  readonly controller: AbortController;
  /** Local estimate of the lease's end (our clock): when it was granted or last extended, plus leaseMs. */
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Set once the handler settled: no heartbeat after that. */
  finished: boolean;
  lost: LeaseLostError | null;
}

export class TaskWorker implements Worker {
  readonly owner: string;
  readonly done: Promise<void>;
  private mode: Mode = Mode.RUNNING;
  private readonly options: FilledWorkOptions;
  private readonly listeners = new Set<(event: WorkerEvent) => void>();
  private readonly runs = new Map<string, Promise<void>>();
  private readonly live = new Map<string, Running>();
  /** Aborted on stop: ends an idle wait (backoff, free slot) at once. */
  private readonly stopping = new AbortController();
  private slotFreed: (() => void) | null = null;
  private counts = { leased: 0, completed: 0, failed: 0, lost: 0 };

  constructor(
    private readonly client: FrontierClient,
    private readonly handler: TaskHandler,
    options: WorkOptions,
    private readonly retry: RetryPolicy,
    /** The client's reply timeout of one attempt, ms: heartbeats wait less when the lease runs short. */
    private readonly requestTimeoutMs: number,
  ) {
    this.options = fillWorkOptions(options, client.name);
    this.owner = this.options.owner;
    const signal = this.options.signal;
    const onAbort = () => void this.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.done = this.run().finally(() => signal?.removeEventListener("abort", onAbort));
    // Nobody has to await `done`; an error that stopped the worker is still reported there.
    this.done.catch(() => {});
    if (signal?.aborted) void this.stop();
  }

  get running(): number {
    return this.live.size;
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
      for (const run of this.live.values()) {
        run.controller.abort(new ClientError(ClientErrorCode.CLOSED, "the worker is stopping"));
      }
    }
    await this.done.catch(() => {});
  }

  private setMode(mode: Mode): void {
    this.mode = mode;
    if (mode === Mode.STOPPING) {
      this.stopping.abort();
      this.slotFreed?.();
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
    while (this.runs.size > 0) await Promise.allSettled([...this.runs.values()]);
    this.setMode(Mode.STOPPED);
    if (fatal !== null) throw fatal;
  }

  private async leaseLoop(): Promise<void> {
    const { concurrency, leaseMs, waitMs, owner } = this.options;
    // Kept until a reply arrives: a retry after a timeout gets the grant the first attempt may have made
    // (the client goes on numbering the sends under it, so the retry is a resend to the cluster).
    let requestId: string | null = null;
    let failures = 0;
    while (this.mode === Mode.RUNNING) {
      if (this.live.size >= concurrency) {
        await new Promise<void>((resolve) => {
          this.slotFreed = resolve;
        });
        this.slotFreed = null;
        continue;
      }
      requestId ??= randomUUID();
      let leases: readonly Lease[];
      try {
        leases = await this.client.lease({
          max: concurrency - this.live.size,
          leaseMs,
          waitMs,
          owner,
          requestId,
        });
        requestId = null;
        failures = 0;
      } catch (err) {
        // Not retryable (a bad option, a protocol mismatch): stop and report it through `done`.
        if (!shouldRetry(err)) throw err;
        // Retryable, and the client's own retries ran out: the cluster is away. Keep trying, slower.
        this.emit({ type: "error", during: "lease", error: err });
        failures++;
        await this.idle(backoffDelay(this.retry, failures + this.retry.attempts, Math.random));
        continue;
      }
      for (const lease of leases) this.start(lease);
      if (leases.length === 0) {
        this.emit({ type: "idle", running: this.live.size });
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

  private start(lease: Lease): void {
    const key = `${lease.taskId}\u0000${lease.token}`;
    const run: Running = {
      lease,
      controller: new AbortController(),
      expiresAt: Date.now() + this.options.leaseMs,
      timer: undefined,
      finished: false,
      lost: null,
    };
    this.counts.leased++;
    this.live.set(key, run);
    const settled = this.execute(run).finally(() => {
      this.live.delete(key);
      this.runs.delete(key);
      this.slotFreed?.();
    });
    this.runs.set(key, settled);
  }

  private async execute(run: Running): Promise<void> {
    const { lease } = run;
    this.emit({ type: "task:started", lease });
    this.scheduleHeartbeat(run);
    let failure: { error: unknown } | null = null;
    try {
      await this.handler(lease.task, { lease, attempt: lease.attempt, signal: run.controller.signal });
    } catch (error) {
      failure = { error };
    } finally {
      run.finished = true;
      clearTimeout(run.timer);
    }
    if (run.lost !== null) return this.lose(run, run.lost);
    if (failure === null) {
      try {
        const { duplicate } = await this.client.complete(lease);
        this.counts.completed++;
        this.emit({ type: "task:completed", lease, duplicate });
      } catch (err) {
        this.settleError(run, "complete", err);
      }
      return;
    }
    const { error } = failure;
    try {
      const { state } = await this.client.fail(lease, {
        retryable: !(error instanceof TaskError && !error.retryable),
        reason: reasonOf(error),
      });
      this.counts.failed++;
      this.emit({ type: "task:failed", lease, error, state });
    } catch (err) {
      this.settleError(run, "fail", err);
    }
  }

  /** A complete / fail that did not go through: the lease was gone (lost), or the cluster is away (error). */
  private settleError(run: Running, during: "complete" | "fail", err: unknown): void {
    if (isLeaseGone(err)) {
      this.lose(run, this.lostError(run, `${during}: ${messageOf(err)}`, err));
    } else {
      this.emit({ type: "error", during, error: err, lease: run.lease });
    }
  }

  private lose(run: Running, error: LeaseLostError): void {
    this.counts.lost++;
    this.emit({ type: "task:lost", lease: run.lease, error });
  }

  private scheduleHeartbeat(run: Running): void {
    run.timer = setTimeout(() => void this.heartbeat(run), this.options.heartbeatMs);
  }

  private async heartbeat(run: Running): Promise<void> {
    const { leaseMs } = this.options;
    for (let attempt = 1; ; attempt++) {
      if (run.finished || run.lost !== null) return;
      const remaining = run.expiresAt - Date.now();
      if (remaining <= 0) return this.markLost(run, "no heartbeat succeeded before the lease ran out", null);
      // One attempt per call (the retries are here), so a success extends the estimate from when
      // that attempt was sent: after a lost reply, the retry that got through is what the shard
      // extended from, not the first attempt.
      const sentAt = Date.now();
      try {
        // Retrying past the lease's end is pointless: by then someone else may hold the task.
        // Each attempt waits at most a third of what is left, so a lost reply leaves time for
        // two more attempts before the lease ends (a request timeout as long as the lease would
        // let one lost reply lose the lease).
        await this.client.heartbeat(run.lease, {
          leaseMs,
          signal: AbortSignal.timeout(remaining),
          timeoutMs: heartbeatAttemptTimeout(remaining, this.requestTimeoutMs),
          retry: { attempts: 1 },
        });
        run.expiresAt = sentAt + leaseMs;
        break;
      } catch (err) {
        if (run.finished) return;
        if (isLeaseGone(err)) return this.markLost(run, `heartbeat: ${messageOf(err)}`, err);
        if (Date.now() >= run.expiresAt) {
          return this.markLost(run, "no heartbeat succeeded before the lease ran out", err);
        }
        if (shouldRetry(err) && attempt < this.retry.attempts) {
          const wait = Math.min(backoffDelay(this.retry, attempt, Math.random), run.expiresAt - Date.now());
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
          continue;
        }
        this.emit({ type: "error", during: "heartbeat", error: err, lease: run.lease });
        break;
      }
    }
    if (!run.finished && run.lost === null) this.scheduleHeartbeat(run);
  }

  private markLost(run: Running, why: string, cause: unknown): void {
    run.lost = this.lostError(run, why, cause);
    run.controller.abort(run.lost);
  }

  private lostError(run: Running, why: string, cause: unknown): LeaseLostError {
    const { taskId, token } = run.lease;
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
