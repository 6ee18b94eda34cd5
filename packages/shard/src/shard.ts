/**
 * A durable shard: the in-memory engine kept in step with a journal.
 *
 * Every call runs the engine synchronously, collecting the changes it
 * reports through `onChange`; those changes (plus side records: idempotency
 * keys, the clock) go to the journal as one append; the call settles only
 * when that append, and so everything before it, is durable. That holds for
 * rejections and for calls that changed nothing too (a duplicate complete, a
 * repeated idempotency key): their answer describes state an earlier,
 * possibly still pending, call produced, so it waits for the same barrier.
 *
 * Since appends are durable in order, the state on disk is always the engine
 * state after some prefix of the calls, a prefix that includes every call
 * already answered. Recovery rebuilds exactly that state.
 *
 * Lifecycle (changes only through `enter`):
 *
 *   OPEN    --a journal append failed (storage error, or fenced by a
 *             takeover)-->                                  FAILED
 *   OPEN | FAILED --close()-->                              CLOSING
 *   CLOSING --pending appends settled, journal closed-->    CLOSED
 *
 * OPEN serves every call. FAILED refuses every call with SHARD_FAILED: the
 * engine may hold changes the disk does not, and serving them would let
 * clients act on state that a restart forgets. CLOSING and CLOSED refuse
 * with SHARD_CLOSED. There is no way back to OPEN: reopen the directory.
 *
 * Timers: one setTimeout, armed for the earlier of the engine's next timer
 * (lease expiry, retry backoff, hard deadline, retention) and the next
 * idempotency key expiry; when it fires the shard ticks the engine through
 * the same path as a call, so what the tick changes is journaled too.
 */
import {
  type BatchFootprint,
  type Change,
  type CompleteOptions,
  FRESH_ENGINE_META,
  InvalidArgumentError,
  InvalidStateError,
  type Lease,
  type LeaseOptions,
  type LeaseResults,
  MAX_ID_LENGTH,
  type Problem,
  type RemoteApplied,
  type RemoteEvent,
  type RemoteLink,
  type RestoreSource,
  Scheduler,
  type SchedulerObserver,
  type SchedulerOptions,
  type SchedulerStats,
  type Task,
  type TaskInput,
  type TaskPage,
  type TaskQuery,
  type TaskRecord,
  type TaskStatus,
  type TaskView,
  type TypeFrontier,
  ValidationError,
} from "@frontier/core";
import { Packr } from "msgpackr";
import { ClaimTable, claimRow } from "./claim-table.js";
import { type ClockSources, ShardClock } from "./clock.js";
import {
  CorruptDataError,
  ShardClosedError,
  ShardError,
  ShardErrorCode,
  ShardFailedError,
  ShardLimitError,
  StorageError,
} from "./errors.js";
import { IdempotencyTable } from "./idempotency.js";
import {
  type AdoptedMove,
  type AppendOptions,
  DEFAULT_DURABILITY,
  type Durability,
  type EndedMove,
  type IdClaimRow,
  type IdempotencyEntry,
  type Journal,
  type JournalRecord,
  type JournalStats,
  type LeaseProof,
  type SlotExport,
} from "./journal.js";
import { type JournalReplica, ReplicatedJournal } from "./journal-replica.js";
import { LmdbJournal, type LmdbJournalOptions } from "./lmdb-journal.js";

/** Terminal tasks and idempotency keys are kept this long (ms) by default: one day. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Lease request ids are remembered this long (ms) by default: ten minutes. */
export const DEFAULT_LEASE_REPLAY_RETENTION_MS = 10 * 60 * 1000;
/**
 * Most live tasks (WAITING, RUNNABLE, LEASED) a shard holds, by default. A
 * task without payload takes ~200 B of memory and ~200 B of data.mdb, and an
 * open reads 10^6 of them in 2.5–4 s (README, "Recovery and disk use"): 5 × 10^6
 * is ~1 GB of each and an open of 15–20 s, leaving most of a default Node heap
 * (4 GiB on a large machine) to payloads and idempotency keys.
 */
export const DEFAULT_MAX_LIVE_TASKS = 5_000_000;
/**
 * Fencing tokens reserved at a time under "committed" durability (hi-lo):
 * a flushed ceiling that every token handed out stays below, raised by this
 * much when half of it is used. A restart starts above the ceiling, so a
 * token handed out in a commit that a power cut took back (acknowledged, but
 * not yet on disk) is never handed out again. A restart skips at most this
 * many tokens; 2^53 leaves room for billions of restarts.
 */
export const TOKEN_RESERVATION = 1_000_000;

const FLUSH: AppendOptions = Object.freeze({ flush: true });

/**
 * Most payload bytes held, by default: payloads measured as the wire measures
 * them (msgpack, MAX_PAYLOAD_BYTES), of every task held, live or finished
 * until compacted after retentionMs (the engine keeps a finished task's
 * payload until then). Decoded, a payload takes 1× (a string) to ~6× (small
 * maps) its encoded size in the heap (measured): 1 GiB keeps them within a
 * default Node heap with the tasks themselves.
 */
export const DEFAULT_MAX_STORED_BYTES = 1024 * 1024 * 1024;
/**
 * Most idempotency keys of submits remembered at once, by default. A key
 * takes ~200 B of memory (a 36-character key, its entry, 8 B per task id it
 * names) and a row in data.mdb, for idempotencyRetentionMs (a day by
 * default): 2 × 10^6 is ~400 MB, and lets a shard take ~23 submits a second
 * for a whole day. Batches (the SDK's Submitter) take one key each.
 */
export const DEFAULT_MAX_IDEMPOTENCY_KEYS = 2_000_000;
/** Key prefix of lease request entries in the idempotency rows. */
const LEASE_KEY_PREFIX = "lease:";
/** setTimeout's largest delay (ms); a later timer is re-armed when this one fires. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * What a shard tells an observer, for metrics: the engine's task moves
 * (SchedulerObserver), the journal's commits, and repeated submits.
 */
export interface ShardObserver extends SchedulerObserver {
  /** An append of changes became durable `seconds` after it was queued (group commit included). */
  committed(seconds: number): void;
  /** A submit repeated an idempotency key already accepted; nothing was added. */
  duplicateSubmit(): void;
}

export interface ShardOptions
  extends Omit<SchedulerOptions, "now" | "onChange" | "observer" | "measurePayload"> {
  /** Told of task moves, commits and repeated submits (for metrics). */
  readonly observer?: ShardObserver;
  /** Directory of the shard's LMDB environment; created if missing. */
  readonly dataDir: string;
  /** When a call's promise resolves: "flushed" (on disk, the default) or "committed". See journal.ts. */
  readonly durability?: Durability;
  /** Open even if another live-looking owner holds the directory, fencing it. Default false. */
  readonly takeover?: boolean;
  /** Under "committed" durability, fencing tokens reserved at a time. Default TOKEN_RESERVATION. */
  readonly tokenReservation?: number;
  /** Terminal tasks are compacted away this long (ms) after they finish. Default DEFAULT_RETENTION_MS. */
  readonly retentionMs?: number;
  /** Idempotency keys are forgotten this long (ms) after their submit. Default: retentionMs. */
  readonly idempotencyRetentionMs?: number;
  /** Lease request ids (ShardLeaseOptions.requestId) are forgotten this long (ms) after the grant. Default 10 minutes. */
  readonly leaseReplayRetentionMs?: number;
  /** A submit that would hold more live tasks is refused (ShardLimitError). Default DEFAULT_MAX_LIVE_TASKS. */
  readonly maxLiveTasks?: number;
  /**
   * A submit that would hold more payload and result bytes is refused
   * (ShardLimitError). Default DEFAULT_MAX_STORED_BYTES. Completes are not
   * refused for it (see complete).
   */
  readonly maxStoredBytes?: number;
  /** A submit that would remember more idempotency keys is refused (ShardLimitError). Default DEFAULT_MAX_IDEMPOTENCY_KEYS. */
  readonly maxIdempotencyKeys?: number;
  /** Clock sources, for tests. */
  readonly clock?: ClockSources;
  /** Opens the journal; default: the LMDB journal in dataDir. For fault injection and other backends. */
  readonly openJournal?: (options: LmdbJournalOptions) => Promise<Journal>;
  /**
   * Journal shipping (journal-replica.ts): every block also goes to this
   * replica, and a call resolves only once both the journal and the replica
   * hold its changes. The open ships the whole state first, as the
   * replica's base. Default: none.
   */
  readonly replica?: JournalReplica;
  /** With `replica`: blocks shipped after a base before a new one is (ReplicatedJournalOptions). Default DEFAULT_REBASE_AFTER_BYTES. */
  readonly replicaRebaseBytes?: number;
}

export interface SubmitOptions {
  /** A submit whose key was already accepted returns the original result and adds nothing. 1..256 characters. */
  readonly idempotencyKey?: string;
  /**
   * Resolve once the tasks are flushed to disk, whatever the shard's
   * durability: a cross-shard submit's part, which the other shards'
   * parts are acknowledged with.
   */
  readonly flush?: boolean;
  /**
   * Room set aside for submits agreed to but not yet made (a cluster's
   * prepared parts), counted against the limits as if the shard held it.
   */
  readonly alsoHeld?: ShardHoldings;
  /**
   * Remote dependents to register on tasks held here or in the batch (a
   * large workflow's edges from this shard's slots; Scheduler's
   * AdmitOptions.links), with the batch, atomically.
   */
  readonly links?: readonly RemoteLink[];
  /**
   * Id claims to keep with the tasks, in the same commit (docs/cluster.md,
   * "One id space per cluster"): ids homed here, taken by tasks of other
   * shards. Written only when the batch is accepted (a replay writes none).
   */
  readonly claims?: readonly IdClaimRow[];
}

/**
 * Where a slot's id claims go when the slot moves (Shard.beginMove): the
 * home slot of an id, and whether this shard stays the home of a slot.
 */
export interface ClaimHomes {
  readonly homeOf: (taskId: string) => number;
  /** Whether this shard keeps serving `slot` as a home after this move (it is not the slot moving, nor leaving). */
  readonly keeps: (slot: number) => boolean;
}

/**
 * What a shard holds that its limits count; the same shape says what a
 * submit would add. Every figure is kept as tasks move (O(1) to read) and
 * rebuilt from the journal on open.
 */
export interface ShardHoldings {
  /** Tasks not in a terminal state. */
  readonly liveTasks: number;
  /** Payload and result bytes of the tasks held, live or finished until compacted (msgpack-encoded, as the wire measures them). */
  readonly storedBytes: number;
  /** Idempotency keys of submits remembered. */
  readonly idempotencyKeys: number;
}

/** The limits of what a shard holds (ShardOptions). */
export interface ShardLimits {
  readonly maxLiveTasks: number;
  readonly maxStoredBytes: number;
  readonly maxIdempotencyKeys: number;
}

const NOTHING_HELD: ShardHoldings = { liveTasks: 0, storedBytes: 0, idempotencyKeys: 0 };

export interface ShardLeaseOptions extends LeaseOptions {
  /**
   * The client's request id. The grant's (taskId, token) pairs are recorded
   * under (owner, requestId) in the same journal append as the grant, for
   * `replayLease`, and kept for leaseReplayRetentionMs. A lease whose
   * (owner, requestId) was recorded before grants nothing new and returns
   * `replayLease(owner, requestId)` instead, unless `extend` is set.
   */
  readonly requestId?: string;
  /**
   * With requestId: grant anew even if (owner, requestId) was recorded
   * before, adding this grant to the recorded ones (a request filled by
   * several grants, or several attempts under one client request id).
   */
  readonly extend?: boolean;
  /**
   * With requestId: which send of the client's request this lease serves,
   * from 1 (default). Once `replayLease` was fenced at a later attempt, this
   * grants nothing and resolves empty: the client gave this attempt up, so
   * its grant would be stranded until it expired.
   */
  readonly attempt?: number;
}

export interface ReplayLeaseOptions {
  /**
   * The attempt of the client's request asking (a resend, 2 and up): from
   * the answer on, `lease` calls under the id from earlier attempts grant
   * nothing. Recorded durably before the answer, like a grant.
   */
  readonly fence?: number;
}

export interface SubmitResult {
  /** Ids of the tasks the submit added, in batch order. */
  readonly taskIds: readonly string[];
  /** True when the idempotency key had been accepted before and nothing was added now. */
  readonly duplicate: boolean;
}

export const ShardState = {
  OPEN: "OPEN",
  FAILED: "FAILED",
  CLOSING: "CLOSING",
  CLOSED: "CLOSED",
} as const;
export type ShardState = (typeof ShardState)[keyof typeof ShardState];

export interface ShardStats extends SchedulerStats {
  readonly state: ShardState;
  /** Idempotency keys remembered. */
  readonly idempotencyKeys: number;
  /** Payload and result bytes held (ShardHoldings.storedBytes). */
  readonly storedBytes: number;
  readonly journal: JournalStats;
}

export class Shard {
  private state: ShardState = ShardState.OPEN;
  /** Why the shard stopped (FAILED). */
  private failure: ShardError | undefined;
  private closing: Promise<void> | undefined;
  /** Records of the call in progress. */
  private records: JournalRecord[] = [];
  private readonly engine: Scheduler;
  private readonly idempotency: IdempotencyTable;
  /** Lease request entries (keys `lease:...`), with their own, shorter retention. */
  private readonly leaseKeys: IdempotencyTable;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  /** Slots leaving (the outbox rows), by move id. */
  private readonly outbox = new Map<string, SlotExport>();
  /** Ids of the tasks in the outbox rows → their move id. */
  private readonly moving = new Map<string, string>();
  /** Keys of lease requests whose grants are in the outbox rows (some of them) → their move id. */
  private readonly movingLeaseKeys = new Map<string, string>();
  /** Moves adopted, by move id. */
  private readonly adopted = new Map<string, AdoptedMove>();
  /** Moves from here that ended, by move id (a move id names one move for good). */
  private readonly ended = new Map<string, EndedMove>();
  /** The proofs of adopted leases, by task id. */
  private readonly proofs = new Map<string, LeaseProof>();
  /** Id claims homed here for tasks held elsewhere. */
  private readonly claims: ClaimTable;
  /** Under "committed" durability: the token ceiling appended last, and the one known flushed (hi-lo). */
  private tokenCeiling: number;
  private flushedTokenCeiling: number;
  /** The append of the last ceiling raise, until flushed. */
  private ceilingFlushed: Promise<void> = Promise.resolve();

  private constructor(
    private readonly journal: Journal,
    private readonly clock: ShardClock,
    engineOptions: SchedulerOptions,
    loaded: ReturnType<Journal["load"]>,
    private readonly idempotencyRetentionMs: number,
    private readonly leaseReplayRetentionMs: number,
    private readonly observer: ShardObserver | undefined,
    /** The limits of what this shard holds; a submit past one is refused (requireRoom). */
    readonly limits: ShardLimits,
    /** Tokens reserved at a time under "committed" durability; 0 under "flushed" (none reserved). */
    private readonly tokenReservation: number,
  ) {
    const sink = (change: Change) => void this.records.push(change);
    const source: RestoreSource = {
      version: 1,
      meta: loaded.meta ?? FRESH_ENGINE_META,
      tasks: loaded.tasks,
      taskCount: loaded.taskCount,
    };
    this.engine = Scheduler.restore(source, [], {
      ...engineOptions,
      now: () => clock.now(),
      onChange: sink,
      ...(observer === undefined ? {} : { observer }),
      measurePayload,
    });
    this.idempotency = new IdempotencyTable(loaded.idempotency.filter(([, entry]) => !isLeaseEntry(entry)));
    this.leaseKeys = new IdempotencyTable(loaded.idempotency.filter(([, entry]) => isLeaseEntry(entry)));
    for (const row of loaded.outbox) this.keepOutbox(row);
    for (const [moveId, move] of loaded.adopted) this.keepAdopted(moveId, move);
    for (const [moveId, move] of loaded.ended) this.ended.set(moveId, move);
    this.claims = new ClaimTable(loaded.claims);
    // Tokens handed out under a ceiling may be missing from the state (a
    // lost tail): start above it, whatever the durability now.
    this.engine.raiseTokenFloor(loaded.tokenCeiling);
    this.tokenCeiling = this.flushedTokenCeiling = loaded.tokenCeiling;
  }

  /**
   * Opens the shard in `dataDir` (creating it if needed) and rebuilds the
   * engine from the journal. Rejects with a ShardError (SHARD_LOCKED,
   * FOREIGN_DATA, CORRUPT_DATA, INCOMPATIBLE_FORMAT, ...) and leaves nothing
   * open when it cannot.
   */
  static async open(options: ShardOptions): Promise<Shard> {
    const {
      dataDir,
      durability = DEFAULT_DURABILITY,
      takeover = false,
      retentionMs = DEFAULT_RETENTION_MS,
      idempotencyRetentionMs = retentionMs,
      leaseReplayRetentionMs = DEFAULT_LEASE_REPLAY_RETENTION_MS,
      clock: clockSources,
      openJournal = (o: LmdbJournalOptions) => LmdbJournal.open(o),
      replica,
      replicaRebaseBytes,
      observer,
      maxLiveTasks = DEFAULT_MAX_LIVE_TASKS,
      maxStoredBytes = DEFAULT_MAX_STORED_BYTES,
      maxIdempotencyKeys = DEFAULT_MAX_IDEMPOTENCY_KEYS,
      tokenReservation = TOKEN_RESERVATION,
      ...engineOptions
    } = options;
    if (!Number.isSafeInteger(tokenReservation) || tokenReservation < 2)
      throw new InvalidArgumentError(
        `tokenReservation must be an integer >= 2, got ${String(tokenReservation)}`,
      );
    if (typeof dataDir !== "string" || dataDir.length === 0)
      throw new InvalidArgumentError("dataDir must be a non-empty path");
    if (durability !== "flushed" && durability !== "committed")
      throw new InvalidArgumentError(
        `durability must be "flushed" or "committed", got ${String(durability)}`,
      );
    if (!(idempotencyRetentionMs >= 0))
      throw new InvalidArgumentError(
        `idempotencyRetentionMs must be >= 0, got ${String(idempotencyRetentionMs)}`,
      );
    if (!(leaseReplayRetentionMs >= 0))
      throw new InvalidArgumentError(
        `leaseReplayRetentionMs must be >= 0, got ${String(leaseReplayRetentionMs)}`,
      );
    const limits: ShardLimits = { maxLiveTasks, maxStoredBytes, maxIdempotencyKeys };
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(value)}`);
    }
    // Checks the engine options before the directory is touched (the engine names the bad option).
    new Scheduler({ ...engineOptions, retentionMs });

    const local = await openJournal({ dataDir, durability, takeover });
    // With a replica, the open ships the state as its base before the shard reads it (and closes `local` on failure).
    const journal =
      replica === undefined
        ? local
        : await ReplicatedJournal.open(local, replica, {
            ...(replicaRebaseBytes === undefined ? {} : { rebaseAfterBytes: replicaRebaseBytes }),
          });
    try {
      const loaded = journal.load();
      const clock = new ShardClock(Math.max(loaded.clock, loaded.meta?.clock ?? 0), clockSources);
      let shard: Shard;
      try {
        shard = new Shard(
          journal,
          clock,
          { ...engineOptions, retentionMs },
          loaded,
          idempotencyRetentionMs,
          leaseReplayRetentionMs,
          observer,
          limits,
          durability === "committed" ? tokenReservation : 0,
        );
      } catch (error) {
        // A row the journal could not read (CORRUPT_DATA) while the engine took them.
        if (error instanceof ShardError) throw error;
        // The options were checked above: the rows do not form a valid engine state.
        throw new CorruptDataError(dataDir, `the stored tasks do not form a valid state: ${String(error)}`, {
          cause: error,
        });
      }
      // The first reservation (and a raised floor) on disk before any grant.
      if (shard.tokenReservation > 0 || shard.records.length > 0) await shard.flush();
      shard.arm();
      return shard;
    } catch (error) {
      await journal.close().catch(() => {});
      throw error;
    }
  }

  /**
   * Submits one task or a batch, atomically. Resolves once the tasks (and the
   * key) are durable. A valid batch that would take the shard past one of its
   * limits (with `alsoHeld`) is refused whole with ShardLimitError; a repeated
   * key answers as before, whatever the limits.
   */
  submit(tasks: TaskInput | readonly TaskInput[], options: SubmitOptions = {}): Promise<SubmitResult> {
    return this.run(
      () => {
        const key = options.idempotencyKey;
        if (key !== undefined) {
          if (typeof key !== "string" || key.length === 0 || key.length > MAX_ID_LENGTH)
            throw new InvalidArgumentError(
              `idempotencyKey must be a string of 1..${MAX_ID_LENGTH} characters`,
            );
          // Lease grants are recorded in the same table under "lease:…" (see lease).
          if (key.startsWith("lease:"))
            throw new InvalidArgumentError(
              'idempotencyKey must not start with "lease:" (reserved for lease grants)',
            );
          const prior = this.idempotency.get(key);
          if (prior) {
            this.observer?.duplicateSubmit();
            return { taskIds: prior.taskIds, duplicate: true };
          }
        }
        const batch = (Array.isArray(tasks) ? tasks : [tasks]) as readonly TaskInput[];
        const alsoHeld = options.alsoHeld ?? NOTHING_HELD;
        this.engine.addTasks(batch, {
          admit: (footprint) => this.requireRoom(footprint, key !== undefined, alsoHeld),
          ...(options.links === undefined ? {} : { links: options.links }),
        });
        const taskIds = batch.map((t) => t.id);
        if (key !== undefined) {
          const entry = { taskIds, createdAt: this.clock.now() };
          this.idempotency.remember(key, entry);
          this.records.push({ kind: "idempotency", key, entry });
        }
        for (const c of options.claims ?? []) this.records.push(this.claims.set(c));
        return { taskIds, duplicate: false };
      },
      options.flush === true ? FLUSH : undefined,
    );
  }

  /**
   * Leases up to `max` runnable tasks, earliest deadline first. Resolves once
   * the leases (and the request id, if any) are durable. See ShardLeaseOptions.
   */
  lease(owner: string, options: ShardLeaseOptions = {}): Promise<Lease[]> {
    const { requestId, extend, attempt, ...leaseOptions } = options;
    if (requestId === undefined) return this.run(() => this.engine.lease(owner, leaseOptions));
    return this.run(() => {
      const key = checkedLeaseKey(owner, requestId);
      const prior = this.leaseKeys.get(key);
      // Superseded: the client resent this request, and the resend looked the grants up here first.
      if (prior?.fence !== undefined && (attempt ?? 1) < prior.fence) return [];
      if (prior && prior.taskIds.length > 0 && extend !== true) return this.replayFrom(owner, prior);
      const leases = this.engine.lease(owner, leaseOptions);
      if (leases.length > 0) {
        const entry: IdempotencyEntry = {
          taskIds: [...(prior?.taskIds ?? []), ...leases.map((l) => l.taskId)],
          tokens: [...(prior?.tokens ?? []), ...leases.map((l) => l.token)],
          createdAt: prior?.createdAt ?? this.clock.now(),
          ...(prior?.fence === undefined ? {} : { fence: prior.fence }),
          ...(prior?.movedAway === true ? { movedAway: true } : {}),
        };
        // An existing key keeps its place (and createdAt): the table stays in createdAt order.
        this.leaseKeys.remember(key, entry);
        this.records.push({ kind: "idempotency", key, entry });
      }
      return leases;
    });
  }

  /**
   * The leases granted to (owner, requestId) by `lease` calls with that
   * request id, while it is remembered, that still hold: the task is still
   * LEASED under the granted token. Survives restarts. Resolves once
   * everything before it is durable, like any answer: a grant still being
   * committed is never handed out, since a crash before its commit would
   * let the task be granted to someone else. With `fence`, also shuts out
   * earlier attempts of the request (ReplayLeaseOptions).
   */
  replayLease(owner: string, requestId: string, options: ReplayLeaseOptions = {}): Promise<Lease[]> {
    const { fence } = options;
    if (fence !== undefined && (!Number.isSafeInteger(fence) || fence < 1))
      return Promise.reject(
        new InvalidArgumentError(`fence must be a positive integer, got ${String(fence)}`),
      );
    const key = leaseKey(owner, requestId);
    // Nothing recorded, nothing to fence: nothing to wait for (the common case: every new lease request asks).
    if (fence === undefined && this.refusal() === undefined && this.leaseKeys.get(key) === undefined)
      return Promise.resolve([]);
    return this.run(() => {
      const prior = this.leaseKeys.get(key);
      if (fence !== undefined && (prior?.fence ?? 0) < fence && storableLeaseKey(owner, requestId)) {
        const entry: IdempotencyEntry = {
          taskIds: prior?.taskIds ?? [],
          tokens: prior?.tokens ?? [],
          createdAt: prior?.createdAt ?? this.clock.now(),
          fence,
          ...(prior?.movedAway === true ? { movedAway: true } : {}),
        };
        this.leaseKeys.remember(key, entry);
        this.records.push({ kind: "idempotency", key, entry });
      }
      return prior ? this.replayFrom(owner, prior) : [];
    });
  }

  heartbeat(taskId: string, token: number, options: { leaseMs?: number } = {}): Promise<Lease> {
    return this.run(() => this.engine.heartbeat(taskId, token, options));
  }

  /**
   * Completes a leased task, keeping `options.result` with it, journaled in
   * the same append as the completion; a repeat with the same token resolves
   * `{ duplicate: true }` and changes nothing (the first result stays). The
   * result counts in the held bytes but is never refused for maxStoredBytes:
   * it finishes work the shard already took, and a refusal would leave the
   * task to run again.
   */
  complete(taskId: string, token: number, options: CompleteOptions = {}): Promise<{ duplicate: boolean }> {
    return this.run(() => this.engine.complete(taskId, token, options));
  }

  fail(
    taskId: string,
    token: number,
    options: { retryable?: boolean; reason?: string } = {},
  ): Promise<TaskView> {
    return this.run(() => this.engine.fail(taskId, token, options));
  }

  /**
   * Hands a live lease back without spending an attempt (the engine's
   * `release`): the task is RUNNABLE again, in the same append as any
   * change, so a restarted shard has it released (and the token fenced). A
   * repeat with the released token, no lease granted since, resolves
   * `{ duplicate: true }` and changes nothing.
   */
  release(taskId: string, token: number): Promise<{ duplicate: boolean }> {
    return this.run(() => this.engine.release(taskId, token));
  }

  cancel(taskId: string, reason?: string): Promise<void> {
    return this.run(() => this.engine.cancel(taskId, reason));
  }

  updateDeadline(taskId: string, deadline: number): Promise<void> {
    return this.run(() => this.engine.updateDeadline(taskId, deadline));
  }

  /**
   * Runs a task that ended FAILED, CANCELLED or EXPIRED again (the engine's
   * `retry`); resolves with its view once the change is durable, so a
   * restarted shard has it RUNNABLE or WAITING again.
   */
  retry(taskId: string, options: { deadline?: number } = {}): Promise<TaskView> {
    return this.run(() => this.engine.retry(taskId, options));
  }

  /**
   * A page of task summaries (the engine's `listTasks`). A read of memory,
   * like getTask: one pass over the engine's state and deadline arrays.
   */
  listTasks(query: TaskQuery): TaskPage {
    return this.read(() => this.engine.listTasks(query));
  }

  /**
   * The task as the engine holds it now (due timers run first). A read of
   * memory: it may show the effect of a call whose promise has not resolved
   * yet, or of an expiry still being journaled. Throws SHARD_FAILED or
   * SHARD_CLOSED when the shard does not serve.
   */
  getTask(taskId: string): TaskView | undefined {
    return this.read(() => this.engine.getTask(taskId));
  }

  /**
   * The problems `submit` would report for this batch now, without adding
   * anything (empty: the batch is valid; the limits are `admit`'s to check).
   * `alsoTaken` names ids to treat as taken (a cluster's reservations for
   * batches not yet committed). A read of memory, like getTask.
   */
  check(
    tasks: TaskInput | readonly TaskInput[],
    alsoTaken?: ReadonlySet<string>,
    links?: readonly RemoteLink[],
  ): Problem[] {
    return this.read(() =>
      this.engine.check(asBatch(tasks), alsoTaken, links === undefined ? {} : { links }),
    );
  }

  /**
   * Whether `submit` with a new idempotency key would accept this batch now,
   * without adding anything: throws what it would (ValidationError,
   * ShardLimitError; `alsoTaken` as for check, `alsoHeld` as for submit), or
   * returns what the batch would hold, key included, for the caller to set
   * aside until it submits (SubmitOptions.alsoHeld). A read of memory.
   */
  admit(
    tasks: TaskInput | readonly TaskInput[],
    options: {
      readonly alsoTaken?: ReadonlySet<string>;
      readonly alsoHeld?: ShardHoldings;
      readonly links?: readonly RemoteLink[];
    } = {},
  ): ShardHoldings {
    return this.read(() => {
      let holds: ShardHoldings = NOTHING_HELD;
      const problems = this.engine.check(asBatch(tasks), options.alsoTaken, {
        admit: (footprint) => {
          holds = this.requireRoom(footprint, true, options.alsoHeld ?? NOTHING_HELD);
        },
        ...(options.links === undefined ? {} : { links: options.links }),
      });
      if (problems.length > 0) throw new ValidationError(problems);
      return holds;
    });
  }

  // ------------------------------------------- large workflows (core's remote-edges.ts)

  /**
   * Applies completion events for dependents held here (Scheduler.applyRemote),
   * each exactly once: the dedupe is in the dependent's record, journaled
   * with the change it made. Resolves once flushed, whatever the durability:
   * the sender forgets an event on this answer.
   */
  applyRemote(events: readonly RemoteEvent[]): Promise<RemoteApplied[]> {
    return this.run(() => this.engine.applyRemote(events), FLUSH);
  }

  /**
   * At most `limit` events of the outbox (Scheduler.remoteOutbox), once the
   * changes that made them are flushed to disk: a relay may send them, for
   * a receiver acts on them for good. Taken before a barrier that
   * waits for every change made so far, so none is sent ahead of its commit.
   */
  async remoteOutbox(
    limit: number,
    skip?: (prerequisite: string, dependent: string) => boolean,
  ): Promise<RemoteEvent[]> {
    const events = this.read(() => this.engine.remoteOutbox(limit, skip));
    if (events.length > 0) await this.run(() => undefined, FLUSH);
    return events;
  }

  /** Outcomes the outbox owes now. O(1). */
  get remoteOutboxSize(): number {
    return this.engine.remoteOutboxSize;
  }

  /** Events their receivers answered for (applied or duplicate): out of the outbox. */
  acknowledgeRemote(
    acks: readonly { readonly prerequisite: string; readonly dependent: string }[],
  ): Promise<void> {
    return this.run(() => this.engine.acknowledgeRemote(acks));
  }

  /**
   * The claim row of `taskId` kept here (docs/cluster.md, "One id space per
   * cluster"): the id is taken by a task of another shard. Undefined: no
   * row (a task held here is its id's claim: see heldTask). The same
   * object until the claim is written again or dropped. O(1).
   */
  claimOf(taskId: string): IdClaimRow | undefined {
    return this.claims.get(taskId);
  }

  /** Claim rows kept here. O(1). */
  get claimCount(): number {
    return this.claims.size;
  }

  /** Every claim row kept here, as of now (a copy: O(rows)). */
  claimRows(): IdClaimRow[] {
    return [...this.claims.values()];
  }

  /**
   * Drops the claim rows of `rows` that are still the rows kept (the same
   * objects: a claim written again since is kept), in one commit; resolves
   * with how many went. The caller checked, in the same synchronous stretch
   * as this call, that their tasks are gone (an id's home sweeping rows of
   * tasks dropped after their retention).
   */
  dropClaims(rows: readonly IdClaimRow[]): Promise<number> {
    return this.run(() => {
      let dropped = 0;
      for (const row of rows) {
        if (this.claims.get(row.taskId) !== row) continue;
        const record = this.claims.drop(row.taskId);
        if (record !== undefined) {
          this.records.push(record);
          dropped++;
        }
      }
      return dropped;
    });
  }

  /**
   * Whether a task of id `taskId` is in the engine (any state), and its
   * workflow. A task leaving in a slot move is not: its claim, when its id
   * stays homed here, became a row in the move's commit. A read of memory,
   * O(1): no timer runs (a task a timer would drop after its retention is
   * still held until it does).
   */
  heldTask(taskId: string): { readonly workflowId?: string; readonly large?: true } | undefined {
    const refusal = this.refusal();
    if (refusal) throw refusal;
    return this.engine.holder(taskId);
  }

  /**
   * Keeps id claims (rows replacing any of the same ids), durable (flushed)
   * when it resolves: a cross-shard submit's claims, made durable before
   * any task of the batch is (docs/cluster.md, "One id space per cluster").
   */
  keepClaims(claims: readonly IdClaimRow[]): Promise<void> {
    return this.run(() => {
      for (const c of claims) this.records.push(this.claims.set(c));
    }, FLUSH);
  }

  /** What the shard holds that its limits count. O(1). */
  holdings(): ShardHoldings {
    return {
      liveTasks: this.engine.liveCount,
      storedBytes: this.engine.heldPayloadBytes,
      idempotencyKeys: this.idempotency.size,
    };
  }

  /**
   * The prerequisites' results a grant of task `id` would carry now (see
   * Scheduler.prerequisiteResults), or undefined for an unknown id: what a
   * server adds to the grant's size. A read of memory, O(p).
   */
  prerequisiteResults(id: string): LeaseResults | undefined {
    return this.read(() => this.engine.prerequisiteResults(id));
  }

  /**
   * Task `id` as a lease of it carries it, and its payload's encoded bytes
   * (Scheduler.leaseTask), or undefined for an unknown id: what a server
   * sizes a grant by. A read of memory, O(1).
   */
  leaseTask(id: string): { readonly task: Task; readonly payloadBytes: number } | undefined {
    return this.read(() => this.engine.leaseTask(id));
  }

  /** The runnable task a lease would take next (due timers run first), or null. A read of memory. */
  peekFrontier(types?: readonly string[]): { id: string; deadline: number; key: number } | null {
    return this.read(() => {
      this.engine.tick();
      return this.engine.peekFrontier(types);
    });
  }

  /**
   * The earliest runnable task and how many are runnable, after due timers,
   * and the frontiers of the `typeLimit` task types whose first tasks come
   * first (Scheduler.typeFrontiers): what a shard announces.
   */
  frontier(typeLimit = 0): {
    top: { id: string; deadline: number; key: number } | null;
    runnable: number;
    types: TypeFrontier[];
    typesOmitted: number;
  } {
    return this.read(() => {
      this.engine.tick();
      const { frontiers, omitted } = this.engine.typeFrontiers(typeLimit);
      return {
        top: this.engine.peekFrontier(),
        runnable: this.engine.runnableCount,
        types: frontiers,
        typesOmitted: omitted,
      };
    });
  }

  /**
   * How the runnable tasks' ordering keys spread (Scheduler.frontierDepth),
   * of `types` (absent: every type); read apart, as it costs more.
   */
  frontierDepth(ranks: readonly number[], types?: readonly string[]): number[] {
    return this.read(() => this.engine.frontierDepth(ranks, types));
  }

  /** The ordering keys of the `limit` earliest runnable tasks of `types` (Scheduler.leastKeys). */
  leastKeys(limit: number, types?: readonly string[]): number[] {
    return this.read(() => this.engine.leastKeys(limit, types));
  }

  /**
   * Throws SHARD_FAILED (cause SHARD_FENCED) once another opener has taken
   * the data directory over, moving this shard to FAILED; SHARD_FAILED or
   * SHARD_CLOSED when it does not serve. A write finds the fence by itself;
   * a server calls this before answering a read, so that a replaced owner
   * (paused, then woken) answers nothing from its stale memory. Cost: one
   * read of the ownership record.
   */
  confirmOwner(): void {
    const refusal = this.refusal();
    if (refusal) throw refusal;
    try {
      this.journal.checkOwner();
    } catch (cause) {
      const reason = toShardError(cause);
      this.enter(ShardState.FAILED, reason);
      throw new ShardFailedError(this.failure ?? reason);
    }
  }

  /**
   * The attempt that (owner, requestId) is fenced at (ReplayLeaseOptions):
   * `lease` calls from earlier attempts grant nothing. 1 when not fenced.
   */
  leaseFence(owner: string, requestId: string): number {
    return this.read(() => this.leaseKeys.get(leaseKey(owner, requestId))?.fence ?? 1);
  }

  /**
   * Whether grants or a fence are recorded under (owner, requestId): when
   * not, `replayLease` has nothing to return, and a caller can grant at once
   * without waiting on it (so a grant stays in the same synchronous stretch,
   * and commit, as the calls before it).
   */
  hasLeaseRecord(owner: string, requestId: string): boolean {
    return this.read(() => this.leaseKeys.get(leaseKey(owner, requestId)) !== undefined);
  }

  /** The first outcome of the submit accepted under `idempotencyKey`, while the key is remembered. */
  submitted(idempotencyKey: string): SubmitResult | undefined {
    return this.read(() => {
      const prior = this.idempotency.get(idempotencyKey);
      return prior ? { taskIds: prior.taskIds, duplicate: true } : undefined;
    });
  }

  // ------------------------------------------------------------ slot movement

  /**
   * Step 1 of a slot move (docs/cluster.md, "Slot movement"): takes the
   * tasks `select` picks (the slot's) out of the engine, with the
   * idempotency and lease-request entries naming them (narrowed to them;
   * what they name elsewhere stays here) and the proofs of their live
   * leases (`proofOf`), and journals all of it as an outbox row in the same
   * commit. Resolves with the row once durable. Idempotent by move id: a
   * move begun already resolves with its row. A second move of a slot
   * still in the outbox is refused (InvalidStateError), as is a selection
   * the engine refuses (not closed under prerequisites); nothing changes then.
   */
  beginMove(move: {
    readonly moveId: string;
    readonly slot: number;
    readonly source: string;
    readonly target: string;
    /** Picks the slot's tasks; `large`: the task is of a large workflow (placed by (workflowId, id)). */
    readonly select: (workflowId: string | undefined, id: string, large: boolean) => boolean;
    readonly proofOf: (taskId: string, token: number) => string;
    /** How the slot's id claims move (absent: this shard keeps no claims, as before they existed). */
    readonly homes?: ClaimHomes;
  }): Promise<SlotExport> {
    return this.run(() => {
      const prior = this.outbox.get(move.moveId);
      if (prior) return prior;
      for (const row of this.outbox.values()) {
        if (row.slot === move.slot)
          throw new InvalidStateError(
            `slot ${move.slot}`,
            "MOVING",
            `slot ${move.slot} is moving already (move ${JSON.stringify(row.moveId)} to ${row.target})`,
          );
      }
      // The claims of the ids homed in the slot go with it: rows kept here, and the tasks staying
      // here whose ids are homed there (their claims were the tasks themselves). Gathered while the
      // engine picks the slot's tasks, applied only once it has (it may refuse the selection).
      const homes = move.homes;
      const staying: IdClaimRow[] = [];
      const select =
        homes === undefined
          ? move.select
          : (workflowId: string | undefined, id: string, large: boolean): boolean => {
              if (move.select(workflowId, id, large)) return true;
              if (homes.homeOf(id) === move.slot) staying.push(claimRow({ taskId: id, workflowId, large }));
              return false;
            };
      const tasks = this.engine.exportTasks(select);
      const ids = new Set(tasks.map((r) => r.spec.id));
      const claims: IdClaimRow[] = [];
      if (homes !== undefined) {
        for (const row of [...this.claims.values()]) {
          if (homes.homeOf(row.taskId) !== move.slot) continue;
          claims.push(row);
          const dropped = this.claims.drop(row.taskId);
          if (dropped !== undefined) this.records.push(dropped);
        }
        claims.push(...staying);
        // A leaving task whose id stays homed here: its claim was the task, now it is a row.
        for (const { spec } of tasks) {
          const home = homes.homeOf(spec.id);
          if (home !== move.slot && homes.keeps(home))
            this.records.push(
              this.claims.set({ taskId: spec.id, workflowId: spec.workflowId, large: spec.large }),
            );
        }
      }
      const idempotency: [string, IdempotencyEntry][] = [];
      for (const table of [this.idempotency, this.leaseKeys]) {
        for (const [key, entry] of [...table.entries()]) {
          const { moved, kept } = splitEntry(entry, ids);
          if (moved === undefined) continue;
          idempotency.push([key, moved]);
          if (kept === undefined) {
            table.delete(key);
            this.records.push({ kind: "forget", key });
          } else {
            table.remember(key, kept);
            this.records.push({ kind: "idempotency", key, entry: kept });
          }
        }
      }
      const leases: LeaseProof[] = [];
      for (const { spec, status } of tasks) {
        if (status.state !== "LEASED") continue;
        leases.push({ taskId: spec.id, token: status.token, secret: move.proofOf(spec.id, status.token) });
      }
      const row: SlotExport = {
        moveId: move.moveId,
        slot: move.slot,
        source: move.source,
        target: move.target,
        createdAt: this.clock.now(),
        tasks,
        idempotency,
        leases,
        ...(claims.length === 0 ? {} : { claims }),
      };
      this.keepOutbox(row);
      this.records.push({ kind: "outbox", moveId: row.moveId, row });
      return row;
    }, FLUSH);
  }

  /** The outbox rows: moves begun here and not ended (a restarted source drives each to its end). */
  outgoingMoves(): SlotExport[] {
    return [...this.outbox.values()];
  }

  /** The move id of the outbox row holding task `taskId`, if it is leaving. */
  movingTask(taskId: string): string | undefined {
    return this.moving.get(taskId);
  }

  /**
   * Step 4: the target holds the slot and the directory names it: the
   * outbox row goes, and the move is remembered as ended in the same
   * commit (endedMove), so its id is never used for another export.
   * Idempotent.
   */
  endMove(moveId: string): Promise<void> {
    return this.run(() => {
      const row = this.outbox.get(moveId);
      if (!row) return;
      this.dropOutbox(moveId);
      const move: EndedMove = { slot: row.slot, target: row.target, endedAt: this.clock.now() };
      this.ended.set(moveId, move);
      this.records.push({ kind: "outbox", moveId, row: null }, { kind: "ended", moveId, move });
    }, FLUSH);
  }

  /** The move `moveId` from here, if it ended (its slot, its target); undefined otherwise. */
  endedMove(moveId: string): EndedMove | undefined {
    return this.ended.get(moveId);
  }

  /**
   * Undoes a move the target refused for good (it adopted nothing under the
   * move id): the row's tasks and entries come back into this shard, and the
   * row goes, in one commit. Idempotent.
   */
  abortMove(moveId: string): Promise<void> {
    return this.run(() => {
      const row = this.outbox.get(moveId);
      if (!row) return;
      // Back on the clock they were read on: as they were.
      this.engine.adoptTasks(row.tasks);
      for (const [key, entry] of row.idempotency) this.mergeEntry(key, entry);
      for (const proof of row.leases) this.proofs.set(proof.taskId, proof);
      // The slot's claims come back as rows (a row naming a task held here is harmless).
      for (const c of row.claims ?? []) this.records.push(this.claims.set(c));
      this.dropOutbox(moveId);
      this.records.push({ kind: "outbox", moveId, row: null });
    }, FLUSH);
  }

  /**
   * Step 2, at the target: takes a slot export in as it is (Scheduler
   * adoptTasks: states, tokens, leases), with its entries and its leases'
   * proofs, and journals the move as adopted in the same commit. Idempotent
   * by move id (`already`). Refused whole, nothing changed, when a task id
   * collides with one held here (InvalidArgumentError). Entries whose key is
   * held here already are merged into it; new ones count from now.
   */
  adopt(
    row: SlotExport,
    /** The export's `createdAt` at its source (AdoptedMove.exportedAt), when the parts said. */
    exportedAt?: number,
  ): Promise<{ readonly already: boolean; readonly tasks: number }> {
    return this.run(() => {
      if (this.adopted.has(row.moveId)) return { already: true, tasks: 0 };
      const tasks = this.engine.adoptTasks(onThisClock(row.tasks, this.clock.now() - row.createdAt));
      for (const [key, entry] of row.idempotency) this.mergeEntry(key, entry);
      for (const c of row.claims ?? []) this.records.push(this.claims.set(c));
      const move: AdoptedMove = {
        slot: row.slot,
        source: row.source,
        adoptedAt: this.clock.now(),
        leases: row.leases,
        ...(exportedAt === undefined ? {} : { exportedAt }),
      };
      this.keepAdopted(row.moveId, move);
      this.records.push({ kind: "adopted", moveId: row.moveId, move });
      return { already: false, tasks };
    }, FLUSH);
  }

  /** The move `moveId` adopted here (its slot, source, and the export's `createdAt` when known); undefined if not. */
  adoptedMove(moveId: string): AdoptedMove | undefined {
    return this.adopted.get(moveId);
  }

  /** The slots of the moves adopted here (a restarted target keeps claiming them). */
  adoptedSlots(): number[] {
    return [...new Set([...this.adopted.values()].map((m) => m.slot))];
  }

  /**
   * The proof an adopted lease of `taskId` under `token` carried, while the
   * task is still leased under that token; else undefined.
   */
  adoptedProof(taskId: string, token: number): string | undefined {
    const proof = this.proofs.get(taskId);
    if (proof === undefined || proof.token !== token) return undefined;
    return proof.secret;
  }

  private keepOutbox(row: SlotExport): void {
    this.outbox.set(row.moveId, row);
    for (const { spec } of row.tasks) this.moving.set(spec.id, row.moveId);
    for (const [key, entry] of row.idempotency) {
      if (isLeaseEntry(entry) && entry.taskIds.length > 0) this.movingLeaseKeys.set(key, row.moveId);
    }
  }

  private dropOutbox(moveId: string): void {
    const row = this.outbox.get(moveId);
    if (!row) return;
    this.outbox.delete(moveId);
    for (const { spec } of row.tasks) if (this.moving.get(spec.id) === moveId) this.moving.delete(spec.id);
    for (const [key] of row.idempotency) {
      if (this.movingLeaseKeys.get(key) === moveId) this.movingLeaseKeys.delete(key);
    }
  }

  private keepAdopted(moveId: string, move: AdoptedMove): void {
    this.adopted.set(moveId, move);
    for (const proof of move.leases) this.proofs.set(proof.taskId, proof);
  }

  /**
   * An entry arriving with moved tasks: merged into the entry of the same
   * key (its tasks added, its place and createdAt kept), or remembered from
   * now (the table stays in createdAt order).
   */
  private mergeEntry(key: string, entry: IdempotencyEntry): void {
    const table = isLeaseEntry(entry) ? this.leaseKeys : this.idempotency;
    const prior = table.get(key);
    let merged: IdempotencyEntry;
    if (prior === undefined) merged = { ...entry, createdAt: this.clock.now() };
    else {
      const fence = Math.max(prior.fence ?? 0, entry.fence ?? 0);
      merged = {
        taskIds: [...prior.taskIds, ...entry.taskIds],
        createdAt: prior.createdAt,
        ...(prior.tokens === undefined && entry.tokens === undefined
          ? {}
          : { tokens: [...(prior.tokens ?? []), ...(entry.tokens ?? [])] }),
        ...(fence === 0 ? {} : { fence }),
        // Kept when the tasks come back (an aborted move): a stale mark costs a resend one lookup more.
        ...(prior.movedAway === true || entry.movedAway === true ? { movedAway: true as const } : {}),
      };
    }
    table.remember(key, merged);
    this.records.push({ kind: "idempotency", key, entry: merged });
  }

  /**
   * Whether grants made to (owner, requestId) here left with their slot
   * since (beginMove): a resend of the request then finds them only at the
   * shard that holds the slot now, through a coordinator's replay-only
   * lookup of every shard. Survives restarts (the mark is journaled with
   * the move) for as long as the request id is remembered.
   */
  leaseMovedAway(owner: string, requestId: string): boolean {
    return this.read(() => this.leaseKeys.get(leaseKey(owner, requestId))?.movedAway === true);
  }

  /**
   * The move id of an outbox row carrying grants made to (owner,
   * requestId): they are between this shard and the slot's target (the
   * target may not have adopted them yet), so neither shard can say them
   * now, and a lookup of the request's grants must wait for the move's end.
   * Undefined when none of its grants is on its way.
   */
  leaseMoving(owner: string, requestId: string): string | undefined {
    return this.movingLeaseKeys.get(leaseKey(owner, requestId));
  }

  /**
   * Whether a grant still holds: the task is here, LEASED to `owner` under
   * `token` (not expired, released, completed or moved away since).
   */
  holdsLease(owner: string, taskId: string, token: number): boolean {
    return this.heldLease(owner, taskId, token) !== undefined;
  }

  /** The task's view while the grant holds (holdsLease), else undefined. */
  private heldLease(owner: string, taskId: string, token: number): TaskView | undefined {
    const view = this.engine.getTask(taskId);
    if (view === undefined || view.state !== "LEASED" || view.token !== token || view.leaseOwner !== owner)
      return undefined;
    return view;
  }

  private replayFrom(owner: string, entry: IdempotencyEntry): Lease[] {
    const leases: Lease[] = [];
    entry.taskIds.forEach((taskId, i) => {
      const token = entry.tokens?.[i];
      if (token === undefined) return;
      const view = this.heldLease(owner, taskId, token);
      if (view === undefined) return;
      const task: { -readonly [K in keyof Task]: Task[K] } = {
        id: view.id,
        deadline: view.deadline,
        prerequisites: view.prerequisites,
      };
      if (view.workflowId !== undefined) task.workflowId = view.workflowId;
      if (view.payload !== undefined) task.payload = view.payload;
      const lease: { -readonly [K in keyof Lease]: Lease[K] } = {
        taskId,
        owner,
        token,
        expiresAt: view.leaseExpiresAt!,
        attempt: view.attempts,
        task,
      };
      // A replayed grant carries the results the grant did: completed prerequisites' results do not change.
      const { results, omitted } = this.engine.prerequisiteResults(taskId)!;
      if (results.length > 0) lease.results = results;
      if (omitted > 0) lease.resultsOmitted = omitted;
      leases.push(lease);
    });
    return leases;
  }

  /** Engine statistics, plus the shard's state and journal counters. Works in every state. */
  stats(): ShardStats {
    let engine: SchedulerStats;
    if (this.state === ShardState.OPEN) engine = this.read(() => this.engine.stats());
    else {
      // Nothing is journaled any more: what the engine's tick changes stays in memory.
      engine = this.engine.stats();
      this.records = [];
    }
    return {
      ...engine,
      state: this.state,
      idempotencyKeys: this.idempotency.size,
      storedBytes: this.engine.heldPayloadBytes,
      journal: this.journal.stats(),
    };
  }

  /** Waits for pending calls to become durable, releases the directory and closes. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.enter(ShardState.CLOSING);
      await this.journal.close();
      this.enter(ShardState.CLOSED);
    })();
    return this.closing;
  }

  // --------------------------------------------------------------- internals

  private enter(state: ShardState, failure?: ShardError): void {
    if (state === ShardState.FAILED) {
      if (this.state !== ShardState.OPEN) return;
      this.failure = failure;
    }
    this.state = state;
    if (state !== ShardState.OPEN) this.disarm();
  }

  private refusal(): ShardError | undefined {
    switch (this.state) {
      case ShardState.OPEN:
        return undefined;
      case ShardState.FAILED:
        return new ShardFailedError(this.failure!);
      case ShardState.CLOSING:
      case ShardState.CLOSED:
        return new ShardClosedError();
    }
  }

  /**
   * Runs one engine operation and journals what it changed. The promise
   * settles, with the operation's result or error, once the journal is
   * durable up to this call.
   */
  private run<T>(operation: () => T, append?: AppendOptions): Promise<T> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    let result: T | undefined;
    let error: unknown;
    let threw = false;
    try {
      result = operation();
    } catch (e) {
      threw = true;
      error = e;
    }
    return this.flush(append).then(() => {
      if (threw) throw error;
      return result as T;
    });
  }

  /**
   * Runs a read. Engine reads run due timers first (an expired lease shows
   * as expired), and what that changed is journaled in the background.
   */
  private read<T>(operation: () => T): T {
    const refusal = this.refusal();
    if (refusal) throw refusal;
    const result = operation();
    // A failure moves the shard to FAILED; the next call reports it.
    if (this.records.length > 0) this.flush().catch(() => {});
    return result;
  }

  /** Appends the records collected so far (a barrier when there are none); a failure stops the shard. */
  private flush(append?: AppendOptions): Promise<void> {
    const reservation = this.reserveTokens();
    const records = this.records;
    if (records.length > 0) {
      records.push({ kind: "clock", at: this.clock.now() });
      this.records = [];
    }
    // Commit latency, of appends that carry changes (a barrier's wait is another append's).
    const observer = records.length > 0 ? this.observer : undefined;
    const queuedAt = observer === undefined ? 0 : performance.now();
    const durable = this.journal.append(records, append).then(
      () => observer?.committed((performance.now() - queuedAt) / 1000),
      (cause: unknown) => {
        const reason = toShardError(cause);
        this.enter(ShardState.FAILED, reason);
        throw new ShardFailedError(this.failure ?? reason);
      },
    );
    this.arm();
    if (reservation !== undefined) {
      this.ceilingFlushed = durable.then(() => {
        if (reservation > this.flushedTokenCeiling) this.flushedTokenCeiling = reservation;
      });
      // Its failure is the append's, reported to that append's caller (and it stops the shard);
      // a later flush that waits on it gets it too.
      this.ceilingFlushed.catch(() => {});
    }
    // A token at or above the flushed ceiling may be acknowledged only once the ceiling above it is on disk.
    if (this.engine.lastToken >= this.flushedTokenCeiling && this.flushedTokenCeiling < this.tokenCeiling)
      return Promise.all([durable, this.ceilingFlushed]).then(() => {});
    return durable;
  }

  /**
   * Under "committed" durability, raises the token ceiling by
   * `tokenReservation` once half of it is used, in the records about to be
   * appended (that append is then acknowledged flushed): the new ceiling is
   * usually on disk long before a token reaches the old one. Returns the new
   * ceiling, or undefined when none was needed.
   */
  private reserveTokens(): number | undefined {
    const block = this.tokenReservation;
    if (block === 0) return undefined;
    const last = this.engine.lastToken;
    if (last < this.tokenCeiling - block / 2) return undefined;
    this.tokenCeiling = Math.max(this.tokenCeiling, last) + block;
    this.records.push({ kind: "tokens", ceiling: this.tokenCeiling });
    return this.tokenCeiling;
  }

  /** Arms the timer for the next engine timer or idempotency expiry, if earlier than the one armed. */
  private arm(): void {
    if (this.state !== ShardState.OPEN) return;
    // The earliest of the engine's next timer and the two oldest keys' expiries. Runs after every
    // call: no allocation.
    let next = this.engine.nextTimerAt();
    const oldest = this.idempotency.oldestCreatedAt();
    if (oldest !== null) next = earliest(next, oldest + this.idempotencyRetentionMs);
    const oldestLease = this.leaseKeys.oldestCreatedAt();
    if (oldestLease !== null) next = earliest(next, oldestLease + this.leaseReplayRetentionMs);
    if (next === null || !Number.isFinite(next)) return;
    if (this.timerAt !== undefined && this.timerAt <= next) return;
    this.disarm();
    this.timerAt = next;
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(next - this.clock.now())));
    this.timer = setTimeout(this.onTimer, delay);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = undefined;
    if (this.state !== ShardState.OPEN) return;
    // A failure moves the shard to FAILED; there is no caller to tell.
    this.run(() => {
      this.engine.tick();
      const cutoff = this.clock.now() - this.idempotencyRetentionMs;
      for (const key of this.idempotency.expire(cutoff)) this.records.push({ kind: "forget", key });
      const leaseCutoff = this.clock.now() - this.leaseReplayRetentionMs;
      for (const key of this.leaseKeys.expire(leaseCutoff)) this.records.push({ kind: "forget", key });
    }).catch(() => {});
  };

  /**
   * Throws ShardLimitError when a batch of `footprint` (and an idempotency
   * key, with `newKey`) would take what the shard holds, plus `alsoHeld`,
   * past a limit; returns what it would hold. O(1): every count is kept as
   * tasks and keys come and go.
   */
  private requireRoom(footprint: BatchFootprint, newKey: boolean, alsoHeld: ShardHoldings): ShardHoldings {
    const { maxLiveTasks, maxStoredBytes, maxIdempotencyKeys } = this.limits;
    const live = this.engine.liveCount + alsoHeld.liveTasks;
    if (live + footprint.tasks > maxLiveTasks)
      throw new ShardLimitError("maxLiveTasks", maxLiveTasks, live, footprint.tasks);
    const stored = this.engine.heldPayloadBytes + alsoHeld.storedBytes;
    if (stored + footprint.payloadBytes > maxStoredBytes)
      throw new ShardLimitError("maxStoredBytes", maxStoredBytes, stored, footprint.payloadBytes);
    const keys = this.idempotency.size + alsoHeld.idempotencyKeys;
    if (newKey && keys + 1 > maxIdempotencyKeys)
      throw new ShardLimitError("maxIdempotencyKeys", maxIdempotencyKeys, keys, 1);
    return {
      liveTasks: footprint.tasks,
      storedBytes: footprint.payloadBytes,
      idempotencyKeys: newKey ? 1 : 0,
    };
  }
}

/**
 * A payload's size as the wire measures it (msgpack without records, as
 * MAX_PAYLOAD_BYTES counts), so that a payload is counted the same way at
 * submit and when a restart reads it back. Throws for a payload that cannot be
 * encoded, which the engine then refuses as MALFORMED instead of letting it
 * fail the journal (and with it the whole shard).
 */
const payloadPackr = new Packr({ useRecords: false });
function measurePayload(payload: unknown): number {
  return payloadPackr.pack(payload).byteLength;
}

function earliest(at: number | null, other: number): number {
  return at === null ? other : Math.min(at, other);
}

function asBatch(tasks: TaskInput | readonly TaskInput[]): readonly TaskInput[] {
  return (Array.isArray(tasks) ? tasks : [tasks]) as readonly TaskInput[];
}

/** Longest lease-key record key, in UTF-8 bytes (LMDB's limit is 1978). */
const MAX_LEASE_KEY_BYTES = 1_900;

/** The idempotency row of a lease request; the length prefix keeps ("a:b", "c") apart from ("a", "b:c"). */
function leaseKey(owner: string, requestId: string): string {
  return `${LEASE_KEY_PREFIX}${owner.length}:${owner}:${requestId}`;
}

/** Whether (owner, requestId) can key a journal row: a non-empty id within MAX_ID_LENGTH, a key within LMDB's limit. */
function storableLeaseKey(owner: string, requestId: string): boolean {
  return (
    typeof requestId === "string" &&
    requestId.length > 0 &&
    requestId.length <= MAX_ID_LENGTH &&
    Buffer.byteLength(leaseKey(owner, requestId)) <= MAX_LEASE_KEY_BYTES
  );
}

/** The lease key of (owner, requestId), or InvalidArgumentError saying why it cannot be one. */
function checkedLeaseKey(owner: string, requestId: string): string {
  if (typeof requestId !== "string" || requestId.length === 0)
    throw new InvalidArgumentError("requestId must be a non-empty string");
  if (requestId.length > MAX_ID_LENGTH)
    throw new InvalidArgumentError(`requestId must be at most ${MAX_ID_LENGTH} characters`);
  const key = leaseKey(owner, requestId);
  // The key goes into LMDB, whose keys are at most ~2 KB: refused here, not by a failed commit.
  if (Buffer.byteLength(key) > MAX_LEASE_KEY_BYTES)
    throw new InvalidArgumentError(`owner and requestId take over ${MAX_LEASE_KEY_BYTES} bytes as a key`);
  return key;
}

/**
 * Moved tasks' times, read on the source's clock, on this shard's: each
 * shard clock (clock.ts) is its own, so the times the engine set (lease
 * expiry, run time limit, end of backoff, runnable since, finished at) move
 * by `shift`, this clock's reading at the adopt minus the source's when it
 * exported. Whatever the two clocks' offset, a lease then ends no earlier
 * than it would have at the source (later by the move's own length, during
 * which its holder could not reach it either). Deadlines and notBefore are
 * the submitter's times, not shifted.
 */
function onThisClock(tasks: readonly TaskRecord[], shift: number): TaskRecord[] {
  if (shift === 0) return [...tasks];
  const move = (t: number | undefined) => (t === undefined || !Number.isFinite(t) ? t : t + shift);
  return tasks.map(({ spec, status }) => {
    const moved: { -readonly [K in keyof TaskStatus]: TaskStatus[K] } = { ...status };
    for (const k of ["leaseExpiresAt", "timeoutAt", "retryAt", "runnableSince", "finishedAt"] as const) {
      if (status[k] !== undefined) moved[k] = move(status[k]);
    }
    return { spec, status: moved };
  });
}

/**
 * An entry split between the tasks in `ids` (moving) and the rest:
 * `moved` undefined when it names none of them, `kept` undefined when it
 * names only them. Lease entries keep their tokens parallel to the ids.
 */
function splitEntry(
  entry: IdempotencyEntry,
  ids: ReadonlySet<string>,
): { moved: IdempotencyEntry | undefined; kept: IdempotencyEntry | undefined } {
  const movedAt: number[] = [];
  const keptAt: number[] = [];
  entry.taskIds.forEach((id, i) => {
    (ids.has(id) ? movedAt : keptAt).push(i);
  });
  if (movedAt.length === 0) return { moved: undefined, kept: entry };
  const { movedAway: _, ...rest } = entry;
  const part = (at: number[]): IdempotencyEntry => ({
    ...rest,
    taskIds: at.map((i) => entry.taskIds[i]!),
    ...(entry.tokens === undefined ? {} : { tokens: at.map((i) => entry.tokens![i]!) }),
  });
  // A lease request keeps a mark here, even with nothing left, so a resend of it learns that its
  // grants went elsewhere (leaseMovedAway); a submit's entry needs none (its key moved with it).
  if (isLeaseEntry(entry)) return { moved: part(movedAt), kept: { ...part(keptAt), movedAway: true } };
  return { moved: part(movedAt), kept: keptAt.length === 0 ? undefined : part(keptAt) };
}

function isLeaseEntry(entry: IdempotencyEntry): boolean {
  return Array.isArray(entry.tokens);
}

/** Journals reject with ShardErrors (contract); anything else is treated as a storage failure. */
function toShardError(error: unknown): ShardError {
  if (error instanceof ShardError) return error;
  return new StorageError(
    ShardErrorCode.STORAGE_FAILED,
    String((error as Error)?.message ?? error),
    undefined,
    {
      cause: error,
    },
  );
}
