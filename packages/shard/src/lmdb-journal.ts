/**
 * The LMDB journal: the live state of a shard in one LMDB environment.
 *
 * Layout (named databases in one environment, values msgpack-encoded):
 *   head    "head" → HeadRow (format, epoch, owner, clock, tokens). Versioned: its
 *           version is the commit chain (below).
 *   meta    "engine" → EngineMeta
 *   spec    task id → TaskSpec     (msgpack records with shared structures,
 *   status  task id → TaskStatus    stored in the database itself)
 *   idem    idempotency key → IdempotencyEntry
 *   outbox  move id → SlotExport (a slot leaving, until its move ends)
 *   adopted move id → AdoptedMove (a slot that arrived)
 *   ended   move id → EndedMove (a slot that left: its move id is spent)
 *   claims  task id → IdClaimRow (an id homed here, taken by a task of another shard)
 * Spec and status live apart so that a status change (the common case)
 * rewrites only the small status row, never the payload.
 *
 * Group commit: records appended in one synchronous stretch of JS go into
 * one pending batch, coalesced per key (last write wins: within one atomic
 * commit only the final value of a row matters). The batch is written at the
 * next microtask as one conditional block; lmdb-js puts the blocks queued
 * before its write thread starts a transaction into that transaction,
 * committed off the main thread. Blocks are pipelined: a block is queued
 * without waiting for the one before to commit (the chain below keeps them
 * in order), so several can be in flight.
 *
 * An idle journal commits on the calling thread instead: a block queued when
 * no other is in flight and none was queued for `syncWhenIdleMs` is written
 * in a synchronous transaction (`transactionSync`, which fdatasyncs before it
 * returns), with the same chain check. At light load that saves the hand-off
 * to lmdb-js's write thread and back, which on a mostly idle machine costs
 * more than the copy (measured: Shard.submit of one task, a 5 ms pause
 * before each, p50 0.71–0.93 ms through the write thread against 0.62 here;
 * docs/benchmarks.md, "Session 11"). The calling thread waits out the
 * flush, so under load, when blocks follow each other closely, they stay on
 * the write thread, where the next block's work overlaps this one's flush.
 *
 * When a block is acknowledged. lmdb-js (3.5, overlappingSync) flushes a
 * transaction in the thread that commits it, before its write promises
 * settle; it tells the main thread only that the transaction became visible.
 *  - "flushed": on lmdb-js's report and the `flushed` promise of the block's
 *    own transaction (not the environment's, which follows the latest one).
 *  - "committed": as soon as the head is read at the block's version in a
 *    fresh snapshot, looked at when lmdb-js reports a transaction visible
 *    (onVisibleCommit); visible means the pages and the meta page are in the
 *    OS's page cache, which a killed process keeps (safeRestore off). The
 *    flush follows in the background; one that fails stops the journal.
 *    lmdb-js's report still acknowledges a block the look missed.
 * Either way a report of success counts only once a fresh read finds the
 * head at the block's version: lmdb-js has reported blocks of a failed
 * transaction as committed (pipelined blocks, disk full).
 *
 * Every commit is flushed whatever the durability, and lmdb-js lets a
 * transaction take its write lock only once the flush before it has ended
 * (it releases the lock after taking LMDB's flush lock): the flush rate caps
 * the commit rate (see the README's benchmark).
 *
 * The commit chain. Every block is conditional on the head's version being
 * exactly the value the previous block left (`ifVersion`), and moves it on by
 * one. So a block can only commit if every earlier block of this owner did:
 *  - a commit that failed (disk full) fails every later block, even ones
 *    lmdb-js had already queued, so the durable state stays a prefix of the
 *    appends (lmdb-js alone would go on committing later transactions);
 *  - opening moves the version on by EPOCH_STRIDE (2^32), a value the
 *    previous owner's chain cannot reach, so a paused owner that wakes up
 *    after a takeover has every block refused (fencing).
 * The check runs inside LMDB's write transaction, which is exclusive across
 * processes, so it is atomic. Versions are float64: 2^21 opens of 2^32
 * blocks each before they run out of exact integers.
 *
 * Encoding happens before a block is opened (values are pre-encoded, keys
 * checked against LMDB's limit), so a value that cannot be encoded fails the
 * append before anything is queued: a block is never left half-written. Such
 * a failure stops the journal at once, before a later block is written (it
 * would commit: the failed block moved no version).
 */
import { realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type EngineMeta,
  InvalidArgumentError,
  type TaskRecord,
  type TaskSpec,
  type TaskStatus,
} from "@frontier/core";
import { asBinary, type Database, getLastVersion, type Key, open, type RootDatabase } from "lmdb";
import { checkDataFile, prepareDirectory } from "./data-dir.js";
import {
  CorruptDataError,
  ForeignDataError,
  IncompatibleFormatError,
  ShardClosedError,
  ShardError,
  ShardErrorCode,
  ShardFencedError,
  ShardLockedError,
  StorageError,
} from "./errors.js";
import {
  type AdoptedMove,
  type AppendOptions,
  DEFAULT_DURABILITY,
  type Durability,
  type EndedMove,
  type IdClaimRow,
  type IdempotencyEntry,
  type Journal,
  type JournalOpenOptions,
  type JournalRecord,
  type JournalState,
  type JournalStats,
  type SlotExport,
} from "./journal.js";
import { commitError, encoderOf, maxKeySizeOf, onVisibleCommit } from "./lmdb-internals.js";
import { currentOwner, liveness, type OwnerRecord } from "./ownership.js";
import { freeBytes, NEARLY_FULL_BYTES, storeError } from "./store-errors.js";

export { NEARLY_FULL_BYTES, storeError } from "./store-errors.js";

/** Format of the rows; a directory with a larger one is refused. */
export const FORMAT_VERSION = 1;
const EPOCH_STRIDE = 2 ** 32;
const HEAD_KEY = "head";
const ENGINE_KEY = "engine";
const STRUCTURES_KEY = Symbol.for("frontier.structures");
const DB_NAMES = new Set(["head", "meta", "spec", "status", "idem", "outbox", "adopted", "ended", "claims"]);

interface HeadRow {
  readonly format: number;
  /** Opens so far; this owner's is the one in its head. */
  readonly epoch: number;
  /** The live owner; null after a clean close. */
  readonly owner: OwnerRecord | null;
  /** Clock high-water mark (see JournalRecord "clock"). */
  readonly clock: number;
  /** Fencing-token ceiling (see JournalRecord "tokens"); absent in rows written before it existed: 0. */
  readonly tokens?: number;
}

export interface LmdbJournalOptions extends JournalOpenOptions {
  readonly dataDir: string;
  /**
   * Below this much free space, an I/O error or a lost commit is reported as
   * a full disk (STORAGE_FULL) rather than STORAGE_FAILED: LMDB reports the
   * short write a full disk causes as EIO. Default NEARLY_FULL_BYTES (64 MiB).
   */
  readonly fullBelowBytes?: number;
  /**
   * A block queued when none is in flight and none was queued for this many
   * ms commits on the calling thread (see "An idle journal" above). Default
   * DEFAULT_SYNC_WHEN_IDLE_MS; 0: every block queued while none is in flight;
   * Infinity: never (every block goes through lmdb-js's write thread).
   */
  readonly syncWhenIdleMs?: number;
}

/**
 * The quiet (ms) before a block that commits on the calling thread: longer
 * than the gap between blocks of a busy shard (back-to-back commits are
 * ~0.5 ms apart here), shorter than a light load's (a task every 5 ms).
 */
export const DEFAULT_SYNC_WHEN_IDLE_MS = 2;

/** Journals open in this process, by real path: a second open is refused without asking the store. */
const openHere = new Map<string, LmdbJournal>();

/** Writes queued for one block, coalesced per key. `null` deletes the row. */
class PendingBatch {
  readonly specs = new Map<string, TaskSpec | null>();
  readonly statuses = new Map<string, TaskStatus | null>();
  readonly idempotency = new Map<string, IdempotencyEntry | null>();
  readonly outbox = new Map<string, SlotExport | null>();
  readonly adopted = new Map<string, AdoptedMove>();
  readonly ended = new Map<string, EndedMove>();
  readonly claims = new Map<string, IdClaimRow | null>();
  meta: EngineMeta | undefined;
  clock = 0;
  /** Largest token ceiling appended to this batch (0: none). */
  tokens = 0;
  /** Acknowledge the block once flushed, whatever the durability (AppendOptions.flush, or a token ceiling). */
  flush = false;
  resolve!: () => void;
  reject!: (error: ShardError) => void;
  readonly durable = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  add(record: JournalRecord): void {
    switch (record.kind) {
      case "add":
        this.specs.set(record.spec.id, record.spec);
        this.statuses.set(record.spec.id, record.status);
        return;
      case "set":
        this.statuses.set(record.id, record.status);
        return;
      case "drop":
        this.specs.set(record.id, null);
        this.statuses.set(record.id, null);
        return;
      case "meta":
        this.meta = record.meta;
        return;
      case "idempotency":
        this.idempotency.set(record.key, record.entry);
        return;
      case "forget":
        this.idempotency.set(record.key, null);
        return;
      case "clock":
        if (record.at > this.clock) this.clock = record.at;
        return;
      case "tokens":
        if (record.ceiling > this.tokens) this.tokens = record.ceiling;
        this.flush = true;
        return;
      case "outbox":
        this.outbox.set(record.moveId, record.row);
        return;
      case "adopted":
        this.adopted.set(record.moveId, record.move);
        return;
      case "ended":
        this.ended.set(record.moveId, record.move);
        return;
      case "claim":
        this.claims.set(record.taskId, record.claim);
        return;
      default:
        unreachable(record);
    }
  }
}

/** A block's lmdb-js promise (true: committed; false: its condition failed), with `separateFlushed`'s flush promise. */
type WritePromise = Promise<boolean> & { readonly flushed?: Promise<unknown> };

/** A "committed" block waiting to be seen: the head reaching `version` means it committed. */
interface UnseenBlock {
  readonly version: number;
  seen: () => void;
}

interface Databases {
  readonly head: Database<HeadRow, string>;
  readonly meta: Database<EngineMeta, string>;
  readonly spec: Database<TaskSpec, string>;
  readonly status: Database<TaskStatus, string>;
  readonly idem: Database<IdempotencyEntry, string>;
  readonly outbox: Database<SlotExport, string>;
  readonly adopted: Database<AdoptedMove, string>;
  readonly ended: Database<EndedMove, string>;
  readonly claims: Database<IdClaimRow, string>;
}

function openDatabases(env: RootDatabase): Databases {
  return {
    head: env.openDB({ name: "head", useVersions: true }),
    meta: env.openDB({ name: "meta" }),
    spec: env.openDB({ name: "spec", sharedStructuresKey: STRUCTURES_KEY }),
    status: env.openDB({ name: "status", sharedStructuresKey: STRUCTURES_KEY }),
    idem: env.openDB({ name: "idem" }),
    outbox: env.openDB({ name: "outbox" }),
    adopted: env.openDB({ name: "adopted" }),
    ended: env.openDB({ name: "ended" }),
    claims: env.openDB({ name: "claims" }),
  };
}

export class LmdbJournal implements Journal {
  private batch: PendingBatch | undefined;
  /** Settles when every block queued so far is durable (or the journal failed). */
  private tail: Promise<void> = Promise.resolve();
  private failure: ShardError | undefined;
  private closing: Promise<void> | undefined;
  /** Batches queued and not yet settled, in chain order (see stop). */
  private readonly unsettled = new Set<PendingBatch>();
  private appends = 0;
  private records = 0;
  private readonly firstTxnId: number;
  /**
   * "committed" only: blocks queued and not yet seen committed, in chain
   * order. A block is acknowledged as soon as a fresh read shows the head at
   * its version (see checkVisible), before lmdb-js reports the commit, which
   * it does only after flushing.
   */
  private readonly unseen: UnseenBlock[] = [];
  /** This owner's chain stays below this version; a successor's starts above it. */
  private readonly chainEnd: number;
  /** The lmdb-js promise of the last block queued: settled once every block's transaction is. */
  private lastWrite: Promise<unknown> = Promise.resolve();
  /** When the last block was queued (performance.now()): the journal's quiet, for syncWhenIdleMs. */
  private lastQueuedAt = Number.NEGATIVE_INFINITY;
  private blocksHere = 0;

  private constructor(
    private readonly env: RootDatabase,
    private readonly db: Databases,
    private readonly dataDir: string,
    private readonly realDir: string,
    private readonly durability: Durability,
    private headRow: HeadRow,
    /** Version the next block expects the head to have. */
    private version: number,
    private readonly fullBelowBytes: number,
    private readonly syncWhenIdleMs: number,
  ) {
    this.firstTxnId = lastTxnId(env);
    this.chainEnd = version + EPOCH_STRIDE;
    if (durability === "committed")
      onVisibleCommit(env, () => {
        try {
          this.checkVisible();
        } catch {
          // Nothing acknowledged early; lmdb-js's report of the block still comes.
        }
      });
  }

  /** Blocks written on the calling thread so far (an idle journal's; see syncWhenIdleMs). */
  get committedHere(): number {
    return this.blocksHere;
  }

  /** The epoch this journal opened with (1 for a new directory). */
  get epoch(): number {
    return this.headRow.epoch;
  }

  /**
   * Opens (creating if needed) the journal in `dataDir`, taking ownership.
   * Refuses, with a typed error and nothing changed: another live owner
   * (SHARD_LOCKED), a directory holding other things (FOREIGN_DATA), data
   * that cannot be read (CORRUPT_DATA), a newer format (INCOMPATIBLE_FORMAT).
   */
  static async open(options: LmdbJournalOptions): Promise<LmdbJournal> {
    const dataDir = resolve(options.dataDir);
    const durability = options.durability ?? DEFAULT_DURABILITY;
    const fullBelowBytes = options.fullBelowBytes ?? NEARLY_FULL_BYTES;
    const syncWhenIdleMs = options.syncWhenIdleMs ?? DEFAULT_SYNC_WHEN_IDLE_MS;
    if (!(syncWhenIdleMs >= 0))
      throw new InvalidArgumentError(`syncWhenIdleMs must be >= 0, got ${String(syncWhenIdleMs)}`);
    if (durability !== "flushed" && durability !== "committed")
      throw new InvalidArgumentError(
        `durability must be "flushed" or "committed", got ${String(durability)}`,
      );
    prepareDirectory(dataDir);
    checkDataFile(dataDir);
    const realDir = realpathSync(dataDir);
    const sibling = openHere.get(realDir);
    if (sibling && !options.takeover) {
      throw new ShardLockedError(
        dataDir,
        sibling.headRow.owner ?? undefined,
        "another shard open in this process",
      );
    }

    let env: RootDatabase;
    try {
      // Never noSync, noMetaSync or useWritemap. safeRestore off: after a
      // killed process (same boot) LMDB keeps the last committed transaction,
      // which is what "committed" durability promises (it is an lmdb-js
      // option its typings do not list). eventTurnBatching off: with it,
      // lmdb-js opens each turn's transaction with an internal promise nobody
      // can handle, so a failed commit (disk full) becomes an unhandled
      // rejection that kills the process; our blocks are explicit batches and
      // still share transactions (measured: same throughput, see README).
      const envOptions = {
        path: dataDir,
        maxDbs: DB_NAMES.size + 2,
        safeRestore: false,
        eventTurnBatching: false,
        // Gives each write promise a `flushed` promise of its own transaction.
        separateFlushed: true,
      };
      env = open(envOptions as Parameters<typeof open>[0]);
    } catch (error) {
      throw storeError(error, dataDir, fullBelowBytes);
    }
    try {
      const foreign = [...env.getKeys()].filter((k) => typeof k !== "string" || !DB_NAMES.has(k));
      if (foreign.length > 0)
        throw new ForeignDataError(
          dataDir,
          `its LMDB environment holds ${foreign.slice(0, 5).map(String).join(", ")}`,
        );
      const db = openDatabases(env);
      const { headRow, version } = takeOwnership(db, env, dataDir, options.takeover ?? false);
      const journal = new LmdbJournal(
        env,
        db,
        dataDir,
        realDir,
        durability,
        headRow,
        version,
        fullBelowBytes,
        syncWhenIdleMs,
      );
      openHere.set(realDir, journal);
      return journal;
    } catch (error) {
      await env.close().catch(() => {});
      throw error instanceof ShardError ? error : storeError(error, dataDir, fullBelowBytes);
    }
  }

  /**
   * The live state. Meta and idempotency rows are read here; the task rows
   * as `tasks` is iterated (taskRows): a restore then holds one decoded row
   * at a time instead of all of them until the engine has taken them — at
   * 10^6 tasks, keeping every row alive that long cost more in GC than
   * reading them.
   */
  load(): JournalState {
    return this.readState(() => {
      if (this.appends > 0 || this.batch)
        throw new InvalidArgumentError("the loaded task rows must be read before the first append");
    });
  }

  /**
   * The live state now, read afresh (journal shipping's new base). Every
   * append must have settled, and none may be made until the task rows
   * were read: the rows are read as they are iterated.
   */
  snapshot(): JournalState {
    const settled = () => {
      if (this.batch || this.unsettled.size > 0)
        throw new InvalidArgumentError("a snapshot is read with every append settled and none in flight");
    };
    settled();
    this.env.resetReadTxn();
    return this.readState(settled);
  }

  /** The state as the tables hold it; `check` runs before the task rows are read. */
  private readState(check: () => void): JournalState {
    try {
      const idempotency: [string, IdempotencyEntry][] = [];
      for (const { key, value } of this.db.idem.getRange()) {
        if (
          typeof key !== "string" ||
          !Array.isArray(value?.taskIds) ||
          typeof value.createdAt !== "number" ||
          (value.fence !== undefined && !Number.isSafeInteger(value.fence)) ||
          (value.movedAway !== undefined && value.movedAway !== true)
        )
          throw this.corrupt(`idempotency row ${JSON.stringify(key)} is malformed`);
        idempotency.push([key, value]);
      }
      const meta = this.db.meta.get(ENGINE_KEY);
      if (meta !== undefined && typeof meta?.tokenSeq !== "number")
        throw this.corrupt("engine meta row is malformed");
      const tasks = { [Symbol.iterator]: () => this.taskRows(check) };
      // Entries of the status table: the task rows, plus the shared-structures entry.
      const taskCount = (this.db.status.getStats() as { entryCount: number }).entryCount;
      const outbox: SlotExport[] = [];
      for (const { key, value } of this.db.outbox.getRange()) {
        if (typeof key !== "string" || value?.moveId !== key || !Array.isArray(value.tasks))
          throw this.corrupt(`outbox row ${JSON.stringify(key)} is malformed`);
        outbox.push(value);
      }
      const adopted: [string, AdoptedMove][] = [];
      for (const { key, value } of this.db.adopted.getRange()) {
        if (typeof key !== "string" || typeof value?.slot !== "number" || !Array.isArray(value.leases))
          throw this.corrupt(`adopted row ${JSON.stringify(key)} is malformed`);
        adopted.push([key, value]);
      }
      const ended: [string, EndedMove][] = [];
      for (const { key, value } of this.db.ended.getRange()) {
        if (typeof key !== "string" || typeof value?.slot !== "number" || typeof value.target !== "string")
          throw this.corrupt(`ended-move row ${JSON.stringify(key)} is malformed`);
        ended.push([key, value]);
      }
      const claims: IdClaimRow[] = [];
      for (const { key, value } of this.db.claims.getRange()) {
        if (
          typeof key !== "string" ||
          value?.taskId !== key ||
          (value.workflowId !== undefined && typeof value.workflowId !== "string")
        )
          throw this.corrupt(`claim row ${JSON.stringify(key)} is malformed`);
        claims.push(value);
      }
      const { clock, tokens: tokenCeiling = 0 } = this.headRow;
      return { meta, tasks, taskCount, idempotency, clock, tokenCeiling, outbox, adopted, ended, claims };
    } catch (error) {
      throw this.readError(error);
    }
  }

  /**
   * Reads the task rows: the spec and status tables side by side, zipped by
   * key (both are in key order, so any mismatch is corruption), one row of
   * each in memory at a time.
   */
  private *taskRows(check: () => void): Generator<TaskRecord, void, undefined> {
    check();
    const specs = this.db.spec.getRange()[Symbol.iterator]();
    const statuses = this.db.status.getRange()[Symbol.iterator]();
    try {
      for (;;) {
        const spec = nextRow(specs);
        const status = nextRow(statuses);
        if (spec === undefined && status === undefined) return;
        if (spec?.key !== status?.key) {
          const missing =
            status === undefined || (spec !== undefined && spec.key < status.key) ? spec : status;
          throw this.corrupt(`task ${JSON.stringify(missing!.key)} has a spec or a status row, not both`);
        }
        if (spec!.value?.id !== spec!.key)
          throw this.corrupt(`spec row ${JSON.stringify(spec!.key)} is not a task`);
        if (typeof status!.value?.state !== "string")
          throw this.corrupt(`status row ${JSON.stringify(status!.key)} is not a status`);
        yield { spec: spec!.value, status: status!.value };
      }
    } catch (error) {
      throw this.readError(error);
    } finally {
      specs.return?.();
      statuses.return?.();
    }
  }

  private readError(error: unknown): ShardError {
    if (error instanceof ShardError) return error;
    return this.corrupt(`a row cannot be decoded (${String((error as Error)?.message ?? error)})`, error);
  }

  append(records: readonly JournalRecord[], options: AppendOptions = {}): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new ShardClosedError("journal"));
    if (records.length === 0) return this.tail;
    let batch = this.batch;
    if (!batch) {
      batch = this.batch = new PendingBatch();
      const previous = this.tail;
      this.tail = batch.durable;
      this.unsettled.add(batch);
      queueMicrotask(() => this.commit(previous));
    }
    for (const record of records) batch.add(record);
    if (options.flush) batch.flush = true;
    this.appends++;
    this.records += records.length;
    return batch.durable;
  }

  stats(): JournalStats {
    return {
      appends: this.appends,
      records: this.records,
      commits: this.closing ? 0 : lastTxnId(this.env) - this.firstTxnId,
      pending: this.unsettled.size,
    };
  }

  checkOwner(): void {
    if (this.failure || this.closing) return;
    const version = this.headVersion();
    if (version === undefined || version < this.chainEnd) return;
    const fenced = this.superseded();
    this.stop(fenced);
    throw fenced;
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /**
   * Bytes the environment's file takes on disk; the bytes up to its last
   * page in use (the file's high-water mark, free pages included); and the
   * bytes of the pages the tables' B-trees hold now (the rest below the
   * high-water mark are free pages, which later commits reuse).
   */
  diskUsage(): { fileBytes: number; usedBytes: number; treeBytes: number } {
    const fileBytes = statSync(join(this.dataDir, "data.mdb")).size;
    const stats = this.env.getStats() as { pageSize: number; lastPageNumber: number };
    let treePages = 0;
    for (const db of Object.values(this.db) as Database[]) {
      const tree = db.getStats() as {
        treeBranchPageCount: number;
        treeLeafPageCount: number;
        overflowPages: number;
      };
      treePages += tree.treeBranchPageCount + tree.treeLeafPageCount + tree.overflowPages;
    }
    return {
      fileBytes,
      usedBytes: (stats.lastPageNumber + 1) * stats.pageSize,
      treeBytes: treePages * stats.pageSize,
    };
  }

  // ------------------------------------------------------------- internals

  private async shutDown(): Promise<void> {
    await this.tail.catch(() => {});
    // "committed" answers before lmdb-js reports a block, whose flush may still fail.
    await this.lastWrite.catch(() => {});
    if (this.failure instanceof StorageError) await this.settleFailedCommit();
    if (!this.failure) {
      // Release ownership, through the chain: a fenced owner changes nothing.
      const row: HeadRow = { ...this.headRow, owner: null };
      const expected = this.version;
      try {
        if (
          await this.db.head.ifVersion(HEAD_KEY, expected, () =>
            this.db.head.put(HEAD_KEY, row, expected + 1),
          )
        )
          await this.env.flushed;
      } catch {
        // Ownership stays recorded; the next opener finds this process dead.
      }
    }
    this.failure ??= new ShardClosedError("journal");
    if (openHere.get(this.realDir) === this) openHere.delete(this.realDir);
    await this.env.close();
  }

  /**
   * lmdb-js never settles the flush promise of a transaction that failed,
   * and `close` waits for it. A conditional block that cannot match (no head
   * version is negative) commits an empty transaction, whose flush settles
   * the bookkeeping, and writes nothing.
   */
  private async settleFailedCommit(): Promise<void> {
    await this.db.head.ifVersion(HEAD_KEY, -1, () => {}).catch(() => false);
  }

  /** Writes the pending batch as one conditional block. Runs as a microtask after the appends. */
  private commit(previous: Promise<void>): void {
    const batch = this.batch!;
    this.batch = undefined;
    if (this.failure) {
      this.settle(batch, previous, Promise.reject(this.failure));
      return;
    }
    // Alone (this block is the only one not settled) after a quiet: committed here, now.
    const now = performance.now();
    const here =
      this.syncWhenIdleMs !== Number.POSITIVE_INFINITY &&
      this.unsettled.size === 1 &&
      now - this.lastQueuedAt >= this.syncWhenIdleMs;
    this.lastQueuedAt = now;
    let written: WritePromise;
    try {
      written = this.write(batch, here);
      // A block written here took its flush's time: the quiet starts after it.
      if (here) this.lastQueuedAt = performance.now();
    } catch (error) {
      // Nothing of this block was queued. Stop at once: the next block would
      // be conditioned on the version before this one (this one moved
      // nothing), so it would commit, after a hole.
      this.stop(error, batch);
      return;
    }
    // Settles when lmdb-js reports the transaction: in lmdb-js 3.5 that is
    // after it was flushed (mdb_txn_commit flushes before returning under
    // overlappingSync), and `flushed` says so explicitly.
    const target = this.version;
    // A token reservation is acknowledged flushed whatever the durability (a
    // power cut must not take back a ceiling that tokens were handed out
    // under), and so is a block whose append asked for it.
    const flushed = this.durability === "flushed" || batch.flush;
    const reported = written.then(
      (ok): Promise<unknown> | undefined => {
        if (!ok) return Promise.reject(this.conditionFailure());
        // lmdb-js has reported blocks committed that were not (pipelined
        // blocks of a transaction that failed, with the disk full): the
        // head says whether this one was.
        const head = this.headVersion();
        if (head === undefined || head < target) return Promise.reject(this.lostCommit());
        // Committed before a takeover, reported after it (this process was
        // paused in between): the successor holds the block and answers for
        // it; a superseded owner answers nothing, so the caller retries there.
        if (head >= this.chainEnd) return Promise.reject(this.superseded());
        return flushed ? (written.flushed ?? this.env.flushed) : undefined;
      },
      (error: unknown) =>
        commitError(error).then((cause) =>
          Promise.reject(storeError(cause, this.dataDir, this.fullBelowBytes)),
        ),
    );
    this.lastWrite = reported;
    if (flushed) {
      this.settle(batch, previous, reported);
      return;
    }
    // "committed": the first of the head showing this block's version (it is
    // in the OS's page cache: a killed process keeps it), or lmdb-js's report.
    const block: UnseenBlock = { version: target, seen: () => {} };
    const seen = new Promise<void>((resolve) => {
      block.seen = resolve;
    });
    this.unseen.push(block);
    reported.then(
      () => this.forgetUnseen(block.version),
      (error: unknown) => {
        this.forgetUnseen(block.version);
        // Seen already (the flush failed afterwards): the answer stands, the journal stops.
        this.stop(error);
      },
    );
    this.settle(batch, previous, Promise.race([seen, reported]));
  }

  /**
   * Acknowledges, in chain order, every "committed" block the head's
   * version has reached, reading it in a fresh snapshot (so the commit is
   * visible: written to the OS). A version at or past chainEnd is a
   * successor's; then nothing is acknowledged here, and lmdb-js's reports
   * refuse every pending block (see commit). Cost: one read-transaction
   * renewal and one unparsed read.
   */
  private checkVisible(): void {
    if (this.unseen.length === 0) return;
    const version = this.headVersion();
    if (version === undefined || version >= this.chainEnd) return;
    let seen = 0;
    while (seen < this.unseen.length && this.unseen[seen]!.version <= version) this.unseen[seen++]!.seen();
    this.unseen.splice(0, seen);
  }

  /** The head's version in a fresh read (a successor's, past chainEnd, once taken over); undefined when there is no head. */
  private headVersion(): number | undefined {
    this.env.resetReadTxn();
    return this.db.head.getBinaryFast(HEAD_KEY) === undefined ? undefined : getLastVersion();
  }

  private superseded(): ShardFencedError {
    return new ShardFencedError(this.dataDir, this.headRow.epoch, this.db.head.get(HEAD_KEY)?.epoch);
  }

  private lostCommit(): StorageError {
    return this.lossError("a commit reported done is not in the store");
  }

  /**
   * A commit lost for a reason lmdb-js did not say: STORAGE_FULL when the
   * disk is (nearly) full, the likely cause, else STORAGE_FAILED. Whichever
   * block's failure is reported first names the cause for all (fail-stop),
   * so every such path must look at the disk, not only the block that hit it.
   */
  private lossError(what: string): StorageError {
    const free = freeBytes(this.dataDir);
    const full = free !== undefined && free < this.fullBelowBytes;
    return new StorageError(
      full ? ShardErrorCode.STORAGE_FULL : ShardErrorCode.STORAGE_FAILED,
      `${what}${full ? ` (${free} bytes free)` : ""}`,
      undefined,
    );
  }

  /** Drops blocks up to `version` from `unseen`: lmdb-js has reported them. */
  private forgetUnseen(version: number): void {
    let n = 0;
    while (n < this.unseen.length && this.unseen[n]!.version <= version) n++;
    this.unseen.splice(0, n);
  }

  /** Resolves the batch once it and everything before it are durable; the first failure stops the journal. */
  private settle(batch: PendingBatch, previous: Promise<void>, done: Promise<unknown>): void {
    Promise.all([previous, done]).then(
      () => {
        if (this.unsettled.delete(batch)) batch.resolve();
      },
      // Stop only once the block before has settled: if it failed too, its failure comes first in
      // chain order and names the cause (this block's may only say that an earlier one was lost).
      (error: unknown) => {
        const stop = () => this.stop(error, batch);
        previous.then(stop, stop);
      },
    );
  }

  /**
   * Fail-stop: records the first failure and rejects `from` and every batch
   * queued after it (all of them when `from` is settled already), whatever
   * they wait for: a failed transaction's flush promise never settles.
   * Earlier batches still settle on their own outcome.
   */
  private stop(error: unknown, from?: PendingBatch): void {
    this.failure ??=
      error instanceof ShardError ? error : storeError(error, this.dataDir, this.fullBelowBytes);
    let rejecting = from === undefined || !this.unsettled.has(from);
    for (const batch of this.unsettled) {
      rejecting ||= batch === from;
      if (!rejecting) continue;
      this.unsettled.delete(batch);
      batch.reject(this.failure);
    }
  }

  /**
   * Writes the block: on lmdb-js's write thread (its promise settles once
   * the transaction is flushed), or, `here`, in a synchronous transaction
   * on this thread, flushed when it returns. Either way the block is
   * conditional on the head's version (the chain) and resolves false when
   * the condition failed.
   */
  private write(batch: PendingBatch, here: boolean): WritePromise {
    // Encode everything first: nothing is queued unless all of it encodes
    // and every key fits, so no put can fail halfway through the block.
    const specs = encodeAll(this.db.spec, batch.specs);
    const statuses = encodeAll(this.db.status, batch.statuses);
    const idempotency = encodeAll(this.db.idem, batch.idempotency);
    const outbox = encodeAll(this.db.outbox, batch.outbox);
    const adopted = encodeAll(this.db.adopted, batch.adopted);
    const ended = encodeAll(this.db.ended, batch.ended);
    const claims = encodeAll(this.db.claims, batch.claims);
    const clock = Math.max(batch.clock, this.headRow.clock);
    const tokens = Math.max(batch.tokens, this.headRow.tokens ?? 0);
    const row =
      clock === this.headRow.clock && tokens === (this.headRow.tokens ?? 0)
        ? this.headRow
        : { ...this.headRow, clock, ...(tokens > 0 ? { tokens } : {}) };
    const head = encoderOf(this.db.head).encode(row);
    const meta = batch.meta && encoderOf(this.db.meta).encode(batch.meta);
    this.headRow = row;
    const expected = this.version;
    this.version = expected + 1;
    // Inside a write transaction (lmdb-js's batch or a synchronous one), puts write at once.
    const rows = () => {
      this.db.head.put(HEAD_KEY, asBinary(head) as HeadRow, expected + 1);
      if (meta) this.db.meta.put(ENGINE_KEY, asBinary(meta) as EngineMeta);
      putAll(this.db.spec, specs);
      putAll(this.db.status, statuses);
      putAll(this.db.idem, idempotency);
      putAll(this.db.outbox, outbox);
      putAll(this.db.adopted, adopted);
      putAll(this.db.ended, ended);
      putAll(this.db.claims, claims);
    };
    if (!here) return this.db.head.ifVersion(HEAD_KEY, expected, rows);
    // transactionSync's default flags flush before it returns (lmdb-js flushes a synchronous
    // transaction in the thread that commits it unless asked not to: one fdatasync per
    // transaction, seen with strace): durable, whatever the durability asked. A throw (a full
    // disk) goes to the caller, which stops the journal, as a failed write-thread commit does.
    const committed = this.env.transactionSync(() => {
      if (this.db.head.getEntry(HEAD_KEY)?.version !== expected) return false;
      rows();
      return true;
    });
    this.blocksHere++;
    return Object.assign(Promise.resolve(committed), { flushed: Promise.resolve() });
  }

  /** Why a block's condition failed: a takeover (another epoch) or a broken chain. */
  private conditionFailure(): ShardError {
    this.env.resetReadTxn();
    if (this.db.head.get(HEAD_KEY)?.epoch !== this.headRow.epoch) return this.superseded();
    return this.lossError("a commit was refused because an earlier one was lost");
  }

  private corrupt(detail: string, cause?: unknown): CorruptDataError {
    return new CorruptDataError(this.dataDir, detail, { cause });
  }
}

// ---------------------------------------------------------------- helpers

/**
 * In one write transaction (exclusive across processes): check the head,
 * refuse a live owner unless taking over, and record this process as owner
 * under a new epoch whose chain starts EPOCH_STRIDE past the old one.
 */
function takeOwnership(
  { head, spec }: Databases,
  env: RootDatabase,
  dataDir: string,
  takeover: boolean,
): { headRow: HeadRow; version: number } {
  return env.transactionSync(() => {
    const entry = head.getEntry(HEAD_KEY);
    let epoch = 1;
    let version = EPOCH_STRIDE;
    let clock = 0;
    let tokens = 0;
    if (entry === undefined) {
      if (spec.getKeysCount() > 0) throw new CorruptDataError(dataDir, "task rows without a head row");
    } else {
      const row = entry.value;
      if (
        typeof row?.format !== "number" ||
        typeof row.epoch !== "number" ||
        typeof entry.version !== "number"
      )
        throw new CorruptDataError(dataDir, "the head row is malformed");
      if (row.format > FORMAT_VERSION) throw new IncompatibleFormatError(dataDir, row.format, FORMAT_VERSION);
      if (row.owner && !takeover) refuseLiveOwner(dataDir, row.owner);
      epoch = row.epoch + 1;
      version = entry.version + EPOCH_STRIDE;
      clock = row.clock;
      if (row.tokens !== undefined && !Number.isSafeInteger(row.tokens))
        throw new CorruptDataError(dataDir, "the head row's token ceiling is malformed");
      tokens = row.tokens ?? 0;
    }
    const headRow: HeadRow = {
      format: FORMAT_VERSION,
      epoch,
      owner: currentOwner(),
      clock,
      ...(tokens > 0 ? { tokens } : {}),
    };
    head.put(HEAD_KEY, headRow, version);
    return { headRow, version };
  });
}

function refuseLiveOwner(dataDir: string, owner: OwnerRecord): void {
  const me = currentOwner();
  // This process, but no journal of it is open here (checked before): a
  // leftover of an instance that was dropped without close.
  if (owner.pid === me.pid && owner.host === me.host && owner.startTicks === me.startTicks) return;
  const state = liveness(owner);
  if (state === "dead") return;
  const who =
    state === "alive"
      ? `live process ${owner.pid} on ${owner.host}`
      : `process ${owner.pid} on another host (${owner.host}), which cannot be checked`;
  throw new ShardLockedError(dataDir, owner, `${who}; open with takeover to fence it`);
}

/** The next row with a string key (skipping the shared-structures entry), or undefined at the end. */
function nextRow<V>(rows: Iterator<{ key: Key; value: V }>): { key: string; value: V } | undefined {
  for (;;) {
    const next = rows.next();
    if (next.done) return undefined;
    if (typeof next.value.key === "string") return next.value as { key: string; value: V };
  }
}

/** One table's rows of a block, encoded: keys and values side by side (`null` deletes the row). */
interface EncodedRows {
  readonly keys: string[];
  readonly values: (Uint8Array | null)[];
}

/**
 * Encodes a block's values, and checks its keys fit: lmdb-js refuses a key
 * longer than its maximum only when the put is queued, and a put refused
 * inside a block leaves the block's earlier puts queued (half a block). A
 * string key takes its UTF-8 bytes, plus one for some first characters. A
 * UTF-16 code unit is at most 3 UTF-8 bytes, so only a key longer than a
 * third of the limit is measured (task ids are far shorter). Cost per row:
 * one msgpack encode; the rows go into arrays, not another map.
 */
function encodeAll<V>(db: Database<V, string>, values: Map<string, V | null>): EncodedRows {
  const keys: string[] = [];
  const encoded: (Uint8Array | null)[] = [];
  if (values.size === 0) return { keys, values: encoded };
  const encoder = encoderOf(db);
  const maxKeySize = maxKeySizeOf(db);
  for (const [key, value] of values) {
    if (key.length * 3 + 1 >= maxKeySize) {
      const bytes = Buffer.byteLength(key);
      if (bytes >= maxKeySize)
        throw new Error(`a key of ${bytes} bytes is longer than LMDB allows (${maxKeySize - 1})`);
    }
    keys.push(key);
    encoded.push(value === null ? null : encoder.encode(value));
  }
  return { keys, values: encoded };
}

function putAll<V>(db: Database<V, string>, { keys, values }: EncodedRows): void {
  for (let i = 0; i < keys.length; i++) {
    const bytes = values[i]!;
    if (bytes === null) db.remove(keys[i]!);
    else db.put(keys[i]!, asBinary(bytes) as V);
  }
}

function lastTxnId(env: RootDatabase): number {
  return (env.getStats() as { lastTxnId: number }).lastTxnId;
}

function unreachable(value: never): never {
  throw new TypeError(`unexpected journal record ${JSON.stringify(value)}`);
}
