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
