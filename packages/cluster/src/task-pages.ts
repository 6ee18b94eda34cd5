/**
 * A shard's page for `listTasks` and `getWorkflow`: the engine's page
 * (task-query.ts in @frontier/core), cut to LIST_PAGE_BYTES, with the cursor
 * of its last task. The cluster orders tasks by (deadline, id, shardId), so
 * a shard whose id sorts after the cursor's also takes the task at exactly
 * the cursor's (deadline, id): that one is another shard's task.
 */
import type { TaskPage, TaskQuery, TaskSummary } from "@frontier/core";
import { type ListCursor, type ResultOf, withinListBudget } from "@frontier/protocol";

export interface PageRequest {
  readonly after?: ListCursor;
  readonly limit: number;
}

/**
 * `list` runs the engine's query; `filter` is the rest of the query. The
 * page's `next` is null only when the engine has nothing after it.
 */
export function shardPage(
  shardId: string,
  request: PageRequest,
  filter: Omit<TaskQuery, "after" | "inclusive" | "limit">,
  list: (query: TaskQuery) => TaskPage,
): ResultOf<"getWorkflow"> {
  const { after, limit } = request;
  const query: TaskQuery =
    after === undefined
      ? { ...filter, limit }
      : {
          ...filter,
          limit,
          after: { deadline: after.deadline, id: after.id },
          inclusive: shardId > after.shardId,
        };
  const page = list(query);
  const tasks = withinListBudget(page.tasks);
  const cut = tasks.length < page.tasks.length;
  const last = tasks.at(-1);
  const next = (page.more || cut) && last !== undefined ? cursorOf(last, shardId) : null;
  return { tasks, next };
}

export function cursorOf(task: TaskSummary, shardId: string): ListCursor {
  return { deadline: task.deadline, id: task.id, shardId };
}
