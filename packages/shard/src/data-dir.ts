/**
 * A shard's data directory before LMDB opens it: made if missing, refused
 * when it holds something else, and its data.mdb checked so that a damaged
 * file is reported, not fed to LMDB (which would crash the process).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CorruptDataError, ForeignDataError } from "./errors.js";
import { readMetaPage } from "./lmdb-internals.js";
import { storeError } from "./store-errors.js";

/** Files LMDB keeps in the directory. */
const LMDB_FILES = new Set(["data.mdb", "lock.mdb"]);

/** Makes `dataDir` if missing; refuses one that is not a directory, or holds other files and no data.mdb. */
export function prepareDirectory(dataDir: string): void {
  let entries: string[];
  try {
    mkdirSync(dataDir, { recursive: true });
    entries = readdirSync(dataDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOTDIR") throw new ForeignDataError(dataDir, "it is not a directory");
    throw storeError(error, dataDir);
  }
  if (!entries.includes("data.mdb")) {
    const others = entries.filter((e) => !LMDB_FILES.has(e));
    if (others.length > 0) throw new ForeignDataError(dataDir, `it holds ${others.slice(0, 5).join(", ")}`);
  }
}

/**
 * LMDB trusts its file: garbage makes it crash the process (SIGSEGV), and a
 * truncated file makes it fault (SIGBUS) on the first read past the end. So
 * before LMDB sees an existing data.mdb, its two meta pages are checked
 * (lmdb-js layout: 24-byte page header, then the meta) and the file must
 * reach the last page the newer meta names. LMDB has no page checksums:
 * damage inside the pages themselves is not caught here.
 */
export function checkDataFile(dataDir: string): void {
  const path = join(dataDir, "data.mdb");
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw storeError(error, dataDir);
  }
  try {
    const size = fstatSync(fd).size;
    const readMeta = (offset: number) => readMetaPage(fd, offset);
    const first = readMeta(0);
    if (!first) throw new CorruptDataError(dataDir, "data.mdb is not an LMDB file");
    const { pageSize } = first;
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0)
      throw new CorruptDataError(dataDir, `data.mdb names an impossible page size ${pageSize}`);
    const second = readMeta(pageSize);
    if (!second) throw new CorruptDataError(dataDir, "data.mdb has a damaged second meta page");
    const newer = second.txnId > first.txnId ? second : first;
    const needed = (Number(newer.lastPage) + 1) * pageSize;
    if (size < needed)
      throw new CorruptDataError(dataDir, `data.mdb is truncated: ${size} bytes, needs ${needed}`);
  } finally {
    closeSync(fd);
  }
}
