import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CorruptDataError,
  ForeignDataError,
  IncompatibleFormatError,
  ReplicationError,
  ShardClosedError,
  ShardError,
  ShardErrorCode,
  ShardFailedError,
  ShardFencedError,
  ShardLimitError,
  ShardLockedError,
  StorageError,
} from "./errors.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** One instance of every error class, as the shard creates them. */
const samples: ShardError[] = [
  new ShardLockedError("/d", { pid: 1, host: "h", openedAt: 0 }, "live process 1"),
  new ShardFencedError("/d", 1, 2),
  new StorageError(ShardErrorCode.STORAGE_FULL, "full", 28),
  new StorageError(ShardErrorCode.STORAGE_FAILED, "io", 5),
  new ShardFailedError(new StorageError(ShardErrorCode.STORAGE_FULL, "full", 28)),
  new ShardClosedError(),
  new CorruptDataError("/d", "bad"),
  new ForeignDataError("/d", "other files"),
  new IncompatibleFormatError("/d", 2, 1),
  new ShardLimitError("maxLiveTasks", 10, 9, 2),
  new ReplicationError("refused"),
];

describe("the error catalogue", () => {
  it("has a class for every code, and every error is a ShardError with a stable code", () => {
    expect(samples.map((e) => e.code)).toEqual(Object.values(ShardErrorCode));
    for (const e of samples) {
      expect(e).toBeInstanceOf(ShardError);
      expect(e.name).not.toBe("ShardError");
    }
  });

  it("matches the README's table: every code, in order, with its class", () => {
    const section = readme.split("## Errors\n")[1]?.split("\n## ")[0] ?? "";
    const rows = section
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .map((line) => line.split(" | ").map((cell) => cell.replace(/[`|]/g, "").trim()));
    expect(rows.map((r) => r[0])).toEqual(Object.values(ShardErrorCode));
    for (const [i, e] of samples.entries()) expect(rows[i]?.[1], e.code).toBe(e.name);
  });

  it("keeps the cause of a stop, so callers tell a takeover from a full disk by code", () => {
    const stopped = new ShardFailedError(new ShardFencedError("/d", 1, 2));
    expect(stopped.code).toBe("SHARD_FAILED");
    expect((stopped.cause as ShardError).code).toBe("SHARD_FENCED");
  });
});
