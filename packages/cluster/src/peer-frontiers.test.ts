import type { FrontierAnnouncement } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import { PeerFrontiers } from "./peer-frontiers.js";

function announcement(shardId: string, key: number | null, seq: number, runnable = key === null ? 0 : 5) {
  return {
    shardId,
    key,
    deadline: key,
    taskId: key === null ? null : `t-${key}`,
    runnable,
    seq,
    at: 0,
  } satisfies FrontierAnnouncement;
}

describe("PeerFrontiers", () => {
  it("bounds grants by the least key another shard announced with runnable tasks", () => {
    let now = 0;
    const peers = new PeerFrontiers("a", 3_000, () => now);
    expect(peers.leastKey()).toBeUndefined();
    peers.observe(announcement("a", 1, 1)); // our own: never a bound
    peers.observe(announcement("b", 50, 1));
    peers.observe(announcement("c", 20, 1));
    peers.observe(announcement("d", null, 1)); // nothing runnable: no bound
    expect(peers.leastKey()).toBe(20);
    peers.observe(announcement("c", null, 2));
    expect(peers.leastKey()).toBe(50);
    now = 1_000;
    peers.observe(announcement("b", 10, 2));
    expect(peers.leastKey()).toBe(10);
  });

  it("gives the first task of all in dispatch order, ties at a key by task id", () => {
    const peers = new PeerFrontiers("a", 3_000, () => 0);
    peers.observe({ ...announcement("b", 10, 1), taskId: "m" });
    peers.observe({ ...announcement("c", 10, 1), taskId: "f" });
    peers.observe({ ...announcement("d", 12, 1), taskId: "a" });
    expect(peers.least()).toEqual({ key: 10, taskId: "f" });
  });

  it("ignores a reordered older announcement, but takes a restarted shard's", () => {
    let now = 0;
    const peers = new PeerFrontiers("a", 3_000, () => now);
    peers.observe(announcement("b", 30, 7));
    peers.observe(announcement("b", 5, 6));
    expect(peers.leastKey()).toBe(30);
    now = 3_500; // b's last word is stale: a new process numbering from 0 is believed
    peers.observe(announcement("b", 8, 0));
    expect(peers.leastKey()).toBe(8);
  });

  it("forgets a shard it has not heard from within the staleness window", () => {
    let now = 0;
    const peers = new PeerFrontiers("a", 3_000, () => now);
    peers.observe(announcement("b", 30, 1));
    now = 2_999;
    expect(peers.leastKey()).toBe(30);
    now = 3_000;
    expect(peers.leastKey()).toBeUndefined();
    expect(peers.size).toBe(0);
  });
});

describe("PeerFrontiers by task type", () => {
  const typed = (
    shardId: string,
    seq: number,
    types: { type: string; key: number; taskId: string; runnable?: number }[],
    typesOmitted?: number,
  ): FrontierAnnouncement => ({
    shardId,
    key: types[0]?.key ?? null,
    deadline: types[0]?.key ?? null,
    taskId: types[0]?.taskId ?? null,
    runnable: types.reduce((n, t) => n + (t.runnable ?? 1), 0),
    types: types.map((t) => ({ ...t, deadline: t.key, runnable: t.runnable ?? 1 })),
    ...(typesOmitted === undefined ? {} : { typesOmitted }),
    seq,
    at: 0,
  });

  it("bounds a lease of some types by the other shards' first tasks of those types only", () => {
    const peers = new PeerFrontiers("a", 3_000, () => 0);
    peers.observe(
      typed("b", 1, [
        { type: "default", key: 1, taskId: "d1" },
        { type: "img", key: 5, taskId: "i5" },
      ]),
    );
    peers.observe(typed("c", 1, [{ type: "mail", key: 3, taskId: "m3" }]));
    expect(peers.least()).toEqual({ key: 1, taskId: "d1" });
    expect(peers.least(["img"])).toEqual({ key: 5, taskId: "i5" });
    expect(peers.least(["img", "mail"])).toEqual({ key: 3, taskId: "m3" });
    expect(peers.least(["video"])).toBeUndefined();
  });

  it("bounds an omitted type by the last listed type's first task", () => {
    const peers = new PeerFrontiers("a", 3_000, () => 0);
    peers.observe(typed("b", 1, [{ type: "img", key: 5, taskId: "i5" }], 4));
    expect(peers.least(["video"])).toEqual({ key: 5, taskId: "i5" });
    // An announcement without per-type frontiers is all of the default type.
    peers.observe(announcement("c", 2, 1));
    expect(peers.least()).toEqual({ key: 2, taskId: "t-2" });
    expect(peers.least(["img"])).toEqual({ key: 5, taskId: "i5" });
  });
});

describe("PeerFrontiers.atOrBefore", () => {
  const withDepth = (shardId: string, depth: number[], runnable: number, seq = 1) => ({
    ...announcement(shardId, depth[0]!, seq, runnable),
    depth,
  });

  it("counts the other shards' tasks at or before a key from their depths, an upper bound, summed", () => {
    let now = 0;
    const peers = new PeerFrontiers("a", 3_000, () => now);
    // Ranks 1, 2, 3, 4, 5, 6, 8: keys as announced.
    peers.observe(withDepth("b", [10, 20, 30, 40, 50, 60, 80], 100));
    peers.observe(withDepth("c", [15, 25], 2));
    peers.observe(withDepth("a", [1, 2, 3], 3)); // our own: never counted
    const count = peers.atOrBefore()!;
    expect(count(5)).toBe(0);
    expect(count(10)).toBe(1);
    expect(count(16)).toBe(2); // b's 10, c's 15
    expect(count(30)).toBe(5); // b's first 3, both of c's
    expect(count(70)).toBe(9); // b: rank 8's key (80) is after 70, so at most 7; c: 2
    expect(count(1_000)).toBe(102); // past the deepest rank told: every runnable task
    now = 3_000; // both gone quiet
    expect(peers.atOrBefore()!(1_000)).toBe(0);
  });

  it("is undefined when a shard with runnable tasks did not tell its depth", () => {
    const peers = new PeerFrontiers("a", 3_000, () => 0);
    peers.observe(withDepth("b", [10, 20], 2));
    peers.observe(announcement("c", 12, 1));
    expect(peers.atOrBefore()).toBeUndefined();
    peers.observe(announcement("c", null, 2)); // nothing runnable: nothing to count
    expect(peers.atOrBefore()!(100)).toBe(2);
  });

  it("counts only the named types' tasks", () => {
    const peers = new PeerFrontiers("a", 3_000, () => 0);
    peers.observe({
      ...announcement("b", 10, 1, 5),
      types: [
        { type: "email", key: 10, deadline: 10, taskId: "t-10", runnable: 3, depth: [10, 11, 12] },
        { type: "video", key: 20, deadline: 20, taskId: "t-20", runnable: 2, depth: [20, 21] },
      ],
    });
    expect(peers.atOrBefore(["video"])!(20)).toBe(1);
    expect(peers.atOrBefore(["email", "video"])!(20)).toBe(4);
    expect(peers.atOrBefore(["sms"])!(100)).toBe(0);
  });
});
