/**
 * Which shard owns each slot, as the coordinator routes by it.
 *
 * Ownership lives in the JetStream KV bucket `frontier-<cluster>-slots`: key
 * `slot.<n>` holds the owning shard's id (UTF-8), written by the shards with
 * revision checks (see docs/cluster.md). `KvSlotTable` keeps a live copy by
 * watching the bucket: the last value of every key first, then each change as
 * it happens. A deleted or purged key, or a value that is not a valid shard
 * id, leaves the slot unowned. While the bucket does not exist yet (no shard
 * has started), it tries again every `retryMs`; a watch that ends (the server
 * went away for good) is reopened the same way, keeping the last known owners
 * meanwhile.
 *
 * `SlotDirectory` is the narrow view the routers use, so another source (the
 * cluster package's SlotOwnership) can stand in for the watcher.
 */
import { isValidToken, SLOT_COUNT } from "@frontier/protocol";
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/nats-core";
import type { Logger } from "pino";

export interface SlotDirectory {
  /** The shard owning `slot`, or undefined while nobody does. O(1). */
  ownerOf(slot: number): string | undefined;
  /** Every shard owning at least one slot. */
  shards(): readonly string[];
  /** How many of the SLOT_COUNT slots have an owner. */
  ownedCount(): number;
  /**
   * Resolves true once the directory has held the whole table (every owner
   * at some moment), false if that takes over `timeoutMs`. Until then
   * `shards()` may miss shards. Absent: always whole (a fixed table).
   */
  whenLoaded?(timeoutMs: number): Promise<boolean>;
}

/** The KV bucket holding a cluster's slot owners: the one name, from @frontier/protocol. */
export { slotBucketName } from "@frontier/protocol";

const SLOT_KEY = /^slot\.(0|[1-9][0-9]{0,4})$/;

/** The slot a bucket key names, or null for another key. */
export function slotOfKey(key: string): number | null {
  const m = SLOT_KEY.exec(key);
  if (m === null) return null;
  const n = Number(m[1]);
  return n < SLOT_COUNT ? n : null;
}

/**
 * Invariants: `owners[n]` is the shard id last seen under `slot.<n>`
 * (undefined: none, deleted, or not a valid id), and `slotsPerShard` counts
 * each shard's entries in `owners`, so `shards()` and `ownedCount()` cost
 * O(shards), not O(SLOT_COUNT).
 */
export class KvSlotTable implements SlotDirectory {
  private readonly owners: (string | undefined)[] = new Array(SLOT_COUNT).fill(undefined);
  private readonly slotsPerShard = new Map<string, number>();
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private loggedMissing = false;
  /** Whether the first snapshot of the bucket has been applied; `loaded` resolves then. */
  private isLoaded = false;
  private markLoaded!: () => void;
  private readonly loaded = new Promise<void>((resolve) => {
    this.markLoaded = () => {
      this.isLoaded = true;
      resolve();
    };
  });

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly retryMs: number,
    private readonly logger: Logger,
  ) {}

  /** Starts watching in the background; owners appear as the watch delivers them (see whenLoaded). */
  start(): void {
    this.running ??= this.run();
  }

  ownerOf(slot: number): string | undefined {
    return this.owners[slot];
  }

  shards(): readonly string[] {
    return [...this.slotsPerShard.keys()];
  }

  ownedCount(): number {
    let n = 0;
    for (const count of this.slotsPerShard.values()) n += count;
    return n;
  }

  whenLoaded(timeoutMs: number): Promise<boolean> {
    if (this.isLoaded) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      void this.loaded.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.stop();
    this.wake?.();
    await this.running;
  }

  /** Applies one watched entry. Exposed for tests of the table's bookkeeping. */
  apply(entry: Pick<KvWatchEntry, "key" | "operation" | "string">): void {
    const slot = slotOfKey(entry.key);
    if (slot === null) return;
    let owner: string | undefined;
    if (entry.operation === "PUT") {
      const value = entry.string().trim();
      if (isValidToken(value)) owner = value;
      else
        this.logger.warn({ key: entry.key, value }, "slot owner is not a valid shard id; slot left unowned");
    }
    const before = this.owners[slot];
    if (before === owner) return;
    if (before !== undefined) {
      const left = (this.slotsPerShard.get(before) ?? 1) - 1;
      if (left === 0) this.slotsPerShard.delete(before);
      else this.slotsPerShard.set(before, left);
    }
    if (owner !== undefined) this.slotsPerShard.set(owner, (this.slotsPerShard.get(owner) ?? 0) + 1);
    this.owners[slot] = owner;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        const kv = await new Kvm(this.nc).open(this.bucket);
        // No slot key before the watch starts: the (empty) table is whole. Otherwise the watch first
        // delivers the last value of every key, counting down in `delta` to 0 at the last of them.
        const keys = await kv.keys("slot.*");
        const empty = (await keys[Symbol.asyncIterator]().next()).done === true;
        keys.stop();
        const watcher = await kv.watch({ key: "slot.*" });
        if (this.closed) {
          watcher.stop();
          break;
        }
        this.watcher = watcher;
        this.logger.debug({ bucket: this.bucket }, "watching slot owners");
        this.loggedMissing = false;
        if (empty) this.markLoaded();
        for await (const entry of watcher) {
          this.apply(entry);
          if (entry.delta === 0) this.markLoaded();
        }
      } catch (err) {
        if (this.closed) break;
        // Expected until the first shard creates the bucket: say it once, not every retry.
        if (!this.loggedMissing) {
          this.logger.warn(
            { bucket: this.bucket, err: err instanceof Error ? err.message : String(err) },
            "slot bucket not readable yet; retrying",
          );
          this.loggedMissing = true;
        }
      }
      if (!this.closed) await this.pause();
    }
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.retryMs);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }
}
