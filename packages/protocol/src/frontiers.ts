/**
 * A shard's frontier for a set of task types, read from its announcement
 * (FrontierAnnouncement.types): what lease routing compares between shards
 * for a lease that names those types. One function, so the coordinator's
 * routing and a shard's bound for a settle's next leases read announcements
 * the same way.
 *
 * For the named types a shard lists: their least (key, taskId), their
 * runnable tasks summed, and their depths (one part per type). For a named
 * type the shard left out (past MAX_ANNOUNCED_TYPES, `typesOmitted`): its
 * first task comes after the last listed type's first task, so that task's
 * (key, taskId) is a lower bound; it counts for one runnable task, and no
 * depth is known. Routing by a lower bound may ask a shard that then has
 * nothing, never skip a task that comes first.
 *
 * Cost: O(listed types × named types).
 */
import { DEFAULT_TASK_TYPE } from "@frontier/core";
import { FRONTIER_DEPTH_RANKS } from "./limits.js";
import type { FrontierAnnouncement } from "./messages.js";

/** One type's frontier as announced (TypeFrontierAnnouncement), or as a router adjusted it (`taskId` null: unknown). */
export interface TypeFrontierEntry {
  readonly type: string;
  readonly key: number;
  readonly taskId: string | null;
  readonly runnable: number;
  readonly depth?: readonly number[];
}

/** What `frontierOfTypes` reads of an announcement. */
export interface TypedFrontierSource {
  readonly types?: readonly TypeFrontierEntry[];
  readonly typesOmitted?: number;
}

/** A shard's frontier for some types. */
export interface FrontierOfTypes {
  /** Ordering key of the first task of the types (a lower bound when `bound`). */
  readonly key: number;
  /** That task's id; null when not known (ties at the key then go last). */
  readonly taskId: string | null;
  /** Runnable tasks of the types (an omitted type counts for one). */
  readonly runnable: number;
  /** Each listed type's depth and runnable count; absent unless every part has a depth (and none is omitted). */
  readonly parts?: readonly DepthPart[];
  /** True when the first task is an omitted type's: `key` and `taskId` only bound it from below. */
  readonly bound: boolean;
}

/**
 * An announcement's per-type frontiers, copied (a router adjusts them): its
 * `types`, or, from an announcement with runnable tasks that lists none, the
 * whole frontier as the default type's. Empty when nothing is runnable.
 */
export function typeEntriesOf(a: FrontierAnnouncement): {
  type: string;
  key: number;
  taskId: string | null;
  runnable: number;
  depth?: readonly number[];
}[] {
  if (a.runnable <= 0 || a.key === null) return [];
  if (a.types !== undefined && (a.types.length > 0 || (a.typesOmitted ?? 0) > 0))
    return a.types.map((t) => ({
      type: t.type,
      key: t.key,
      taskId: t.taskId,
      runnable: t.runnable,
      ...(t.depth === undefined ? {} : { depth: t.depth }),
    }));
  return [
    {
      type: DEFAULT_TASK_TYPE,
      key: a.key,
      taskId: a.taskId,
      runnable: a.runnable,
      ...(a.depth === undefined ? {} : { depth: a.depth }),
    },
  ];
}

/** Whether (key, id) comes before (otherKey, otherId); an unknown id goes last at its key. */
function before(key: number, id: string | null, otherKey: number, otherId: string | null): boolean {
  if (key !== otherKey) return key < otherKey;
  if (id === null) return false;
  return otherId === null || id < otherId;
}

/**
 * The frontier of `types` (absent: the default type only) in `source`, or
 * null when none of them has runnable tasks there.
 */
export function frontierOfTypes(
  source: TypedFrontierSource,
  types: readonly string[] | undefined,
): FrontierOfTypes | null {
  const wanted = types ?? [DEFAULT_TASK_TYPE];
  const listed = source.types ?? [];
  let first: TypeFrontierEntry | undefined;
  let runnable = 0;
  const parts: DepthPart[] = [];
  let everyDepth = true;
  let found = 0;
  for (const entry of listed) {
    if (!wanted.includes(entry.type)) continue;
    found++;
    if (entry.runnable <= 0) continue;
    runnable += entry.runnable;
    if (entry.depth !== undefined && entry.depth.length > 0)
      parts.push({ depth: entry.depth, runnable: entry.runnable });
    else everyDepth = false;
    if (first === undefined || before(entry.key, entry.taskId, first.key, first.taskId)) first = entry;
  }
  const last = listed[listed.length - 1];
  const omitted = (source.typesOmitted ?? 0) > 0 && found < wanted.length && last !== undefined;
  if (omitted) {
    // A named type not listed may be among the omitted: the last listed first task bounds it.
    runnable += 1;
    everyDepth = false;
    if (first === undefined) return { key: last.key, taskId: last.taskId, runnable, bound: true };
  }
  if (first === undefined) return null;
  return {
    key: first.key,
    taskId: first.taskId,
    runnable,
    ...(everyDepth && parts.length > 0 ? { parts } : {}),
    bound: false,
  };
}

/** A shard's depth for some types as announced: keys at FRONTIER_DEPTH_RANKS, and what is runnable (FrontierOfTypes.parts). */
export interface DepthPart {
  readonly depth: readonly number[];
  readonly runnable: number;
}

/**
 * How many of the parts' runnable tasks have ordering keys at or before
 * `key`, at most: for each part, r − 1 where r is the first announced rank
 * whose key is after `key`, or every runnable task when none is (past the
 * deepest rank told, nothing is known). Summed over the parts. What a
 * coordinator's parallel round and a shard's order window both count by.
 */
export function atMostAtOrBefore(parts: readonly DepthPart[], key: number): number {
  let sum = 0;
  for (const { depth, runnable } of parts) {
    let part = runnable;
    for (let i = 0; i < depth.length; i++) {
      if (depth[i]! > key) {
        part = FRONTIER_DEPTH_RANKS[i]! - 1;
        break;
      }
    }
    sum += part;
  }
  return sum;
}
