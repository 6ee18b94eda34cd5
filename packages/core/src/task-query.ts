/**
 * Task queries: pages of tasks matching a filter, in one fixed order, for
 * operators (`frontier list`, `frontier show --workflow`). Read-only.
 *
 * Order: (deadline, id) ascending, ids compared as plain strings — the
 * dispatch order, so the first page of RUNNABLE tasks is what runs next, and
 * a cursor `{ deadline, id }` resumes right after the last task of a page
 * however the tasks moved since (a task whose deadline changed may be seen
 * twice or not at all, as in any keyset pagination).
 *
 * Cost: one pass over the table's handles reading a byte (state) and a
 * float (deadline) per task, plus O(log limit) for each task that falls
 * inside the page so far (a bounded max-heap keeps the `limit + 1` least
 * keys). No per-state or per-workflow index is kept: the pass costs a few
 * milliseconds on 10^6 tasks (measured in the package README), while an
 * index would cost every transition and memory on every task.
 */
import { isTerminal, S, STATE_NAMES, type TaskTable } from "./task-table.js";
import { DEFAULT_TASK_TYPE, type TaskState } from "./types.js";

/** Where a page starts: after the task at `{ deadline, id }` (or at it, `inclusive`). */
export interface TaskCursor {
  readonly deadline: number;
  readonly id: string;
}

export interface TaskQuery {
  /** Only tasks in one of these states (absent: any state). */
  readonly states?: readonly TaskState[];
  /** Only tasks of this workflow. */
  readonly workflowId?: string;
  /** Only tasks of these types (`"default"`: those submitted without one). */
  readonly types?: readonly string[];
  /** Only tasks with `deadline >= deadlineFrom`. */
  readonly deadlineFrom?: number;
  /** Only tasks with `deadline < deadlineTo`. */
  readonly deadlineTo?: number;
  /** Only tasks ordered after this one. */
  readonly after?: TaskCursor;
  /**
   * With `after`: also the task at exactly `after` (a cluster breaks ties
   * between shards by shard id, so a shard ordered after the cursor's shard
   * takes the equal key too).
   */
  readonly inclusive?: boolean;
  /** At most this many tasks, ≥ 1. */
  readonly limit: number;
  /** Include each task's prerequisites (a workflow's graph). */
  readonly withPrerequisites?: boolean;
}

/** A task as a listing shows it: its state and why, without its payload. */
export interface TaskSummary {
  readonly id: string;
  readonly workflowId?: string;
  /** The task's type; absent for the default type. */
  readonly type?: string;
  readonly state: TaskState;
  readonly deadline: number;
  /** Leases granted so far (each lease is an attempt). */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** Why the task is where it is: last failure, cancellation cause, expiry. */
  readonly reason?: string;
  /** When it reached its terminal state. */
  readonly finishedAt?: number;
  /** Prerequisite ids, only when the query asked (`withPrerequisites`). */
  readonly prerequisites?: readonly string[];
}

export interface TaskPage {
  /** In (deadline, id) order. */
  readonly tasks: TaskSummary[];
  /** More tasks match after the last one. */
  readonly more: boolean;
}

/** Whether handle a's key is after handle b's: (deadline, id). */
function after(t: TaskTable, a: number, b: number): boolean {
  const da = t.deadline[a]!;
  const db = t.deadline[b]!;
  return da > db || (da === db && t.ids[a]! > t.ids[b]!);
}

/** The page of tasks matching `q`. O(handles + matches · log limit). */
/**
 * `typeNames[code]` names each task type code held (the engine's
 * TaskTypes.names; "" for a released code), for `types` and the summaries.
 */
export function queryTasks(t: TaskTable, q: TaskQuery, typeNames: readonly string[] = []): TaskPage {
  // The codes of the types asked for (a type no task has matches nothing).
  let codes: Uint8Array | undefined;
  if (q.types !== undefined) {
    codes = new Uint8Array(Math.max(1, typeNames.length));
    if (q.types.includes(DEFAULT_TASK_TYPE)) codes[0] = 1;
    typeNames.forEach((name, code) => {
      if (name !== "" && q.types!.includes(name)) codes![code] = 1;
    });
  }
  let stateMask = 0;
  for (const s of q.states ?? STATE_NAMES) stateMask |= 1 << S[s];
  const from = q.deadlineFrom ?? Number.NEGATIVE_INFINITY;
  const to = q.deadlineTo ?? Number.POSITIVE_INFINITY;
  const cursorDeadline = q.after?.deadline ?? Number.NEGATIVE_INFINITY;
  const cursorId = q.after?.id;
  const inclusive = q.inclusive === true;
  const workflow = q.workflowId;
  const keep = q.limit + 1; // one more than the page: whether more remain
  // Max-heap of the least `keep` keys seen so far; its top is the one to evict.
  const heap = new Int32Array(keep);
  let size = 0;
  const { state, deadline, ids, workflowId, typeCode } = t;
  const high = t.handleLimit;
  for (let h = 0; h < high; h++) {
    if (((1 << state[h]!) & stateMask) === 0) continue;
    const d = deadline[h]!;
    if (d < from || d >= to || d < cursorDeadline) continue;
    const id = ids[h]!;
    if (id === "") continue; // a free handle
    if (workflow !== undefined && workflowId[h] !== workflow) continue;
    if (codes !== undefined && codes[typeCode[h]!] !== 1) continue;
    if (cursorId !== undefined && d === cursorDeadline && (inclusive ? id < cursorId : id <= cursorId))
      continue;
    if (size < keep) {
      // Sift up.
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!after(t, h, heap[parent]!)) break;
        heap[i] = heap[parent]!;
        i = parent;
      }
      heap[i] = h;
    } else if (after(t, heap[0]!, h)) {
      // Replace the top (the greatest kept), sift down.
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const r = l + 1;
        const c = r < size && after(t, heap[r]!, heap[l]!) ? r : l;
        if (!after(t, heap[c]!, h)) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = h;
    }
  }
  const found = Array.from(heap.subarray(0, size)).sort((a, b) => (after(t, a, b) ? 1 : -1));
  const more = found.length > q.limit;
  if (more) found.length = q.limit;
  return { tasks: found.map((h) => summaryOf(t, h, q.withPrerequisites === true, typeNames)), more };
}

function summaryOf(
  t: TaskTable,
  h: number,
  withPrerequisites: boolean,
  typeNames: readonly string[],
): TaskSummary {
  const state = t.state[h]!;
  const s: { -readonly [K in keyof TaskSummary]: TaskSummary[K] } = {
    id: t.ids[h]!,
    state: STATE_NAMES[state]!,
    deadline: t.deadline[h]!,
    attempts: t.attempts[h]!,
    maxAttempts: t.maxAttempts[h]!,
  };
  if (t.workflowId[h] !== undefined) s.workflowId = t.workflowId[h];
  if (t.typeCode[h] !== 0) s.type = typeNames[t.typeCode[h]!]!;
  if (t.reason[h] !== undefined) s.reason = t.reason[h];
  if (isTerminal(state)) s.finishedAt = t.stamp[h]!;
  if (withPrerequisites) s.prerequisites = t.prerequisites[h]!;
  return s;
}
