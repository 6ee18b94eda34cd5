/**
 * Per-type counts in stats (SchedulerStats.types) as a reply carries them:
 * at most MAX_STATS_TYPES types, the busiest (most runnable and leased
 * tasks, ties by name) kept, the rest counted in `typesOmitted`; and the
 * shards' counts merged into the cluster's. Shards and coordinators bound
 * them the same way here.
 */
import type { TypeCounts } from "@frontier/core";
import { MAX_STATS_TYPES } from "./limits.js";

const byName = (a: TypeCounts, b: TypeCounts): number => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0);

/**
 * `types` cut to the `limit` busiest, in type order, with how many were left
 * out (added to `omitted` already left out upstream). O(t log t).
 */
export function boundTypeCounts(
  types: readonly TypeCounts[] | undefined,
  omitted = 0,
  limit = MAX_STATS_TYPES,
): { types?: readonly TypeCounts[]; typesOmitted?: number } {
  if (types === undefined) return omitted > 0 ? { typesOmitted: omitted } : {};
  if (types.length <= limit) return omitted > 0 ? { types, typesOmitted: omitted } : { types };
  const busiest = [...types]
    .sort((a, b) => b.runnable + b.leased - (a.runnable + a.leased) || byName(a, b))
    .slice(0, limit)
    .sort(byName);
  return { types: busiest, typesOmitted: omitted + types.length - limit };
}

/**
 * Several shards' per-type counts as one (summed per type), bounded as
 * above; `typesOmitted` is the largest any shard left out plus what the
 * bound leaves out here (a type may be omitted by several shards: it is
 * counted once at least). O(t log t).
 */
export function mergeTypeCounts(
  all: Iterable<{ readonly types?: readonly TypeCounts[]; readonly typesOmitted?: number }>,
): { types?: readonly TypeCounts[]; typesOmitted?: number } {
  const sums = new Map<string, { type: string; runnable: number; leased: number }>();
  let told = false;
  let omitted = 0;
  for (const stats of all) {
    omitted = Math.max(omitted, stats.typesOmitted ?? 0);
    if (stats.types === undefined) continue;
    told = true;
    for (const c of stats.types) {
      const sum = sums.get(c.type) ?? { type: c.type, runnable: 0, leased: 0 };
      sum.runnable += c.runnable;
      sum.leased += c.leased;
      sums.set(c.type, sum);
    }
  }
  if (!told) return omitted > 0 ? { typesOmitted: omitted } : {};
  return boundTypeCounts([...sums.values()].sort(byName), omitted);
}
