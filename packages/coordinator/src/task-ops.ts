/**
 * Requests about one task (heartbeat, complete, fail, release, cancel,
 * updateDeadline, getTask, retry) go to the shard owning the slot of the task's partition key:
 * `slotOf(workflowId ?? taskId)`.
 *
 * A client that names a task by id alone, when the task has a workflow, sends
 * it to the wrong slot. A task id is unique in the cluster, and the shard
 * owning the id's home slot (`homeSlotOf`) knows which task holds it (its
 * claim; docs/cluster.md, "One id space per cluster"). So a request without
 * `workflowId`:
 *  - heartbeat, complete, fail, release (a lease's token and secret pick the task):
 *    the owner of slotOf(id) first; when it has no such task, or cannot be
 *    reached, every other known shard in parallel (scatter). Only the lease's
 *    holder can settle it, so at most one shard applies it.
 *  - getTask, cancel, updateDeadline, retry: the id's home is asked where
 *    the task is (`locate`, a read), and the request goes to the shard of
 *    the claim's workflow: two hops, whatever the number of shards. A claim
 *    whose task is gone (dropped after its retention) answers not found.
 *    No claim: tasks stored before claims existed have none, so every known
 *    shard is asked where a task of that id is (getTask, in parallel). One
 *    holds it: the request goes there. Several do (two such tasks of one
 *    id): AMBIGUOUS_TASK with their workflows, and nothing changes. None:
 *    for a change, UNKNOWN_TASK only once every shard answered — a shard
 *    that could not be asked might hold it, so its retryable error comes back
 *    instead; getTask answers what the shards that answered hold.
 */
import { ErrorCode, FrontierError, type TaskView, UnknownTaskError } from "@frontier/core";
import {
  type CompletedLease,
  homeSlotOf,
  type IdSpace,
  isRetryable,
  type OkReply,
  ProtocolError,
  partitionKeyOfRef,
  type RequestOf,
  type ResultOf,
  type SettleOutcome,
  type SettleRequest,
  slotOf,
  toWireError,
  WireErrorCode,
} from "@frontier/protocol";
import { SlotUnownedError } from "./errors.js";
import type { ShardLink } from "./shard-link.js";
import type { SlotDirectory } from "./slot-table.js";

export const TASK_OPS = [
  "heartbeat",
  "complete",
  "fail",
  "release",
  "cancel",
  "updateDeadline",
  "getTask",
  "retry",
] as const;
export type TaskOp = (typeof TASK_OPS)[number];

export interface TaskOpsContext {
  readonly link: ShardLink;
  readonly slots: SlotDirectory;
  /**
   * Every shard worth asking in a scatter: slot owners and shards announcing
   * a frontier. Rejects (retryably) while the coordinator cannot know them all.
   */
  readonly knownShards: () => Promise<Iterable<string>>;
  /** The cluster's id space (id-space.ts): with "workflow", no home knows where a task is. Absent: "cluster". */
  readonly idSpace?: () => IdSpace;
  readonly onScatter?: (op: TaskOp) => void;
}

export type TaskRequest = RequestOf<TaskOp>;

/** The ops that name a task without a lease: by id alone, the id must name one task in the cluster. */
const BY_ID_ALONE: ReadonlySet<TaskOp> = new Set(["getTask", "cancel", "updateDeadline", "retry"]);

type Outcome = { ok: true; reply: OkReply<TaskOp> } | { ok: false; error: unknown };

/** The shard says the task is not there: UNKNOWN_TASK, or getTask's null. */
function notHere(outcome: Outcome): boolean {
  if (!outcome.ok)
    return outcome.error instanceof FrontierError && outcome.error.code === ErrorCode.UNKNOWN_TASK;
  return outcome.reply.op === "getTask" && (outcome.reply as OkReply<"getTask">).task === null;
}

/**
 * The shard could not answer (down, timed out, recovering, slot moved): a
 * retryable failure. It might hold the task.
 */
function unanswered(outcome: Outcome): boolean {
  return !outcome.ok && isRetryable(outcome.error);
}

/** The shard's answer about the task: a reply, or an error about the task itself (STALE_LEASE, ...). */
function isAnswer(outcome: Outcome): boolean {
  return !notHere(outcome) && !unanswered(outcome);
}

function settle(outcome: Outcome): OkReply<TaskOp> {
  if (outcome.ok) return outcome.reply;
  throw outcome.error;
}

/** A settle outcome the owner gave that a single complete might better: not there (no workflow named), or unanswered. */
function retryAlone(outcome: SettleOutcome, c: CompletedLease): boolean {
  if (!("error" in outcome)) return false;
  if (outcome.error.retryable) return true;
  return c.workflowId === undefined && outcome.error.code === ErrorCode.UNKNOWN_TASK;
}

export class TaskOpRouter {
  constructor(private readonly ctx: TaskOpsContext) {}

  async route(request: TaskRequest): Promise<OkReply<TaskOp>> {
    if (request.workflowId === undefined && BY_ID_ALONE.has(request.op)) return this.routeById(request);
    const slot = slotOf(partitionKeyOfRef(request));
    const owner = this.ctx.slots.ownerOf(slot);
    const canScatter = request.workflowId === undefined;
    let first: Outcome | undefined;
    if (owner !== undefined) {
      first = await this.ask(owner, request);
      if (!canScatter || isAnswer(first)) return settle(first);
    } else if (!canScatter) {
      throw new SlotUnownedError(slot, `no shard owns slot ${slot} (workflow ${request.workflowId}); retry`);
    }
    // Not at the owner, the owner could not answer, or there is none: ask every other shard.
    const others = [...new Set(await this.ctx.knownShards())].filter((s) => s !== owner);
    if (others.length > 0) this.ctx.onScatter?.(request.op);
    const outcomes = await Promise.all(others.map((s) => this.ask(s, request)));
    const found = outcomes.find(isAnswer);
    if (found !== undefined) return settle(found);
    const all = first === undefined ? outcomes : [first, ...outcomes];
    const failed = all.find(unanswered);
    if (failed !== undefined) return settle(failed);
    const notFound = all[0];
    if (notFound !== undefined) return settle(notFound);
    throw new SlotUnownedError(
      slot,
      `no shard owns slot ${slot} (task ${JSON.stringify(request.taskId)}); shards may still be starting: retry`,
    );
  }

  /**
   * A worker's batch of completes: one `settle` per owning shard, in
   * parallel, each task's outcome in its place. A task its owner does not
   * hold (named without its workflow) or whose owner could not answer goes
   * the way of a single complete (`route`: the scatter). A coordinator grants
   * no leases here; a settle asking for them is refused.
   */
  async settle(request: SettleRequest): Promise<ResultOf<"settle">> {
    if (request.lease !== undefined) {
      throw new ProtocolError(
        WireErrorCode.BAD_MESSAGE,
        "lease: only a shard grants the next leases of a settle; send the settle to the shard, or lease through a coordinator",
      );
    }
    const results: SettleOutcome[] = new Array(request.completes.length);
    const byOwner = new Map<string, number[]>();
    const alone: number[] = [];
    request.completes.forEach((c, i) => {
      const owner = this.ctx.slots.ownerOf(slotOf(partitionKeyOfRef(c)));
      if (owner === undefined) {
        alone.push(i);
        return;
      }
      let group = byOwner.get(owner);
      if (group === undefined) byOwner.set(owner, (group = []));
      group.push(i);
    });
    await Promise.all(
      [...byOwner].map(async ([owner, indices]) => {
        const completes = indices.map((i) => request.completes[i]!);
        let outcomes: readonly SettleOutcome[];
        try {
          outcomes = (await this.ctx.link.request(owner, { op: "settle", completes })).results;
        } catch (error) {
          // The owner did not answer: each task goes alone, which scatters (it may be elsewhere).
          alone.push(...indices);
          return void error;
        }
        indices.forEach((i, k) => {
          const outcome = outcomes[k];
          if (outcome === undefined || retryAlone(outcome, completes[k]!)) alone.push(i);
          else results[i] = outcome;
        });
      }),
    );
    await Promise.all(alone.map(async (i) => (results[i] = await this.completeAlone(request.completes[i]!))));
    return { results, leases: [] };
  }

  private async completeAlone(c: CompletedLease): Promise<SettleOutcome> {
    try {
      const reply = (await this.route({ op: "complete", ...c })) as OkReply<"complete">;
      return { duplicate: reply.duplicate };
    } catch (error) {
      return { error: toWireError(error) };
    }
  }

  /**
   * getTask, cancel, updateDeadline or retry of a task named by id alone:
   * ask the id's home where its task is, and send the request there; when
   * the home has no claim of it, ask every shard (`scatterById`).
   */
  private async routeById(request: TaskRequest): Promise<OkReply<TaskOp>> {
    if (this.ctx.idSpace?.() === "workflow") return this.scatterById(request);
    const home = homeSlotOf(request.taskId);
    const homeOwner = this.ctx.slots.ownerOf(home);
    if (homeOwner === undefined)
      throw new SlotUnownedError(
        home,
        `no shard owns slot ${home}, the home of task id ${JSON.stringify(request.taskId)}; shards may still be starting: retry`,
      );
    const { claim } = await this.ctx.link.request(homeOwner, { op: "locate", taskId: request.taskId });
    if (claim === null) return this.scatterById(request);
    const slot = slotOf(partitionKeyOfRef(claim));
    const holder = this.ctx.slots.ownerOf(slot);
    if (holder === undefined)
      throw new SlotUnownedError(
        slot,
        `no shard owns slot ${slot} (task ${JSON.stringify(request.taskId)}); retry`,
      );
    // Named with the claim's workflow: routed, and refused while its slot moves, as any request naming one.
    const named = (
      claim.workflowId === undefined ? request : { ...request, workflowId: claim.workflowId }
    ) as TaskRequest;
    const outcome = await this.ask(holder, named);
    // A claim outlives its task (dropped after its retention): then there is no such task.
    if (
      request.op === "getTask" &&
      !outcome.ok &&
      outcome.error instanceof FrontierError &&
      outcome.error.code === ErrorCode.UNKNOWN_TASK
    )
      return { op: "getTask", task: null } as OkReply<TaskOp>;
    return settle(outcome);
  }

  /**
   * A task named by id alone that its home has no claim of (stored before
   * claims existed): find the shards holding a task of that id, then act
   * only if exactly one does.
   */
  private async scatterById(request: TaskRequest): Promise<OkReply<TaskOp>> {
    const owner = this.ctx.slots.ownerOf(slotOf(partitionKeyOfRef(request)));
    const shards = new Set(await this.ctx.knownShards());
    if (owner !== undefined) shards.add(owner);
    if (shards.size === 0) {
      throw new SlotUnownedError(
        slotOf(partitionKeyOfRef(request)),
        `no shard is known yet (task ${JSON.stringify(request.taskId)}); shards may still be starting: retry`,
      );
    }
    if (shards.size > 1) this.ctx.onScatter?.(request.op);
    const look = { op: "getTask", taskId: request.taskId } as const;
    const asked = await Promise.all(
      [...shards].map(async (shardId) => ({ shardId, outcome: await this.ask(shardId, look) })),
    );
    const holders = asked.filter(({ outcome }) => outcome.ok && !notHere(outcome));
    const failed = asked.find(({ outcome }) => unanswered(outcome));
    if (holders.length > 1) {
      const workflows = holders.map(
        ({ outcome }) =>
          ((outcome as { reply: OkReply<"getTask"> }).reply.task as TaskView).workflowId ?? null,
      );
      throw new ProtocolError(
        WireErrorCode.AMBIGUOUS_TASK,
        `${holders.length} tasks have the id ${JSON.stringify(request.taskId)}, in workflows ${workflows
          .map((w) => (w === null ? "(none)" : JSON.stringify(w)))
          .join(", ")}; nothing was done: name the workflow`,
        { workflows },
      );
    }
    const holder = holders[0];
    if (request.op === "getTask") {
      if (holder !== undefined) return settle(holder.outcome);
      // Nothing found: a shard that could not answer might hold it.
      if (failed !== undefined) return settle(failed.outcome);
      return { op: "getTask", task: null } as OkReply<TaskOp>;
    }
    // A change waits until every shard answered: one that did not might hold a second task of the id.
    if (failed !== undefined) return settle(failed.outcome);
    if (holder === undefined) throw new UnknownTaskError(request.taskId);
    return settle(await this.ask(holder.shardId, request));
  }

  private async ask(shardId: string, request: TaskRequest): Promise<Outcome> {
    try {
      return { ok: true, reply: await this.ctx.link.request(shardId, request) };
    } catch (error) {
      return { ok: false, error };
    }
  }
}
