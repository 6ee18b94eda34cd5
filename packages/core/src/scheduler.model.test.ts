/**
 * Model-based test of the Scheduler.
 *
 * Random command sequences (add batches — valid and invalid, some tasks with a
 * delayed start (notBefore) or a run time limit per attempt (timeoutMs) —, consume, lease,
 * heartbeat, complete, completeTask, fail, release, cancel, updateDeadline, advance the
 * clock, inspect, checkpoint, rebuild) run against the engine and against a
 * deliberately simple reference model: a Map of plain records, linear scans
 * everywhere, and readiness recomputed from scratch after every change (no
 * counters, no heaps, no dependents lists). After every command the engine's
 * snapshot must equal the model's, and the change records seen so far must
 * describe the engine's current state.
 *
 * Checked along the way:
 *   - a dispatched task has every prerequisite met, and is the least
 *     (key, id) runnable task of the types the lease names (the default
 *     type when it names none), key being its deadline capped by the
 *     starvation guard; never one of another type; a hard-deadline task
 *     past its deadline never is;
 *   - a task is never under two live leases, fencing tokens only increase;
 *   - every dependent is unblocked exactly once (counted from the change
 *     records, compared with the model);
 *   - a rejected batch changes nothing (snapshot and change records compared
 *     before and after, on top of the model comparison);
 *   - a rebuilt engine (from the latest snapshot, or from an older one plus
 *     the change records since) equals the original and replaces it, so every
 *     later command checks that it behaves the same from then on;
 *   - the O(1) counts a store's limits read (live tasks, payload bytes held
 *     until a task is dropped) equal the model's, recounted from scratch.
 *
 * Runs: FRONTIER_MODEL_RUNS (default 2400) spread over the variants below;
 * FRONTIER_MODEL_SEED replays a failure.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrontierError, ValidationError } from "./errors.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import type { Change, Snapshot, TaskStatus } from "./types.js";

// ------------------------------------------------------------------ settings

const START = 1_000;
const DEFAULT_MAX_ATTEMPTS = 2;
const DEFAULT_LEASE_MS = 30;
/** Any deterministic size will do: the count must follow the tasks held, whatever it counts. */
const measurePayload = (payload: unknown): number => JSON.stringify(payload).length;
/** Small enough that a lease of a task with two or three results leaves some out. */
const MAX_LEASE_RESULT_BYTES = 100;
const BACKOFF = { baseMs: 10, maxMs: 80, jitter: 0.5 };
/** The injected `random`: jitter is then a fixed fraction, so retry times are predictable. */
const RANDOM = 0.5;
const MAX_COMMANDS = 60;

interface Variant {
  readonly name: string;
  readonly forward: boolean;
  readonly retentionMs: number;
  readonly maxWaitMs: number;
  /** Share of the runs. */
  readonly weight: number;
}

const VARIANTS: readonly Variant[] = [
  { name: "defaults", forward: false, retentionMs: Infinity, maxWaitMs: Infinity, weight: 3 },
  { name: "forward references", forward: true, retentionMs: Infinity, maxWaitMs: Infinity, weight: 3 },
  { name: "retention", forward: false, retentionMs: 25, maxWaitMs: Infinity, weight: 2 },
  { name: "retention 0", forward: true, retentionMs: 0, maxWaitMs: Infinity, weight: 1 },
  { name: "starvation guard", forward: false, retentionMs: Infinity, maxWaitMs: 40, weight: 2 },
  { name: "starvation guard 0", forward: false, retentionMs: Infinity, maxWaitMs: 0, weight: 1 },
  { name: "everything", forward: true, retentionMs: 15, maxWaitMs: 20, weight: 3 },
];

const TOTAL_RUNS = Number(process.env["FRONTIER_MODEL_RUNS"] ?? 2_400);
const SEED =
  process.env["FRONTIER_MODEL_SEED"] === undefined ? undefined : Number(process.env["FRONTIER_MODEL_SEED"]);

// --------------------------------------------------------------------- model

type State = "WAITING" | "RUNNABLE" | "LEASED" | "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";
const STATES: readonly State[] = [
  "WAITING",
  "RUNNABLE",
  "LEASED",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "EXPIRED",
];
const TERMINAL: ReadonlySet<State> = new Set<State>(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);
const ENDED_BADLY: ReadonlySet<State> = new Set<State>(["FAILED", "CANCELLED", "EXPIRED"]);

interface MTask {
  readonly id: string;
  readonly prerequisites: readonly string[];
  readonly maxAttempts: number;
  readonly hard: boolean;
  readonly policy: "cancel" | "continue";
  readonly payload: unknown;
  readonly notBefore: number | undefined;
  readonly timeoutMs: number | undefined;
  /** "default" when the input named none. */
  readonly type: string;
  deadline: number;
  state: State;
  attempts: number;
  token: number;
  owner: string | undefined;
  /** LEASED: expiry (Infinity for consumeTask). */
  leaseExpiresAt: number | undefined;
  /** WAITING in retry backoff: when it ends. */
  retryAt: number | undefined;
  /** WAITING with its prerequisites met, before its notBefore: the notBefore. */
  delayedUntil: number | undefined;
  /** LEASED: when the lease was granted (its run time limit counts from there). */
  leasedAt: number | undefined;
  /** RUNNABLE: since when. */
  runnableSince: number | undefined;
  /** Terminal: when. */
  finishedAt: number | undefined;
  hasReason: boolean;
  /** COMPLETED: the accepted complete's result. */
  result: unknown;
  /** The lease under `token` was released by its holder, and none granted since. */
  released: boolean;
  /** Times it went from waiting on prerequisites to RUNNABLE (must end up 0 or 1). */
  unblocked: number;
}

/** A task as the generator built it, with what the model needs to know about it. */
interface BuiltTask {
  readonly input: unknown;
  readonly malformed: boolean;
  readonly id: string;
  readonly deadline: number;
  readonly prerequisites: readonly string[];
  readonly maxAttempts: number;
  readonly hard: boolean;
  readonly policy: "cancel" | "continue";
  readonly payload: unknown;
  readonly notBefore: number | undefined;
  readonly timeoutMs: number | undefined;
  readonly type: string;
}

/** The task types the generator uses ("default" spelled out, or left out). */
const TYPES = ["default", "img", "mail"] as const;

type Outcome<T> = { ok: T } | { error: string; problems?: string[] };

interface LeaseLite {
  taskId: string;
  owner: string;
  token: number;
  expiresAt: number;
  attempt: number;
}

/**
 * The reference model. Every rule is written the plain way: a timer is a
 * field of the task, "due timers" is a scan for the least (time, id), a
 * prerequisite is met when the task it names is there and COMPLETED (or ended
 * badly, under "continue"), and after every change every waiting task is
 * re-examined until nothing moves.
 */
class Model {
  readonly tasks = new Map<string, MTask>();
  lastNow = Number.NEGATIVE_INFINITY;
  tokenSeq = 0;
  leaseTimeouts = 0;
  attemptTimeouts = 0;
  deadlineMisses = 0;
  staleRejections = 0;
  retries = 0;
  /** Ids handed out so far are t0 .. t(nextId-1). */
  nextId = 0;
  readonly everIds: string[] = [];

  constructor(
    readonly v: Variant,
    private readonly clock: { now: number },
  ) {}

  // -- time

  /** What every engine call does first: read the clock, run due timers, forget expired terminal tasks. */
  advance(): number {
    const now = Math.max(this.lastNow, this.clock.now);
    this.lastNow = now;
    for (;;) {
      let due: MTask | undefined;
      let dueAt = 0;
      for (const t of this.tasks.values()) {
        const at = this.timerOf(t);
        if (at === undefined || at > now) continue;
        if (due === undefined || at < dueAt || (at === dueAt && t.id < due.id)) {
          due = t;
          dueAt = at;
        }
      }
      if (due === undefined) break;
      this.fire(due, now);
    }
    if (this.v.retentionMs !== Infinity) {
      for (const t of [...this.tasks.values()]) {
        if (
          TERMINAL.has(t.state) &&
          t.finishedAt! + this.v.retentionMs <= now &&
          !this.hasLiveDependent(t.id)
        ) {
          this.tasks.delete(t.id);
        }
      }
    }
    return now;
  }

  private timerOf(t: MTask): number | undefined {
    switch (t.state) {
      case "LEASED":
        return t.leaseExpiresAt === Infinity ? undefined : t.leaseExpiresAt;
      case "WAITING":
        return t.retryAt ?? t.delayedUntil;
      case "RUNNABLE":
        return t.hard ? t.deadline : undefined;
      default:
        return undefined;
    }
  }

  private fire(t: MTask, now: number): void {
    if (t.state === "LEASED" && t.timeoutMs !== undefined && t.leaseExpiresAt! >= t.leasedAt! + t.timeoutMs) {
      // The run time limit: a failed attempt, retried after a backoff.
      this.attemptTimeouts++;
      t.hasReason = true;
      if (t.attempts >= t.maxAttempts) {
        this.finish(t, "FAILED", now);
      } else {
        this.retries++;
        this.backOff(t, now);
      }
    } else if (t.state === "LEASED") {
      this.leaseTimeouts++;
      t.hasReason = true;
      t.leaseExpiresAt = undefined;
      t.leasedAt = undefined;
      if (t.attempts >= t.maxAttempts) this.finish(t, "FAILED", now);
      else this.makeRunnable(t, now);
    } else if (t.state === "WAITING") {
      const delayed = t.delayedUntil !== undefined;
      t.retryAt = undefined;
      t.delayedUntil = undefined;
      this.makeRunnable(t, now);
      // makeRunnable may have moved it (a cast: the narrowing above cannot see that).
      if (delayed && (t.state as State) === "RUNNABLE") t.unblocked++;
    } else {
      this.expire(t, now); // RUNNABLE past its hard deadline
    }
    this.settle(now);
  }

  // -- readiness

  private isBlocked(t: MTask): boolean {
    return t.state === "WAITING" && t.retryAt === undefined && t.delayedUntil === undefined;
  }

  /** "doomed" when a prerequisite ended badly under the "cancel" policy. */
  private readiness(t: MTask): "ready" | "waiting" | "doomed" {
    let ready = true;
    for (const p of t.prerequisites) {
      const pt = this.tasks.get(p);
      if (pt === undefined || !TERMINAL.has(pt.state)) ready = false;
      else if (ENDED_BADLY.has(pt.state) && t.policy === "cancel") return "doomed";
    }
    return ready ? "ready" : "waiting";
  }

  prerequisitesMet(id: string): boolean {
    const t = this.tasks.get(id);
    if (t === undefined) return false;
    return t.prerequisites.every((p) => {
      const pt = this.tasks.get(p);
      if (pt === undefined) return false;
      return pt.state === "COMPLETED" || (ENDED_BADLY.has(pt.state) && t.policy === "continue");
    });
  }

  unmetOf(t: MTask): number {
    if (!this.isBlocked(t)) return 0;
    return t.prerequisites.filter((p) => {
      const pt = this.tasks.get(p);
      return pt === undefined || !TERMINAL.has(pt.state);
    }).length;
  }

  private hasLiveDependent(id: string): boolean {
    for (const t of this.tasks.values())
      if (!TERMINAL.has(t.state) && t.prerequisites.includes(id)) return true;
    return false;
  }

  /** Re-examines every waiting task until nothing changes. */
  private settle(now: number): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const t of this.tasks.values()) {
        if (!this.isBlocked(t)) continue;
        const r = this.readiness(t);
        if (r === "waiting") continue;
        changed = true;
        if (r === "doomed") {
          this.finish(t, "CANCELLED", now);
        } else {
          this.makeRunnable(t, now);
          if (t.state === "RUNNABLE") t.unblocked++;
        }
      }
    }
  }

  private makeRunnable(t: MTask, now: number): void {
    if (t.hard && t.deadline <= now) {
      this.expire(t, now);
      return;
    }
    if (t.notBefore !== undefined && t.notBefore > now) {
      t.delayedUntil = t.notBefore;
      return;
    }
    t.state = "RUNNABLE";
    t.runnableSince = now;
  }

  private backOff(t: MTask, now: number): void {
    t.state = "WAITING";
    t.leaseExpiresAt = undefined;
    t.leasedAt = undefined;
    const delay = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** (t.attempts - 1));
    t.retryAt = now + Math.round(delay * (1 - BACKOFF.jitter * RANDOM));
  }

  private expire(t: MTask, now: number): void {
    this.deadlineMisses++;
    this.finish(t, "EXPIRED", now);
  }

  private finish(t: MTask, state: State, now: number): void {
    t.state = state;
    t.finishedAt = now;
    t.leaseExpiresAt = undefined;
    t.leasedAt = undefined;
    t.retryAt = undefined;
    t.delayedUntil = undefined;
    t.runnableSince = undefined;
    t.hasReason = state !== "COMPLETED";
  }

  // -- dispatch order

  /**
   * The deadline, capped by the starvation guard at the moment the task's
   * wait runs out. The cap applies from the moment the task becomes runnable,
   * as the engine does (scheduler.test.ts pins it). The literal reading of the
   * issue would apply it only once the wait has run out:
   * `due <= lastNow ? Math.min(t.deadline, due) : t.deadline`.
   */
  keyOf(t: MTask): number {
    return Math.min(t.deadline, t.runnableSince! + this.v.maxWaitMs);
  }

  /** The least (key, id) runnable task of `types` (absent: any type), by a scan. */
  frontier(types?: readonly string[]): MTask | undefined {
    let best: MTask | undefined;
    for (const t of this.tasks.values()) {
      if (t.state !== "RUNNABLE") continue;
      if (types !== undefined && !types.includes(t.type)) continue;
      if (best === undefined) {
        best = t;
        continue;
      }
      const k = this.keyOf(t);
      const bk = this.keyOf(best);
      if (k < bk || (k === bk && t.id < best.id)) best = t;
    }
    return best;
  }

  private grant(t: MTask, owner: string | undefined, expiresAt: number, now: number): void {
    // Never two live leases: only a RUNNABLE task can be granted.
    same(t.state, "RUNNABLE");
    same(this.prerequisitesMet(t.id), true);
    t.state = "LEASED";
    t.attempts++;
    t.token = ++this.tokenSeq;
    t.owner = owner;
    t.released = false;
    t.leasedAt = now;
    t.leaseExpiresAt = t.timeoutMs === undefined ? expiresAt : Math.min(expiresAt, now + t.timeoutMs);
    t.runnableSince = undefined;
    if (now >= t.deadline) this.deadlineMisses++;
  }

  private isLive(t: MTask, token: number): boolean {
    return t.state === "LEASED" && t.token === token;
  }

  // -- validation

  /** The problem codes a batch deserves (empty: accepted). */
  problemsOf(batch: readonly BuiltTask[]): Set<string> {
    const codes = new Set<string>();
    const accepted: BuiltTask[] = [];
    const ids = new Set<string>();
    for (const b of batch) {
      if (b.malformed) {
        codes.add("MALFORMED");
      } else if (ids.has(b.id) || this.tasks.has(b.id)) {
        codes.add("DUPLICATE_ID");
      } else {
        ids.add(b.id);
        accepted.push(b);
      }
    }
    for (const b of accepted) {
      for (const p of b.prerequisites) {
        if (p === b.id) codes.add("SELF_DEPENDENCY");
        else if (!ids.has(p) && !this.tasks.has(p) && !this.v.forward) codes.add("UNKNOWN_PREREQUISITE");
      }
    }
    if (this.closesCycle(accepted)) codes.add("CYCLE");
    return codes;
  }

  /**
   * Nodes: the batch and every live task; edges: each listed prerequisite.
   * Peel off nodes none of whose prerequisites remain; a cycle is what is left.
   */
  private closesCycle(accepted: readonly BuiltTask[]): boolean {
    const prerequisitesOf = new Map<string, readonly string[]>();
    for (const t of this.tasks.values())
      if (!TERMINAL.has(t.state)) prerequisitesOf.set(t.id, t.prerequisites);
    for (const b of accepted)
      prerequisitesOf.set(
        b.id,
        b.prerequisites.filter((p) => p !== b.id),
      );
    const left = new Set(prerequisitesOf.keys());
    for (let peeled = true; peeled; ) {
      peeled = false;
      for (const id of left) {
        if (!prerequisitesOf.get(id)!.some((p) => left.has(p))) {
          left.delete(id);
          peeled = true;
        }
      }
    }
    return left.size > 0;
  }

  // -- the API

  add(batch: readonly BuiltTask[]): Outcome<number> {
    const now = this.advance();
    const problems = this.problemsOf(batch);
    if (problems.size > 0) return { error: "VALIDATION_FAILED", problems: [...problems].sort() };
    for (const b of batch) {
      this.tasks.set(b.id, {
        id: b.id,
        prerequisites: b.prerequisites,
        maxAttempts: b.maxAttempts,
        hard: b.hard,
        policy: b.policy,
        payload: b.payload,
        notBefore: b.notBefore,
        timeoutMs: b.timeoutMs,
        type: b.type,
        deadline: b.deadline,
        state: "WAITING",
        attempts: 0,
        token: 0,
        owner: undefined,
        leaseExpiresAt: undefined,
        leasedAt: undefined,
        retryAt: undefined,
        delayedUntil: undefined,
        runnableSince: undefined,
        finishedAt: undefined,
        hasReason: false,
        result: undefined,
        released: false,
        unblocked: 0,
      });
    }
    this.settle(now);
    return { ok: batch.length };
  }

  consume(): Outcome<string | null> {
    const now = this.advance();
    const t = this.frontier(["default"]);
    if (t === undefined) return { ok: null };
    this.grant(t, undefined, Infinity, now);
    return { ok: t.id };
  }

  lease(
    owner: string,
    max: number,
    leaseMs: number,
    maxKey: number,
    types: readonly string[] | undefined,
  ): Outcome<LeaseLite[]> {
    if (owner === "" || max < 1) return { error: "INVALID_ARGUMENT" };
    if (types?.some((type) => !/^[A-Za-z0-9_.-]{1,64}$/.test(type))) return { error: "INVALID_ARGUMENT" };
    const now = this.advance();
    const out: LeaseLite[] = [];
    while (out.length < max) {
      const t = this.frontier(types ?? ["default"]);
      if (t === undefined || this.keyOf(t) > maxKey) break;
      this.grant(t, owner, now + leaseMs, now);
      out.push({
        taskId: t.id,
        owner,
        token: t.token,
        expiresAt: t.leaseExpiresAt!,
        attempt: t.attempts,
        ...this.resultsFor(t),
      });
    }
    return { ok: out };
  }

  heartbeat(id: string, token: number, leaseMs: number): Outcome<LeaseLite> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    if (!this.isLive(t, token)) {
      this.staleRejections++;
      return { error: "STALE_LEASE" };
    }
    // A consumed task (no owner) keeps its expiry; a lease never outlives its run time limit.
    if (t.owner !== undefined)
      t.leaseExpiresAt = Math.min(now + leaseMs, t.leasedAt! + (t.timeoutMs ?? Infinity));
    return {
      ok: { taskId: id, owner: t.owner ?? "", token, expiresAt: t.leaseExpiresAt!, attempt: t.attempts },
    };
  }

  /**
   * The results a grant of `t` carries: its prerequisites' that have one, in
   * order, each that would pass MAX_LEASE_RESULT_BYTES left out and counted.
   */
  resultsFor(t: MTask): { results?: { taskId: string; result: unknown }[]; resultsOmitted?: number } {
    const results: { taskId: string; result: unknown }[] = [];
    let omitted = 0;
    let bytes = 0;
    for (const p of t.prerequisites) {
      const result = this.tasks.get(p)?.result;
      if (result === undefined) continue;
      const size = measurePayload(result) + 3 * p.length + 24;
      if (bytes + size > MAX_LEASE_RESULT_BYTES) omitted++;
      else {
        bytes += size;
        results.push({ taskId: p, result });
      }
    }
    return {
      ...(results.length > 0 ? { results } : {}),
      ...(omitted > 0 ? { resultsOmitted: omitted } : {}),
    };
  }

  complete(id: string, token: number, result: unknown): Outcome<{ duplicate: boolean }> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    // A repeat keeps the first result.
    if (t.state === "COMPLETED" && t.token === token) return { ok: { duplicate: true } };
    if (!this.isLive(t, token)) {
      this.staleRejections++;
      return { error: "STALE_LEASE" };
    }
    t.result = result;
    this.finish(t, "COMPLETED", now);
    this.settle(now);
    return { ok: { duplicate: false } };
  }

  completeTask(id: string): Outcome<undefined> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    if (t.state !== "LEASED") return { error: "INVALID_STATE" };
    this.finish(t, "COMPLETED", now);
    this.settle(now);
    return { ok: undefined };
  }

  fail(id: string, token: number, retryable: boolean): Outcome<State> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    // A repeat of the failure that put it where it is: acknowledged, nothing changes.
    if (t.token === token && (t.state === "FAILED" || (t.state === "WAITING" && t.retryAt !== undefined))) {
      return { ok: t.state };
    }
    if (!this.isLive(t, token)) {
      this.staleRejections++;
      return { error: "STALE_LEASE" };
    }
    if (retryable && t.attempts < t.maxAttempts) {
      this.retries++;
      t.hasReason = true;
      this.backOff(t, now);
    } else {
      this.finish(t, "FAILED", now);
      this.settle(now);
    }
    return { ok: t.state };
  }

  /** As if the lease had never been granted, but for its token (spent) and the released mark. */
  release(id: string, token: number): Outcome<{ duplicate: boolean }> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    if (t.released && t.token === token) return { ok: { duplicate: true } };
    if (!this.isLive(t, token)) {
      this.staleRejections++;
      return { error: "STALE_LEASE" };
    }
    t.attempts--;
    t.released = true;
    t.leaseExpiresAt = undefined;
    t.leasedAt = undefined;
    this.makeRunnable(t, now);
    this.settle(now);
    return { ok: { duplicate: false } };
  }

  cancel(id: string): Outcome<undefined> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    if (t.state === "CANCELLED") return { ok: undefined };
    if (TERMINAL.has(t.state)) return { error: "INVALID_STATE" };
    this.finish(t, "CANCELLED", now);
    this.settle(now);
    return { ok: undefined };
  }

  updateDeadline(id: string, deadline: number): Outcome<undefined> {
    const now = this.advance();
    const t = this.tasks.get(id);
    if (t === undefined) return { error: "UNKNOWN_TASK" };
    if (TERMINAL.has(t.state)) return { error: "INVALID_STATE" };
    t.deadline = deadline;
    if (t.state === "RUNNABLE" && t.hard && deadline <= now) {
      this.expire(t, now);
      this.settle(now);
    }
    return { ok: undefined };
  }

  // -- what the engine should show

  specOf(t: MTask): object {
    return {
      id: t.id,
      prerequisites: t.prerequisites,
      maxAttempts: t.maxAttempts,
      hardDeadline: t.hard,
      onPrerequisiteFailure: t.policy,
      ...(t.payload !== undefined ? { payload: t.payload } : {}),
      ...(t.type !== "default" ? { type: t.type } : {}),
      ...(t.notBefore !== undefined ? { notBefore: t.notBefore } : {}),
      ...(t.timeoutMs !== undefined ? { timeoutMs: t.timeoutMs } : {}),
    };
  }

  statusOf(t: MTask): object {
    return {
      state: t.state,
      deadline: t.deadline,
      attempts: t.attempts,
      token: t.token,
      ...(t.owner !== undefined ? { leaseOwner: t.owner } : {}),
      ...(t.state === "LEASED" ? { leaseExpiresAt: t.leaseExpiresAt } : {}),
      ...(t.state === "LEASED" && t.timeoutMs !== undefined ? { timeoutAt: t.leasedAt! + t.timeoutMs } : {}),
      ...(t.retryAt !== undefined ? { retryAt: t.retryAt } : {}),
      ...(t.state === "RUNNABLE" ? { runnableSince: t.runnableSince } : {}),
      ...(TERMINAL.has(t.state) ? { finishedAt: t.finishedAt } : {}),
      reason: t.hasReason,
      ...(t.result !== undefined ? { result: t.result } : {}),
      ...(t.released ? { released: true } : {}),
    };
  }

  stats(now: number): object {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<State, number>;
    let oldest = Number.POSITIVE_INFINITY;
    for (const t of this.tasks.values()) {
      counts[t.state]++;
      if (t.state === "RUNNABLE") oldest = Math.min(oldest, t.runnableSince!);
    }
    return {
      counts,
      runnable: counts.RUNNABLE,
      oldestRunnableAgeMs: oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, now - oldest),
      frontierDeadline: this.frontier()?.deadline ?? null,
      leaseTimeouts: this.leaseTimeouts,
      attemptTimeouts: this.attemptTimeouts,
      deadlineMisses: this.deadlineMisses,
      staleRejections: this.staleRejections,
      retries: this.retries,
      leased: counts.LEASED,
      types: this.typeCounts(),
    };
  }

  /** Runnable and leased tasks per type, for the types with any, in type order. */
  typeCounts(): object[] {
    const byType = new Map<string, { type: string; runnable: number; leased: number }>();
    for (const t of this.tasks.values()) {
      if (t.state !== "RUNNABLE" && t.state !== "LEASED") continue;
      const c = byType.get(t.type) ?? { type: t.type, runnable: 0, leased: 0 };
      if (t.state === "RUNNABLE") c.runnable++;
      else c.leased++;
      byType.set(t.type, c);
    }
    return [...byType.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  }

  meta(): object {
    return {
      tokenSeq: this.tokenSeq,
      leaseTimeouts: this.leaseTimeouts,
      attemptTimeouts: this.attemptTimeouts,
      deadlineMisses: this.deadlineMisses,
      staleRejections: this.staleRejections,
      retries: this.retries,
    };
  }
}

// ----------------------------------------------------------------- commands

/** Picks are resolved against the model when the command runs (pick % candidates). */
type IdGen = { kind: "fresh" } | { kind: "old"; pick: number } | { kind: "repeat"; pick: number };
type PrereqGen =
  | { kind: "known"; pick: number }
  | { kind: "earlier"; pick: number }
  | { kind: "inBatch"; pick: number }
  | { kind: "future"; pick: number }
  | { kind: "self" }
  | { kind: "unknown" };
type Malform =
  | "id"
  | "deadline"
  | "field"
  | "attempts"
  | "prereqs"
  | "dupPrereq"
  | "hard"
  | "policy"
  | "notBefore"
  | "timeout"
  | "type"
  | "notObject"
  | undefined;
interface TaskGen {
  id: IdGen;
  deadline: number;
  prerequisites: PrereqGen[];
  hard: boolean;
  continueOnFailure: boolean;
  maxAttempts: number | undefined;
  payload: boolean;
  /** Relative to the clock when added. */
  notBefore: number | undefined;
  /** Index into TYPES, or undefined: none named. */
  type: number | undefined;
  timeoutMs: number | undefined;
  malform: Malform;
}
type Target = {
  kind: "leased" | "any" | "completed" | "released" | "unknown";
  pick: number;
  stale: boolean;
};
type Cmd =
  | { op: "add"; tasks: TaskGen[]; single: boolean }
  | { op: "consume" }
  | {
      op: "lease";
      owner: string;
      max: number;
      leaseMs: number;
      maxKey: number | undefined;
      types: readonly string[] | undefined;
    }
  | { op: "heartbeat"; target: Target; leaseMs: number }
  | { op: "complete"; target: Target; result: unknown }
  | { op: "completeTask"; target: Target }
  | { op: "fail"; target: Target; retryable: boolean }
  | { op: "release"; target: Target }
  | { op: "cancel"; target: Target }
  | { op: "updateDeadline"; target: Target; deadline: number }
  | { op: "advance"; ms: number }
  | { op: "inspect" }
  | { op: "checkpoint" }
  | { op: "rebuild"; fromCheckpoint: boolean; pick: number };

const pick = fc.nat({ max: 99 });
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

const idArb: fc.Arbitrary<IdGen> = fc.oneof(
  w(30, fc.constant({ kind: "fresh" as const })),
  w(1, fc.record({ kind: fc.constant("old" as const), pick })),
  w(1, fc.record({ kind: fc.constant("repeat" as const), pick })),
);

const prereqArb: fc.Arbitrary<PrereqGen> = fc.oneof(
  w(12, fc.record({ kind: fc.constant("known" as const), pick })),
  w(8, fc.record({ kind: fc.constant("earlier" as const), pick })),
  w(2, fc.record({ kind: fc.constant("inBatch" as const), pick })),
  w(2, fc.record({ kind: fc.constant("future" as const), pick: fc.nat({ max: 3 }) })),
  w(1, fc.constant({ kind: "self" as const })),
  w(1, fc.constant({ kind: "unknown" as const })),
);

const malformArb: fc.Arbitrary<Malform> = fc.oneof(
  w(40, fc.constant(undefined)),
  w(
    1,
    fc.constantFrom<Malform>(
      "id",
      "deadline",
      "field",
      "attempts",
      "prereqs",
      "dupPrereq",
      "hard",
      "policy",
      "notBefore",
      "timeout",
      "type",
      "notObject",
    ),
  ),
);

const taskArb: fc.Arbitrary<TaskGen> = fc.record({
  id: idArb,
  deadline: fc.integer({ min: -30, max: 120 }),
  prerequisites: fc.array(prereqArb, { maxLength: 3 }),
  hard: fc.oneof(w(4, fc.constant(false)), w(1, fc.constant(true))),
  continueOnFailure: fc.oneof(w(3, fc.constant(false)), w(1, fc.constant(true))),
  maxAttempts: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  payload: fc.oneof(w(5, fc.constant(false)), w(1, fc.constant(true))),
  notBefore: fc.option(fc.integer({ min: -10, max: 80 }), { nil: undefined, freq: 3 }),
  timeoutMs: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined, freq: 3 }),
  type: fc.option(fc.integer({ min: 0, max: TYPES.length - 1 }), { nil: undefined, freq: 2 }),
  malform: malformArb,
});

const targetArb = (leasedWeight: number): fc.Arbitrary<Target> =>
  fc.record({
    kind: fc.oneof(
      w(leasedWeight, fc.constant("leased" as const)),
      w(2, fc.constant("any" as const)),
      w(1, fc.constant("completed" as const)),
      w(1, fc.constant("released" as const)),
      w(1, fc.constant("unknown" as const)),
    ),
    pick,
    stale: fc.oneof(w(8, fc.constant(false)), w(1, fc.constant(true))),
  });

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  w(
    8,
    fc.record({
      op: fc.constant("add" as const),
      tasks: fc.oneof(
        w(4, fc.array(taskArb, { maxLength: 4 })),
        w(1, fc.array(taskArb, { minLength: 5, maxLength: 12 })),
      ),
      single: fc.boolean(),
    }),
  ),
  w(3, fc.constant({ op: "consume" as const })),
  w(
    5,
    fc.record({
      op: fc.constant("lease" as const),
      owner: fc.oneof(w(20, fc.constantFrom("w1", "w2")), w(1, fc.constant(""))),
      max: fc.oneof(w(20, fc.integer({ min: 1, max: 4 })), w(1, fc.constant(0))),
      leaseMs: fc.integer({ min: 1, max: 60 }),
      maxKey: fc.option(fc.integer({ min: -30, max: 120 }), { nil: undefined, freq: 4 }),
      // Absent (the default type only), one or more of TYPES with one unheld, or an invalid name.
      types: fc.oneof(
        w(6, fc.constant(undefined)),
        w(6, fc.subarray(["img", "mail", "default", "unheld"], { minLength: 1 })),
        w(1, fc.constant(["not a type"])),
      ),
    }),
  ),
  w(
    2,
    fc.record({
      op: fc.constant("heartbeat" as const),
      target: targetArb(8),
      leaseMs: fc.integer({ min: 1, max: 60 }),
    }),
  ),
  w(
    5,
    fc.record({
      op: fc.constant("complete" as const),
      target: targetArb(12),
      result: fc.option(fc.oneof(fc.integer(), fc.string({ maxLength: 40 }), fc.constant({ ok: [1, "a"] })), {
        nil: undefined,
      }),
    }),
  ),
  w(2, fc.record({ op: fc.constant("completeTask" as const), target: targetArb(8) })),
  w(3, fc.record({ op: fc.constant("fail" as const), target: targetArb(12), retryable: fc.boolean() })),
  w(3, fc.record({ op: fc.constant("release" as const), target: targetArb(12) })),
  w(2, fc.record({ op: fc.constant("cancel" as const), target: targetArb(2) })),
  w(
    2,
    fc.record({
      op: fc.constant("updateDeadline" as const),
      target: targetArb(2),
      deadline: fc.integer({ min: -30, max: 120 }),
    }),
  ),
  w(
    5,
    fc.record({
      op: fc.constant("advance" as const),
      ms: fc.oneof(w(10, fc.integer({ min: 0, max: 40 })), w(1, fc.integer({ min: 100, max: 300 }))),
    }),
  ),
  w(2, fc.constant({ op: "inspect" as const })),
  w(2, fc.constant({ op: "checkpoint" as const })),
  w(3, fc.record({ op: fc.constant("rebuild" as const), fromCheckpoint: fc.boolean(), pick })),
);

// ------------------------------------------------------------------ harness

/** toEqual, but vitest's diffing machinery runs only on a mismatch (this runs after every command). */
function same(actual: unknown, expected: unknown, label?: string): void {
  if (!isDeepStrictEqual(actual, expected)) expect(actual, label).toEqual(expected);
}

function attempt<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof ValidationError)
      return { error: e.code, problems: [...new Set(e.problems.map((p) => p.code))].sort() };
    if (e instanceof FrontierError) return { error: e.code };
    throw e;
  }
}

/** A snapshot as comparable data: tasks sorted by id, reasons reduced to their presence, no clock. */
function normalize(snapshot: Snapshot): { meta: object; tasks: { spec: object; status: object }[] } {
  const { clock: _clock, ...meta } = snapshot.meta;
  const tasks = [...snapshot.tasks]
    .sort((a, b) => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0))
    .map(({ spec, status }) => ({ spec: { ...spec }, status: plainStatus(status) }));
  return { meta, tasks };
}

function plainStatus(status: TaskStatus): object {
  const { reason, ...rest } = status;
  return { ...rest, reason: reason !== undefined && reason.length > 0 };
}

class Harness {
  readonly clock = { now: START };
  readonly model: Model;
  readonly options: SchedulerOptions;
  engine: Scheduler;
  readonly journal: Change[] = [];
  readonly checkpoints: { snapshot: Snapshot; at: number }[] = [];
  /** The last status each task's change records gave it, and how often they unblocked it. */
  private readonly reported = new Map<string, { status: TaskStatus; unblocked: number }>();
  private highestToken = 0;

  constructor(readonly v: Variant) {
    this.model = new Model(v, this.clock);
    this.options = {
      now: () => this.clock.now,
      random: () => RANDOM,
      allowForwardReferences: v.forward,
      retentionMs: v.retentionMs,
      maxRunnableWaitMs: v.maxWaitMs,
      defaultMaxAttempts: DEFAULT_MAX_ATTEMPTS,
      defaultLeaseMs: DEFAULT_LEASE_MS,
      backoff: BACKOFF,
      onChange: (c) => this.record(c),
      measurePayload,
      maxLeaseResultBytes: MAX_LEASE_RESULT_BYTES,
    };
    this.engine = new Scheduler(this.options);
  }

  private record(c: Change): void {
    this.journal.push(c);
    if (c.kind === "add") {
      same(this.reported.has(c.spec.id), false, `add of a known task ${c.spec.id}`);
      this.reported.set(c.spec.id, { status: c.status, unblocked: c.status.state === "RUNNABLE" ? 1 : 0 });
    } else if (c.kind === "set") {
      const r = this.reported.get(c.id);
      if (r === undefined) throw new Error(`change for ${c.id} before its add`);
      const blocked = r!.status.state === "WAITING" && r!.status.attempts === 0;
      if (blocked && c.status.state === "RUNNABLE") r!.unblocked++;
      if (r.unblocked > 1) throw new Error(`${c.id} unblocked twice`);
      r!.status = c.status;
    } else if (c.kind === "drop") {
      same(this.reported.delete(c.id), true, `drop of an unknown task ${c.id}`);
    }
  }

  // -- resolving generated commands against the model

  private build(gens: readonly TaskGen[]): BuiltTask[] {
    const m = this.model;
    const known = [...m.tasks.keys()];
    const ids: string[] = [];
    for (const g of gens) {
      if (g.id.kind === "old" && m.everIds.length > 0) ids.push(m.everIds[g.id.pick % m.everIds.length]!);
      else if (g.id.kind === "repeat" && ids.length > 0) ids.push(ids[g.id.pick % ids.length]!);
      else ids.push(`t${m.nextId++}`);
    }
    const now = this.clock.now;
    return gens.map((g, i) => {
      const id = ids[i]!;
      const listed: string[] = [];
      for (const p of g.prerequisites) {
        let ref: string | undefined;
        if (p.kind === "known") ref = known.length > 0 ? known[p.pick % known.length] : undefined;
        else if (p.kind === "earlier") ref = i > 0 ? ids[p.pick % i] : undefined;
        else if (p.kind === "inBatch") ref = ids[p.pick % ids.length];
        else if (p.kind === "future") ref = `t${m.nextId + p.pick}`;
        else if (p.kind === "self") ref = id;
        else ref = "ghost";
        if (ref !== undefined && !listed.includes(ref)) listed.push(ref);
      }
      const input: Record<string, unknown> = { id, deadline: now + g.deadline };
      if (listed.length > 0 || g.payload) input["prerequisites"] = listed;
      if (g.maxAttempts !== undefined) input["maxAttempts"] = g.maxAttempts;
      if (g.hard) input["hardDeadline"] = true;
      if (g.continueOnFailure) input["onPrerequisiteFailure"] = "continue";
      if (g.payload) input["payload"] = { n: i, tag: id };
      if (g.notBefore !== undefined) input["notBefore"] = now + g.notBefore;
      if (g.timeoutMs !== undefined) input["timeoutMs"] = g.timeoutMs;
      if (g.type !== undefined) input["type"] = TYPES[g.type];
      switch (g.malform) {
        case "id":
          input["id"] = "";
          break;
        case "deadline":
          input["deadline"] = Number.NaN;
          break;
        case "field":
          input["prerequisite"] = listed;
          break;
        case "attempts":
          input["maxAttempts"] = 0;
          break;
        case "prereqs":
          input["prerequisites"] = listed.join(",");
          break;
        case "dupPrereq":
          input["prerequisites"] = [...listed, listed[0] ?? "ghost", listed[0] ?? "ghost"];
          break;
        case "hard":
          input["hardDeadline"] = "yes";
          break;
        case "policy":
          input["onPrerequisiteFailure"] = "maybe";
          break;
        case "notBefore":
          input["notBefore"] = Number.POSITIVE_INFINITY;
          break;
        case "timeout":
          input["timeoutMs"] = 0;
          break;
        case "type":
          input["type"] = g.id.kind === "fresh" ? "has space" : "x".repeat(65);
          break;
        case "notObject":
        case undefined:
          break;
      }
      // A notBefore at or after a hard deadline could never run: refused.
      const neverDue = g.hard && g.notBefore !== undefined && g.notBefore >= g.deadline;
      return {
        input: g.malform === "notObject" ? null : input,
        malformed: g.malform !== undefined || neverDue,
        id,
        deadline: now + g.deadline,
        prerequisites: listed,
        maxAttempts: g.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        hard: g.hard,
        policy: g.continueOnFailure ? "continue" : "cancel",
        payload: g.payload ? { n: i, tag: id } : undefined,
        notBefore: g.notBefore === undefined ? undefined : now + g.notBefore,
        timeoutMs: g.timeoutMs,
        type: g.type === undefined ? "default" : TYPES[g.type]!,
      };
    });
  }

  /** A task id and a token, as the command asks: a live lease, any task, a completed one, a stale token, an unknown id. */
  private resolve(target: Target): { id: string; token: number } {
    const m = this.model;
    const all = [...m.tasks.values()];
    const of = (kind: Target["kind"]) =>
      kind === "leased"
        ? all.filter((t) => t.state === "LEASED")
        : kind === "completed"
          ? all.filter((t) => t.state === "COMPLETED")
          : kind === "released"
            ? all.filter((t) => t.released)
            : all;
    if (target.kind === "unknown" || all.length === 0) {
      const gone = m.everIds.filter((id) => !m.tasks.has(id));
      return { id: gone.length > 0 ? gone[target.pick % gone.length]! : "nobody", token: 1 };
    }
    let candidates = of(target.kind);
    if (candidates.length === 0) candidates = all;
    const t = candidates[target.pick % candidates.length]!;
    return { id: t.id, token: target.stale ? t.token - 1 : t.token };
  }

  // -- running one command

  exec(cmd: Cmd): void {
    const m = this.model;
    const e = () => this.engine;
    switch (cmd.op) {
      case "add": {
        const batch = this.build(cmd.tasks);
        for (const b of batch) if (!b.malformed && !m.everIds.includes(b.id)) m.everIds.push(b.id);
        const quiet = (e().nextTimerAt() ?? Infinity) > this.clock.now;
        const before = quiet
          ? { snapshot: normalize(e().snapshot()), journal: this.journal.length }
          : undefined;
        const input = cmd.single && batch.length === 1 ? batch[0]!.input : batch.map((b) => b.input);
        const expected = m.add(batch);
        // The dry run agrees with what addTasks then does.
        const dryRun = e().check(input as never);
        same([...new Set(dryRun.map((p) => p.code))].sort(), "error" in expected ? expected.problems : []);
        const actual = attempt(() => e().addTasks(input as never));
        same(actual, expected);
        if ("error" in actual && before) {
          // A rejected batch changes nothing (independently of the model).
          same(normalize(e().snapshot()), before.snapshot);
          same(this.journal.length, before.journal);
        }
        return;
      }
      case "consume": {
        const expected = m.consume();
        const actual = attempt(() => e().consumeTask());
        if ("ok" in actual && actual.ok) {
          const t = m.tasks.get(actual.ok.id);
          same(m.prerequisitesMet(actual.ok.id), true, "dispatched with an unmet prerequisite");
          same(actual.ok, {
            id: t!.id,
            deadline: t!.deadline,
            prerequisites: t!.prerequisites,
            ...(t!.payload !== undefined ? { payload: t!.payload } : {}),
            ...(t!.type !== "default" ? { type: t!.type } : {}),
            ...(t!.timeoutMs !== undefined ? { timeoutMs: t!.timeoutMs } : {}),
          });
          this.checkToken(t!.token);
        }
        same("ok" in actual ? (actual.ok?.id ?? null) : actual, "ok" in expected ? expected.ok : expected);
        return;
      }
      case "lease": {
        const maxKey = cmd.maxKey === undefined ? undefined : this.clock.now + cmd.maxKey;
        const expected = m.lease(cmd.owner, cmd.max, cmd.leaseMs, maxKey ?? Infinity, cmd.types);
        const actual = attempt(() =>
          e().lease(cmd.owner, {
            max: cmd.max,
            leaseMs: cmd.leaseMs,
            ...(maxKey !== undefined ? { maxKey } : {}),
            ...(cmd.types !== undefined ? { types: cmd.types } : {}),
          }),
        );
        if ("ok" in actual) {
          for (const l of actual.ok) {
            same(m.prerequisitesMet(l.taskId), true, "dispatched with an unmet prerequisite");
            // Never a task of a type the lease did not name.
            same((cmd.types ?? ["default"]).includes(l.task.type ?? "default"), true, "leased another type");
            same(l.task.id, l.taskId);
            same(l.task.deadline, m.tasks.get(l.taskId)?.deadline);
            this.checkToken(l.token);
          }
        }
        const lite = "ok" in actual ? { ok: actual.ok.map(({ task: _task, ...rest }) => rest) } : actual;
        same(lite, expected);
        return;
      }
      case "heartbeat": {
        const { id, token } = this.resolve(cmd.target);
        const expected = m.heartbeat(id, token, cmd.leaseMs);
        const actual = attempt(() => e().heartbeat(id, token, { leaseMs: cmd.leaseMs }));
        same(
          "ok" in actual ? { ok: { ...actual.ok, task: undefined } } : actual,
          "ok" in expected ? { ok: { ...expected.ok, task: undefined } } : expected,
        );
        return;
      }
      case "complete": {
        const { id, token } = this.resolve(cmd.target);
        same(
          attempt(() => e().complete(id, token, { result: cmd.result })),
          m.complete(id, token, cmd.result),
        );
        return;
      }
      case "completeTask": {
        const { id } = this.resolve(cmd.target);
        same(
          attempt(() => e().completeTask(id)),
          m.completeTask(id),
        );
        return;
      }
      case "fail": {
        const { id, token } = this.resolve(cmd.target);
        const expected = m.fail(id, token, cmd.retryable);
        const actual = attempt(() => e().fail(id, token, { retryable: cmd.retryable, reason: "boom" }).state);
        same(actual, expected);
        return;
      }
      case "release": {
        const { id, token } = this.resolve(cmd.target);
        same(
          attempt(() => e().release(id, token)),
          m.release(id, token),
        );
        return;
      }
      case "cancel": {
        const { id } = this.resolve(cmd.target);
        same(
          attempt(() => e().cancel(id, "stop")),
          m.cancel(id),
        );
        return;
      }
      case "updateDeadline": {
        const { id } = this.resolve(cmd.target);
        const deadline = this.clock.now + cmd.deadline;
        same(
          attempt(() => e().updateDeadline(id, deadline)),
          m.updateDeadline(id, deadline),
        );
        return;
      }
      case "advance":
        this.clock.now += cmd.ms;
        return;
      case "inspect": {
        const now = m.advance();
        same(e().stats(), m.stats(now));
        for (const t of m.tasks.values()) {
          const view = e().getTask(t.id);
          expect(view).toBeDefined();
          const { reason, unmetPrerequisites, ...rest } = view!;
          same(
            { ...rest, reason: reason !== undefined, unmetPrerequisites },
            {
              ...m.specOf(t),
              ...m.statusOf(t),
              unmetPrerequisites: m.unmetOf(t),
            },
          );
        }
        for (const id of m.everIds) if (!m.tasks.has(id)) expect(e().getTask(id)).toBeUndefined();
        return;
      }
      case "checkpoint":
        this.checkpoints.push({ snapshot: structuredClone(e().snapshot()), at: this.journal.length });
        return;
      case "rebuild": {
        const old = e();
        const cp =
          cmd.fromCheckpoint && this.checkpoints.length > 0
            ? this.checkpoints[cmd.pick % this.checkpoints.length]!
            : { snapshot: old.snapshot(), at: this.journal.length };
        // Through structuredClone, as a journal would store them: nothing shared with the old engine.
        const rebuilt = Scheduler.restore(
          structuredClone(cp.snapshot),
          structuredClone(this.journal.slice(cp.at)),
          this.options,
        );
        same(normalize(rebuilt.snapshot()), normalize(old.snapshot()));
        // A finished task kept for live dependents has no timer; a rebuilt engine
        // cannot tell it from one not looked at yet and arms it at finishedAt +
        // retention, so it may look once more, earlier, to the same effect.
        if (this.v.retentionMs === Infinity) same(rebuilt.nextTimerAt(), old.nextTimerAt());
        else expect(rebuilt.nextTimerAt() ?? Infinity).toBeLessThanOrEqual(old.nextTimerAt() ?? Infinity);
        this.engine = rebuilt;
        return;
      }
    }
  }

  private checkToken(token: number): void {
    // Fencing tokens rise: a new lease never reuses a token an old holder may still present.
    if (!(token > this.highestToken)) throw new Error(`token ${token} issued after ${this.highestToken}`);
    this.highestToken = token;
  }

  /** After every command: the engine's state is the model's, and the change records describe it. */
  compare(): void {
    const m = this.model;
    const snapshot = normalize(this.engine.snapshot());
    const expected = [...m.tasks.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((t) => ({ spec: m.specOf(t), status: m.statusOf(t) }));
    same(snapshot.tasks, expected);
    same(snapshot.meta, m.meta());
    const held = [...m.tasks.values()];
    same(this.engine.liveCount, held.filter((t) => !TERMINAL.has(t.state)).length, "live count");
    same(
      this.engine.heldPayloadBytes,
      held.reduce(
        (sum, t) =>
          sum +
          (t.payload === undefined ? 0 : measurePayload(t.payload)) +
          (t.result === undefined ? 0 : measurePayload(t.result)),
        0,
      ),
      "payload and result bytes held",
    );
    // Every state change was reported: replaying the records gives the current state.
    same(this.reported.size, m.tasks.size);
    for (const t of m.tasks.values()) {
      const r = this.reported.get(t.id);
      same(r && plainStatus(r.status), m.statusOf(t), `reported status of ${t.id}`);
      same(r?.unblocked, t.unblocked, `unblock count of ${t.id}`);
    }
    const top = m.frontier();
    same(
      this.engine.peekFrontier(),
      top === undefined ? null : { id: top.id, deadline: top.deadline, key: m.keyOf(top) },
    );
    // Each type's frontier, and a pair's, as a lease of those types would take them.
    for (const types of [["default"], ["img"], ["mail", "img"], ["unheld"]]) {
      const first = m.frontier(types);
      same(
        this.engine.peekFrontier(types),
        first === undefined ? null : { id: first.id, deadline: first.deadline, key: m.keyOf(first) },
        `frontier of ${types.join(",")}`,
      );
    }
    // Per-type frontiers in dispatch order: each type's first runnable task and its count.
    const perType = TYPES.flatMap((type) => {
      const first = m.frontier([type]);
      if (first === undefined) return [];
      const runnable = [...m.tasks.values()].filter((t) => t.state === "RUNNABLE" && t.type === type).length;
      return [{ type, id: first.id, deadline: first.deadline, key: m.keyOf(first), runnable }];
    }).sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    same(this.engine.typeFrontiers(2), {
      frontiers: perType.slice(0, 2),
      omitted: Math.max(0, perType.length - 2),
    });
  }
}

function runSequence(v: Variant, cmds: readonly Cmd[]): void {
  const h = new Harness(v);
  for (const cmd of cmds) {
    h.exec(cmd);
    h.compare();
  }
}

// --------------------------------------------------------------------- tests

const totalWeight = VARIANTS.reduce((sum, v) => sum + v.weight, 0);

describe("Scheduler against a reference model", () => {
  for (const v of VARIANTS) {
    const numRuns = Math.max(1, Math.round((TOTAL_RUNS * v.weight) / totalWeight));
    it(`${v.name}: ${numRuns} random command sequences`, () => {
      fc.assert(
        fc.property(fc.array(cmdArb, { maxLength: MAX_COMMANDS, size: "max" }), (cmds) =>
          runSequence(v, cmds),
        ),
        { numRuns, ...(SEED !== undefined ? { seed: SEED } : {}) },
      );
    });
  }
});
