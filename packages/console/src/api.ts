/**
 * The console's JSON API over the SDK: what each route asks the cluster and
 * what it answers, apart from HTTP. Every read is one bounded request (a page
 * of at most MAX_PAGE_LIMIT tasks, or stats), so the console costs the same
 * with 10^6 tasks as with ten; the one exception, a task's dependents, reads
 * at most DEPENDENT_SCAN_PAGES pages of its workflow and says when it stopped.
 */
import type { ClusterStats, FrontierClient } from "@frontier/client";
import type { TaskState, TaskSummary, TaskView } from "@frontier/core";
import type { ListCursor, ShardCoverage } from "@frontier/protocol";
import { MAX_PAGE_LIMIT } from "./defaults.js";
import { cursorOfToken, pageToken } from "./page-token.js";
import { idParam, limitParam, taskListQuery } from "./query-input.js";

/** Prerequisites whose state the task page shows (each is one getTask). */
const PREREQUISITES_SHOWN = 50;
/** Workflow pages read to find a task's dependents (MAX_PAGE_LIMIT tasks each). */
const DEPENDENT_SCAN_PAGES = 10;

export interface StatsReply extends ClusterStats {
  /** When the console read them (ms since the epoch): the browser's rates divide by its differences. */
  readonly at: number;
}

export interface TaskPageReply {
  readonly tasks: readonly TaskSummary[];
  /** Token of the next page (pass as `after`), or null. */
  readonly next: string | null;
  readonly shards: ShardCoverage;
}

export interface TaskReply {
  readonly task: TaskView;
  readonly prerequisites: readonly { readonly id: string; readonly state: TaskState | null }[];
  readonly dependents: readonly { readonly id: string; readonly state: TaskState }[];
  /** Dependents were looked for only among the first DEPENDENT_SCAN_PAGES pages of the workflow. */
  readonly dependentsCut: boolean;
}

export interface WorkflowPageReply {
  readonly workflowId: string;
  readonly tasks: readonly TaskSummary[];
  readonly next: string | null;
}

/** The task the cluster does not know: answered 404. */
export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
}

export class ConsoleApi {
  constructor(private readonly client: FrontierClient) {}

  async stats(): Promise<StatsReply> {
    const stats = await this.client.stats();
    return { ...stats, at: Date.now() };
  }

  async tasks(params: URLSearchParams): Promise<TaskPageReply> {
    const page = await this.client.listTasks(taskListQuery(params));
    return { tasks: page.tasks, next: tokenOf("tasks", page.next), shards: page.shards };
  }

  async task(id: string, params: URLSearchParams): Promise<TaskReply> {
    const workflowId = idParam("workflow", params.get("workflow"));
    const task = await this.client.getTask(id, workflowId === undefined ? {} : { workflowId });
    if (task === null) throw new NotFoundError(`no task ${JSON.stringify(id)}`);
    const routed = task.workflowId === undefined ? {} : { workflowId: task.workflowId };
    const shown = task.prerequisites.slice(0, PREREQUISITES_SHOWN);
    const prerequisites = await Promise.all(
      shown.map(async (p) => ({ id: p, state: (await this.client.getTask(p, routed))?.state ?? null })),
    );
    const { dependents, cut } =
      task.workflowId === undefined ? { dependents: [], cut: false } : await this.dependents(task);
    return { task, prerequisites, dependents, dependentsCut: cut };
  }

  async workflow(id: string, params: URLSearchParams): Promise<WorkflowPageReply> {
    const token = params.get("after");
    const page = await this.client.getWorkflow(id, {
      limit: limitParam(params.get("limit")),
      ...(token === null || token === "" ? {} : { after: cursorOfToken("workflow", token) }),
    });
    return { workflowId: id, tasks: page.tasks, next: tokenOf("workflow", page.next) };
  }

  /** Dependents share the task's workflow (a cluster keeps a workflow on one shard). */
  private async dependents(
    task: TaskView,
  ): Promise<{ dependents: { id: string; state: TaskState }[]; cut: boolean }> {
    const found: { id: string; state: TaskState }[] = [];
    let after: ListCursor | undefined;
    for (let pages = 0; pages < DEPENDENT_SCAN_PAGES; pages++) {
      const page = await this.client.getWorkflow(task.workflowId!, {
        limit: MAX_PAGE_LIMIT,
        ...(after === undefined ? {} : { after }),
      });
      for (const t of page.tasks)
        if (t.prerequisites?.includes(task.id)) found.push({ id: t.id, state: t.state });
      if (page.next === null) return { dependents: found, cut: false };
      after = page.next;
    }
    return { dependents: found, cut: true };
  }
}

function tokenOf(kind: "tasks" | "workflow", next: ListCursor | null): string | null {
  return next === null ? null : pageToken(kind, next);
}
