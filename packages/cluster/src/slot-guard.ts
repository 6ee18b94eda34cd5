/**
 * A shard's guard over its slots: it serves a slot only while it claimed the
 * slot itself (a KV create that succeeded, or a claim it held before a
 * restart) *and* the bucket still names it — and it keeps the two in step
 * when the bucket changes under it outside Frontier's claims.
 *
 * Frontier writes slot keys only by revision-checked claims and releases
 * (slot-ownership.ts), and with per-role permissions only shards may write
 * at all. Anything else — an unconditional `kv put` by someone holding a
 * shard's or the server's credentials, a deleted bucket, a NATS server that
 * lost its store — is caught here:
 *
 *   - the bucket gone (stream not found): made again and this shard's slots
 *     claimed again, logged as an error (`bucketRecreated`);
 *   - a key of a slot this shard claimed deleted: claimed again (`reclaimed`);
 *   - a slot this shard claimed now naming another shard: no longer served
 *     (submits for it are refused as SLOT_NOT_OWNED) and logged as an error
 *     once per owner (`lost`). Not taken back: the other shard may have
 *     claimed it legitimately after the bucket was lost, and two writers
 *     fighting over a key would be worse than a slot refused loudly;
 *   - a slot naming this shard that it never claimed: not served, and given
 *     up (a delete conditional on that revision), so that its real owner —
 *     whose tasks are elsewhere — can claim it again (`disowned`).
 *
 * Slot moves (docs/cluster.md, "Slot movement") add two sets: a slot
 * `leaving` (its tasks are being handed to another shard) is no longer
 * served, and neither claimed again nor given up while the bucket still
 * names this shard; a slot `arriving` (its tasks adopted here) is served,
 * and claimed, once the bucket names this shard — the source's
 * revision-checked update — and is never reported lost before.
 *
 * So one slot is never served by two shards, whatever is written to the
 * bucket. The guard checks on every change the map sees, and every
 * `intervalMs` (a deleted stream stops no watcher: only asking finds it).
 */
import { SLOT_COUNT } from "@frontier/protocol";
import type { Logger } from "pino";
import type { SlotChange, SlotOwnership } from "./slot-ownership.js";
import { describeSlots } from "./slots.js";
import { messageOf } from "./util.js";

export type SlotRepair = "bucketRecreated" | "reclaimed" | "lost" | "disowned";

export interface SlotGuardOptions {
  readonly shardId: string;
  /** The slots this shard claimed (or held before a restart). */
  readonly claimed: Iterable<number>;
  /** How often the bucket is checked, ms. */
  readonly intervalMs: number;
  readonly log: Logger;
  /** Told of each repair (for metrics). */
  readonly onRepair?: (kind: SlotRepair, slots: number) => void;
}

export class SlotGuard {
  private readonly claimed: Set<number>;
  /** Slots whose tasks are being moved away: not served, not reclaimed, not given up. */
  private readonly leaving = new Set<number>();
  /** Slots whose tasks were adopted here: served once the bucket names this shard. */
  private readonly arriving = new Set<number>();
  /** Slot → the foreign owner last reported, so each loss is logged once. */
  private readonly reported = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;
  private checking: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly ownership: SlotOwnership,
    private readonly options: SlotGuardOptions,
  ) {
    this.claimed = new Set(options.claimed);
  }

  /** Whether this shard serves `slot` now: it claimed it, and the bucket names it. */
  serves(slot: number): boolean {
    return (
      (this.claimed.has(slot) || this.arriving.has(slot)) &&
      this.ownership.map.ownerOf(slot) === this.options.shardId
    );
  }

  /**
   * Whether this shard serves every one of the SLOT_COUNT slots (a cluster of
   * one shard). O(shards) while it claimed them all, as such a shard has;
   * O(SLOT_COUNT) otherwise.
   */
  servesAll(): boolean {
    const map = this.ownership.map;
    const owners = map.shards();
    if (owners.length !== 1 || owners[0] !== this.options.shardId || map.ownedCount() !== SLOT_COUNT)
      return false;
    if (this.claimed.size === SLOT_COUNT) return true;
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (!this.serves(slot)) return false;
    return true;
  }

  /** The slots served now, ascending. */
  served(): number[] {
    return [...new Set([...this.claimed, ...this.arriving])]
      .filter((slot) => this.serves(slot))
      .sort((a, b) => a - b);
  }

  /** `slot` is leaving this shard (its tasks fenced for a move): no longer served or claimed. */
  leave(slot: number): void {
    this.claimed.delete(slot);
    this.arriving.delete(slot);
    this.leaving.add(slot);
  }

  /** The move of `slot` away has ended (the bucket names its new owner). */
  left(slot: number): void {
    this.leaving.delete(slot);
  }

  /** Puts a slot back that was leaving (its move was undone). */
  keep(slot: number): void {
    this.leaving.delete(slot);
    this.claimed.add(slot);
  }

  /** `slot`'s tasks were adopted here: it is served, and claimed, once the bucket names this shard. */
  arrive(slot: number): void {
    if (this.claimed.has(slot)) return;
    this.leaving.delete(slot);
    this.arriving.add(slot);
    if (this.ownership.map.ownerOf(slot) === this.options.shardId) void this.check();
  }

  start(): void {
    this.stopListening = this.ownership.map.onChange((change) => this.changed(change));
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.stopListening?.();
  }

  /**
   * Checks the bucket and every claimed slot, and repairs what can be (see
   * the module comment). Calls made while one runs run once more after it.
   * Never throws: a check that cannot reach NATS is logged and tried again.
   */
  check(): Promise<void> {
    if (this.checking !== undefined) {
      this.again = true;
      return this.checking;
    }
    this.checking = (async () => {
      try {
        do {
          this.again = false;
          await this.checkOnce();
        } while (this.again && !this.stopped);
      } catch (error) {
        this.options.log.warn({ err: messageOf(error) }, "slot check failed; trying again later");
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private changed(change: SlotChange): void {
    const mine = change.owner === this.options.shardId;
    if (this.leaving.has(change.slot)) return;
    if (this.claimed.has(change.slot) ? !mine : mine) void this.check();
  }

  private async checkOnce(): Promise<void> {
    const { shardId, log } = this.options;
    if (this.stopped) return;
    if (!(await this.ownership.bucketExists())) {
      log.error(
        { bucket: this.ownership.bucket },
        "the slot bucket is gone (deleted, or the NATS server lost its store): creating it again and claiming this shard's slots",
      );
      await this.ownership.recreateBucket();
      this.repaired("bucketRecreated", 1);
    }
    const map = this.ownership.map;
    const missing = [...this.claimed].filter((slot) => map.ownerOf(slot) === undefined);
    if (missing.length > 0) {
      const result = await this.ownership.claim(shardId, missing);
      if (result.claimed.length > 0) {
        log.warn(
          { slots: describeSlots(result.claimed) },
          "slots of this shard were missing from the bucket; claimed again",
        );
        this.repaired("reclaimed", result.claimed.length);
      }
    }
    const lost = [...this.claimed].filter((slot) => {
      const owner = map.ownerOf(slot);
      return owner !== undefined && owner !== shardId && this.reported.get(slot) !== owner;
    });
    if (lost.length > 0) {
      for (const slot of lost) this.reported.set(slot, map.ownerOf(slot)!);
      log.error(
        { slots: describeSlots(lost), owners: [...new Set(lost.map((slot) => map.ownerOf(slot)))] },
        "the slot bucket gives slots of this shard to another shard, not by a claim of this shard's: no longer serving them (their tasks stay here; fix the bucket or move the tasks)",
      );
      this.repaired("lost", lost.length);
    }
    for (const slot of this.claimed) if (map.ownerOf(slot) === shardId) this.reported.delete(slot);
    // Adopted slots the bucket now names this shard for: the source's switch; they are ours.
    for (const slot of [...this.arriving]) {
      if (map.ownerOf(slot) !== shardId) continue;
      this.arriving.delete(slot);
      this.claimed.add(slot);
      log.info({ slot }, "a slot moved here: serving it");
    }
    const foreign = map
      .slotsOf(shardId)
      .filter((slot) => !this.claimed.has(slot) && !this.leaving.has(slot) && !this.arriving.has(slot));
    if (foreign.length > 0) {
      const released = await this.ownership.release(shardId, foreign);
      log.error(
        { slots: describeSlots(foreign), released: released.length },
        "the slot bucket gives this shard slots it never claimed: not serving them, and giving them up",
      );
      this.repaired("disowned", foreign.length);
    }
  }

  private repaired(kind: SlotRepair, slots: number): void {
    try {
      this.options.onRepair?.(kind, slots);
    } catch {
      // A listener's failure is not the guard's.
    }
  }
}
