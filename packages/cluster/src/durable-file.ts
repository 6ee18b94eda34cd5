/**
 * A small file in a data directory, replaced so that a crash at any point
 * leaves the old content or the new, never a torn file or a lost rename:
 * written to a temporary file beside it and flushed, renamed over it, then
 * the directory flushed so the rename itself is on disk.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Writes `data` to `dir/name` durably and atomically, the file created with `mode`. */
export function writeFileDurably(dir: string, name: string, data: string | Uint8Array, mode: number): void {
  const path = join(dir, name);
  // Named by process, so that two processes on one directory never share a temporary file.
  const temporary = `${path}.${process.pid}.tmp`;
  const file = openSync(temporary, "w", mode);
  try {
    if (typeof data === "string") writeSync(file, data);
    else writeSync(file, data);
    fsyncSync(file);
  } finally {
    closeSync(file);
  }
  renameSync(temporary, path);
  const directory = openSync(dir, "r");
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
