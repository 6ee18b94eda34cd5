/**
 * Submit: validate, split by slot owner, forward.
 *
 *   1. Check the batch alone (BatchValidator: inline or in the pool). Any
 *      problem rejects the whole batch, nothing is prepared or stored; so
 *      that the one rejection lists every problem, each shard holding a part
 *      is asked in parallel what it finds in its part (`check`: ids taken,
 *      unknown prerequisites), which reserves nothing. A valid batch skips
 *      this: no extra round trip on the normal path.
 *   2. Split by the owner of each task's slot (`slotOfTask`), and each task's
 *      id claim to the owner of the id's home slot (`homeSlotOf`; docs/cluster.md,
 *      "One id space per cluster"): a part is the tasks a shard will hold and
 *      the claims it keeps. An unowned slot rejects the batch, retryably,
 *      before anything is sent. With one shard owning every slot, no claim
 *      is sent: every id is homed there, and its own ids are its claims. A
 *      large workflow's edge between two slots also goes, as a remote link,
 *      to the part of its prerequisite's slot (that shard checks the
 *      prerequisite and registers the dependent, to send it the
 *      prerequisite's outcome); so a large batch is usually multi-shard.
 *   3. One part: `submit` it as is, under the client's idempotency key.
 *      Several: two phases, so no batch is ever half-accepted:
 *        prepare every part (in parallel). Any failure → abort every part and
 *          reply with the failure (validation problems of all parts merged);
 *        commit the claims of tasks held on other shards first (`claimsOnly`,
 *          in parallel): a task is never stored without its claim, which is
 *          what lets an id's home take over a claim whose task is gone
 *          (cluster/src/id-home.ts). A failure here aborts every part;
 *        then commit every part with tasks (in parallel), retrying a commit
 *          that times out or finds its shard briefly unavailable.
 *      Each part goes to its shard under the client's idempotency key, so a
 *      client that retries the whole submit (after a TIMEOUT, or a commit that
 *      kept failing) finishes it: parts already committed answer with their
 *      first outcome, and nothing is added twice.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  backoffDelay,
  type Problem,
  ProblemCode,
  type RemoteLink,
  type TaskInput,
  ValidationError,
} from "@frontier/core";
import {
  addedProblems,
  claimOf,
  claimsOfOtherTasks,
  homeSlotOf,
  type IdClaim,
  type IdSpace,
  isRetryable,
  oneTakenPerId,
  ProtocolError,
  type ResultOf,
  SLOT_COUNT,
  type SubmitRequest,
  slotOfLargeTask,
  slotOfTask,
  WireErrorCode,
} from "@frontier/protocol";
import type { Logger } from "pino";
import { isShardTransient, SlotUnownedError } from "./errors.js";
import type { ShardLink } from "./shard-link.js";
import type { SlotDirectory } from "./slot-table.js";
import type { BatchValidator } from "./validation.js";

export interface SubmitContext {
  readonly link: ShardLink;
  readonly slots: SlotDirectory;
  readonly validator: BatchValidator;
  readonly logger: Logger;
  readonly commitAttempts: number;
  readonly commitBackoffMs: number;
  /** The cluster's id space (id-space.ts): with "workflow", no claim is sent. Absent: "cluster". */
  readonly idSpace?: () => IdSpace;
  /** Told of every commit retried and of how each batch was validated. */
  readonly onCommitRetry?: (shardId: string) => void;
  readonly onValidated?: (mode: "inline" | "pool") => void;
}

type SubmitResult = ResultOf<"submit">;

/**
 * What one shard gets of a batch: the tasks it will hold, the claims of the
 * ids homed there, and the remote links whose prerequisites it holds (large
 * workflows).
 */
export interface SubmitPart {
  readonly tasks: TaskInput[];
  readonly claims: IdClaim[];
  readonly links: RemoteLink[];
}

/** A batch split by shard; `claimed` false: one shard owns every slot, and no claim is sent. */
export interface SplitBatch {
  readonly parts: Map<string, SubmitPart>;
  readonly claimed: boolean;
}

export class SubmitRouter {
  constructor(private readonly ctx: SubmitContext) {}

  async submit(request: SubmitRequest): Promise<SubmitResult> {
    const { tasks, idempotencyKey } = request;
    if (tasks.length === 0) return { accepted: 0, replayed: false };
    const mode = this.ctx.validator.modeFor(tasks);
    const problems = await this.ctx.validator.check(tasks);
    this.ctx.onValidated?.(mode);
    if (problems.length > 0) throw await this.rejection(tasks, problems);
    const { parts, claimed } = this.split(tasks);
    if (parts.size === 1) {
      const [shardId, part] = parts.entries().next().value as [string, SubmitPart];
      const reply = await this.ctx.link.request(shardId, {
        op: "submit",
        tasks,
        idempotencyKey,
        ...linksOf(part),
        ...(claimed ? { claims: part.claims } : {}),
      });
      return { accepted: reply.accepted, replayed: reply.replayed };
    }
    return this.twoPhase(parts, idempotencyKey, claimed);
  }

  /**
   * The rejection of a batch with batch-local problems: those, and every
   * problem the shards holding its parts find (asked at once, with `check`).
   * Each id goes to its shard once (a later duplicate is a local problem
   * already, and a shard would read it as taken); malformed tasks stay here. A shard's problem of a
   * task and code the local check reported already adds nothing (the same
   * cycle, found twice). A part no shard owns, or whose shard does not
   * answer, adds nothing: the batch is refused either way, and the client's
   * next try is checked again. Ordered by orderProblems.
   */
  private async rejection(tasks: readonly TaskInput[], local: readonly Problem[]): Promise<ValidationError> {
    // A malformed task cannot be stored whatever a shard says (and may not even cross the wire).
    const malformed = new Set(local.filter((p) => p.code === ProblemCode.MALFORMED).map((p) => p.taskId));
    const seen = new Set<string>();
    const firsts: TaskInput[] = [];
    tasks.forEach((task, i) => {
      if (seen.has(task.id) || malformed.has(task.id) || malformed.has(`#${i}`)) return;
      seen.add(task.id);
      firsts.push(task);
    });
    const { parts, claimed } = this.partition(firsts);
    const shards = [...parts.keys()];
    // A prerequisite in the batch but in another part (another workflow) is the local check's
    // CROSS_WORKFLOW; the shard, seeing its part alone, would call it unknown as well: left out.
    const inBatch = new Set(firsts.map((t) => t.id));
    const checked = (part: readonly TaskInput[]): TaskInput[] => {
      const inPart = new Set(part.map((t) => t.id));
      return part.map((t) => {
        const prerequisites = t.prerequisites?.filter((p) => !inBatch.has(p) || inPart.has(p));
        return prerequisites === undefined || prerequisites.length === t.prerequisites?.length
          ? t
          : { ...t, prerequisites };
      });
    };
    const answers = await Promise.allSettled(
      shards.map((shardId) => {
        const part = parts.get(shardId)!;
        return this.ctx.link.request(shardId, {
          op: "check",
          tasks: checked(part.tasks),
          ...linksOf(part),
          ...(claimed ? { claims: part.claims } : {}),
        });
      }),
    );
    // The shards' problems, each kept once however often it is said in the same words.
    const fromShards: Problem[] = [];
    const said = new Set<string>();
    answers.forEach((answer, i) => {
      if (answer.status === "rejected") {
        this.ctx.logger.warn(
          { shardId: shards[i], err: messageOf(answer.reason) },
          "a shard did not check its part of a rejected batch; its problems are left out",
        );
        return;
      }
      for (const p of answer.value.problems) {
        const full = `${p.code}\u0000${p.taskId}\u0000${p.message}`;
        if (said.has(full)) continue;
        said.add(full);
        fromShards.push(p);
      }
    });
    // An id taken is one problem, whoever says so: the shard holding its task and its id's home
    // both may (their messages differ); the first in order is kept. The local check's own
    // problems (an id twice in the batch, once per repeat) are all kept.
    const added = oneTakenPerId(orderProblems(tasks, addedProblems(local, fromShards)));
    return new ValidationError(orderProblems(tasks, [...local, ...added]));
  }

  /** The batch's tasks, remote links and claims by owning shard, in batch order within each part. O(tasks + edges). */
  split(tasks: readonly TaskInput[]): SplitBatch {
    const { parts, unowned, claimed } = this.partition(tasks);
    if (unowned.size > 0) {
      const [slot, ids] = unowned.entries().next().value as [number, string[]];
      const more = unowned.size > 1 ? ` (and ${unowned.size - 1} more unowned slots)` : "";
      throw new SlotUnownedError(
        slot,
        `no shard owns slot ${slot} (task ${JSON.stringify(ids[0])}${more}); shards may still be starting: retry`,
      );
    }
    return { parts, claimed };
  }

  /** `split` without the refusal: the parts, and the ids of each slot no shard owns. O(tasks). */
  private partition(tasks: readonly TaskInput[]): SplitBatch & { unowned: Map<number, string[]> } {
    const parts = new Map<string, SubmitPart>();
    const unowned = new Map<number, string[]>();
    const { slots } = this.ctx;
    // One shard owning every slot homes every id: its own ids are the claims (the shard checks
    // that it does own every slot when a submit carries no claims).
    // Short-circuited in this order: the shard list (sorted, allocated) is read last, and only
    // when ids are unique in the cluster and every slot has an owner.
    const claimed =
      this.ctx.idSpace?.() !== "workflow" &&
      !(slots.ownedCount() === SLOT_COUNT && slots.shards().length === 1);
    const partOf = (owner: string): SubmitPart => {
      let part = parts.get(owner);
      if (part === undefined) parts.set(owner, (part = { tasks: [], claims: [], links: [] }));
      return part;
    };
    const refuse = (slot: number, id: string): void => {
      const ids = unowned.get(slot);
      if (ids === undefined) unowned.set(slot, [id]);
      else ids.push(id);
    };
    for (const task of tasks) {
      const slot = slotOfTask(task);
      const owner = slots.ownerOf(slot);
      if (owner === undefined) refuse(slot, task.id);
      else partOf(owner).tasks.push(task);
      const workflowId = task.workflowId;
      if (task.large === true && workflowId !== undefined && task.prerequisites !== undefined) {
        // The engine's rule (SchedulerOptions.partitionOf): a prerequisite in another slot is remote.
        for (const prerequisite of task.prerequisites) {
          const at = slotOfLargeTask(prerequisite, workflowId);
          if (at === slot) continue;
          const linkOwner = slots.ownerOf(at);
          if (linkOwner === undefined) refuse(at, task.id);
          else partOf(linkOwner).links.push({ prerequisite, dependent: task.id, workflowId });
        }
      }
      if (!claimed) continue;
      // A task without a workflow is homed in its own slot (homeSlotOf): no second lookup.
      const home = task.workflowId === undefined ? slot : homeSlotOf(task.id);
      const homeOwner = home === slot ? owner : slots.ownerOf(home);
      if (homeOwner === undefined) {
        if (home !== slot) refuse(home, task.id);
        continue;
      }
      partOf(homeOwner).claims.push(claimOf(task));
    }
    return { parts, unowned, claimed };
  }

  private async twoPhase(
    parts: Map<string, SubmitPart>,
    idempotencyKey: string,
    claimed: boolean,
  ): Promise<SubmitResult> {
    const { link, logger } = this.ctx;
    const shards = [...parts.keys()];
    const prepared = await Promise.allSettled(
      shards.map((shardId) => {
        const part = parts.get(shardId)!;
        return link.request(shardId, {
          op: "prepare",
          tasks: part.tasks,
          idempotencyKey,
          ...linksOf(part),
          // Even none: without the field, a shard takes the batch for a one-shard cluster's.
          ...(claimed ? { claims: part.claims } : {}),
        });
      }),
    );
    const failures = failuresOf(shards, prepared);
    if (failures.length > 0) {
      await this.abortAll(shards, idempotencyKey);
      throw mergeFailures(failures);
    }
    // The claims of tasks held elsewhere are made durable before any task of the batch is.
    const claimers = shards.filter((shardId) => keepsRows(parts.get(shardId)!));
    if (claimers.length > 0) {
      const kept = await Promise.allSettled(
        claimers.map((shardId) => this.commit(shardId, idempotencyKey, true)),
      );
      const claimFailures = failuresOf(claimers, kept);
      if (claimFailures.length > 0) {
        // No task was stored: the batch is not committed. The claims kept already are rows of
        // tasks that no shard will hold, which their homes take over when they next meet them.
        await this.abortAll(shards, idempotencyKey);
        const first = pickFailure(claimFailures);
        throw new ProtocolError(
          first.error instanceof ProtocolError ? first.error.code : WireErrorCode.INTERNAL,
          `submit not committed: the claims of its task ids could not be kept on shard ${first.shardId} ` +
            `(${messageOf(first.error)}); retry with the same idempotencyKey`,
          { cause: first.error, retryable: true },
        );
      }
    }
    // A part of links alone (a large workflow's prerequisites submitted before) commits too.
    const holders = shards.filter((shardId) => {
      const part = parts.get(shardId)!;
      return part.tasks.length > 0 || part.links.length > 0;
    });
    const committed = await Promise.allSettled(
      holders.map((shardId) => this.commit(shardId, idempotencyKey)),
    );
    const commitFailures = failuresOf(holders, committed);
    if (commitFailures.length > 0) {
      const done = holders.filter((_, i) => committed[i]!.status === "fulfilled");
      const first = pickFailure(commitFailures);
      logger.error(
        { idempotencyKey, committed: done, failed: commitFailures.map((f) => f.shardId), err: first.error },
        "submit partly committed",
      );
      // A transport failure keeps its code (TIMEOUT, SHARD_UNAVAILABLE); a shard that
      // refuses to commit what it prepared is a bug on its side.
      throw new ProtocolError(
        first.error instanceof ProtocolError ? first.error.code : WireErrorCode.INTERNAL,
        `submit partly committed (${done.length} of ${holders.length} parts); ` +
          `retry with the same idempotencyKey to finish it. Shard ${first.shardId}: ${messageOf(first.error)}`,
        { cause: first.error, retryable: isRetryable(first.error) },
      );
    }
    let accepted = 0;
    let replayed = true;
    for (const result of committed) {
      const reply = (result as PromiseFulfilledResult<ResultOf<"commit">>).value;
      accepted += reply.accepted;
      replayed &&= reply.replayed;
    }
    return { accepted, replayed };
  }

  /**
   * Commits one prepared part, retrying while the shard cannot be reached
   * (timeout, no responders). A refusal from the shard itself is final: a
   * shard that lost the prepared part (expired, restarted) says so, and only
   * the client's retry of the whole submit, which prepares again, can help.
   */
  private async commit(
    shardId: string,
    idempotencyKey: string,
    claimsOnly = false,
  ): Promise<ResultOf<"commit">> {
    const { link, commitAttempts, commitBackoffMs } = this.ctx;
    for (let attempt = 1; ; attempt++) {
      try {
        return await link.request(shardId, {
          op: "commit",
          idempotencyKey,
          ...(claimsOnly ? { claimsOnly } : {}),
        });
      } catch (err) {
        if (attempt >= commitAttempts || !isShardTransient(err)) throw err;
        this.ctx.onCommitRetry?.(shardId);
        this.ctx.logger.warn({ shardId, idempotencyKey, attempt, err }, "commit failed; retrying");
        await sleep(
          backoffDelay(
            { baseMs: commitBackoffMs, maxMs: COMMIT_BACKOFF_MAX_MS, jitter: 0.2 },
            attempt,
            Math.random,
          ),
        );
      }
    }
  }

  /** Aborts every part (also those whose prepare failed: a timed-out prepare may have reserved). */
  private async abortAll(shards: readonly string[], idempotencyKey: string): Promise<void> {
    const aborted = await Promise.allSettled(
      shards.map((shardId) => this.ctx.link.request(shardId, { op: "abort", idempotencyKey })),
    );
    for (const { shardId, error } of failuresOf(shards, aborted)) {
      this.ctx.logger.warn(
        { shardId, idempotencyKey, err: error },
        "abort failed; the shard's reservation expires",
      );
    }
  }
}

/** Whether a part keeps claim rows: a claim of a task it does not hold (one on another shard). */
function keepsRows(part: SubmitPart): boolean {
  return claimsOfOtherTasks(part.claims, part.tasks).length > 0;
}

/** A request's `links` field for a part: left out when it has none (ordinary workflows). */
function linksOf(part: SubmitPart): { links?: RemoteLink[] } {
  return part.links.length === 0 ? {} : { links: part.links };
}

/** Longest pause between two commits of one prepared part, ms (the policy's cap). */
const COMMIT_BACKOFF_MAX_MS = 2_000;

interface Failure {
  readonly shardId: string;
  readonly error: unknown;
}

function failuresOf(shards: readonly string[], results: readonly PromiseSettledResult<unknown>[]): Failure[] {
  const failures: Failure[] = [];
  results.forEach((r, i) => {
    if (r.status === "rejected") failures.push({ shardId: shards[i]!, error: r.reason });
  });
  return failures;
}

/**
 * One error for a failed prepare phase: every part's validation problems
 * merged when any part was rejected for them (the batch can never pass as
 * it is), else the first definitive failure, else the first retryable one.
 */
export function mergeFailures(failures: readonly Failure[]): unknown {
  // An id taken is one problem, whoever says so (its holder's shard and its id's home may both).
  const problems = oneTakenPerId(
    failures.flatMap((f) => (f.error instanceof ValidationError ? f.error.problems : [])),
  );
  if (problems.length > 0) return new ValidationError(problems);
  return pickFailure(failures).error;
}

const CODE_RANK = new Map<string, number>(Object.values(ProblemCode).map((code, i) => [code, i]));

/**
 * Problems in a stable order, whoever found them and whenever they
 * answered: by the batch position of their task (the first task with the
 * id; `#<i>`, a task without a usable id, at i; an id not in the batch
 * last), then by code (ProblemCode's order), then by message. O(n log n).
 */
export function orderProblems(tasks: readonly TaskInput[], problems: readonly Problem[]): Problem[] {
  const position = new Map<string, number>();
  tasks.forEach((t, i) => {
    if (typeof t?.id === "string" && !position.has(t.id)) position.set(t.id, i);
  });
  const at = (p: Problem): number => {
    const i = position.get(p.taskId);
    if (i !== undefined) return i;
    const m = /^#(\d+)$/.exec(p.taskId);
    return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
  };
  return [...problems].sort(
    (a, b) =>
      at(a) - at(b) ||
      (CODE_RANK.get(a.code) ?? 0) - (CODE_RANK.get(b.code) ?? 0) ||
      (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
  );
}

function pickFailure(failures: readonly Failure[]): Failure {
  return failures.find((f) => !isRetryable(f.error)) ?? failures[0]!;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
