/**
 * The latest frontier announcement of every shard, as lease routing reads it.
 *
 * Shards publish `{ key, runnable, ... }` on `frontier.<cluster>.frontier` on
 * change (throttled) and every second. The board keeps the last one per shard
 * with the coordinator's own receive time (shard clocks are not compared with
 * ours); a shard not heard from for `staleMs` is dropped, so a dead shard
 * stops attracting leases within a few seconds.
 *
 * Between announcements the router corrects the board with the frontier a
 * shard's lease reply carries (`observe`: exact). From a shard that does not
 * send it, it guesses from the grant (`noteGrant`): fewer tasks than asked
 * without a bound means the shard has nothing more; fewer than asked under
 * `maxKey` means its next key lies beyond it. The next announcement
 * overwrites these guesses.
 *
 * Long-poll: `waitForRunnable` resolves when an announcement with runnable
 * tasks of the waiter's types arrives (or at its timeout, or on close);
 * nothing polls.
 *
 * Task types: an announcement lists each type's frontier (`types`, at most
 * MAX_ANNOUNCED_TYPES; `typesOmitted` counts the rest). The board keeps them
 * per shard, and `runnable(types)` gives each shard's frontier for the
 * types a lease names (`frontierOfTypes`: their least key, their runnable
 * count, their depths), so a lease for T is routed by T's tasks only. An
 * announcement without `types` (a test's, or one with nothing runnable)
 * counts as all of the default type.
 */
import { DEFAULT_TASK_TYPE } from "@frontier/core";
import {
  type DepthPart,
  type FrontierAnnouncement,
  frontierOfTypes,
  typeEntriesOf,
} from "@frontier/protocol";

/** One type's frontier on a shard, as announced, minus what the router saw leased since. */
interface TypeEntry {
  readonly type: string;
  key: number;
  /** Null once a grant took the first task and the next is not known yet. */
  taskId: string | null;
  runnable: number;
  readonly depth?: readonly number[];
}

/** Past this many type names with news counters, the counters start over (a news for every type). */
const MAX_NEWS_TYPES = 4_096;

export interface ShardFrontier {
  readonly shardId: string;
  /** Ordering key of the shard's next task; null when nothing is runnable. */
  key: number | null;
  /**
   * The task at `key`, as announced; null when not known (nothing runnable,
   * or `key` is a guess after a grant): ties at the key then go unbounded.
   */
  taskId: string | null;
  readonly deadline: number | null;
  /** Runnable tasks, as announced, minus what was leased since. */
  runnable: number;
  /** Ordering keys at ranks 1, 2, 4, … as announced (FrontierAnnouncement.depth); absent: not told. */
  readonly depth?: readonly number[];
  /**
   * With several parts (a lease naming several types runnable here): each
   * type's depth and runnable count; a bound is the sum of the parts'.
   * Absent: `depth` (if any) is the only part.
   */
  readonly parts?: readonly DepthPart[];
  /** Per type (FrontierAnnouncement.types), adjusted by grants; what `runnable(types)` reads. */
  readonly types?: TypeEntry[];
  readonly typesOmitted?: number;
  readonly seq: number;
  /** The coordinator's clock (ms) when the announcement arrived. */
  readonly receivedAt: number;
}

/** A waiting long-poll: woken by news of runnable tasks of its types. */
interface Waiter {
  readonly types: readonly string[];
  readonly done: (woken: boolean) => void;
}

export class FrontierBoard {
  private readonly latest = new Map<string, ShardFrontier>();
  private readonly waiters = new Set<Waiter>();
  private closed = false;
  private runnableNews = 0;
  /** Announcements with runnable tasks per type, and news for every type (omitted types, restarts). */
  private readonly typeNews = new Map<string, number>();
  private everyTypeNews = 0;

  constructor(
    private readonly staleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records an announcement; wakes every long-poll waiting for one of the
   * types it has runnable tasks of. O(waiters · types).
   */
  update(a: FrontierAnnouncement): void {
    if (this.closed) return;
    const runnable = a.runnable > 0 && a.key !== null;
    const types: TypeEntry[] = typeEntriesOf(a);
    this.latest.set(a.shardId, {
      shardId: a.shardId,
      key: a.key,
      taskId: a.taskId,
      deadline: a.deadline,
      runnable: a.runnable,
      ...(a.depth === undefined ? {} : { depth: a.depth }),
      types,
      ...(a.typesOmitted === undefined ? {} : { typesOmitted: a.typesOmitted }),
      seq: a.seq,
      receivedAt: this.now(),
    });
    if (!runnable) return;
    this.runnableNews++;
    let everyType = (a.typesOmitted ?? 0) > 0;
    if (everyType) this.everyTypeNews++;
    if (this.typeNews.size + types.length > MAX_NEWS_TYPES) {
      // Bounded memory: forget the counters, and count news for every type (every waiter looks
      // again), by more than any counter held, so that no type's news ever goes down.
      let most = 0;
      for (const n of this.typeNews.values()) most = Math.max(most, n);
      this.typeNews.clear();
      this.everyTypeNews += most + 1;
      everyType = true;
    }
    for (const t of types) this.typeNews.set(t.type, (this.typeNews.get(t.type) ?? 0) + 1);
    for (const waiter of [...this.waiters]) {
      if (everyType || waiter.types.some((type) => types.some((t) => t.type === type))) waiter.done(true);
    }
  }

  /**
   * Counts the announcements with runnable tasks so far: a long-poll reads
   * it before it asks the shards, and waits only if nothing came meanwhile
   * (one that arrived while it was asking would otherwise go unseen until
   * the next).
   */
  get news(): number {
    return this.runnableNews;
  }

  /**
   * As `news`, for the announcements with runnable tasks of `types` (absent:
   * the default type): what a long-poll for those types reads. O(types).
   */
  newsFor(types: readonly string[] | undefined): number {
    let news = this.everyTypeNews;
    for (const type of types ?? [DEFAULT_TASK_TYPE]) news += this.typeNews.get(type) ?? 0;
    return news;
  }

  /**
   * A shard's frontier as its lease reply gave it (numbered in the same
   * sequence as its announcements): taken unless the board already holds
   * a later one of the same process (a reply can be read after an
   * announcement published after it).
   */
  observe(a: FrontierAnnouncement): void {
    const f = this.latest.get(a.shardId);
    if (f !== undefined && f.seq >= a.seq) return;
    this.update(a);
  }

  /** Forget a shard (it was found down); it comes back with its next announcement. */
  forget(shardId: string): void {
    this.latest.delete(shardId);
  }

  /** Shards heard from within staleMs. Drops the others. O(shards). */
  fresh(): ShardFrontier[] {
    const cutoff = this.now() - this.staleMs;
    const out: ShardFrontier[] = [];
    for (const [id, f] of this.latest) {
      if (f.receivedAt < cutoff) this.latest.delete(id);
      else out.push(f);
    }
    return out;
  }

  /**
   * Fresh shards with runnable tasks of `types` (absent: the default type),
   * each with its frontier for those types (frontierOfTypes), in dispatch
   * order of their first tasks: least key first, ties by task id (an
   * unknown one last), then shard id. O(s log s + s · types).
   */
  runnable(types?: readonly string[]): ShardFrontier[] {
    const byId = (a: string | null, b: string | null) =>
      a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1;
    const views: (ShardFrontier & { key: number })[] = [];
    for (const f of this.fresh()) {
      if (f.key === null || f.runnable <= 0) continue;
      const first = frontierOfTypes(f, types);
      if (first === null) continue;
      const parts = first.parts;
      views.push({
        shardId: f.shardId,
        key: first.key,
        taskId: first.taskId,
        deadline: f.deadline,
        runnable: first.runnable,
        ...(parts?.length === 1 ? { depth: parts[0]!.depth } : parts === undefined ? {} : { parts }),
        seq: f.seq,
        receivedAt: f.receivedAt,
      });
    }
    return views.sort(
      (a, b) =>
        a.key - b.key ||
        byId(a.taskId, b.taskId) ||
        (a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0),
    );
  }

  /**
   * What a grant of `granted` tasks of `types` (absent: the default type),
   * asked `asked` under `maxKey`, tells of the shard until it announces
   * again.
   */
  noteGrant(
    shardId: string,
    asked: number,
    granted: number,
    maxKey: number | undefined,
    seqAtRequest: number,
    types?: readonly string[],
  ): void {
    const f = this.latest.get(shardId);
    // An announcement that arrived while the request was out already counts
    // the grant: adjusting it again would hide runnable tasks (and break EDF).
    if (f === undefined || f.seq !== seqAtRequest) return;
    f.runnable = Math.max(0, f.runnable - granted);
    const named = (f.types ?? []).filter((t) => (types ?? [DEFAULT_TASK_TYPE]).includes(t.type));
    let left = granted;
    for (const t of named) {
      const taken = Math.min(left, t.runnable);
      t.runnable -= taken;
      left -= taken;
    }
    if (granted >= asked) return;
    // The first task is gone (granted); which comes next is not known until the shard says.
    for (const t of named) {
      t.taskId = null;
      if (maxKey === undefined) t.runnable = 0;
      else if (t.key < maxKey) t.key = maxKey;
    }
    f.taskId = null;
    if (maxKey === undefined && named.length === (f.types ?? []).length) f.runnable = 0;
    else if (maxKey !== undefined && f.key !== null && f.key < maxKey) f.key = maxKey;
  }

  /**
   * Resolves true when an announcement with runnable tasks of `types`
   * (absent: the default type) arrives (at once when one came after
   * `newsFor(types)` was `since`), false after `ms` or when the board
   * closes (or `signal` aborts: the waiter no longer cares). Costs one
   * timer; nothing polls.
   */
  waitForRunnable(
    ms: number,
    since?: number,
    signal?: AbortSignal,
    types?: readonly string[],
  ): Promise<boolean> {
    if (this.closed || ms <= 0 || signal?.aborted) return Promise.resolve(false);
    if (since !== undefined && this.newsFor(types) > since) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        types: types ?? [DEFAULT_TASK_TYPE],
        done: (woken: boolean) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          signal?.removeEventListener("abort", aborted);
          resolve(woken);
        },
      };
      const aborted = () => waiter.done(false);
      const timer = setTimeout(aborted, ms);
      this.waiters.add(waiter);
      signal?.addEventListener("abort", aborted, { once: true });
    });
  }

  /** Long-polls waiting now. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Ends every long-poll (they answer with what they have) and ignores further announcements. */
  close(): void {
    this.closed = true;
    this.wakeAll(false);
  }

  private wakeAll(woken: boolean): void {
    for (const waiter of [...this.waiters]) waiter.done(woken);
  }
}
