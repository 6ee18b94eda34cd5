/**
 * A journal written in format 1, kept as a fixture (fixtures/journal-format-1:
 * data.mdb gzipped, and what its tasks looked like when it was written), so
 * that a change of the row format that stops reading it fails here. The
 * fixture was written by this file with FRONTIER_WRITE_FIXTURES=1, by the
 * code of format 1 (main at e391c82, lmdb 3.5.6); never regenerate it for a
 * later format: add a fixture of that format beside it instead.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import { TaskState, type TaskView } from "@frontier/core";
import { afterAll, describe, expect, it } from "vitest";
import { Shard } from "./shard.js";

const fixtureDir = fileURLToPath(new URL("../fixtures/journal-format-1/", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "frontier-journal-format-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** When the fixture was written: its clock, by hand. */
const WRITTEN_AT = 1_765_000_000_000;
const IDS = ["a", "b", "c", "d", "e", "f", "g"] as const;

interface Expected {
  readonly format: number;
  readonly tasks: Record<string, TaskView>;
  readonly lease: { readonly taskId: string; readonly token: number };
  readonly keyed: readonly string[];
}

function clockAt(wall: number) {
  const time = { wall, mono: 0 };
  return { time, sources: { wallNow: () => time.wall, monotonicNow: () => time.mono } };
}

/** Writes the fixture: one task in each state, a payload, a result, keys of both kinds, a live lease. */
async function writeFixture(): Promise<void> {
  const dataDir = join(root, "write");
  const { time, sources } = clockAt(WRITTEN_AT);
  const shard = await Shard.open({ dataDir, clock: sources, defaultMaxAttempts: 3 });
  const deadline = WRITTEN_AT + 3_600_000;
  const keyed = await shard.submit(
    [
      { id: "a", deadline, workflowId: "wf-1", payload: { n: 1, tags: ["x", "é"] } },
      { id: "b", deadline: deadline + 1, workflowId: "wf-1", prerequisites: ["a"] },
    ],
    { idempotencyKey: "submit-1" },
  );
  await shard.submit([
    // Leased in deadline order: d, e, g, then c.
    { id: "d", deadline: deadline - 5 },
    { id: "e", deadline: deadline - 4, maxAttempts: 1 },
    { id: "g", deadline: deadline - 3 },
    { id: "c", deadline: deadline - 2, timeoutMs: 600_000 },
    { id: "f", deadline: deadline + 10 },
  ]);
  await shard.cancel("f", "not needed");
  const [d] = await shard.lease("worker-1", { max: 1, leaseMs: 30_000 });
  await shard.complete(d!.taskId, d!.token, { result: { ok: true, rows: 3 } });
  time.mono += 10;
  const [e] = await shard.lease("worker-1", { max: 1, leaseMs: 30_000 });
  await shard.fail(e!.taskId, e!.token, { retryable: true, reason: "boom" });
  const [g] = await shard.lease("worker-2", { max: 1, leaseMs: 30_000 });
  await shard.fail(g!.taskId, g!.token, { retryable: true, reason: "try again" });
  time.mono += 10;
  const [c] = await shard.lease("worker-3", { max: 1, leaseMs: 3_600_000, requestId: "req-1" });
  if (d?.taskId !== "d" || e?.taskId !== "e" || g?.taskId !== "g" || c?.taskId !== "c")
    throw new Error("the fixture's leases went to other tasks than planned");
  const tasks = Object.fromEntries(IDS.map((id) => [id, shard.getTask(id)!]));
  await shard.close();
  mkdirSync(fixtureDir, { recursive: true });
  writeFileSync(
    join(fixtureDir, "data.mdb.gz"),
    gzipSync(readFileSync(join(dataDir, "data.mdb")), { level: 9 }),
  );
  const expected: Expected = {
    format: 1,
    tasks,
    lease: { taskId: c.taskId, token: c.token },
    keyed: keyed.taskIds,
  };
  writeFileSync(join(fixtureDir, "expected.json"), `${JSON.stringify(expected, null, 2)}\n`);
}

describe("a journal of format 1", () => {
  it("opens as it was written, and serves on", async () => {
    if (process.env["FRONTIER_WRITE_FIXTURES"] === "1") await writeFixture();
    const expected = JSON.parse(readFileSync(join(fixtureDir, "expected.json"), "utf8")) as Expected;
    const dataDir = join(root, "read");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, "data.mdb"), gunzipSync(readFileSync(join(fixtureDir, "data.mdb.gz"))));
    // The wall clock as when it was written: the shard's clock resumes from the
    // journal's last reading, so nothing fell due meanwhile (g's backoff, c's lease).
    const { sources } = clockAt(WRITTEN_AT);
    const shard = await Shard.open({ dataDir, clock: sources, defaultMaxAttempts: 3 });
    try {
      for (const id of IDS) expect(shard.getTask(id), id).toEqual(expected.tasks[id]);
      expect(shard.getTask("f")).toMatchObject({ state: TaskState.CANCELLED, reason: "not needed" });
      expect(shard.getTask("d")).toMatchObject({ state: TaskState.COMPLETED, result: { ok: true, rows: 3 } });
      // The submit's idempotency key and the lease's request id came back with the tasks.
      expect(await shard.submit([{ id: "x", deadline: WRITTEN_AT }], { idempotencyKey: "submit-1" })).toEqual(
        { taskIds: expected.keyed, duplicate: true },
      );
      expect(await shard.replayLease("worker-3", "req-1")).toMatchObject([expected.lease]);
      // It serves on: the live lease is released (a change journaled after the format-1 rows), a
      // dependent is unblocked by its prerequisite.
      expect(await shard.release(expected.lease.taskId, expected.lease.token)).toEqual({ duplicate: false });
      const [c, a] = await shard.lease("worker-4", { max: 2, leaseMs: 30_000 });
      expect([c?.taskId, a?.taskId]).toEqual(["c", "a"]);
      expect(c!.token).toBeGreaterThan(expected.lease.token);
      expect(a?.task.payload).toEqual({ n: 1, tags: ["x", "é"] });
      await shard.complete(a!.taskId, a!.token);
      await shard.release(c!.taskId, c!.token);
      expect(shard.getTask("b")?.state).toBe(TaskState.RUNNABLE);
    } finally {
      await shard.close();
    }
    // Rows of both vintages read back together.
    const again = await Shard.open({ dataDir, clock: sources, defaultMaxAttempts: 3 });
    try {
      expect(again.getTask("c")).toMatchObject({ state: TaskState.RUNNABLE, released: true, attempts: 0 });
      expect(again.getTask("b")?.state).toBe(TaskState.RUNNABLE);
      expect(again.getTask("a")?.state).toBe(TaskState.COMPLETED);
      for (const id of ["d", "e", "f", "g"]) expect(again.getTask(id), id).toEqual(expected.tasks[id]);
    } finally {
      await again.close();
    }
  });
});
