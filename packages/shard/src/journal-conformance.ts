/**
 * The journal conformance suite: the contract of journal.ts as tests. Every
 * backend runs it by calling `describeJournalContract` from its own test file
 * with a harness that opens its journals. Not part of the package's public
 * entry (it needs vitest); backends import it by path.
 */
import type { EngineMeta, TaskSpec, TaskStatus } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { ShardErrorCode } from "./errors.js";
import type { Journal, JournalOpenOptions, JournalRecord, JournalState } from "./journal.js";

export interface JournalHarness {
  /** A new, empty location for one test. */
  location(): Promise<string>;
  open(location: string, options?: JournalOpenOptions): Promise<Journal>;
}

const spec = (id: string, payload?: unknown): TaskSpec => ({
  id,
  prerequisites: [],
  maxAttempts: 3,
  hardDeadline: false,
  onPrerequisiteFailure: "cancel",
  ...(payload === undefined ? {} : { payload }),
});
const status = (deadline: number, state: TaskStatus["state"] = "RUNNABLE", token = 0): TaskStatus => ({
  state,
  deadline,
  attempts: token,
  token,
  ...(state === "LEASED" ? { leaseOwner: "w", leaseExpiresAt: 5_000 } : { runnableSince: 1 }),
});
const meta = (tokenSeq: number): EngineMeta => ({
  tokenSeq,
  clock: 1_000 + tokenSeq,
  leaseTimeouts: 0,
  attemptTimeouts: 0,
  deadlineMisses: 0,
  staleRejections: 0,
  retries: 0,
});
const add = (id: string, deadline = 10, payload?: unknown): JournalRecord => ({
  kind: "add",
  spec: spec(id, payload),
  status: status(deadline),
});

/** The loaded state with rows in a canonical order, for comparisons. */
function canonical(state: JournalState) {
  return {
    meta: state.meta,
    clock: state.clock,
    tasks: [...state.tasks].sort((a, b) => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0)),
    idempotency: [...state.idempotency].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    outbox: [...state.outbox].sort((a, b) => (a.moveId < b.moveId ? -1 : a.moveId > b.moveId ? 1 : 0)),
    adopted: [...state.adopted].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    ended: [...state.ended].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
    claims: [...state.claims].sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0)),
  };
}

async function reload(harness: JournalHarness, location: string): Promise<ReturnType<typeof canonical>> {
  const journal = await harness.open(location);
  try {
    return canonical(journal.load());
  } finally {
    await journal.close();
  }
}

async function rejection(promise: Promise<unknown>): Promise<{ code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string };
  }
  throw new Error("expected a rejection");
}

export function describeJournalContract(name: string, harness: JournalHarness): void {
  describe(`journal contract: ${name}`, () => {
    it("a new journal loads an empty state", async () => {
      const journal = await harness.open(await harness.location());
      expect(canonical(journal.load())).toEqual({
        meta: undefined,
        tasks: [],
        idempotency: [],
        clock: 0,
        outbox: [],
        adopted: [],
        ended: [],
        claims: [],
      });
      await journal.close();
    });

    it("reopening loads the live rows: add, set replaces the status, drop deletes, meta keeps the latest", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      await journal.append([add("a", 10, { big: "x".repeat(3000), n: [1, 2] }), add("b", 20), add("c", 30)]);
      await journal.append([
        { kind: "set", id: "a", status: status(10, "LEASED", 1) },
        { kind: "meta", meta: meta(1) },
      ]);
      await journal.append([
        { kind: "drop", id: "b" },
        { kind: "meta", meta: meta(2) },
      ]);
      await journal.close();
      const state = await reload(harness, location);
      expect(state.meta).toEqual(meta(2));
      expect(state.tasks).toEqual([
        { spec: spec("a", { big: "x".repeat(3000), n: [1, 2] }), status: status(10, "LEASED", 1) },
        { spec: spec("c"), status: status(30) },
      ]);
    });

    it("records apply in order, within one append and across appends", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      const first = journal.append([
        add("x", 1),
        { kind: "set", id: "x", status: status(2) },
        { kind: "drop", id: "x" },
        add("x", 3),
        add("y", 4),
        { kind: "meta", meta: meta(1) },
        { kind: "meta", meta: meta(2) },
      ]);
      const second = journal.append([
        { kind: "set", id: "y", status: status(5) },
        { kind: "drop", id: "x" },
      ]);
      const third = journal.append([add("x", 6)]);
      await Promise.all([first, second, third]);
      await journal.close();
      const state = await reload(harness, location);
      expect(state.tasks).toEqual([
        { spec: spec("x"), status: status(6) },
        { spec: spec("y"), status: status(5) },
      ]);
      expect(state.meta).toEqual(meta(2));
    });

    it("idempotency entries round-trip and forget removes them; the clock only moves forward", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      await journal.append([
        { kind: "idempotency", key: "k1", entry: { taskIds: ["a", "b"], createdAt: 100 } },
        { kind: "idempotency", key: "k2", entry: { taskIds: [], createdAt: 101 } },
        { kind: "clock", at: 500 },
      ]);
      await journal.append([
        { kind: "forget", key: "k2" },
        { kind: "clock", at: 200 },
      ]);
      await journal.close();
      const state = await reload(harness, location);
      expect(state.idempotency).toEqual([["k1", { taskIds: ["a", "b"], createdAt: 100 }]]);
      expect(state.clock).toBe(500);
    });

    it("the token ceiling round-trips and only moves up", async () => {
      const location = await harness.location();
      const fresh = await harness.open(location);
      expect(fresh.load().tokenCeiling).toBe(0);
      await fresh.append([{ kind: "tokens", ceiling: 2_000 }, add("a")]);
      await fresh.append([{ kind: "tokens", ceiling: 1_000 }]);
      await fresh.close();
      const reopened = await harness.open(location);
      expect(reopened.load().tokenCeiling).toBe(2_000);
      await reopened.append([{ kind: "tokens", ceiling: 3_000 }]);
      await reopened.close();
      const again = await harness.open(location);
      expect(again.load().tokenCeiling).toBe(3_000);
      await again.close();
    });

    it("outbox rows round-trip until deleted, in the same commit as the task rows they carry; adopted and ended rows stay", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      journal.load();
      const moved = add("m");
      if (moved.kind !== "add") throw new Error("unreachable");
      const row = {
        moveId: "move-1",
        slot: 7,
        source: "shard-0",
        target: "shard-1",
        createdAt: 100,
        tasks: [{ spec: moved.spec, status: moved.status }],
        idempotency: [["k", { taskIds: ["m"], createdAt: 90 }]] as const,
        leases: [{ taskId: "m", token: 3, secret: "s" }],
      };
      await journal.append([moved]);
      await journal.append([
        { kind: "drop", id: "m" },
        { kind: "outbox", moveId: "move-1", row },
        { kind: "outbox", moveId: "move-2", row: { ...row, moveId: "move-2" } },
        { kind: "adopted", moveId: "in-1", move: { slot: 3, source: "shard-2", adoptedAt: 5, leases: [] } },
      ]);
      const ended = { slot: 7, target: "shard-1", endedAt: 120 };
      await journal.append([
        { kind: "outbox", moveId: "move-2", row: null },
        { kind: "ended", moveId: "move-2", move: ended },
      ]);
      await journal.close();
      const state = await reload(harness, location);
      expect(state.tasks).toEqual([]);
      expect(state.outbox).toEqual([row]);
      expect(state.adopted).toEqual([["in-1", { slot: 3, source: "shard-2", adoptedAt: 5, leases: [] }]]);
      expect(state.ended).toEqual([["move-2", ended]]);
    });

    it("claim rows round-trip, in the same commit as the task rows; a later claim of an id replaces it, null drops it", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      journal.load();
      await journal.append([
        add("t1"),
        { kind: "claim", taskId: "x", claim: { taskId: "x", workflowId: "wf-1" } },
        { kind: "claim", taskId: "y", claim: { taskId: "y" } },
        { kind: "claim", taskId: "z", claim: { taskId: "z", workflowId: "wf-z" } },
      ]);
      await journal.append([
        { kind: "claim", taskId: "x", claim: { taskId: "x", workflowId: "wf-2" } },
        { kind: "claim", taskId: "z", claim: null },
      ]);
      await journal.close();
      const state = await reload(harness, location);
      expect(state.tasks.map((t) => t.spec.id)).toEqual(["t1"]);
      expect(state.claims).toEqual([{ taskId: "x", workflowId: "wf-2" }, { taskId: "y" }]);
    });

    it("appends resolve in call order, a burst shares commits, and an empty append is a barrier", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      const order: number[] = [];
      const burst: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        burst.push(journal.append([add(`t${String(i).padStart(3, "0")}`, i)]).then(() => void order.push(i)));
        if (i === 99) burst.push(journal.append([]).then(() => void order.push(-1)));
      }
      // A later turn: still ordered after the burst.
      await Promise.resolve();
      const late = journal.append([add("late")]).then(() => void order.push(1000));
      const barrier = journal.append([]).then(() => void order.push(2000));
      await Promise.all([...burst, late, barrier]);
      expect(order.indexOf(-1)).toBeGreaterThan(order.indexOf(99));
      expect(order.filter((i) => i >= 0 && i < 200)).toEqual([...Array(200).keys()]);
      expect(order.slice(-2)).toEqual([1000, 2000]);
      const stats = journal.stats();
      expect(stats.appends).toBe(201);
      expect(stats.records).toBe(201);
      expect(stats.pending).toBe(0);
      expect(stats.commits).toBeGreaterThan(0);
      expect(stats.commits).toBeLessThan(20);
      await journal.close();
      expect((await reload(harness, location)).tasks).toHaveLength(201);
    });

    it("appends still pending at close are durable", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      const pending = journal.append([add("p1"), { kind: "meta", meta: meta(7) }]);
      const closed = journal.close();
      await pending;
      await closed;
      const state = await reload(harness, location);
      expect(state.tasks.map((t) => t.spec.id)).toEqual(["p1"]);
      expect(state.meta).toEqual(meta(7));
    });

    it("after close appends reject with SHARD_CLOSED; close is idempotent and releases ownership", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      await journal.close();
      await journal.close();
      expect((await rejection(journal.append([add("z")]))).code).toBe(ShardErrorCode.SHARD_CLOSED);
      const again = await harness.open(location);
      expect([...again.load().tasks]).toEqual([]);
      await again.close();
    });

    it("a second open of a location in use is refused with SHARD_LOCKED and changes nothing", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      await journal.append([add("a")]);
      expect((await rejection(harness.open(location))).code).toBe(ShardErrorCode.SHARD_LOCKED);
      await journal.append([add("b")]);
      await journal.close();
      expect((await reload(harness, location)).tasks.map((t) => t.spec.id)).toEqual(["a", "b"]);
    });

    it("a takeover fences the previous owner: its appends reject with SHARD_FENCED and write nothing", async () => {
      const location = await harness.location();
      const old = await harness.open(location);
      await old.append([add("before")]);
      const successor = await harness.open(location, { takeover: true });
      expect([...successor.load().tasks].map((t) => t.spec.id)).toEqual(["before"]);
      const fenced = old.append([add("after-takeover")]);
      // A second block issued while the first is still in flight: refused too.
      await Promise.resolve();
      const second = old.append([add("after-takeover-2")]);
      const later = old.append([]);
      expect((await rejection(fenced)).code).toBe(ShardErrorCode.SHARD_FENCED);
      expect((await rejection(second)).code).toBe(ShardErrorCode.SHARD_FENCED);
      expect((await rejection(later)).code).toBe(ShardErrorCode.SHARD_FENCED);
      expect((await rejection(old.append([add("even-later")]))).code).toBe(ShardErrorCode.SHARD_FENCED);
      await successor.append([add("successor")]);
      await old.close();
      // Closing the fenced owner takes nothing from the successor.
      await successor.append([add("successor-2")]);
      await successor.close();
      expect((await reload(harness, location)).tasks.map((t) => t.spec.id)).toEqual([
        "before",
        "successor",
        "successor-2",
      ]);
    });

    it("checkOwner is quiet while this opener owns the directory and throws SHARD_FENCED after a takeover, stopping the journal", async () => {
      const location = await harness.location();
      const old = await harness.open(location);
      await old.append([add("before")]);
      old.checkOwner();
      const successor = await harness.open(location, { takeover: true });
      let thrown: unknown;
      try {
        old.checkOwner();
      } catch (error) {
        thrown = error;
      }
      expect((thrown as { code?: string } | undefined)?.code).toBe(ShardErrorCode.SHARD_FENCED);
      // Stopped: it writes nothing more, without trying.
      expect((await rejection(old.append([add("after")]))).code).toBe(ShardErrorCode.SHARD_FENCED);
      await old.close();
      successor.checkOwner();
      await successor.close();
      expect((await reload(harness, location)).tasks.map((t) => t.spec.id)).toEqual(["before"]);
    });

    it("an append that cannot be stored fails whole, and every later append fails too", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      await journal.append([add("kept")]);
      const cyclic: { self?: unknown } = {};
      cyclic.self = cyclic;
      const bad = journal.append([add("same-append"), add("bad", 1, cyclic)]);
      const after = journal.append([add("after")]);
      const badError = await rejection(bad);
      expect(Object.values(ShardErrorCode)).toContain(badError.code);
      expect((await rejection(after)).code).toBe(badError.code);
      expect((await rejection(journal.append([add("much-later")]))).code).toBe(badError.code);
      await journal.close();
      expect((await reload(harness, location)).tasks.map((t) => t.spec.id)).toEqual(["kept"]);
    });

    it("appends in flight when one fails: earlier ones stand, it and every later one reject, and nothing after it lands", async () => {
      const location = await harness.location();
      const journal = await harness.open(location);
      await journal.append([add("kept")]);
      const cyclic: { self?: unknown } = {};
      cyclic.self = cyclic;
      // Each in an event turn of its own, none awaited: several commits in flight at once.
      const before = journal.append([add("before")]);
      await Promise.resolve();
      const bad = rejection(journal.append([add("bad", 1, cyclic)]));
      await Promise.resolve();
      const after = rejection(journal.append([add("after")]));
      await Promise.resolve();
      const barrier = rejection(journal.append([]));
      const later = rejection(journal.append([add("later")]));
      await before;
      const badError = await bad;
      expect(Object.values(ShardErrorCode)).toContain(badError.code);
      for (const refused of [after, barrier, later]) expect((await refused).code).toBe(badError.code);
      await journal.close();
      const ids = (await reload(harness, location)).tasks.map((t) => t.spec.id);
      expect(ids).toEqual(["before", "kept"]);
    });
  });
}
