import type { FrontierAnnouncement } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import { FrontierBoard } from "./frontier-board.js";

const ann = (shardId: string, key: number | null, runnable: number, seq = 1): FrontierAnnouncement => ({
  shardId,
  key,
  deadline: key,
  taskId: key === null ? null : `t-${shardId}`,
  runnable,
  seq,
  at: 0,
});

describe("FrontierBoard", () => {
  it("orders shards with runnable tasks by key, then id", () => {
    const board = new FrontierBoard(1_000, () => 0);
    board.update(ann("b", 20, 1));
    board.update(ann("a", 20, 1));
    board.update(ann("c", 10, 3));
    board.update(ann("d", null, 0));
    expect(board.runnable().map((f) => f.shardId)).toEqual(["c", "a", "b"]);
    expect(board.fresh()).toHaveLength(4);
  });

  it("drops shards not heard from within staleMs", () => {
    let now = 0;
    const board = new FrontierBoard(100, () => now);
    board.update(ann("a", 1, 1));
    now = 50;
    board.update(ann("b", 2, 1));
    now = 120;
    expect(board.runnable().map((f) => f.shardId)).toEqual(["b"]);
    expect(board.fresh().map((f) => f.shardId)).toEqual(["b"]);
  });

  it("notes what grants tell until the next announcement", () => {
    const board = new FrontierBoard(1_000, () => 0);
    board.update(ann("a", 10, 5));
    board.update(ann("b", 30, 5));
    board.noteGrant("a", 5, 2, 30, board.runnable().find((f) => f.shardId === "a")!.seq); // fewer than asked under maxKey 30: a's next key is beyond 30
    // a's next task is not known, only that it comes after key 30: b's known first task goes first.
    expect(board.runnable().map((f) => [f.shardId, f.key, f.taskId, f.runnable])).toEqual([
      ["b", 30, "t-b", 5],
      ["a", 30, null, 3],
    ]);
    board.noteGrant("b", 4, 1, undefined, board.runnable().find((f) => f.shardId === "b")!.seq); // fewer than asked without a bound: nothing more there
    expect(board.runnable().map((f) => f.shardId)).toEqual(["a"]);
    board.update(ann("b", 40, 2));
    expect(board.runnable().map((f) => f.shardId)).toEqual(["a", "b"]);
  });

  it("does not wait when runnable news came since the long-poll last looked", async () => {
    const board = new FrontierBoard(1_000);
    const seen = board.news;
    // Arrives while the long-poll is asking the shards: it must not then wait for the next one.
    board.update(ann("a", 5, 1));
    expect(await board.waitForRunnable(10_000, seen)).toBe(true);
    expect(board.waiting).toBe(0);
    // Nothing new since: it waits (here, out its time).
    expect(await board.waitForRunnable(10, board.news)).toBe(false);
  });

  it("wakes long-polls on an announcement with runnable tasks only, and on close", async () => {
    const board = new FrontierBoard(1_000);
    const woken = board.waitForRunnable(10_000);
    expect(board.waiting).toBe(1);
    board.update(ann("a", null, 0));
    expect(board.waiting).toBe(1);
    board.update(ann("a", 5, 1));
    expect(await woken).toBe(true);
    expect(board.waiting).toBe(0);
    expect(await board.waitForRunnable(10)).toBe(false);
    const closing = board.waitForRunnable(10_000);
    board.close();
    expect(await closing).toBe(false);
    expect(await board.waitForRunnable(10_000)).toBe(false);
  });
});

describe("FrontierBoard by task type", () => {
  const typed = (
    shardId: string,
    types: { type: string; key: number; runnable: number; depth?: number[] }[],
    typesOmitted?: number,
    seq = 1,
  ): FrontierAnnouncement => ({
    shardId,
    key: types[0]?.key ?? null,
    deadline: types[0]?.key ?? null,
    taskId: types[0] === undefined ? null : `${shardId}-${types[0].type}`,
    runnable: types.reduce((n, t) => n + t.runnable, 0),
    types: types.map((t) => ({ ...t, deadline: t.key, taskId: `${shardId}-${t.type}` })),
    ...(typesOmitted === undefined ? {} : { typesOmitted }),
    seq,
    at: 0,
  });

  it("orders shards by their first task of the named types, summing their counts and depths", () => {
    const board = new FrontierBoard(1_000, () => 0);
    board.update(
      typed("a", [
        { type: "default", key: 1, runnable: 4 },
        { type: "img", key: 30, runnable: 2, depth: [30, 31] },
      ]),
    );
    board.update(
      typed("b", [
        { type: "mail", key: 10, runnable: 1, depth: [10] },
        { type: "img", key: 20, runnable: 3, depth: [20, 21, 22] },
      ]),
    );
    expect(board.runnable().map((f) => f.shardId)).toEqual(["a"]);
    expect(board.runnable(["img"]).map((f) => [f.shardId, f.key, f.runnable, f.depth])).toEqual([
      ["b", 20, 3, [20, 21, 22]],
      ["a", 30, 2, [30, 31]],
    ]);
    const both = board.runnable(["img", "mail"]);
    expect(both.map((f) => [f.shardId, f.key, f.taskId, f.runnable])).toEqual([
      ["b", 10, "b-mail", 4],
      ["a", 30, "a-img", 2],
    ]);
    expect(both[0]!.parts).toEqual([
      { depth: [10], runnable: 1 },
      { depth: [20, 21, 22], runnable: 3 },
    ]);
    expect(board.runnable(["video"])).toEqual([]);
  });

  it("bounds a type a shard left out by the last one it listed, with no depth", () => {
    const board = new FrontierBoard(1_000, () => 0);
    board.update(typed("a", [{ type: "img", key: 7, runnable: 1 }], 5));
    expect(board.runnable(["video"]).map((f) => [f.shardId, f.key, f.taskId, f.runnable, f.depth])).toEqual([
      ["a", 7, "a-img", 1, undefined],
    ]);
  });

  it("counts news per type and wakes a long-poll only for its types", async () => {
    const board = new FrontierBoard(1_000, () => 0);
    const img = board.newsFor(["img"]);
    board.update(typed("a", [{ type: "mail", key: 1, runnable: 1 }]));
    expect(board.newsFor(["img"])).toBe(img);
    expect(board.newsFor(["mail", "img"])).toBe(img + 1);
    const waiting = board.waitForRunnable(10_000, img, undefined, ["img"]);
    board.update(typed("a", [{ type: "mail", key: 1, runnable: 2 }], undefined, 2));
    expect(board.waiting).toBe(1);
    board.update(typed("b", [{ type: "img", key: 5, runnable: 1 }]));
    expect(await waiting).toBe(true);
    expect(board.waiting).toBe(0);
  });

  it("notes a grant against the named types only", () => {
    const board = new FrontierBoard(1_000, () => 0);
    board.update(
      typed("a", [
        { type: "img", key: 5, runnable: 2 },
        { type: "mail", key: 8, runnable: 3 },
      ]),
    );
    board.noteGrant("a", 4, 2, 9, 1, ["img"]);
    expect(board.runnable(["img"])).toEqual([]);
    expect(board.runnable(["mail"]).map((f) => [f.key, f.runnable])).toEqual([[8, 3]]);
  });
});

describe("FrontierBoard news counters", () => {
  it("never go down for a type when the counters start over, and wake every waiter then", async () => {
    const board = new FrontierBoard(1_000, () => 0);
    const announce = (type: string, seq: number) =>
      board.update({
        shardId: "a",
        key: 1,
        deadline: 1,
        taskId: "t",
        runnable: 1,
        types: [{ type, key: 1, deadline: 1, taskId: "t", runnable: 1 }],
        seq,
        at: 0,
      });
    for (let i = 0; i < 5; i++) announce("img", i + 1);
    const before = board.newsFor(["img"]);
    const waiting = board.waitForRunnable(10_000, before, undefined, ["img"]);
    for (let i = 0; i < 4_100; i++) announce(`t${i}`, 10 + i);
    expect(await waiting).toBe(true);
    expect(board.newsFor(["img"])).toBeGreaterThan(before);
  });
});
