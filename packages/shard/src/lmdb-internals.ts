/**
 * Every use of lmdb-js internals, in one place: what lmdb-js does not
 * offer as API and the journal needs anyway. Each is tied to the lmdb
 * version pinned exactly in package.json, and lmdb-internals.test.ts checks
 * each on a real environment, so an upgrade that moves one fails there first
 * rather than in the journal.
 *
 *   - the progress callback of the native `startWriting` (onVisibleCommit):
 *     when a write transaction is visible, before its flush;
 *   - a database's msgpackr encoder and its longest key (encoderOf,
 *     maxKeySizeOf): to encode a block, and check its keys, before any put;
 *   - the `commitError` promise of a failed commit (commitError);
 *   - the layout of data.mdb's meta pages (readMetaPage), read before LMDB
 *     opens a file that could crash it.
 */
import { readSync } from "node:fs";
import type { RootDatabase } from "lmdb";

/** lmdb-js's longest key (bytes) when a database does not say. */
const DEFAULT_MAX_KEY_BYTES = 1978;

/** A database's value encoder (msgpackr, with the database's shared structures). */
export interface Encoder {
  encode(value: unknown): Uint8Array;
}

/** lmdb-js's native progress status for "the write transaction is visible; flushing follows". */
const VISIBLE_STATUS = 1;

/**
 * Calls `onVisible` each time lmdb-js's write thread reports a transaction
 * visible, before it flushes it. lmdb-js settles no promise then (its
 * write promises settle after the flush), so this listens to the progress
 * callback it hands its native `startWriting`, an lmdb-js internal, wrapped
 * on this environment only. Only a cue to look: what acknowledges a block is
 * the head's version read afterwards (LmdbJournal.checkVisible). Without the
 * internal (another lmdb-js) nothing is wrapped and "committed" answers on
 * lmdb-js's reports, as "flushed" does. `onVisible` must not throw.
 */
export function onVisibleCommit(env: RootDatabase, onVisible: () => void): void {
  type Progress = (status: number) => unknown;
  const native = (env as unknown as { env?: { startWriting?: unknown } }).env;
  const startWriting = native?.startWriting;
  if (typeof startWriting !== "function") return;
  Object.defineProperty(native, "startWriting", {
    configurable: true,
    value(this: unknown, address: number, progress: Progress) {
      return startWriting.call(this, address, (status: number) => {
        const result = progress(status);
        if (status === VISIBLE_STATUS) onVisible();
        return result;
      });
    },
  });
}

/** The encoder lmdb-js uses for `db`'s values. */
export function encoderOf(db: object): Encoder {
  return (db as unknown as { encoder: Encoder }).encoder;
}

/** The longest key `db` takes, in bytes, plus one (lmdb-js refuses a key only when its put is queued). */
export function maxKeySizeOf(db: object): number {
  return (db as { maxKeySize?: number }).maxKeySize ?? DEFAULT_MAX_KEY_BYTES;
}

/** How long (ms) to wait for lmdb-js's `commitError`, which it does not always settle. */
const COMMIT_ERROR_WAIT_MS = 1_000;

/**
 * lmdb-js rejects a failed commit with a generic error whose `commitError`
 * promise carries the real one. Always consume it: left alone, it would be
 * an unhandled rejection and take the process down. lmdb-js can also leave
 * it pending forever (seen with pipelined blocks on a full disk: a promise
 * made after the write thread's report), so the generic error stands after
 * COMMIT_ERROR_WAIT_MS.
 */
export function commitError(error: unknown): Promise<unknown> {
  const inner = (error as { commitError?: Promise<unknown> } | undefined)?.commitError;
  if (!inner || typeof inner.then !== "function") return Promise.resolve(error);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(error), COMMIT_ERROR_WAIT_MS);
    timer.unref();
    inner.then(
      () => {
        clearTimeout(timer);
        resolve(error);
      },
      (cause: unknown) => {
        clearTimeout(timer);
        resolve(cause);
      },
    );
  });
}

/** LMDB's magic number, at the start of each meta page's meta. */
const MDB_MAGIC = 0xbeefc0de;
const P_META = 0x08;
/** Page header plus the meta fields read. */
const META_BYTES = 0xa0;

/** One of data.mdb's two meta pages, as far as a check before opening needs it. */
export interface MetaPage {
  readonly pageSize: number;
  readonly lastPage: bigint;
  readonly txnId: bigint;
}

/**
 * The meta page at `offset` of an open data.mdb (lmdb-js's layout: a
 * 24-byte page header, then the meta), or undefined when the bytes there are
 * not one. Raw offsets into LMDB's file format: they belong to the lmdb
 * version pinned in package.json (lmdb-internals.test.ts checks them on a
 * file it writes).
 */
export function readMetaPage(fd: number, offset: number): MetaPage | undefined {
  const page = Buffer.alloc(META_BYTES);
  if (readSync(fd, page, 0, META_BYTES, offset) < META_BYTES) return undefined;
  if (page.readUInt32LE(0x18) !== MDB_MAGIC || (page.readUInt16LE(0x12) & P_META) === 0) return undefined;
  return {
    pageSize: page.readUInt32LE(0x30),
    lastPage: page.readBigUInt64LE(0x90),
    txnId: page.readBigUInt64LE(0x98),
  };
}
