/**
 * Requests about one task (heartbeat, complete, fail, cancel, updateDeadline,
 * getTask) go to the shard owning the slot of the task's partition key:
 * `slotOf(workflowId ?? taskId)`.
 *
 * A client that names a task by id alone, when the task has a workflow, sends
 * it to the wrong slot. So when a request without `workflowId` finds no task
 * at the owner (UNKNOWN_TASK, or getTask's null), or the owner cannot be
 * reached, every other known shard is asked in parallel (scatter) before the
 * answer is UNKNOWN_TASK. This is safe for the mutating ops: a task lives on
 * exactly one shard, and the others answer UNKNOWN_TASK without a change.
 * A shard that could not be asked (down, timed out) might hold the task, so
 * then the answer is its retryable error, never UNKNOWN_TASK.
 */
import { ErrorCode, FrontierError } from "@frontier/core";
import { isRetryable, type OkReply, partitionKeyOfRef, type RequestOf, slotOf } from "@frontier/protocol";
import { SlotUnownedError } from "./errors.js";
import type { ShardLink } from "./shard-link.js";
import type { SlotDirectory } from "./slot-table.js";

export const TASK_OPS = ["heartbeat", "complete", "fail", "cancel", "updateDeadline", "getTask"] as const;
export type TaskOp = (typeof TASK_OPS)[number];

export interface TaskOpsContext {
  readonly link: ShardLink;
  readonly slots: SlotDirectory;
  /**
   * Every shard worth asking in a scatter: slot owners and shards announcing
   * a frontier. Rejects (retryably) while the coordinator cannot know them all.
   */
  readonly knownShards: () => Promise<Iterable<string>>;
  readonly onScatter?: (op: TaskOp) => void;
}

export type TaskRequest = RequestOf<TaskOp>;

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

export class TaskOpRouter {
  constructor(private readonly ctx: TaskOpsContext) {}

  async route(request: TaskRequest): Promise<OkReply<TaskOp>> {
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

  private async ask(shardId: string, request: TaskRequest): Promise<Outcome> {
    try {
      return { ok: true, reply: await this.ctx.link.request(shardId, request) };
    } catch (error) {
      return { ok: false, error };
    }
  }
}
