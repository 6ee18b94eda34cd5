/**
 * The error catalogue of the shard. The engine's own errors (ValidationError,
 * StaleLeaseError, ... from @frontier/core) pass through unchanged; these are
 * the ones about storage, ownership and the shard's limits. Every one is a `ShardError` with a
 * stable `code`; callers branch on the code, never on message text.
 *
 * Errors raised by the store (lmdb) are turned into these in exactly one
 * place: `storeError` in store-errors.ts.
 */

export const ShardErrorCode = {
  /** Another live process (or another open shard in this process) holds the data directory. */
  SHARD_LOCKED: "SHARD_LOCKED",
  /** A newer owner opened the directory (a takeover); this instance may no longer write. */
  SHARD_FENCED: "SHARD_FENCED",
  /** The disk (or file size limit) is full: a commit could not be written. */
  STORAGE_FULL: "STORAGE_FULL",
  /** A commit failed for another reason (I/O error, ...). */
  STORAGE_FAILED: "STORAGE_FAILED",
  /**
   * The shard stopped serving after its journal failed (`cause` says why:
   * SHARD_FENCED, STORAGE_FULL, STORAGE_FAILED or REPLICATION_FAILED). Memory may be ahead of
   * disk, so every call is refused until the shard is closed and reopened.
   */
  SHARD_FAILED: "SHARD_FAILED",
  /** The shard (or journal) was closed. */
  SHARD_CLOSED: "SHARD_CLOSED",
  /** The directory holds data this package cannot read (not an LMDB file, undecodable rows, broken invariants). */
  CORRUPT_DATA: "CORRUPT_DATA",
  /** The directory holds something other than a shard (other files, another application's LMDB databases). */
  FOREIGN_DATA: "FOREIGN_DATA",
  /** The directory was written by a newer, incompatible format version. */
  INCOMPATIBLE_FORMAT: "INCOMPATIBLE_FORMAT",
  /**
   * A submit would take the shard past one of its limits (maxLiveTasks,
   * maxStoredBytes, maxIdempotencyKeys): refused whole, nothing applied. Not
   * a failure: the shard serves on, and the same submit may pass later.
   */
  LIMIT_REACHED: "LIMIT_REACHED",
  /**
   * A block could not be copied to the shard's journal replica (ShardOptions
   * `replica`: journal shipping): refused by it (another owner took the copy
   * over), or not confirmed in time. The block is not acknowledged; the shard
   * stops as after a storage failure (a `cause` of SHARD_FAILED).
   */
  REPLICATION_FAILED: "REPLICATION_FAILED",
} as const;
export type ShardErrorCode = (typeof ShardErrorCode)[keyof typeof ShardErrorCode];

export class ShardError extends Error {
  override readonly name: string = "ShardError";
  constructor(
    readonly code: ShardErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Who holds a directory, as far as the lock record tells. */
export interface OwnerInfo {
  readonly pid: number;
  readonly host: string;
  readonly openedAt: number;
}

export class ShardLockedError extends ShardError {
  override readonly name = "ShardLockedError";
  constructor(
    readonly dataDir: string,
    readonly owner: OwnerInfo | undefined,
    why: string,
  ) {
    super(ShardErrorCode.SHARD_LOCKED, `data directory ${dataDir} is held by ${why}`);
  }
}

export class ShardFencedError extends ShardError {
  override readonly name = "ShardFencedError";
  constructor(
    readonly dataDir: string,
    /** The epoch this instance opened with. */
    readonly epoch: number,
    /** The epoch found in the directory (a later opener's), when known. */
    readonly currentEpoch: number | undefined,
  ) {
    super(
      ShardErrorCode.SHARD_FENCED,
      `data directory ${dataDir} was taken over (epoch ${epoch} superseded by ${currentEpoch ?? "a later one"}); this instance can no longer write`,
    );
  }
}

export class StorageError extends ShardError {
  override readonly name = "StorageError";
  constructor(
    code: typeof ShardErrorCode.STORAGE_FULL | typeof ShardErrorCode.STORAGE_FAILED,
    message: string,
    /** The errno or LMDB return code, when the store gave one. */
    readonly storeCode: number | string | undefined,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export class ShardFailedError extends ShardError {
  override readonly name = "ShardFailedError";
  constructor(override readonly cause: ShardError) {
    super(
      ShardErrorCode.SHARD_FAILED,
      `shard stopped after a journal failure (${cause.code}: ${cause.message}); close and reopen it`,
      { cause },
    );
  }
}

export class ShardClosedError extends ShardError {
  override readonly name = "ShardClosedError";
  constructor(what = "shard") {
    super(ShardErrorCode.SHARD_CLOSED, `${what} is closed`);
  }
}

export class CorruptDataError extends ShardError {
  override readonly name = "CorruptDataError";
  constructor(
    readonly dataDir: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(ShardErrorCode.CORRUPT_DATA, `data directory ${dataDir} is corrupt: ${detail}`, options);
  }
}

export class ForeignDataError extends ShardError {
  override readonly name = "ForeignDataError";
  constructor(
    readonly dataDir: string,
    detail: string,
  ) {
    super(ShardErrorCode.FOREIGN_DATA, `data directory ${dataDir} is not a Frontier shard: ${detail}`);
  }
}

export class IncompatibleFormatError extends ShardError {
  override readonly name = "IncompatibleFormatError";
  constructor(
    readonly dataDir: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      ShardErrorCode.INCOMPATIBLE_FORMAT,
      `data directory ${dataDir} has format ${found}; this version reads format ${supported} and older`,
    );
  }
}

/** A limit of what a shard holds: the ShardOptions field that sets it. */
export type ShardLimit = "maxLiveTasks" | "maxStoredBytes" | "maxIdempotencyKeys";

/** Why each limit clears, for the message: the caller learns when a retry can pass. */
const CLEARS: { readonly [L in ShardLimit]: string } = {
  maxLiveTasks: "retry once tasks have finished",
  maxStoredBytes: "retry once finished tasks have been compacted (retentionMs after they ended)",
  maxIdempotencyKeys: "retry once older keys have expired (idempotencyRetentionMs after their submit)",
};

const WHAT: { readonly [L in ShardLimit]: string } = {
  maxLiveTasks: "live tasks",
  maxStoredBytes: "payload bytes of tasks",
  maxIdempotencyKeys: "idempotency keys",
};

export class ShardLimitError extends ShardError {
  override readonly name = "ShardLimitError";
  constructor(
    readonly limit: ShardLimit,
    /** The limit's value. */
    readonly max: number,
    /** What counts against it now: held by the shard, or set aside for submits it has agreed to. */
    readonly held: number,
    /** What the refused submit would have added. */
    readonly adding: number,
  ) {
    super(
      ShardErrorCode.LIMIT_REACHED,
      `${held} ${WHAT[limit]} held, and this submit adds ${adding}: that passes ${limit} (${max}); ` +
        `nothing was applied; ${CLEARS[limit]}`,
    );
  }
}

/** A block the journal's replica did not take (a `cause` of SHARD_FAILED): nothing after it is acknowledged. */
export class ReplicationError extends ShardError {
  override readonly name = "ReplicationError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(ShardErrorCode.REPLICATION_FAILED, message, options);
  }
}
