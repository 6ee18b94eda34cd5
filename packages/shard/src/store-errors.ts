/**
 * The one place where the store's errors become typed shard errors:
 * storage full (also an I/O error on a nearly full disk), corrupt data, or
 * storage failed, each keeping its cause.
 */
import { statfsSync } from "node:fs";
import { CorruptDataError, ShardError, ShardErrorCode, StorageError } from "./errors.js";

/** ENOSPC, EDQUOT, EFBIG, MDB_MAP_FULL. */
const FULL_CODES = new Set<number | string>([28, 122, 27, -30792, "ENOSPC", "EDQUOT", "EFBIG"]);
/** MDB_INVALID, MDB_VERSION_MISMATCH, MDB_CORRUPTED, MDB_PAGE_NOTFOUND. */
const CORRUPT_CODES = new Set<number | string>([-30793, -30794, -30796, -30797]);
const EIO = 5;
/** Below this much free space, an I/O error is reported as a full disk (LmdbJournalOptions.fullBelowBytes). */
export const NEARLY_FULL_BYTES = 64 * 1024 * 1024;

/** The one place where the store's errors become typed shard errors. */
export function storeError(error: unknown, dataDir: string, fullBelowBytes = NEARLY_FULL_BYTES): ShardError {
  if (error instanceof ShardError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const storeCode = typeof code === "number" || typeof code === "string" ? code : undefined;
  const text = String((error as Error | undefined)?.message ?? error);
  const options = { cause: error };
  if (storeCode !== undefined && FULL_CODES.has(storeCode))
    return new StorageError(ShardErrorCode.STORAGE_FULL, `storage is full: ${text}`, storeCode, options);
  if (storeCode !== undefined && CORRUPT_CODES.has(storeCode))
    return new CorruptDataError(dataDir, text, options);
  // LMDB reports a short write, which is what a full disk usually causes, as
  // EIO; lmdb-js reports a failed commit with a generic error and no code
  // when its `commitError` never settles (see commitError). Both are looked
  // at against the disk; an error with another code keeps its own cause.
  const unclassified = storeCode === undefined || storeCode === EIO || storeCode === "EIO";
  const free = unclassified ? freeBytes(dataDir) : undefined;
  if (free !== undefined && free < fullBelowBytes)
    return new StorageError(
      ShardErrorCode.STORAGE_FULL,
      `storage is full (${free} bytes free): ${text}`,
      storeCode,
      options,
    );
  return new StorageError(ShardErrorCode.STORAGE_FAILED, `storage failed: ${text}`, storeCode, options);
}

/** Bytes free for this user on the disk of `dataDir`, or undefined when it cannot be told. */
export function freeBytes(dataDir: string): number | undefined {
  try {
    const stats = statfsSync(dataDir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}
