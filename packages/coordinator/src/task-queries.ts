/**
 * Operators' queries across the cluster:
 *
 *   listTasks   → every known shard, in parallel, from the same cursor; their
 *                 pages merged in (deadline, id, shardId) order
 *   getWorkflow → the one shard owning slotOf(workflowId)
 *
 * Merging: each shard's page holds its first tasks after the cursor. A
 * shard that has more (`next`) may hold tasks between its last one and
 * another shard's, so the merged page stops at the least last-task among the
 * shards with more; below that bound every shard's tasks are all there.
 * Then `limit` and LIST_PAGE_BYTES cut it, and `next` is the cursor of its
 * last task whenever anything was left. A shard that does not answer is
 * named in `shards.missing` (as for stats): the page lacks its tasks.
 * Cost: one request per shard, O(shards · limit · log) to merge.
 */
import type { TaskSummary } from "@frontier/core";
import {
  type GetWorkflowRequest,
  type ListCursor,
  type ListTasksRequest,
  ProtocolError,
  type ResultOf,
  type ShardCoverage,
  slotOf,
  toWireError,
  WireErrorCode,
  withinListBudget,
} from "@frontier/protocol";
import { SlotUnownedError } from "./errors.js";
import type { ShardLink } from "./shard-link.js";
import type { SlotDirectory } from "./slot-table.js";

export interface TaskQueryContext {
  readonly link: ShardLink;
  readonly slots: SlotDirectory;
  /** Every shard to ask (waits for a starting coordinator's slot table; see Coordinator). */
  readonly knownShards: () => Promise<Iterable<string>>;
}

/** One shard's page, as it answered. */
export interface ShardPage {
  readonly shardId: string;
  readonly tasks: readonly TaskSummary[];
  readonly next: ListCursor | null;
}

/** Whether (deadline, id, shardId) of a is before b's. */
function before(a: ListCursor, b: ListCursor): boolean {
  if (a.deadline !== b.deadline) return a.deadline < b.deadline;
  if (a.id !== b.id) return a.id < b.id;
  return a.shardId < b.shardId;
}

const keyOf = (task: TaskSummary, shardId: string): ListCursor => ({
  deadline: task.deadline,
  id: task.id,
  shardId,
});

/** The shards' pages as one page of at most `limit` tasks (see the module comment). */
export function mergePages(pages: readonly ShardPage[], limit: number): ResultOf<"getWorkflow"> {
  let bound: ListCursor | undefined;
  for (const page of pages) {
    const last = page.tasks.at(-1);
    if (page.next === null || last === undefined) continue;
    const key = keyOf(last, page.shardId);
    if (bound === undefined || before(key, bound)) bound = key;
  }
  const all: { key: ListCursor; task: TaskSummary }[] = [];
  for (const page of pages)
    for (const task of page.tasks) {
      const key = keyOf(task, page.shardId);
      if (bound === undefined || !before(bound, key)) all.push({ key, task });
    }
  all.sort((a, b) => (before(a.key, b.key) ? -1 : before(b.key, a.key) ? 1 : 0));
  const total = pages.reduce((n, p) => n + p.tasks.length, 0);
  const kept = withinListBudget(all.slice(0, limit));
  const last = kept.at(-1);
  const left = kept.length < total || pages.some((p) => p.next !== null);
  return { tasks: kept.map((k) => k.task), next: left && last !== undefined ? last.key : null };
}

export class TaskQueryRouter {
  constructor(private readonly ctx: TaskQueryContext) {}

  /** A page of every shard's tasks; an error only when no shard answered. */
  async listTasks(request: ListTasksRequest): Promise<ResultOf<"listTasks">> {
    const ids = [...new Set(await this.ctx.knownShards())].sort();
    if (ids.length === 0) {
      throw new ProtocolError(
        WireErrorCode.SHARD_UNAVAILABLE,
        "no shards known yet (no slot owners, no frontier announcements); retry once shards have started",
      );
    }
    const settled = await Promise.allSettled(ids.map((shardId) => this.ctx.link.request(shardId, request)));
    const pages: ShardPage[] = [];
    const missing: ShardCoverage["missing"][number][] = [];
    settled.forEach((r, i) => {
      const shardId = ids[i]!;
      if (r.status === "fulfilled") pages.push({ shardId, tasks: r.value.tasks, next: r.value.next });
      else {
        const { code, detail } = toWireError(r.reason);
        missing.push(detail === undefined ? { shardId, code } : { shardId, code, detail });
      }
    });
    if (pages.length === 0) {
      const codes = missing.map((m) => `${m.shardId}: ${m.code}`).join(", ");
      const timedOut = missing.every((m) => m.code === WireErrorCode.TIMEOUT);
      throw new ProtocolError(
        timedOut ? WireErrorCode.TIMEOUT : WireErrorCode.SHARD_UNAVAILABLE,
        `no shard answered the listTasks request (${codes})`,
      );
    }
    const page = mergePages(pages, request.limit);
    return { ...page, shards: { answered: pages.map((p) => p.shardId), missing } };
  }

  /** The workflow's page, from the shard owning its slot. */
  async getWorkflow(request: GetWorkflowRequest): Promise<ResultOf<"getWorkflow">> {
    const slot = slotOf(request.workflowId);
    const owner = this.ctx.slots.ownerOf(slot);
    if (owner === undefined)
      throw new SlotUnownedError(slot, `no shard owns slot ${slot} (workflow ${request.workflowId}); retry`);
    const { tasks, next } = await this.ctx.link.request(owner, request);
    return { tasks, next };
  }
}
