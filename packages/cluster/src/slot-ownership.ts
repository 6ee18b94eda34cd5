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
 * The read side — the key and value contract and the one live watcher,
 * `SlotMap`, shared with coordinators — is @frontier/transport's slot
 * directory; this module is the write side.
 */
import { slotBucketName } from "@frontier/protocol";
import { SlotMap, slotKey } from "@frontier/transport";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm, type KvStatus } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import pMap from "p-map";
import type { Logger } from "pino";
import { DEFAULT_CLAIM_CONCURRENCY, DEFAULT_CLUSTER, DEFAULT_KV_REPLICAS } from "./options.js";
import { describeSlots, isSlot, type SlotAssignment, spreadSlots } from "./slots.js";
import { withReplicas } from "./stream-replicas.js";

/** Revisions of each key the bucket keeps (for `nats kv history`); ownership changes are rare. */
export const SLOT_BUCKET_HISTORY = 8;
/** How long `watchSlotMap` waits for the table to load, in ms. */
export const DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS = 15_000;

/** `frontier-<cluster>-slots`: the one name, from @frontier/protocol. */
export { slotBucketName } from "@frontier/protocol";

export { type SlotChange, SlotMap, slotKey, slotOfKey } from "@frontier/transport";

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
 * bucket that exists with fewer replicas than asked is scaled up
 * (stream-replicas.ts); one with more, or another configuration, is opened
 * as it is.
 */
export async function openSlotBucket(nc: NatsConnection, options: SlotBucketOptions = {}): Promise<KV> {
  const bucket = slotBucketName(options.cluster ?? DEFAULT_CLUSTER);
  const replicas = options.kvReplicas ?? DEFAULT_KV_REPLICAS;
  const kvm = new Kvm(nc);
  let kv: KV;
  let status: KvStatus;
  try {
    kv = await kvm.create(bucket, { history: SLOT_BUCKET_HISTORY, replicas });
    // Looked at even so: a create may hand back a bucket that exists (seen: one made with 1
    // replica, created again asking 3), with the replicas it has.
    status = await kv.status();
  } catch (error) {
    try {
      kv = await kvm.open(bucket);
      status = await kv.status(); // the bucket exists (open alone does not ask)
    } catch {
      throw error;
    }
  }
  if (status.replicas < replicas)
    await withReplicas(await jetstreamManager(nc), status.streamInfo, replicas, `slot bucket ${bucket}`);
  return kv;
}

export interface SlotMapOptions extends SlotBucketOptions {
  /** See DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS. */
  readonly loadTimeoutMs?: number;
}

/**
 * Starts the cluster's SlotMap and resolves once it has loaded the whole
 * table; rejects (the map closed) after `loadTimeoutMs`.
 */
export async function watchSlotMap(nc: NatsConnection, options: SlotMapOptions = {}): Promise<SlotMap> {
  const cluster = options.cluster ?? DEFAULT_CLUSTER;
  const map = SlotMap.start(nc, {
    cluster,
    ...(options.logger === undefined ? {} : { log: options.logger }),
  });
  const timeoutMs = options.loadTimeoutMs ?? DEFAULT_SLOT_MAP_LOAD_TIMEOUT_MS;
  if (!(await map.whenLoaded(timeoutMs))) {
    await map.close();
    throw new Error(`the slot table of bucket ${map.bucket} did not load within ${timeoutMs} ms`);
  }
  return map;
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
    const map = await watchSlotMap(nc, options);
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
    const outcomes = await pMap(list, (slot) => this.claimOne(shardId, slot), {
      concurrency: this.concurrency,
    });
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
          { shardId, slots: describeSlots(extra) },
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
    const released = await pMap(
      list,
      async (slot) => {
        const key = slotKey(slot);
        const entry = await this.kv.get(key);
        if (entry?.operation !== "PUT" || decoder.decode(entry.value) !== shardId) return false;
        await this.kv.delete(key, { previousSeq: entry.revision });
        const after = await this.kv.get(key);
        this.map.observe(slot, undefined, after?.revision ?? entry.revision + 1);
        return true;
      },
      { concurrency: this.concurrency },
    );
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
        { shardId, slots: describeSlots(result.claimed) },
        "slots were missing from the slot bucket; claimed them again",
      );
    }
    if (result.taken.length > 0) {
      this.log?.error(
        { shardId, slots: describeSlots(result.taken.map((t) => t.slot)) },
        "slots this shard owned belong to another shard now; no longer serving them",
      );
    }
    return result;
  }

  /**
   * Step 3 of a slot move: `slot.<n>` from `from` to `to`, an update
   * revision-checked against the revision naming `from` (never a put), so
   * a slot another write changed meanwhile is not taken. Idempotent: a
   * slot naming `to` already is fine; a key deleted (a lost store) is
   * created for `to`. Throws when the slot names a third shard.
   */
  async transfer(slot: number, from: string, to: string): Promise<void> {
    if (!isSlot(slot)) throw new RangeError(`not a slot: ${slot}`);
    const key = slotKey(slot);
    const read = async () => {
      const entry = await this.kv.get(key);
      return { entry, owner: entry?.operation === "PUT" ? decoder.decode(entry.value) : undefined };
    };
    const { entry, owner } = await read();
    if (owner === to) {
      this.map.observe(slot, to, entry!.revision);
      return;
    }
    if (owner !== undefined && owner !== from)
      throw new Error(`slot ${slot} names shard ${owner}, neither ${from} nor ${to}: not moved`);
    try {
      const value = encoder.encode(to);
      const revision =
        entry === null ? await this.kv.create(key, value) : await this.kv.update(key, value, entry.revision);
      this.map.observe(slot, to, revision);
    } catch (error) {
      // Our own earlier write (a lost reply) is fine; any other change between the read and the write is not.
      const after = await read();
      if (after.owner !== to) throw error;
      this.map.observe(slot, to, after.entry!.revision);
    }
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
