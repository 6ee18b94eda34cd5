/**
 * Slot ownership, kept in NATS itself: a JetStream key-value bucket
 * `frontier-<cluster>-slots` maps `slot.<n>` to the id of the shard that
 * owns slot n (the value is the id, UTF-8).
 *
 * Invariants:
 *  - Every write is revision-checked. A claim is `create` (refused if the key
 *    holds a value); a release is a delete conditional on the revision that
 *    shows the releasing shard as owner. So two shards can never both own a
 *    slot: of two concurrent claims, exactly one create succeeds.
 *  - Ownership is tied to the shard id, not to a process: a shard that
 *    restarts with the same id (and so the same data directory) still owns
 *    its slots, and nothing is written.
 *
 * `SlotMap` is the read side: a live copy of the table kept by a KV watcher,
 * for shards (is this slot mine?) and coordinators (which shard owns it?).
 */
import { SLOT_COUNT, slotBucketName } from "@frontier/protocol";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type KV, Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator, Status } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { DEFAULT_CLAIM_CONCURRENCY, DEFAULT_CLUSTER, DEFAULT_KV_REPLICAS } from "./options.js";
import { formatSlots, isSlot, type SlotAssignment, spreadSlots } from "./slots.js";
import { deferred, mapConcurrent, messageOf, pause, withTimeout } from "./util.js";

/** Revisions of each key the bucket keeps (for `nats kv history`); ownership changes are rare. */
export const SLOT_BUCKET_HISTORY = 8;
/** How long `SlotMap.watch` waits for the table to load, in ms. */
export const DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS = 15_000;

/** `frontier-<cluster>-slots`: the one name, from @frontier/protocol. */
export { slotBucketName } from "@frontier/protocol";

/** `slot.<n>`. */
export function slotKey(slot: number): string {
  return `slot.${slot}`;
}

/** The slot a bucket key names, or undefined for any other key. */
export function slotOfKey(key: string): number | undefined {
  const m = /^slot\.(\d{1,4})$/.exec(key);
  const n = m ? Number(m[1]) : Number.NaN;
  return isSlot(n) ? n : undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface SlotBucketOptions {
  /** Default DEFAULT_CLUSTER. */
  readonly cluster?: string;
  /** Replicas when the bucket is created. Default DEFAULT_KV_REPLICAS. */
  readonly kvReplicas?: number;
  readonly logger?: Logger;
}

/**
 * Opens the slot bucket of `cluster`, creating it if it does not exist. A
 * bucket that exists with another configuration (say, more replicas) is
 * opened as it is.
 */
export async function openSlotBucket(nc: NatsConnection, options: SlotBucketOptions = {}): Promise<KV> {
  const bucket = slotBucketName(options.cluster ?? DEFAULT_CLUSTER);
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(bucket, {
      history: SLOT_BUCKET_HISTORY,
      replicas: options.kvReplicas ?? DEFAULT_KV_REPLICAS,
    });
  } catch (error) {
    try {
      const kv = await kvm.open(bucket);
      await kv.status();
      return kv;
    } catch {
      throw error;
    }
  }
}

// ------------------------------------------------------------------ SlotMap

/** One change of the table: slot `slot` went from `previous` to `owner` (undefined: no owner). */
export interface SlotChange {
  readonly slot: number;
  readonly owner: string | undefined;
  readonly previous: string | undefined;
}

export interface SlotMapOptions extends SlotBucketOptions {
  /** See DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS. */
  readonly loadTimeoutMs?: number;
}

interface Entry {
  readonly owner: string | undefined;
  /** The KV revision that set it; a write only replaces an older one. */
  readonly revision: number;
}

/**
 * A live slot → shard map of one cluster, fed by a watcher on the bucket.
 *
 * Generations: the map loads the whole table (the last value of every key)
 * and swaps it in at once, then applies updates as they come, each only
 * over an older revision of its key. After NATS reconnects it loads a new
 * generation the same way: the server may have lost the bucket or been
 * replaced, so the old watcher's position means nothing any more. Until the
 * new generation is in, the map keeps the last known table.
 *
 * Reads are O(1) (`ownerOf`) or O(slots) (`slotsOf`). Listeners get every
 * change, synchronously, and their errors never reach the map.
 */
export class SlotMap {
  private entries = new Map<number, Entry>();
  private readonly listeners = new Set<(change: SlotChange) => void>();
  private generation = 0;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private statusIter: QueuedIterator<Status> | undefined;
  private readonly abort = new AbortController();
  private resyncing: Promise<void> | undefined;
  private resyncAgain = false;

  private constructor(
    private readonly kv: KV,
    private readonly nc: NatsConnection,
    /** The bucket's name. */
    readonly bucket: string,
    private readonly loadTimeoutMs: number,
    private readonly log: Logger | undefined,
  ) {}

  /** Opens (creating if needed) the cluster's slot bucket and resolves once the whole table is loaded. */
  static async watch(nc: NatsConnection, options: SlotMapOptions = {}): Promise<SlotMap> {
    const cluster = options.cluster ?? DEFAULT_CLUSTER;
    const kv = await openSlotBucket(nc, options);
    const map = new SlotMap(
      kv,
      nc,
      slotBucketName(cluster),
      options.loadTimeoutMs ?? DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS,
      options.logger,
    );
    try {
      await map.load();
    } catch (error) {
      await map.close();
      throw error;
    }
    map.followReconnects();
    return map;
  }

  /** The shard that owns `slot`, or undefined. */
  ownerOf(slot: number): string | undefined {
    return this.entries.get(slot)?.owner;
  }

  /** The slots `shardId` owns, ascending. */
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

  /** Ids of the shards that own at least one slot, sorted. */
  shards(): string[] {
    const ids = new Set<string>();
    for (const entry of this.entries.values()) if (entry.owner !== undefined) ids.add(entry.owner);
    return [...ids].sort();
  }

  /** How many of the SLOT_COUNT slots have an owner. */
  ownedCount(): number {
    let n = 0;
    for (const entry of this.entries.values()) if (entry.owner !== undefined) n++;
    return n;
  }

  /** Slots with no owner. */
  freeSlots(): number[] {
    const free: number[] = [];
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (this.ownerOf(slot) === undefined) free.push(slot);
    return free;
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

  /** Loads the table again (a new generation); resolves once it is in. */
  resync(): Promise<void> {
    if (this.resyncing) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      try {
        do {
          this.resyncAgain = false;
          await this.loadUntilDone();
        } while (this.resyncAgain && !this.abort.signal.aborted);
      } finally {
        this.resyncing = undefined;
      }
    })();
    return this.resyncing;
  }

  /** Stops watching. Idempotent. */
  async close(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.generation++;
    this.watcher?.stop();
    this.watcher = undefined;
    this.statusIter?.stop();
    this.statusIter = undefined;
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- internals

  /** load(), retried with backoff until it works or the map is closed. */
  private async loadUntilDone(): Promise<void> {
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      try {
        await this.load();
        return;
      } catch (error) {
        const delay = Math.min(5_000, 100 * 2 ** attempt);
        this.log?.warn({ err: messageOf(error), retryInMs: delay }, "slot table reload failed");
        await pause(delay, this.abort.signal);
      }
    }
  }

  /** Starts a new generation: a watcher from the last value of every key. Resolves once the table is in. */
  private async load(): Promise<void> {
    const generation = ++this.generation;
    this.watcher?.stop();
    this.watcher = undefined;
    // A bucket with no message yields no entry to say "loaded": ask first.
    const empty = (await this.kv.status()).values === 0;
    const watcher = await this.kv.watch({ key: "slot.>" });
    if (generation !== this.generation) {
      watcher.stop();
      return;
    }
    this.watcher = watcher;
    const fresh = new Map<number, Entry>();
    const loaded = deferred<void>();
    let inGeneration = empty;
    if (empty) {
      this.replace(fresh);
      loaded.resolve();
    }
    void (async () => {
      try {
        for await (const e of watcher) {
          if (generation !== this.generation) break;
          const slot = slotOfKey(e.key);
          if (slot === undefined) continue;
          const entry: Entry = {
            owner: e.operation === "PUT" ? decoder.decode(e.value) : undefined,
            revision: e.revision,
          };
          if (inGeneration) this.apply(slot, entry);
          else {
            fresh.set(slot, entry);
            // delta: messages still pending after this one; 0 ends the initial load.
            if (e.delta === 0) {
              inGeneration = true;
              this.replace(fresh);
              loaded.resolve();
            }
          }
        }
      } catch (error) {
        this.log?.warn({ err: messageOf(error) }, "slot watcher stopped");
      }
      loaded.reject(new Error("the slot watcher stopped before the table was loaded"));
    })();
    await withTimeout(
      loaded.promise,
      this.loadTimeoutMs,
      () => new Error(`the slot table of bucket ${this.bucket} did not load within ${this.loadTimeoutMs} ms`),
    );
  }

  private followReconnects(): void {
    const iter = this.nc.status() as QueuedIterator<Status>;
    this.statusIter = iter;
    void (async () => {
      for await (const s of iter) {
        if (s.type === "reconnect") {
          this.log?.info("NATS reconnected; reloading the slot table");
          this.resync().catch(() => {});
        }
      }
    })();
  }

  private apply(slot: number, entry: Entry): void {
    const previous = this.entries.get(slot);
    if (previous && previous.revision >= entry.revision) return;
    this.entries.set(slot, entry);
    if (previous?.owner !== entry.owner) this.emit({ slot, owner: entry.owner, previous: previous?.owner });
  }

  private replace(fresh: Map<number, Entry>): void {
    const old = this.entries;
    this.entries = fresh;
    const changes: SlotChange[] = [];
    for (const [slot, entry] of fresh) {
      const owner = old.get(slot)?.owner;
      if (owner !== entry.owner) changes.push({ slot, owner: entry.owner, previous: owner });
    }
    for (const [slot, entry] of old) {
      if (!fresh.has(slot) && entry.owner !== undefined) {
        changes.push({ slot, owner: undefined, previous: entry.owner });
      }
    }
    for (const change of changes) this.emit(change);
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

// ------------------------------------------------------------ SlotOwnership

export interface ClaimResult {
  /** Every slot the shard owns after the claim, ascending. */
  readonly owned: readonly number[];
  /** Slots this claim took (they were free). */
  readonly claimed: readonly number[];
  /** Slots asked for that another shard owns. */
  readonly taken: readonly { readonly slot: number; readonly owner: string }[];
}

export interface SlotOwnershipOptions extends SlotMapOptions {
  /** Claims in flight at once. Default DEFAULT_CLAIM_CONCURRENCY. */
  readonly claimConcurrency?: number;
}

/**
 * The write side of slot ownership, plus its live `map`. A shard opens one
 * to claim its slots; coordinators only need a `SlotMap`.
 */
export class SlotOwnership {
  private constructor(
    readonly cluster: string,
    private readonly nc: NatsConnection,
    private readonly options: SlotOwnershipOptions,
    private readonly kv: KV,
    /** The live table. */
    readonly map: SlotMap,
    private readonly concurrency: number,
    private readonly log: Logger | undefined,
  ) {}

  /** Opens (creating if needed) the cluster's slot bucket and loads its table. */
  static async open(nc: NatsConnection, options: SlotOwnershipOptions = {}): Promise<SlotOwnership> {
    const cluster = options.cluster ?? DEFAULT_CLUSTER;
    const kv = await openSlotBucket(nc, options);
    const map = await SlotMap.watch(nc, options);
    return new SlotOwnership(
      cluster,
      nc,
      options,
      kv,
      map,
      options.claimConcurrency ?? DEFAULT_CLAIM_CONCURRENCY,
      options.logger,
    );
  }

  /** The bucket's name. */
  get bucket(): string {
    return this.map.bucket;
  }

  /**
   * Whether the bucket's stream exists. A deleted one stops no watcher (it
   * waits, silently), so this is how a shard finds out (see slot-guard.ts).
   * Throws for anything but "stream not found" (NATS unreachable, ...).
   */
  async bucketExists(): Promise<boolean> {
    try {
      await this.kv.status();
      return true;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return false;
      throw error;
    }
  }

  /** Creates the bucket again (as `open` does) and loads the table anew. */
  async recreateBucket(): Promise<void> {
    await openSlotBucket(this.nc, this.options);
    await this.map.resync();
  }

  /**
   * Claims each of `slots` that is free for `shardId` (a KV create, refused
   * if another shard got there first). Slots it already owns stay its own.
   */
  async claim(shardId: string, slots: Iterable<number>): Promise<ClaimResult> {
    const list = [...new Set(slots)].sort((a, b) => a - b);
    for (const slot of list) if (!isSlot(slot)) throw new RangeError(`not a slot: ${slot}`);
    const outcomes = await mapConcurrent(list, this.concurrency, (slot) => this.claimOne(shardId, slot));
    const claimed: number[] = [];
    const taken: { slot: number; owner: string }[] = [];
    for (const [i, outcome] of outcomes.entries()) {
      const slot = list[i]!;
      if (outcome.claimed) claimed.push(slot);
      else if (outcome.owner !== shardId) taken.push({ slot, owner: outcome.owner });
    }
    return { owned: this.map.slotsOf(shardId), claimed, taken };
  }

  /**
   * Claims what `assignment` asks for (see slots.ts): "auto" keeps what
   * `shardId` owns, or claims every free slot when it owns none; a list or
   * spread claims the free ones among its slots. Never gives a slot up.
   */
  async assign(shardId: string, assignment: SlotAssignment): Promise<ClaimResult> {
    const owned = this.map.slotsOf(shardId);
    let wanted: number[];
    switch (assignment.kind) {
      case "auto":
        wanted = owned.length > 0 ? [] : this.map.freeSlots();
        break;
      case "list":
        wanted = [...assignment.slots];
        break;
      case "spread":
        wanted = spreadSlots(assignment.index, assignment.of);
        break;
      default:
        return assertNever(assignment);
    }
    const result = await this.claim(
      shardId,
      wanted.filter((slot) => this.map.ownerOf(slot) !== shardId),
    );
    if (assignment.kind !== "auto") {
      const asked = new Set(wanted);
      const extra = result.owned.filter((slot) => !asked.has(slot));
      if (extra.length > 0) {
        this.log?.info(
          { shardId, slots: formatSlots(extra) },
          "keeping slots owned before that were not asked for (their tasks are in this shard's data)",
        );
      }
    }
    return result;
  }

  /**
   * Gives up `slots` that `shardId` owns (a delete conditional on the
   * revision that shows it as owner); returns the slots released. Only for
   * a shard whose data no longer holds those slots' tasks.
   */
  async release(shardId: string, slots: Iterable<number>): Promise<number[]> {
    const list = [...new Set(slots)].sort((a, b) => a - b);
    const released = await mapConcurrent(list, this.concurrency, async (slot) => {
      const key = slotKey(slot);
      const entry = await this.kv.get(key);
      if (entry?.operation !== "PUT" || decoder.decode(entry.value) !== shardId) return false;
      await this.kv.delete(key, { previousSeq: entry.revision });
      const after = await this.kv.get(key);
      this.map.observe(slot, undefined, after?.revision ?? entry.revision + 1);
      return true;
    });
    return list.filter((_, i) => released[i]);
  }

  /**
   * Checks that `shardId` still owns `slots` and claims again those the
   * bucket no longer has (a NATS server that lost its store); returns the
   * slots it owns now. Slots another shard owns are reported, never taken.
   */
  async reclaim(shardId: string, slots: Iterable<number>): Promise<ClaimResult> {
    await this.map.resync();
    const list = [...slots];
    const claimedAgain = await this.claim(
      shardId,
      list.filter((slot) => this.map.ownerOf(slot) === undefined),
    );
    const result: ClaimResult = {
      owned: claimedAgain.owned,
      claimed: claimedAgain.claimed,
      taken: list.flatMap((slot) => {
        const owner = this.map.ownerOf(slot);
        return owner === undefined || owner === shardId ? [] : [{ slot, owner }];
      }),
    };
    if (result.claimed.length > 0) {
      this.log?.warn(
        { shardId, slots: formatSlots(result.claimed) },
        "slots were missing from the slot bucket; claimed them again",
      );
    }
    if (result.taken.length > 0) {
      this.log?.error(
        { shardId, slots: formatSlots(result.taken.map((t) => t.slot)) },
        "slots this shard owned belong to another shard now; no longer serving them",
      );
    }
    return result;
  }

  /** Stops the map's watcher. Idempotent. */
  close(): Promise<void> {
    return this.map.close();
  }

  private async claimOne(shardId: string, slot: number): Promise<{ claimed: boolean; owner: string }> {
    const key = slotKey(slot);
    try {
      const revision = await this.kv.create(key, encoder.encode(shardId));
      this.map.observe(slot, shardId, revision);
      return { claimed: true, owner: shardId };
    } catch (error) {
      // Taken (by us before, or by another shard)? Anything else is a real failure.
      const entry = await this.kv.get(key);
      if (entry?.operation !== "PUT") throw error;
      const owner = decoder.decode(entry.value);
      this.map.observe(slot, owner, entry.revision);
      return { claimed: false, owner };
    }
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected ${JSON.stringify(x)}`);
}
