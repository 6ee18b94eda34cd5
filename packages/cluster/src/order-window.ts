/**
 * How many next leases a shard may grant a settle without a coordinator,
 * under a cluster's order window (ShardActorTuning.orderWindow).
 *
 * A settle's next leases come from one shard, the one the worker settles
 * with. Exact earliest-deadline-first across shards lets that shard grant
 * only its tasks before every other shard's first: with deadlines that
 * interleave over the shards that is a task or two, so a worker's leases
 * come from coordinator rounds (worker → coordinator → every shard, a
 * commit each → back), and two shards drain slower than one
 * (docs/benchmarks.md, "Session 14: two shards and the order window").
 *
 * A window of W lets the shard take its part of the cluster's first W
 * runnable tasks instead: it grants its own tasks in order while each is
 * among the first W, counting the other shards' tasks before it from their
 * announced depths (the keys at FRONTIER_DEPTH_RANKS, an upper bound per
 * shard). The other shards' part of those W waits for their own settles or
 * a coordinator's round. So a task a settle grants has at most W − 1
 * runnable tasks of its types before it in the whole cluster, as far as the
 * announcements are current — or none on other shards (exact order allows
 * that much already, whatever W). A stale announcement counts tasks the
 * other shard has granted since: the share comes out smaller, never larger.
 */

/** The cluster's order across shards, as a settle's next leases keep it. */
export type OrderWindow = number | "shard";

/**
 * The largest order window accepted. A window past the other shards'
 * announced depths (to rank 256 each) grants no more than one at them:
 * beyond its deepest rank, every runnable task of a shard counts.
 */
export const MAX_ORDER_WINDOW = 100_000;

/**
 * How many of its first tasks a shard grants a settle.
 *
 * @param ownKeys the shard's first runnable tasks' ordering keys, ascending
 *   (of the settle's types; at most `max` of them are looked at)
 * @param othersAtOrBefore the other shards' runnable tasks (of those types)
 *   with ordering keys at or before a key, at most (PeerFrontiers.atOrBefore)
 * @param window the order window; "shard" for no order across shards (each
 *   shard's own order only); 0 grants only what comes before every other
 *   shard's first task
 * @param max the leases the settle asked for
 */
export function settleShare(
  ownKeys: readonly number[],
  othersAtOrBefore: (key: number) => number,
  window: OrderWindow,
  max: number,
): number {
  const n = Math.min(max, ownKeys.length);
  if (window === "shard") return n;
  let granted = 0;
  while (granted < n) {
    const before = othersAtOrBefore(ownKeys[granted]!);
    // The next own task's rank in the cluster: own tasks before it, others' before it, itself.
    if (before > 0 && granted + before + 1 > window) break;
    granted++;
  }
  return granted;
}
