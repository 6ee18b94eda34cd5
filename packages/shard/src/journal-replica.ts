/**
 * Journal shipping: a copy of every block a shard commits, kept elsewhere
 * (a JetStream stream in @frontier/cluster), so that another host can
 * rebuild the shard when this one is lost (docs/cluster.md, "Standby
 * shards"). This file is the storage side of it: what a replica must do,
 * and the journal that waits for it. It knows nothing of NATS.
 *
 * The promise kept: an append resolves only once its block is durable in
 * the local journal AND the replica holds it and every block before it. The
 * two run at the same time (the block goes to the replica in the same
 * microtask as it goes to the local journal), so an acknowledgement costs
 * the slower of the two, not their sum.
 *
 * What the copy holds is a base (the whole live state as the journal held
 * it at open) followed by blocks: each block is the records of the appends
 * made in one synchronous stretch, in order, as the shard appended them
 * (whatever kinds they are: records this file does not know ship as they
 * are). Appending the base's records, then every block's, to an empty
 * journal gives the state the shard's journal holds: journal records are
 * row writes, so replaying them in order rebuilds the same rows.
 *
 * Fail-stop, like the journal: once the replica refuses or loses a block,
 * that append and every later one reject with REPLICATION_FAILED, and
 * nothing after it is acknowledged. The local journal may hold blocks the
 * replica does not (or the other way round) after a failure: none of them
 * was acknowledged, and the next open ships a new base, which is what both
 * copies then agree on.
 */
import type { TaskRecord } from "@frontier/core";
import { Packr } from "msgpackr";
import { ReplicationError, ShardError } from "./errors.js";
import type { AppendOptions, Journal, JournalRecord, JournalState, JournalStats } from "./journal.js";

/** Where a shard's blocks are copied. Implemented over JetStream by @frontier/cluster. */
export interface JournalReplica {
  /**
   * Called once, after the local journal opened and before the shard reads
   * it: ships `base` (the state the journal holds, as records, in parts of
   * about BASE_PART_RECORDS, each encoded as a block is) as the copy's new
   * starting point, and resolves
   * once the copy holds it. Rejects (and the shard does not open) when this
   * shard may not write the copy: another owner took it over.
   */
  open(base: Iterable<Uint8Array>): Promise<void>;
  /**
   * Ships one block, encoded (encodeBlock). Resolves once the copy holds it
   * and every block shipped before it; rejects when it does not (refused,
   * or not confirmed in time). Blocks are shipped without waiting for the
   * previous one's answer: the replica keeps them in order.
   */
  ship(block: Uint8Array): Promise<void>;
  /**
   * Optional: ships `base` as the copy's new starting point after the
   * blocks shipped so far (all of them held by the copy, and none shipped
   * until this resolves), after which the copy may drop what came before.
   * What bounds the copy's growth while the shard runs (ReplicatedJournal's
   * `rebaseAfterBytes`).
   */
  rebase?(base: Iterable<Uint8Array>): Promise<void>;
  /** Stops shipping; what was shipped stays. */
  close(): Promise<void>;
  /**
   * Throws when the replica has learnt that another owner took the copy
   * over (a standby's takeover): what a shard checks before it answers a
   * read, since only writes find that out by themselves. Optional; cheap
   * (no I/O).
   */
  checkOwner?(): void;
}

/** Records per part of a base: about 200 B per task record, so a part stays well under NATS's 1 MiB default payload. */
export const BASE_PART_RECORDS = 1_000;

// Plain msgpack maps, no records extension: each block decodes by itself, without the structures of earlier ones.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** A block's records as they travel: msgpack of the record array. */
export function encodeBlock(records: readonly JournalRecord[]): Uint8Array {
  return packr.pack(records);
}

/** The records of an encoded block; throws on bytes that are not one. */
export function decodeBlock(bytes: Uint8Array): JournalRecord[] {
  const records = packr.unpack(bytes) as unknown;
  if (!Array.isArray(records) || records.some((r) => typeof (r as { kind?: unknown })?.kind !== "string"))
    throw new TypeError("not a journal block: expected an array of records");
  return records as JournalRecord[];
}

/**
 * The JournalState fields baseRecords ships (taskCount is a hint, not
 * state). A field the journal gains must be shipped too, or a standby's
 * copy lacks it: shard-replica.test.ts holds a loaded state's fields to
 * this list.
 */
export const BASE_FIELDS = [
  "meta",
  "tasks",
  "taskCount",
  "idempotency",
  "clock",
  "tokenCeiling",
  "outbox",
  "adopted",
  "ended",
  "claims",
] as const;

/**
 * The state a journal holds, as the records that rebuild it in an empty
 * journal, in parts of at most `partRecords`. Reads `state.tasks` once,
 * lazily (one part in memory at a time).
 */
export function* baseRecords(
  state: JournalState,
  partRecords = BASE_PART_RECORDS,
): Generator<JournalRecord[], void, undefined> {
  let part: JournalRecord[] = [];
  const take = function* (record: JournalRecord) {
    part.push(record);
    if (part.length >= partRecords) {
      yield part;
      part = [];
    }
  };
  if (state.meta !== undefined) yield* take({ kind: "meta", meta: state.meta });
  if (state.clock > 0) yield* take({ kind: "clock", at: state.clock });
  if (state.tokenCeiling > 0) yield* take({ kind: "tokens", ceiling: state.tokenCeiling });
  for (const task of state.tasks as Iterable<TaskRecord>)
    yield* take({ kind: "add", spec: task.spec, status: task.status });
  for (const [key, entry] of state.idempotency) yield* take({ kind: "idempotency", key, entry });
  for (const row of state.outbox) yield* take({ kind: "outbox", moveId: row.moveId, row });
  for (const [moveId, move] of state.adopted) yield* take({ kind: "adopted", moveId, move });
  for (const [moveId, move] of state.ended) yield* take({ kind: "ended", moveId, move });
  for (const claim of state.claims) yield* take({ kind: "claim", taskId: claim.taskId, claim });
  if (part.length > 0) yield part;
}

/** Bytes of blocks shipped after a base before a new one is shipped, by default (and at least twice the base's). */
export const DEFAULT_REBASE_AFTER_BYTES = 256 * 1024 * 1024;

export interface ReplicatedJournalOptions {
  /**
   * Once the blocks shipped since the last base pass this many bytes, and
   * twice the base's size, a new base is shipped (local.snapshot() and
   * replica.rebase(), when both exist), and the copy drops what came before
   * it: the copy stays within about three times the state plus this. The
   * shard's calls wait meanwhile (their appends are held, then made in
   * order). Default DEFAULT_REBASE_AFTER_BYTES.
   */
  readonly rebaseAfterBytes?: number;
}

/**
 * A journal whose blocks also go to a replica. Group commit as the local
 * journal's: the records appended in one synchronous stretch are one block,
 * shipped at the next microtask; the local journal groups the same appends
 * into its own commit.
 *
 * Rebase: when the blocks since the last base grow past
 * `rebaseAfterBytes`, appends are held (neither written nor shipped), the
 * ones made are waited for (durable here and held by the replica), the
 * local state is read afresh and shipped as a new base, and the held
 * appends are then made, in order. The base is the state after exactly the
 * blocks before it, so the copy is the base plus the blocks after it.
 */
export class ReplicatedJournal implements Journal {
  /** Records of the block being gathered, and the promise its appends wait for. */
  private block: { records: JournalRecord[]; shipped: Promise<void> } | undefined;
  /** Settles once every block shipped so far is held by the replica (or shipping failed). */
  private shippedTail: Promise<void> = Promise.resolve();
  private failure: ShardError | undefined;
  private closing: Promise<void> | undefined;
  /** Appends made while a new base is shipped, made once it is in. */
  private held: (() => void)[] | undefined;
  /** Bytes of blocks shipped since the last base, and that base's bytes. */
  private sinceBase = 0;
  private baseBytes: number;
  private readonly rebaseAfterBytes: number;

  private constructor(
    private readonly local: Journal,
    private readonly replica: JournalReplica,
    private readonly state: JournalState,
    baseBytes: number,
    options: ReplicatedJournalOptions,
  ) {
    this.baseBytes = baseBytes;
    this.rebaseAfterBytes = options.rebaseAfterBytes ?? DEFAULT_REBASE_AFTER_BYTES;
  }

  /**
   * Wraps an open journal: ships its state as the replica's base and
   * resolves once the replica holds it. On failure, closes `local` and
   * rejects with REPLICATION_FAILED (or the local journal's error, reading it).
   */
  static async open(
    local: Journal,
    replica: JournalReplica,
    options: ReplicatedJournalOptions = {},
  ): Promise<ReplicatedJournal> {
    try {
      const state = local.load();
      const base = measured(baseRecords(state));
      await replica.open(base.parts);
      return new ReplicatedJournal(local, replica, state, base.bytes(), options);
    } catch (error) {
      await replica.close().catch(() => {});
      await local.close().catch(() => {});
      throw asReplicationError(error, "the journal's base could not be shipped");
    }
  }

  /** The state as of open: the base that was shipped. Its task rows read again, as the contract allows before the first append. */
  load(): JournalState {
    return this.state;
  }

  append(records: readonly JournalRecord[], options?: AppendOptions): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const held = this.held;
    if (held !== undefined)
      return new Promise((resolve, reject) =>
        held.push(() => this.append(records, options).then(resolve, reject)),
      );
    const local = this.local.append(records, options);
    if (records.length === 0) return Promise.all([local, this.shippedTail]).then(() => {});
    let block = this.block;
    if (block === undefined) {
      const previous = this.shippedTail;
      let settle!: { resolve: () => void; reject: (error: unknown) => void };
      const shipped = new Promise<void>((resolve, reject) => {
        settle = { resolve, reject };
      });
      shipped.catch(() => {}); // reported to the appends that wait for it
      const gathering: { records: JournalRecord[]; shipped: Promise<void> } = { records: [], shipped };
      block = this.block = gathering;
      this.shippedTail = shipped;
      queueMicrotask(() => {
        this.block = undefined;
        this.ship(gathering.records, previous).then(settle.resolve, settle.reject);
      });
    }
    for (const record of records) block.records.push(record);
    return Promise.all([local, block.shipped]).then(() => {});
  }

  stats(): JournalStats {
    return this.local.stats();
  }

  checkOwner(): void {
    if (this.failure) throw this.failure;
    this.local.checkOwner();
    try {
      this.replica.checkOwner?.();
    } catch (error) {
      this.failure ??= asReplicationError(error, "the journal's replica was taken over");
      throw this.failure;
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.local.close();
      await this.shippedTail.catch(() => {});
      await this.replica.close().catch(() => {});
    })();
    return this.closing;
  }

  /**
   * Ships a new base (see the class comment). Appends are held from now on;
   * once the ones made are durable and shipped, the state is read afresh
   * and shipped; then the held appends are made, in order. A failure stops
   * the journal, as a refused block does. No-op without the means to.
   */
  private rebase(): void {
    const snapshot = this.local.snapshot?.bind(this.local);
    const rebase = this.replica.rebase?.bind(this.replica);
    if (snapshot === undefined || rebase === undefined) return;
    const held: (() => void)[] = [];
    this.held = held;
    void (async () => {
      try {
        // Every append made so far: durable here, and held by the replica.
        await Promise.all([this.local.append([]), this.shippedTail]);
        const base = measured(baseRecords(snapshot()));
        await rebase(base.parts);
        this.baseBytes = base.bytes();
        this.sinceBase = 0;
      } catch (error) {
        this.failure ??= asReplicationError(error, "a new base was not taken by the journal's replica");
      } finally {
        this.held = undefined;
        for (const make of held) make();
      }
    })();
  }

  /** Ships one block; it counts as held once it AND every earlier block are. The first failure stops shipping. */
  private ship(records: readonly JournalRecord[], previous: Promise<void>): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let sent: Promise<void>;
    try {
      const block = encodeBlock(records);
      this.sinceBase += block.length;
      sent = this.replica.ship(block);
    } catch (error) {
      sent = Promise.reject(error);
    }
    if (this.held === undefined && this.sinceBase > Math.max(this.rebaseAfterBytes, 2 * this.baseBytes))
      this.rebase();
    return Promise.all([previous, sent]).then(
      () => {},
      (error: unknown) => {
        this.failure ??= asReplicationError(error, "a block was not taken by the journal's replica");
        throw this.failure;
      },
    );
  }
}

/** Base parts encoded (encodeBlock, each decodes by itself), counting their bytes as they are read. */
function measured(parts: Iterable<readonly JournalRecord[]>): {
  parts: Iterable<Uint8Array>;
  bytes: () => number;
} {
  let bytes = 0;
  return {
    parts: (function* () {
      for (const part of parts) {
        const encoded = encodeBlock(part);
        bytes += encoded.length;
        yield encoded;
      }
    })(),
    bytes: () => bytes,
  };
}

function asReplicationError(error: unknown, what: string): ShardError {
  if (error instanceof ShardError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ReplicationError(`${what}: ${message}`, { cause: error });
}
