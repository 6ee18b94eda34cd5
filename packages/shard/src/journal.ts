/**
 * The journal contract: what the shard needs from durable storage. One
 * interface, one conformance suite (journal-conformance.ts); every backend
 * must pass the suite. The LMDB backend is lmdb-journal.ts.
 *
 * The journal stores the LIVE state, not history: one row per task (spec +
 * status; `set` replaces the status, `drop` deletes the row), one engine meta
 * row, one row per idempotency key, and a clock high-water mark. Recovery
 * reads the rows; its cost grows with the live population, never with the
 * number of changes ever made.
 *
 * Contract:
 *  1. `append(records)` applies the records in order, atomically: after a
 *     crash either all of them are in the loaded state or none is.
 *  2. Appends take effect in call order, and the promise of an append
 *     resolves only once it AND every earlier append are durable (to the
 *     backend's stated durability level). So the durable state is always the
 *     effect of a prefix of the appends: never a later one without an earlier.
 *  3. `append([])` is a barrier: it resolves once every earlier append is
 *     durable.
 *  4. Fail-stop: once an append fails (storage error, or fenced by a newer
 *     owner) that append and every later one reject with a `ShardError`
 *     (SHARD_FENCED, STORAGE_FULL, STORAGE_FAILED) and nothing more is
 *     written. After `close`, appends reject with SHARD_CLOSED.
 *  5. Exclusive ownership: while a journal is open on a location, opening
 *     another on it is refused (SHARD_LOCKED) unless the opener asks to take
 *     over; a takeover fences the previous owner, whose appends then reject
 *     with SHARD_FENCED and write nothing.
 *  6. `load()` returns the state as of open (call it once, before appending).
 *     The task rows may be read lazily, as `tasks` is iterated (so a large
 *     state is never held twice, as rows and as the engine built from
 *     them): iterate them before the first append; reading them may throw
 *     CORRUPT_DATA.
 *  7. Appends issued close together share commits (group commit); `stats()`
 *     counts both, so the sharing can be measured.
 */
import type { Change, EngineMeta, TaskRecord } from "@frontier/core";

/** What a submit with an idempotency key produced, remembered for the retention period. */
export interface IdempotencyEntry {
  /** Ids of the tasks the submit added, in batch order. */
  readonly taskIds: readonly string[];
  /** Shard clock reading when the submit was accepted. */
  readonly createdAt: number;
  /**
   * Lease entries only (keys `lease:...`, see Shard.lease's requestId): the
   * fencing tokens of the grants, parallel to taskIds.
   */
  readonly tokens?: readonly number[];
  /**
   * Lease entries only: the latest attempt (resend number) of the client
   * request that looked its grants up here (Shard.replayLease's `fence`).
   * A lease call from an earlier attempt grants nothing: that attempt was
   * given up by its client, and a grant made for it now would reach nobody.
   */
  readonly fence?: number;
  /**
   * Lease entries only: grants of this request left with their slot
   * (Shard.beginMove) — the entry here keeps what stayed, if anything. A
   * resend that finds fewer grants here than were made must look for the
   * rest where the tasks went (Shard.leaseMovedAway).
   */
  readonly movedAway?: true;
}

/**
 * A lease's proof as the shard that granted it made it (a cluster's lease
 * secret), carried with a moved task so its holder's calls keep working at
 * the task's new shard, which cannot derive it.
 */
export interface LeaseProof {
  readonly taskId: string;
  readonly token: number;
  readonly secret: string;
}

/**
 * A slot leaving this shard (docs/cluster.md, "Slot movement"): what was
 * taken out of the engine and the key tables in the commit that fenced the
 * slot, kept as an outbox row until the move ends, so a restarted source
 * sends it again.
 */
export interface SlotExport {
  /** The move's id: the target adopts it once. */
  readonly moveId: string;
  readonly slot: number;
  /** Shard ids. */
  readonly source: string;
  readonly target: string;
  /** Shard clock reading when the move began. */
  readonly createdAt: number;
  /** The slot's tasks, every state, in id order. */
  readonly tasks: readonly TaskRecord[];
  /** Idempotency and lease-request entries naming them, each narrowed to the slot's tasks. */
  readonly idempotency: readonly (readonly [key: string, entry: IdempotencyEntry])[];
  /** The proofs of the slot's live leases. */
  readonly leases: readonly LeaseProof[];
  /**
   * The claims homed in the slot (its ids' claims move with it): this
   * shard's rows, and the claims of the tasks it keeps whose ids are homed
   * in the slot. Absent in rows written before claims existed: none.
   */
  readonly claims?: readonly IdClaimRow[];
}

/**
 * A task id's claim, kept by the shard owning the id's home slot
 * (docs/cluster.md, "One id space per cluster"): the id is taken in the
 * cluster by the task of this id in this workflow (none: a task without
 * one), wherever that task's slot is. A shard keeps rows only for tasks it
 * does not hold itself: a task it holds is its own id's claim.
 */
export interface IdClaimRow {
  readonly taskId: string;
  readonly workflowId?: string;
  /** The task is of a large workflow: its slot is by (workflowId, id). */
  readonly large?: true;
}

/** What a target keeps of a move it adopted: the move id (adopt is idempotent by it) and the leases' proofs. */
export interface AdoptedMove {
  readonly slot: number;
  readonly source: string;
  readonly adoptedAt: number;
  readonly leases: readonly LeaseProof[];
  /**
   * The export's `createdAt` at its source: an adopt of the same move id
   * from another export (a reused id) is told apart and refused. Absent in
   * rows written before it existed.
   */
  readonly exportedAt?: number;
}

/**
 * What a source keeps of a move it ended (the outbox row's place): a move
 * id names one move for good, so a resend of an ended move, even after the
 * slot came back, is answered as done and never exports the slot again
 * under that id (the target, which adopted the id before, would take the
 * new export for the old one and adopt nothing).
 */
export interface EndedMove {
  readonly slot: number;
  readonly target: string;
  readonly endedAt: number;
}

/**
 * One journal record: an engine change, or a side record of the shard.
 * - `idempotency`: an accepted idempotency key and its result.
 * - `forget`: an idempotency key compacted after the retention period.
 * - `clock`: the shard clock's latest reading; the loaded `clock` is the
 *   largest ever appended, so time never runs backwards across restarts.
 * - `outbox`: a slot export written (or, null, deleted when its move ended).
 * - `adopted`: a move adopted from another shard.
 * - `ended`: a move from this shard that ended (written with its outbox row's deletion).
 * - `claim`: a task id's claim kept here (or, null, dropped).
 */
export type JournalRecord =
  | Change
  | { readonly kind: "idempotency"; readonly key: string; readonly entry: IdempotencyEntry }
  | { readonly kind: "forget"; readonly key: string }
  | { readonly kind: "clock"; readonly at: number }
  /**
   * Every fencing token the shard hands out from now on is below `ceiling`
   * (hi-lo reservation; Shard's "committed" durability). An append holding
   * one resolves only once flushed, whatever the durability, and the stored
   * ceiling only moves up.
   */
  | { readonly kind: "tokens"; readonly ceiling: number }
  | { readonly kind: "outbox"; readonly moveId: string; readonly row: SlotExport | null }
  | { readonly kind: "adopted"; readonly moveId: string; readonly move: AdoptedMove }
  | { readonly kind: "ended"; readonly moveId: string; readonly move: EndedMove }
  | { readonly kind: "claim"; readonly taskId: string; readonly claim: IdClaimRow | null };

/** The live state a journal holds. */
export interface JournalState {
  /** Engine counters; undefined for a journal nothing was appended to. */
  readonly meta: EngineMeta | undefined;
  /**
   * Every live task row, in no particular order; may be read lazily (see
   * the contract, 6), but may be iterated again until the first append.
   */
  readonly tasks: Iterable<TaskRecord>;
  /** How many rows `tasks` yields, when the backend knows without reading them; a hint. */
  readonly taskCount?: number;
  /** Every remembered idempotency key, in no particular order. */
  readonly idempotency: [key: string, entry: IdempotencyEntry][];
  /** Largest `clock` record ever appended (0 when none). */
  readonly clock: number;
  /** Largest `tokens` ceiling ever appended (0 when none). */
  readonly tokenCeiling: number;
  /** Slot exports of moves not ended yet. */
  readonly outbox: SlotExport[];
  /** Moves adopted, by move id. */
  readonly adopted: [moveId: string, move: AdoptedMove][];
  /** Moves from this shard that ended, by move id. */
  readonly ended: [moveId: string, move: EndedMove][];
  /** Every id claim kept here, in no particular order. */
  readonly claims: IdClaimRow[];
}

export interface JournalStats {
  /** `append` calls with at least one record. */
  readonly appends: number;
  /** Records appended. */
  readonly records: number;
  /** Backend commits (transactions) those appends were grouped into. */
  readonly commits: number;
  /** Appends queued but not yet durable. */
  readonly pending: number;
}

export interface Journal {
  /** The live state as of open. Synchronous: the shard cannot serve before it has it. */
  load(): JournalState;
  /** Queues records; resolves once they and everything before are durable. See the contract above. */
  append(records: readonly JournalRecord[], options?: AppendOptions): Promise<void>;
  stats(): JournalStats;
  /**
   * Throws SHARD_FENCED (and stops the journal, as a refused append does)
   * once a later opener has taken the directory over. A fresh read of the
   * ownership record: what a shard checks before it answers anything that
   * writes nothing, since only writes find the fence by themselves.
   */
  checkOwner(): void;
  /** Waits for pending appends, releases ownership (unless fenced or failed) and closes. Idempotent. */
  close(): Promise<void>;
  /**
   * Optional: the live state now, read afresh, with every append settled
   * and none made until its task rows are read (journal shipping's new
   * base, journal-replica.ts). Throws when an append is in flight.
   */
  snapshot?(): JournalState;
}

/**
 * When an append's promise resolves:
 * - "flushed": the commit is on stable storage (fsync/fdatasync returned).
 *   Survives a killed process and a machine losing power.
 * - "committed": the commit is written to the OS (visible to other
 *   processes) but maybe not yet on disk. Survives a killed process, not a
 *   power loss. The flush follows in the background; one that fails after
 *   the answer stops the journal (later appends reject, contract 4).
 */
export interface AppendOptions {
  /**
   * Resolve only once the records are flushed to disk, whatever the
   * durability: for what another process acts on for good (a slot's tasks
   * adopted from another shard, a cross-shard submit's part).
   */
  readonly flush?: boolean;
}

export type Durability = "flushed" | "committed";
export const DEFAULT_DURABILITY: Durability = "flushed";

/** Options every backend's open accepts. */
export interface JournalOpenOptions {
  /** Take the location over even if another owner looks alive, fencing it. Default false. */
  readonly takeover?: boolean;
  readonly durability?: Durability;
}
