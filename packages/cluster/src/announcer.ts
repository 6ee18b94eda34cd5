/**
 * Frontier announcements of one shard: its earliest runnable task (deadline,
 * ordering key, id) and runnable count, published on
 * `frontier.<cluster>.frontier` so coordinators route leases without asking.
 *
 * When:
 *  - on change: a request that may move the frontier calls `changed()`, and
 *    every `pollMs` the frontier is looked at anyway (timers inside the
 *    shard — lease expiry, retry backoff — change it with no request);
 *  - at least every `intervalMs` (a heartbeat: coordinators drop shards
 *    they have not heard from);
 *  - never two within `throttleMs`: a change inside that window is published
 *    when it ends (the latest state, once); except that a shard whose last
 *    word (an announcement, or the frontier in a lease reply) said it had
 *    nothing runnable announces its first runnable task at once: a coordinator's waiting long-polls act on it (a dependent
 *    just unblocked, a task just submitted to an idle cluster), so dispatch
 *    at light load is pushed, not held back by the throttle.
 * `seq` goes up by one per announcement, from 0 when the process starts.
 *
 * Lease long-polls wait here too (`waitForChange`): they wake on any change
 * seen, throttled or not.
 */
import type { FrontierAnnouncement, TypeFrontierAnnouncement } from "@frontier/protocol";

/** The part of an announcement that describes the shard's frontier. */
export interface Frontier {
  readonly deadline: number | null;
  readonly key: number | null;
  readonly taskId: string | null;
  readonly runnable: number;
  /** Ordering keys at ranks 1, 2, 4, … (see FrontierAnnouncement.depth); absent: not told. */
  readonly depth?: readonly number[];
  /** Per task type (FrontierAnnouncement.types); absent or empty when nothing is runnable. */
  readonly types?: readonly TypeFrontierAnnouncement[];
  /** Types with runnable tasks left out of `types` (FrontierAnnouncement.typesOmitted). */
  readonly typesOmitted?: number;
}

export const EMPTY_FRONTIER: Frontier = { deadline: null, key: null, taskId: null, runnable: 0 };

export interface AnnouncerOptions {
  readonly shardId: string;
  readonly intervalMs: number;
  readonly throttleMs: number;
  readonly pollMs: number;
  /** The frontier now, or null when the shard does not serve (nothing is announced then). */
  read(): Frontier | null;
  /**
   * The keys at ranks 1, 2, 4, … (FrontierAnnouncement.depth) of the whole
   * shard, or of one task type, read only for what goes out
   * (announcements, snapshots), not for every look at the frontier: it
   * costs more than the rest. Absent or undefined: not told.
   */
  readDepth?(type?: string): readonly number[] | undefined;
  publish(announcement: FrontierAnnouncement): void;
  /** Wall clock for `at`; default Date.now. */
  now?: () => number;
}

export class FrontierAnnouncer {
  private seq = 0;
  private lastSeen: Frontier | undefined;
  private lastPublished: Frontier | undefined;
  private lastPublishAt = Number.NEGATIVE_INFINITY;
  /**
   * The last frontier this shard told anyone (published, or in a lease
   * reply) had nothing runnable: coordinators wait on it, so the next
   * runnable task is announced at once.
   */
  private toldEmpty = false;
  /**
   * The task types the last frontier told anyone of had runnable tasks
   * (all of them when some were omitted: `toldOmitted`). A type not among
   * them that becomes runnable is announced at once, as the first runnable
   * task of an empty shard is: long-polls for that type wait on it.
   */
  private toldTypes = new Set<string>();
  private toldOmitted = false;
  private checkQueued = false;
  private delayed: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: AnnouncerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Announcements published (or handed out as snapshots) so far. */
  get published(): number {
    return this.seq;
  }

  /**
   * The frontier now as an announcement, numbered in the published sequence
   * but not published (a lease reply carries it); null when the shard does
   * not serve. Later announcements get higher numbers, so a receiver can
   * tell which of the two is newer.
   */
  snapshot(): FrontierAnnouncement | null {
    const frontier = this.options.read();
    if (frontier === null) return null;
    this.told(frontier);
    return { shardId: this.options.shardId, ...this.withDepth(frontier), seq: this.seq++, at: this.now() };
  }

  /** Publishes the first announcement and starts the timers. */
  start(): void {
    this.poll = setInterval(() => this.check(), this.options.pollMs);
    this.poll.unref();
    this.check(true);
  }

  /** Something may have moved the frontier: look soon (once per event-loop turn, however many calls). */
  changed(): void {
    if (this.checkQueued || this.stopped) return;
    this.checkQueued = true;
    setImmediate(() => {
      this.checkQueued = false;
      this.check();
    });
  }

  /** Resolves on the next change of the frontier, after `ms`, or when `signal` aborts or the announcer stops. */
  waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.stopped || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Stops the timers and wakes every waiter; with `final`, publishes it at
   * once (a closing shard announces that it has nothing runnable).
   */
  stop(final?: Frontier): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.poll);
    clearTimeout(this.delayed);
    clearTimeout(this.heartbeat);
    this.wake();
    if (final) this.publishNow(final);
  }

  // ---------------------------------------------------------------- internals

  private check(force = false): void {
    if (this.stopped) return;
    const frontier = this.options.read();
    if (frontier === null) return;
    if (!this.lastSeen || !same(frontier, this.lastSeen)) {
      this.lastSeen = frontier;
      this.wake();
    }
    if (force || !this.lastPublished || !same(frontier, this.lastPublished)) {
      this.publishSoon(this.urgent(frontier));
    }
  }

  /**
   * Publishes now if the throttle allows (or `urgent`: runnable work where
   * there was none), else once when it does (with the state of that moment).
   */
  private publishSoon(urgent = false): void {
    const wait = this.lastPublishAt + this.options.throttleMs - this.now();
    if (wait <= 0 || urgent) {
      const frontier = this.options.read();
      if (frontier !== null) this.publishNow(frontier);
      return;
    }
    if (this.delayed) return;
    this.delayed = setTimeout(() => {
      this.delayed = undefined;
      if (this.stopped) return;
      const frontier = this.options.read();
      // publishSoon again: a timer may fire a little early by the wall clock.
      if (frontier !== null && (!this.lastPublished || !same(frontier, this.lastPublished))) {
        this.publishSoon();
      }
    }, wait);
    this.delayed.unref();
  }

  /** Whether `frontier` has runnable work of which the last word told nobody: then it goes out at once. */
  private urgent(frontier: Frontier): boolean {
    if (frontier.runnable === 0) return false;
    if (this.toldEmpty) return true;
    if (this.toldOmitted) return false;
    return (frontier.types ?? []).some((t) => !this.toldTypes.has(t.type));
  }

  /** Remembers what `frontier`, just told, said was runnable. */
  private told(frontier: Frontier): void {
    this.toldEmpty = frontier.runnable === 0;
    this.toldTypes = new Set((frontier.types ?? []).map((t) => t.type));
    this.toldOmitted = (frontier.typesOmitted ?? 0) > 0;
  }

  /** `frontier` with its depths (the whole shard's and each type's), when the shard tells them. */
  private withDepth(frontier: Frontier): Frontier {
    const read = this.options.readDepth;
    if (frontier.key === null || read === undefined) return frontier;
    const depth = read.call(this.options);
    const out: { -readonly [K in keyof Frontier]: Frontier[K] } = { ...frontier };
    if (depth !== undefined && depth.length > 0 && depth[0] === frontier.key) out.depth = depth;
    if (frontier.types !== undefined && frontier.types.length > 0) {
      const only = frontier.types.length === 1 && (frontier.typesOmitted ?? 0) === 0;
      out.types = frontier.types.map((t) => {
        // A type with one runnable task has its depth in its key; the only type, the shard's.
        const typeDepth = t.runnable === 1 ? [t.key] : only ? depth : read.call(this.options, t.type);
        return typeDepth === undefined || typeDepth.length === 0 || typeDepth[0] !== t.key
          ? t
          : { ...t, depth: typeDepth };
      });
    }
    return out;
  }

  private publishNow(frontier: Frontier): void {
    const at = this.now();
    this.options.publish({ shardId: this.options.shardId, ...this.withDepth(frontier), seq: this.seq++, at });
    this.lastPublished = frontier;
    this.told(frontier);
    this.lastPublishAt = at;
    if (this.stopped) return;
    clearTimeout(this.heartbeat);
    this.heartbeat = setTimeout(() => {
      const now = this.options.read();
      if (now !== null && !this.stopped) this.publishNow(now);
      else if (!this.stopped) this.heartbeat?.refresh();
    }, this.options.intervalMs);
    this.heartbeat.unref();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** The same frontier, depth aside (it is not read for looks; a change in it comes with one of these). */
function same(a: Frontier, b: Frontier): boolean {
  return (
    a.key === b.key &&
    a.deadline === b.deadline &&
    a.taskId === b.taskId &&
    a.runnable === b.runnable &&
    (a.typesOmitted ?? 0) === (b.typesOmitted ?? 0) &&
    sameTypes(a.types ?? [], b.types ?? [])
  );
}

/** The same per-type frontiers, depths aside. O(types), at most MAX_ANNOUNCED_TYPES. */
function sameTypes(a: readonly TypeFrontierAnnouncement[], b: readonly TypeFrontierAnnouncement[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.type !== y.type || x.key !== y.key || x.taskId !== y.taskId || x.runnable !== y.runnable)
      return false;
  }
  return true;
}
