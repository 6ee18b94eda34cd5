/**
 * The submitter: single tasks in, batches out.
 *
 *          add() ──▶ [ queued ]──take ≤ maxBatch, ≤ BATCH_BYTE_BUDGET──▶ [ in flight: one batch ] ──▶ ack
 *            ▲                                                                                     │
 *            └──────── waits while held ≥ maxPending ◀──── release(batch) ◀───────────────────────┘
 *
 * Invariants:
 * - `held` = tasks queued + tasks in flight + places reserved for woken
 *   waiters, and never exceeds `maxPending`: memory is bounded, and nothing is
 *   ever dropped (a caller over the limit waits, in arrival order).
 * - One batch is in flight at a time and batches leave in the order their
 *   tasks were added, so a task may name as prerequisite any task added
 *   before it.
 * - A batch leaves when it is full (by count or bytes), when `lingerMs` has
 *   passed since its first task, or as soon as the previous batch is
 *   acknowledged (so under load batches fill while the last one travels).
 *
 * A batch is atomic on the cluster, but its tasks come from unrelated
 * callers: when the cluster rejects it (VALIDATION_FAILED), the callers of
 * the tasks it names are rejected with their own problems and the rest go out
 * again, under a derived key, until nothing is left to reject.
 */
import { randomUUID } from "node:crypto";
import { type Problem, type TaskInput, ValidationError } from "@frontier/core";
import { encodeRequest, MAX_MESSAGE_BYTES } from "@frontier/protocol";
import type { FrontierClient } from "./client.js";
import { ClientError, ClientErrorCode } from "./errors.js";
import { type FilledSubmitterOptions, fillSubmitterOptions, type SubmitterOptions } from "./options.js";

/** Bytes a batch's tasks may take, leaving room for the envelope and the key. */
export const BATCH_BYTE_BUDGET = MAX_MESSAGE_BYTES - 4_096;
/** Most times one batch is split and sent again after a rejection before its remaining tasks are rejected too. */
const MAX_SPLIT_ROUNDS = 32;

/** What `add()` resolves with once the task's batch is acknowledged. */
export interface SubmitReceipt {
  readonly taskId: string;
  /** The key of the batch that carried the task. */
  readonly idempotencyKey: string;
  /** True when the batch's key had been seen: the first outcome, replayed. */
  readonly replayed: boolean;
}

export interface SubmitAllResult {
  /** Tasks acknowledged. */
  readonly accepted: number;
  /** Tasks rejected (with the first errors in `errors`). */
  readonly rejected: number;
  /** The first few rejections (at most 100), in the order they happened. */
  readonly errors: readonly { readonly taskId: string; readonly error: unknown }[];
}

export interface Submitter {
  /**
   * Queue one task; resolves when its batch is acknowledged and rejects with
   * the reason it was not (a `ValidationError` naming only this task's
   * problems, a transport error after retries, or a shape error at once).
   * While `maxPending` tasks are held, it waits for room before queueing.
   */
  add(task: TaskInput): Promise<SubmitReceipt>;
  /**
   * Submit a stream of tasks, pulling the next one only when there is room:
   * memory stays bounded however long the source. Resolves when every task
   * is acknowledged or rejected.
   */
  submitAll(tasks: Iterable<TaskInput> | AsyncIterable<TaskInput>): Promise<SubmitAllResult>;
  /** Send what is queued now and wait until everything held so far is settled. */
  flush(): Promise<void>;
  /** Stop taking tasks (`add` rejects with ClientError CLOSED), flush, and wait. Idempotent. */
  close(): Promise<void>;
  /** Tasks held: queued, in flight, or about to be queued. */
  readonly pending: number;
}

interface Entry {
  readonly task: TaskInput;
  readonly bytes: number;
  readonly resolve: (receipt: SubmitReceipt) => void;
  readonly reject: (err: unknown) => void;
}

export class BatchSubmitter implements Submitter {
  private readonly options: FilledSubmitterOptions;
  private queue: Entry[] = [];
  private queuedBytes = 0;
  private held = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private sending: Promise<void> | null = null;
  private linger: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly settledWaiters: (() => void)[] = [];
  private readonly closedListeners: (() => void)[] = [];

  constructor(
    private readonly client: FrontierClient,
    options: SubmitterOptions,
  ) {
    this.options = fillSubmitterOptions(options);
  }

  get pending(): number {
    return this.held;
  }

  async add(task: TaskInput): Promise<SubmitReceipt> {
    this.checkOpen();
    const bytes = sizeOf(task);
    await this.reserve();
    return this.enqueue(task, bytes);
  }

  async submitAll(tasks: Iterable<TaskInput> | AsyncIterable<TaskInput>): Promise<SubmitAllResult> {
    let accepted = 0;
    let rejected = 0;
    const errors: { taskId: string; error: unknown }[] = [];
    const onError = (taskId: string, error: unknown) => {
      rejected++;
      if (errors.length < 100) errors.push({ taskId, error });
    };
    const acks: Promise<void>[] = [];
    const track = (p: Promise<void>) => {
      acks.push(p);
      // Keep the list short: settled acks need no tracking.
      if (acks.length > this.options.maxPending) acks.splice(0, acks.length - this.options.maxPending);
    };
    for await (const task of tasks) {
      this.checkOpen();
      let bytes: number;
      try {
        bytes = sizeOf(task);
      } catch (error) {
        onError(idOf(task), error);
        continue;
      }
      await this.reserve();
      track(
        this.enqueue(task, bytes).then(
          () => {
            accepted++;
          },
          (error: unknown) => onError(task.id, error),
        ),
      );
    }
    await this.flush();
    await Promise.all(acks);
    return { accepted, rejected, errors };
  }

  async flush(): Promise<void> {
    if (this.held === 0) return;
    this.kick();
    await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.flush().finally(() => {
      for (const listener of this.closedListeners) listener();
    });
    return this.closing;
  }

  /** For the client: told once the submitter has closed. */
  onClosed(listener: () => void): void {
    this.closedListeners.push(listener);
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientError(ClientErrorCode.CLOSED, "submitter: closed");
  }

  /** Take one place under maxPending, waiting (in arrival order) while there is none. */
  private async reserve(): Promise<void> {
    if (this.held < this.options.maxPending && this.roomWaiters.length === 0) {
      this.held++;
      return;
    }
    // The waker takes the place on our behalf (see `release`), so nobody can slip in between.
    await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  private release(n: number): void {
    this.held -= n;
    while (this.roomWaiters.length > 0 && this.held < this.options.maxPending) {
      this.held++;
      this.roomWaiters.shift()?.();
    }
    if (this.held === 0) {
      for (const resolve of this.settledWaiters.splice(0)) resolve();
    }
  }

  private enqueue(task: TaskInput, bytes: number): Promise<SubmitReceipt> {
    return new Promise<SubmitReceipt>((resolve, reject) => {
      this.queue.push({ task, bytes, resolve, reject });
      this.queuedBytes += bytes;
      // Full, or someone waits in flush(): no lingering.
      const full = this.queue.length >= this.options.maxBatch || this.queuedBytes >= BATCH_BYTE_BUDGET;
      if (full || this.settledWaiters.length > 0) this.kick();
      else if (this.linger === undefined && this.sending === null) {
        this.linger = setTimeout(() => this.kick(), this.options.lingerMs);
      }
    });
  }

  /** Start sending now, unless a batch is already in flight (the queue goes when it returns). */
  private kick(): void {
    clearTimeout(this.linger);
    this.linger = undefined;
    if (this.sending !== null || this.queue.length === 0) return;
    this.sending = this.drain().finally(() => {
      this.sending = null;
      // Tasks queued after the drain's last look (it saw an empty queue) go now.
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.take();
      await this.send(batch);
      this.release(batch.length);
    }
  }

  /** The next batch: queued tasks in order, up to maxBatch and BATCH_BYTE_BUDGET (always at least one). */
  private take(): Entry[] {
    let n = 0;
    let bytes = 0;
    for (const e of this.queue) {
      if (n >= this.options.maxBatch || (n > 0 && bytes + e.bytes > BATCH_BYTE_BUDGET)) break;
      n++;
      bytes += e.bytes;
    }
    const batch = this.queue.slice(0, n);
    this.queue = this.queue.slice(n);
    this.queuedBytes -= bytes;
    return batch;
  }

  private async send(batch: readonly Entry[]): Promise<void> {
    const key = randomUUID();
    let live = batch;
    for (let round = 0; live.length > 0; round++) {
      const idempotencyKey = round === 0 ? key : `${key}.${round}`;
      try {
        const { replayed } = await this.client.submit(
          live.map((e) => e.task),
          { idempotencyKey },
        );
        for (const e of live) e.resolve({ taskId: e.task.id, idempotencyKey, replayed });
        return;
      } catch (err) {
        const split =
          err instanceof ValidationError && round < MAX_SPLIT_ROUNDS
            ? splitByProblems(live, err.problems)
            : null;
        if (split === null || split.rejected.size === 0) {
          for (const e of live) e.reject(err);
          return;
        }
        for (const [e, problems] of split.rejected) e.reject(new ValidationError(problems));
        live = split.rest;
      }
    }
  }
}

/** The entries a rejection names (with their problems), and the rest. */
function splitByProblems(
  entries: readonly Entry[],
  problems: readonly Problem[],
): { rejected: Map<Entry, Problem[]>; rest: Entry[] } {
  const byId = new Map<string, Entry>();
  for (const e of entries) if (!byId.has(e.task.id)) byId.set(e.task.id, e);
  const rejected = new Map<Entry, Problem[]>();
  for (const p of problems) {
    // "#<index>": a task without a usable id, named by its place in the batch.
    const e = p.taskId.startsWith("#") ? entries[Number(p.taskId.slice(1))] : byId.get(p.taskId);
    if (e === undefined) continue;
    const list = rejected.get(e) ?? [];
    list.push(p);
    rejected.set(e, list);
  }
  return { rejected, rest: entries.filter((e) => !rejected.has(e)) };
}

/**
 * An upper bound of the bytes `task` adds to a batch, after checking its
 * shape as the wire will (so one malformed task is refused at `add` and never
 * sinks a batch of others). Throws the codec's `ProtocolError`.
 */
function sizeOf(task: TaskInput): number {
  return encodeRequest({ op: "submit", tasks: [task], idempotencyKey: "k" }).byteLength;
}

function idOf(task: unknown): string {
  const id = (task as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id : "?";
}
