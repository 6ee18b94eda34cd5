/**
 * The other shards' frontiers, as they announce them: what a shard needs to
 * keep global earliest-deadline-first order when it grants leases without a
 * coordinator (the next leases of a `settle`). It grants only tasks whose
 * ordering key is at most the least key another shard announced with
 * runnable tasks — exactly the bound (`maxKey`) a coordinator would give it,
 * and as current as the announcements (the same staleness a coordinator
 * routes with).
 */
import {
  atMostAtOrBefore,
  type DepthPart,
  type FrontierAnnouncement,
  type FrontierOfTypes,
  frontierOfTypes,
  type TypeFrontierEntry,
  typeEntriesOf,
} from "@frontier/protocol";

interface Seen {
  readonly key: number | null;
  readonly taskId: string | null;
  readonly runnable: number;
  readonly types?: readonly TypeFrontierEntry[];
  readonly typesOmitted?: number;
  readonly seq: number;
  /** Our clock when it arrived: a shard's `at` is its own clock, so freshness is judged by ours. */
  readonly receivedAt: number;
}

export class PeerFrontiers {
  private readonly peers = new Map<string, Seen>();

  constructor(
    private readonly selfId: string,
    /** An announcement older than this (ms) no longer bounds grants: its shard may be gone. */
    private readonly staleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes an announcement (our own, and older ones of a shard, are ignored; a restart starts `seq` over). */
  observe(a: FrontierAnnouncement): void {
    if (a.shardId === this.selfId) return;
    const prior = this.peers.get(a.shardId);
    const now = this.now();
    // A lower seq is a reordered older message, unless the prior one is stale (the shard restarted).
    if (prior !== undefined && a.seq <= prior.seq && now - prior.receivedAt < this.staleMs) return;
    this.peers.set(a.shardId, {
      key: a.key,
      taskId: a.taskId,
      runnable: a.runnable,
      types: typeEntriesOf(a),
      ...(a.typesOmitted === undefined ? {} : { typesOmitted: a.typesOmitted }),
      seq: a.seq,
      receivedAt: now,
    });
  }

  /** The least ordering key any other shard announced with runnable tasks, lately; undefined when none. */
  leastKey(): number | undefined {
    return this.least()?.key;
  }

  /**
   * The first task of `types` (absent: the default type; see
   * frontierOfTypes), in dispatch order (key, then task id), any other
   * shard announced with runnable tasks, lately: the bound a settle's next
   * leases of those types stay within. Undefined when none.
   */
  least(types?: readonly string[]): { key: number; taskId: string | null } | undefined {
    let least: { key: number; taskId: string | null } | undefined;
    for (const first of this.firstsOf(types)) {
      const before =
        least === undefined ||
        first.key < least.key ||
        (first.key === least.key &&
          first.taskId !== null &&
          (least.taskId === null || first.taskId < least.taskId));
      if (before) least = { key: first.key, taskId: first.taskId };
    }
    return least;
  }

  /**
   * How many runnable tasks of `types` the other shards announced, lately,
   * with ordering keys at or before a key: an upper bound per shard read off
   * its depth (the keys at FRONTIER_DEPTH_RANKS), summed. Undefined when a
   * shard with such tasks did not tell its depth (or omitted one of the
   * types): then only `least` bounds a grant.
   */
  atOrBefore(types?: readonly string[]): ((key: number) => number) | undefined {
    const parts: DepthPart[] = [];
    for (const first of this.firstsOf(types)) {
      if (first.parts === undefined) return undefined;
      parts.push(...first.parts);
    }
    return (key) => atMostAtOrBefore(parts, key);
  }

  /** The frontier of `types` of each other shard heard from lately with such runnable tasks (forgetting the stale). */
  private *firstsOf(types: readonly string[] | undefined): Generator<FrontierOfTypes> {
    const now = this.now();
    for (const [shardId, seen] of this.peers) {
      if (now - seen.receivedAt >= this.staleMs) {
        this.peers.delete(shardId);
        continue;
      }
      if (seen.runnable <= 0 || seen.key === null) continue;
      const first = frontierOfTypes(seen, types);
      if (first !== null) yield first;
    }
  }

  /** Whether `shardId` announced lately (within the staleness bound). */
  heardFrom(shardId: string): boolean {
    const seen = this.peers.get(shardId);
    return seen !== undefined && this.now() - seen.receivedAt < this.staleMs;
  }

  /** The ids of the shards heard from lately, ascending. */
  live(): string[] {
    const now = this.now();
    return [...this.peers]
      .filter(([, seen]) => now - seen.receivedAt < this.staleMs)
      .map(([shardId]) => shardId)
      .sort();
  }

  /** Shards heard from lately. */
  get size(): number {
    return this.peers.size;
  }
}
