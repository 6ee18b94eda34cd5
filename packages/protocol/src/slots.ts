/**
 * Slot hashing: every task belongs to one of SLOT_COUNT hash slots, and each
 * slot to one shard. The slot of a task must never change for the life of a
 * cluster's data, so the hash below is frozen: changing it (or SLOT_COUNT)
 * moves every task to another shard. Golden values in slots.test.ts pin it.
 */

/** Number of hash slots. A power of two, so a slot is a mask of the hash. */
export const SLOT_COUNT = 1024;
const SLOT_MASK = SLOT_COUNT - 1;

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a, 32 bits, over the UTF-8 bytes of `s` (a lone surrogate counts as
 * U+FFFD, as TextEncoder encodes it). Encodes inline rather than through
 * TextEncoder: no allocation per call, and ids are short. O(length).
 */
export function fnv1a32(s: string): number {
  let h = FNV_OFFSET_BASIS;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (c >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
        continue;
      }
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * The slot of a partition key, in [0, SLOT_COUNT): FNV-1a, then murmur3's
 * 32-bit finalizer, then the low bits. FNV-1a alone spreads sequential keys
 * ("wf-1", "wf-2", ...) unevenly over its low bits (chi-square ~1650-1900
 * over 1024 slots where a uniform hash gives ~1023 ± 45); the finalizer's
 * five integer ops make every input bit reach every output bit.
 */
export function slotOf(partitionKey: string): number {
  let h = fnv1a32(partitionKey);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & SLOT_MASK;
}

/**
 * What routes a task: its workflow (which keeps a workflow's tasks on one
 * shard), else its own id; a task of a large workflow, by (workflowId, id),
 * so the workflow spreads over every slot. The pair is hashed as the
 * workflow id's length, a separator, then both ids: no two pairs (nor a
 * pair and a plain key with a different length prefix) hash the same input.
 */
export function partitionKeyOf(task: {
  readonly id: string;
  readonly workflowId?: string | undefined;
  readonly large?: boolean | undefined;
}): string {
  const workflowId = task.workflowId;
  if (workflowId === undefined) return task.id;
  return task.large === true ? `${workflowId.length}:${workflowId}${task.id}` : workflowId;
}

/**
 * A task named in a request (heartbeat, complete, cancel, ...). The caller
 * passes the task's workflowId when it has one, so the request can be routed
 * to the owning shard without a lookup.
 */
export interface TaskRef {
  readonly taskId: string;
  readonly workflowId?: string | undefined;
  /** The task is of a large workflow (Task.large): it routes by (workflowId, taskId). */
  readonly large?: boolean | undefined;
}

/** `partitionKeyOf` for a task named by a request. */
export function partitionKeyOfRef(ref: TaskRef): string {
  return partitionKeyOf({ id: ref.taskId, workflowId: ref.workflowId, large: ref.large });
}

/** The slot a task, or a request about it, routes to. */
export function slotOfTask(task: {
  readonly id: string;
  readonly workflowId?: string | undefined;
  readonly large?: boolean | undefined;
}): number {
  return slotOf(partitionKeyOf(task));
}

/**
 * The slot of task `id` of the large workflow `workflowId`: where a remote
 * link's prerequisite, or a completion event's dependent, lives. A
 * prerequisite of a large task is remote when its slot is not the task's
 * own: the engine's rule (core's SchedulerOptions.partitionOf, which is
 * `slotOfTask` in a cluster), which core states for itself, since it does
 * not depend on this package.
 */
export function slotOfLargeTask(id: string, workflowId: string): number {
  return slotOfTask({ id, workflowId, large: true });
}

/**
 * The home slot of a task id (docs/cluster.md, "One id space per cluster"):
 * where the cluster keeps the id's claim, so that one shard knows, for each
 * id, the task that holds it. It is the slot the task would route to without
 * a workflow (`slotOf(id)`, the same frozen hash), so a task without a
 * workflow is homed where it lives and its claim is its own row; only a task
 * of a workflow whose slot is on another shard than its id's home needs a
 * claim elsewhere.
 */
export function homeSlotOf(taskId: string): number {
  return slotOf(taskId);
}
