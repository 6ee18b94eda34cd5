/**
 * The slot directory: which shard owns each of the SLOT_COUNT slots, as the
 * JetStream KV bucket `frontier-<cluster>-slots` (@frontier/protocol's
 * `slotBucketName`) says. One contract for every reader, shards and
 * coordinators alike:
 *
 *   - keys are `slot.<n>`, n in canonical decimal below SLOT_COUNT
 *     (`slotKey`, `slotOfKey`); any other key is not the directory's;
 *   - a value is the owning shard's id (UTF-8), a subject token
 *     (`isValidToken`); any other value, a deleted or a purged key, leaves the
 *     slot unowned;
 *   - one watcher (`SlotMap`) keeps a live copy: it loads the whole table
 *     (the last value of every key) and swaps it in at once — a generation —,
 *     then applies each change over an older revision of its key only. After
 *     NATS reconnects, or when the watch ends (a bucket deleted and made
 *     again), it loads a new generation; until that is in, it keeps the last
 *     known table. While the bucket does not exist yet (no shard has started)
 *     it tries again every `retryMs`.
 *
 * Writes (revision-checked claims and releases) are the shards' alone
 * (@frontier/cluster's SlotOwnership); a reader may record a write it made
 * (`observe`) so the map shows it before the watcher delivers it.
 */
import { setTimeout as delay } from "node:timers/promises";
import { isValidToken, SLOT_COUNT, slotBucketName } from "@frontier/protocol";
import { type KV, Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator, Status } from "@nats-io/transport-node";

/** What the directory may log (pino's methods, or nothing). */
export interface SlotMapLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** `slot.<n>`. */
export function slotKey(slot: number): string {
  return `slot.${slot}`;
}

const SLOT_KEY = /^slot\.(0|[1-9][0-9]{0,3})$/;

/** The slot a bucket key names, or undefined for any other key (`slot.01`, `slot.1024`, `other`). */
export function slotOfKey(key: string): number | undefined {
  const m = SLOT_KEY.exec(key);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return n < SLOT_COUNT ? n : undefined;
}

/** The shard a value names, or undefined when it is not a shard id. */
export function slotOwnerOf(value: string): string | undefined {
  const id = value.trim();
  return isValidToken(id) ? id : undefined;
}

/** One change of the table: slot `slot` went from `previous` to `owner` (undefined: no owner). */
export interface SlotChange {
  readonly slot: number;
  readonly owner: string | undefined;
  readonly previous: string | undefined;
}

/** The read side routers and shards use. */
export interface SlotDirectory {
  /** The shard owning `slot`, or undefined while nobody does. O(1). */
  ownerOf(slot: number): string | undefined;
  /** Every shard owning at least one slot. O(shards). */
  shards(): readonly string[];
  /** How many of the SLOT_COUNT slots have an owner. O(shards). */
  ownedCount(): number;
  /**
   * Resolves true once the directory has held the whole table (every owner
   * at some moment), false if that takes over `timeoutMs`. Absent: always
   * whole (a fixed table).
   */
  whenLoaded?(timeoutMs: number): Promise<boolean>;
}

export interface SlotMapOptions {
  readonly cluster: string;
  /** How long to wait before trying again while the bucket is missing or a load failed, ms. Default 1000. */
  readonly retryMs?: number;
  readonly log?: SlotMapLog;
}

interface Entry {
  readonly owner: string | undefined;
  /** The KV revision that set it; a write only replaces an older one. */
  readonly revision: number;
}

const decoder = new TextDecoder();

/**
 * The live slot → shard map of one cluster (see the module comment).
 * Invariant: `perShard` counts each shard's entries in `entries`, so
 * `shards()` and `ownedCount()` cost O(shards). Listeners get every change,
 * synchronously, and their errors never reach the map.
 */
export class SlotMap implements SlotDirectory {
  /** The bucket's name. */
  readonly bucket: string;
  private entries = new Map<number, Entry>();
  private readonly perShard = new Map<string, number>();
  private readonly listeners = new Set<(change: SlotChange) => void>();
  private readonly retryMs: number;
  private readonly log: SlotMapLog | undefined;
  private readonly abort = new AbortController();
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private statusIter: QueuedIterator<Status> | undefined;
  private generation = 0;
  /** Resolved when a generation is in; replaced when a new one is asked for. */
  private nextLoad = deferred<void>();
  private everLoaded = false;
  private readonly firstLoad = deferred<void>();
  private loggedMissing = false;
  private running: Promise<void> | undefined;
  private restart: (() => void) | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    options: SlotMapOptions,
  ) {
    this.bucket = slotBucketName(options.cluster);
    this.retryMs = options.retryMs ?? 1_000;
    this.log = options.log;
  }

  /**
   * Starts watching the bucket of `options.cluster` in the background. The
   * bucket need not exist yet. See `whenLoaded`.
   */
  static start(nc: NatsConnection, options: SlotMapOptions): SlotMap {
    const map = new SlotMap(nc, options);
    map.running = map.run();
    map.followReconnects();
    return map;
  }

  ownerOf(slot: number): string | undefined {
    return this.entries.get(slot)?.owner;
  }

  /** The slots `shardId` owns, ascending. O(SLOT_COUNT). */
  slotsOf(shardId: string): number[] {
    const slots: number[] = [];
    for (const [slot, entry] of this.entries) if (entry.owner === shardId) slots.push(slot);
    return slots.sort((a, b) => a - b);
  }

  /** Every owned slot with its owner (a copy). */
  owners(): Map<number, string> {
    const owners = new Map<number, string>();
    for (const [slot, entry] of this.entries) if (entry.owner !== undefined) owners.set(slot, entry.owner);
    return owners;
  }

  shards(): string[] {
    return [...this.perShard.keys()].sort();
  }

  ownedCount(): number {
    let n = 0;
    for (const count of this.perShard.values()) n += count;
    return n;
  }

  /** Slots with no owner, ascending. */
  freeSlots(): number[] {
    const free: number[] = [];
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (this.ownerOf(slot) === undefined) free.push(slot);
    return free;
  }

  /** Whether the whole table has been in at least once (then `ownerOf` answers from it). */
  get loaded(): boolean {
    return this.everLoaded;
  }

  whenLoaded(timeoutMs: number): Promise<boolean> {
    if (this.everLoaded) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      void this.firstLoad.promise.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Calls `listener` on every change of an owner; returns the function that stops it. */
  onChange(listener: (change: SlotChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Records a write this process made (or read) at `revision`, so the map
   * shows it before the watcher delivers it. Ignored if older than what the
   * map holds.
   */
  observe(slot: number, owner: string | undefined, revision: number): void {
    this.apply(slot, { owner, revision });
  }

  /** Loads the table again (a new generation); resolves once it is in (or the map is closed). */
  resync(): Promise<void> {
    const next = this.nextLoad.promise;
    this.restart?.();
    return Promise.race([next, this.closedPromise()]);
  }

  /** Stops watching. Idempotent. */
  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.watcher?.stop();
    this.statusIter?.stop();
    this.restart?.();
    this.listeners.clear();
    await this.running;
  }

  // ---------------------------------------------------------------- internals

  private closedPromise(): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) resolve();
      else this.abort.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Generations, one after another, until closed: each loads the table, then follows it. */
  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      const generation = ++this.generation;
      const ended = new Promise<void>((resolve) => {
        this.restart = resolve;
      });
      try {
        const kv = await new Kvm(this.nc).open(this.bucket);
        await this.follow(kv, generation, ended);
      } catch (error) {
        if (this.abort.signal.aborted) break;
        // Expected until the first shard creates the bucket: said once, not every retry.
        if (!this.loggedMissing) {
          this.log?.warn(
            { bucket: this.bucket, err: messageOf(error) },
            "slot bucket not readable yet; retrying",
          );
          this.loggedMissing = true;
        }
        await Promise.race([ended, sleep(this.retryMs, this.abort.signal)]);
      }
    }
  }

  /** Loads one generation from `kv` and applies its changes until it ends (a restart, the watch ending, close). */
  private async follow(kv: KV, generation: number, ended: Promise<void>): Promise<void> {
    // A watch with no slot key to deliver yields no entry to say "loaded": ask first. Only slot keys
    // count: the bucket also holds the cluster's identity and its shard ids (cluster-identity.ts).
    const keys = await kv.keys("slot.>");
    const empty = (await keys[Symbol.asyncIterator]().next()).done === true;
    keys.stop();
    const watcher = await kv.watch({ key: "slot.>" });
    this.watcher = watcher;
    void ended.then(() => watcher.stop());
    const fresh = new Map<number, Entry>();
    let inGeneration = false;
    const loaded = () => {
      inGeneration = true;
      this.replace(fresh);
      this.loggedMissing = false;
      const done = this.nextLoad;
      this.nextLoad = deferred<void>();
      done.resolve();
      if (!this.everLoaded) {
        this.everLoaded = true;
        this.firstLoad.resolve();
      }
    };
    if (empty) loaded();
    for await (const e of watcher) {
      if (generation !== this.generation) break;
      const slot = slotOfKey(e.key);
      if (slot === undefined) {
        // Not the directory's key (`slot.01`, `slot.1024`): skipped, but it may end the load.
        if (!inGeneration && e.delta === 0) loaded();
        continue;
      }
      const value = e.operation === "PUT" ? decoder.decode(e.value) : undefined;
      const owner = value === undefined ? undefined : slotOwnerOf(value);
      if (value !== undefined && owner === undefined) {
        this.log?.warn({ key: e.key, value }, "slot owner is not a valid shard id; slot left unowned");
      }
      const entry: Entry = { owner, revision: e.revision };
      if (inGeneration) this.apply(slot, entry);
      else {
        fresh.set(slot, entry);
        // delta: messages still pending after this one; 0 ends the initial load.
        if (e.delta === 0) loaded();
      }
    }
    if (!this.abort.signal.aborted && generation === this.generation) {
      this.log?.info({ bucket: this.bucket }, "slot watch ended; loading the table again");
    }
  }

  private followReconnects(): void {
    const iter = this.nc.status() as QueuedIterator<Status>;
    this.statusIter = iter;
    void (async () => {
      for await (const s of iter) {
        if (s.type === "reconnect") {
          this.log?.info({ bucket: this.bucket }, "NATS reconnected; loading the slot table again");
          this.restart?.();
        }
      }
    })();
  }

  private apply(slot: number, entry: Entry): void {
    const previous = this.entries.get(slot);
    if (previous && previous.revision >= entry.revision) return;
    this.entries.set(slot, entry);
    this.count(previous?.owner, -1);
    this.count(entry.owner, +1);
    if (previous?.owner !== entry.owner) this.emit({ slot, owner: entry.owner, previous: previous?.owner });
  }

  private replace(fresh: Map<number, Entry>): void {
    const old = this.entries;
    // Wholly: revisions restart in a bucket made again, so nothing of the old generation is kept
    // (a write observed while this one loaded comes again from the watch, which goes on).
    this.entries = new Map(fresh);
    this.perShard.clear();
    for (const entry of this.entries.values()) this.count(entry.owner, +1);
    const changes: SlotChange[] = [];
    for (const [slot, entry] of this.entries) {
      const owner = old.get(slot)?.owner;
      if (owner !== entry.owner) changes.push({ slot, owner: entry.owner, previous: owner });
    }
    for (const [slot, entry] of old) {
      if (!this.entries.has(slot) && entry.owner !== undefined) {
        changes.push({ slot, owner: undefined, previous: entry.owner });
      }
    }
    for (const change of changes) this.emit(change);
  }

  private count(owner: string | undefined, by: number): void {
    if (owner === undefined) return;
    const n = (this.perShard.get(owner) ?? 0) + by;
    if (n === 0) this.perShard.delete(owner);
    else this.perShard.set(owner, n);
  }

  private emit(change: SlotChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.log?.error({ err: messageOf(error) }, "a slot map listener threw");
      }
    }
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {});
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
