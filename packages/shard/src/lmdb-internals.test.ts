/**
 * The lmdb-js internals the journal relies on, each checked on a real
 * environment of the pinned lmdb version: an upgrade that moves one fails
 * here, by name, before the journal misbehaves.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { asBinary, open } from "lmdb";
import { afterAll, describe, expect, it } from "vitest";
import { commitError, encoderOf, maxKeySizeOf, onVisibleCommit, readMetaPage } from "./lmdb-internals.js";

const root = mkdtempSync(join(tmpdir(), "lmdb-internals-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function environment(name: string) {
  const env = open({ path: join(root, name), maxDbs: 4, eventTurnBatching: false });
  const db = env.openDB<unknown, string>({ name: "rows" });
  return { env, db };
}

describe("lmdb-js internals (pinned version)", () => {
  it("is the version package.json pins exactly", () => {
    const pinned = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8"))
      .dependencies.lmdb as string;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(
      readFileSync(join(import.meta.dirname, "..", "node_modules", "lmdb", "package.json"), "utf8"),
    ).version as string;
    expect(installed).toBe(pinned);
  });

  it("reports a write transaction visible through the native startWriting's progress callback", async () => {
    const { env, db } = environment("visible");
    const native = (env as unknown as { env?: { startWriting?: unknown } }).env;
    expect(typeof native?.startWriting).toBe("function");
    let visible = 0;
    onVisibleCommit(env, () => {
      visible++;
    });
    // The callback comes from lmdb-js's write thread through the event loop, and its order against
    // the put's own settlement is not fixed (a loaded machine reversed it): several puts, then a bounded wait.
    for (let i = 0; i < 5; i++) await db.put(`k${i}`, "v");
    for (let waited = 0; visible === 0 && waited < 2_000; waited += 10) await sleep(10);
    expect(visible).toBeGreaterThanOrEqual(1);
    await env.close();
  });

  it("encodes values with the database's encoder, which a put of the bytes stores as the value", async () => {
    const { env, db } = environment("encoder");
    const value = { id: "t1", deadline: 5, prerequisites: ["a", "b"], payload: { n: 1 } };
    await db.put("t1", asBinary(encoderOf(db).encode(value)));
    expect(db.get("t1")).toEqual(value);
    await env.close();
  });

  it("says the longest key, past which a put is refused", async () => {
    const { env, db } = environment("keys");
    const max = maxKeySizeOf(db);
    expect(max).toBeGreaterThan(500);
    await db.put("x".repeat(max - 1), 1);
    const refused = await (async () => db.put("x".repeat(max + 1), 1))().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(refused)).toMatch(/key size/i);
    await env.close();
  });

  it("reads data.mdb's two meta pages at the layout's offsets", async () => {
    const { env, db } = environment("meta");
    for (let i = 0; i < 50; i++) await db.put(`k${i}`, "x".repeat(200));
    await env.close();
    const fd = openSync(join(root, "meta", "data.mdb"), "r");
    try {
      const first = readMetaPage(fd, 0);
      expect(first).toBeDefined();
      const { pageSize } = first!;
      expect(pageSize & (pageSize - 1)).toBe(0);
      expect(pageSize).toBeGreaterThanOrEqual(4096);
      const second = readMetaPage(fd, pageSize);
      expect(second).toBeDefined();
      const newer = second!.txnId > first!.txnId ? second! : first!;
      expect(newer.txnId).toBeGreaterThanOrEqual(50n);
      expect(newer.lastPage).toBeGreaterThan(1n);
      // Not a meta page: the bytes past the two metas.
      expect(readMetaPage(fd, 2 * pageSize)).toBeUndefined();
    } finally {
      closeSync(fd);
    }
  });

  it("takes a failed commit's commitError when it settles, and the generic error when it never does", async () => {
    const real = new Error("MDB_MAP_FULL");
    const generic = Object.assign(new Error("commit failed"), { commitError: Promise.reject(real) });
    expect(await commitError(generic)).toBe(real);
    const pending = Object.assign(new Error("commit failed"), { commitError: new Promise(() => {}) });
    expect(await commitError(pending)).toBe(pending);
    const plain = new Error("other");
    expect(await commitError(plain)).toBe(plain);
  });
});
