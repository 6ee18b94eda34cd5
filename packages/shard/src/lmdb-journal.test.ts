import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asBinary, open, type RootDatabase } from "lmdb";
import { afterAll, describe, expect, it } from "vitest";
import { ShardErrorCode } from "./errors.js";
import { describeJournalContract } from "./journal-conformance.js";
import { FORMAT_VERSION, LmdbJournal } from "./lmdb-journal.js";
import { Shard } from "./shard.js";

const root = mkdtempSync(join(tmpdir(), "frontier-journal-"));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

for (const durability of ["flushed", "committed"] as const) {
  describeJournalContract(`lmdb (${durability})`, {
    location: async () => join(root, `j${n++}`),
    open: (dataDir, options) => LmdbJournal.open({ dataDir, durability, ...options }),
  });
}

describe("lmdb journal: what it refuses to open", () => {
  const opened = async (dataDir: string) => {
    try {
      const journal = await LmdbJournal.open({ dataDir });
      try {
        journal.load();
      } finally {
        await journal.close();
      }
      return "opened";
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };
  /** Writes raw rows into a shard's environment, behind the journal's back. */
  const tamper = async (dataDir: string, change: (env: RootDatabase) => void) => {
    const env = open({ path: dataDir });
    change(env);
    await env.close();
  };
  const withTask = async () => {
    const dataDir = join(root, `j${n++}`);
    const journal = await LmdbJournal.open({ dataDir });
    await journal.append([
      {
        kind: "add",
        spec: {
          id: "a",
          prerequisites: [],
          maxAttempts: 1,
          hardDeadline: false,
          onPrerequisiteFailure: "cancel",
        },
        status: { state: "RUNNABLE", deadline: 1, attempts: 0, token: 0 },
      },
    ]);
    await journal.close();
    return dataDir;
  };

  it("a directory holding other files, or a file, is FOREIGN_DATA and is left untouched", async () => {
    const dataDir = join(root, `j${n++}`);
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, "notes.txt"), "mine");
    expect(await opened(dataDir)).toBe(ShardErrorCode.FOREIGN_DATA);
    expect(readdirSync(dataDir)).toEqual(["notes.txt"]);
    expect(await opened(join(dataDir, "notes.txt"))).toBe(ShardErrorCode.FOREIGN_DATA);
  });

  it("another application's LMDB environment is FOREIGN_DATA", async () => {
    const dataDir = join(root, `j${n++}`);
    await tamper(dataDir, (env) => env.putSync("someone-else", { hello: 1 }));
    expect(await opened(dataDir)).toBe(ShardErrorCode.FOREIGN_DATA);
  });

  it("a data file that is not LMDB, or is truncated, is CORRUPT_DATA (LMDB itself would crash the process)", async () => {
    const garbage = join(root, `j${n++}`);
    mkdirSync(garbage);
    writeFileSync(join(garbage, "data.mdb"), randomBytes(65536));
    expect(await opened(garbage)).toBe(ShardErrorCode.CORRUPT_DATA);

    const text = join(root, `j${n++}`);
    mkdirSync(text);
    writeFileSync(join(text, "data.mdb"), "hello");
    expect(await opened(text)).toBe(ShardErrorCode.CORRUPT_DATA);

    const truncated = await withTask();
    const file = join(truncated, "data.mdb");
    writeFileSync(file, readFileSync(file).subarray(0, 2 * 4096));
    expect(await opened(truncated)).toBe(ShardErrorCode.CORRUPT_DATA);
  });

  it("an undecodable row, or a spec without its status, is CORRUPT_DATA, and the refusal leaves nothing open", async () => {
    const undecodable = await withTask();
    await tamper(undecodable, (env) =>
      env.openDB({ name: "status" }).putSync("a", asBinary(Buffer.from([0xc1]))),
    );
    expect(await opened(undecodable)).toBe(ShardErrorCode.CORRUPT_DATA);
    // The shard refuses it too, twice the same way: no half-open shard holds the directory.
    for (let i = 0; i < 2; i++)
      await expect(Shard.open({ dataDir: undecodable })).rejects.toMatchObject({
        code: ShardErrorCode.CORRUPT_DATA,
      });

    const orphan = await withTask();
    await tamper(orphan, (env) => env.openDB({ name: "status" }).removeSync("a"));
    expect(await opened(orphan)).toBe(ShardErrorCode.CORRUPT_DATA);
  });

  it("a directory written by a newer format is INCOMPATIBLE_FORMAT", async () => {
    const dataDir = await withTask();
    await tamper(dataDir, (env) => {
      const head = env.openDB({ name: "head", useVersions: true });
      const entry = head.getEntry("head")!;
      head.putSync("head", { ...entry.value, format: FORMAT_VERSION + 1 }, entry.version!);
    });
    expect(await opened(dataDir)).toBe(ShardErrorCode.INCOMPATIBLE_FORMAT);
  });
});
