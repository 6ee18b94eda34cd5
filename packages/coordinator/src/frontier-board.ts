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
 * tasks arrives (or at its timeout, or on close); nothing polls.
 */
import type { FrontierAnnouncement } from "@frontier/protocol";

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
  readonly seq: number;
  /** The coordinator's clock (ms) when the announcement arrived. */
  readonly receivedAt: number;
}

export class FrontierBoard {
  private readonly latest = new Map<string, ShardFrontier>();
  private readonly waiters = new Set<(woken: boolean) => void>();
  private closed = false;
  private runnableNews = 0;

  constructor(
    private readonly staleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records an announcement; wakes every long-poll when it has runnable tasks. O(waiters). */
  update(a: FrontierAnnouncement): void {
    if (this.closed) return;
    this.latest.set(a.shardId, {
      shardId: a.shardId,
      key: a.key,
      taskId: a.taskId,
      deadline: a.deadline,
      runnable: a.runnable,
      ...(a.depth === undefined ? {} : { depth: a.depth }),
      seq: a.seq,
      receivedAt: this.now(),
    });
    if (a.runnable > 0 && a.key !== null) {
      this.runnableNews++;
      this.wakeAll(true);
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
   * Fresh shards with runnable tasks in dispatch order of their first tasks:
   * least key first, ties by task id (an unknown one last), then shard id.
   * O(s log s).
   */
  runnable(): ShardFrontier[] {
    const byId = (a: string | null, b: string | null) =>
      a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1;
    return this.fresh()
      .filter((f): f is ShardFrontier & { key: number } => f.key !== null && f.runnable > 0)
      .sort(
        (a, b) =>
          a.key - b.key ||
          byId(a.taskId, b.taskId) ||
          (a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0),
      );
  }

  /**
   * What a grant of `granted` tasks, asked `asked` under `maxKey`, tells of
   * the shard until it announces again.
   */
  noteGrant(
    shardId: string,
    asked: number,
    granted: number,
    maxKey: number | undefined,
    seqAtRequest: number,
  ): void {
    const f = this.latest.get(shardId);
    // An announcement that arrived while the request was out already counts
    // the grant: adjusting it again would hide runnable tasks (and break EDF).
    if (f === undefined || f.seq !== seqAtRequest) return;
    f.runnable = Math.max(0, f.runnable - granted);
    if (granted >= asked) return;
    // The first task is gone (granted); which comes next is not known until the shard says.
    f.taskId = null;
    if (maxKey === undefined) f.runnable = 0;
    else if (f.key !== null && f.key < maxKey) f.key = maxKey;
  }

  /**
   * Resolves true when an announcement with runnable tasks arrives (at once
   * when one came after `news` was `since`), false after `ms` or when the
   * board closes (or `signal` aborts: the waiter no longer cares). Costs
   * one timer; nothing polls.
   */
  waitForRunnable(ms: number, since?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || ms <= 0 || signal?.aborted) return Promise.resolve(false);
    if (since !== undefined && this.runnableNews > since) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", aborted);
        resolve(woken);
      };
      const aborted = () => done(false);
      const timer = setTimeout(aborted, ms);
      this.waiters.add(done);
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
    for (const done of [...this.waiters]) done(woken);
  }
}
