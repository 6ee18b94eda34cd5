/** The announcer's timing rules, on fake timers: on change, throttled, heartbeats, waiters. */
import type { FrontierAnnouncement } from "@frontier/protocol";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EMPTY_FRONTIER, type Frontier, FrontierAnnouncer } from "./announcer.js";

describe("FrontierAnnouncer", () => {
  let frontier: Frontier | null;
  let published: FrontierAnnouncement[];
  let announcer: FrontierAnnouncer;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    frontier = EMPTY_FRONTIER;
    published = [];
    announcer = new FrontierAnnouncer({
      shardId: "s",
      intervalMs: 1_000,
      throttleMs: 20,
      pollMs: 100,
      read: () => frontier,
      publish: (a) => published.push(a),
    });
  });
  afterEach(() => {
    announcer.stop();
    vi.useRealTimers();
  });

  const set = (runnable: number, key: number | null = runnable === 0 ? null : 10) => {
    frontier = key === null ? { ...EMPTY_FRONTIER, runnable } : { deadline: key, key, taskId: "t", runnable };
  };

  it("announces at start, then on change, never twice within the throttle window", async () => {
    announcer.start();
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ shardId: "s", seq: 0, runnable: 0, key: null, at: 1_000_000 });
    await vi.advanceTimersByTimeAsync(50);
    // Three changes inside one window: the first announced at once, the last state at the window's end.
    for (let i = 1; i <= 3; i++) {
      set(i);
      announcer.changed();
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(30);
    expect(published.map((a) => a.runnable)).toEqual([0, 1, 3]);
    for (let i = 1; i < published.length; i++) {
      expect(published[i]!.at - published[i - 1]!.at).toBeGreaterThanOrEqual(20);
      expect(published[i]!.seq).toBe(i);
    }
  });

  it("announces the first runnable task after an empty frontier at once, inside the throttle window", async () => {
    announcer.start();
    await vi.advanceTimersByTimeAsync(1);
    set(2);
    announcer.changed();
    await vi.advanceTimersByTimeAsync(1);
    // Pushed: a waiting long-poll acts on it now, not when the window ends.
    expect(published.map((a) => a.runnable)).toEqual([0, 2]);
    expect(published[1]!.at - published[0]!.at).toBeLessThan(20);
    // Other changes inside the window are still held to its end.
    set(3);
    announcer.changed();
    await vi.advanceTimersByTimeAsync(1);
    expect(published.map((a) => a.runnable)).toEqual([0, 2]);
    await vi.advanceTimersByTimeAsync(25);
    expect(published.map((a) => a.runnable)).toEqual([0, 2, 3]);
  });

  it("announces at once after a lease reply told a coordinator the shard had nothing runnable", async () => {
    announcer.start();
    set(1);
    announcer.changed();
    await vi.advanceTimersByTimeAsync(1); // pushed: the first runnable task after empty
    set(0);
    // A lease reply takes the last task and tells the coordinator so (the board now waits).
    expect(announcer.snapshot()).toMatchObject({ runnable: 0 });
    await vi.advanceTimersByTimeAsync(1);
    const before = published.length;
    set(1, 20);
    announcer.changed();
    await vi.advanceTimersByTimeAsync(1);
    // Still inside the throttle window of the last publish, yet announced: a long-poll waits on it.
    expect(published.length).toBe(before + 1);
    expect(published.at(-1)).toMatchObject({ runnable: 1, key: 20 });
  });

  it("tells the depth of its runnable keys in what goes out, not on every look", () => {
    let reads = 0;
    const depthOf = new FrontierAnnouncer({
      shardId: "d",
      intervalMs: 1_000,
      throttleMs: 20,
      pollMs: 100,
      read: () => frontier,
      readDepth: () => {
        reads++;
        return [10, 12, 30];
      },
      publish: (a) => published.push(a),
    });
    set(3);
    depthOf.start();
    expect(published.at(-1)).toMatchObject({ shardId: "d", key: 10, depth: [10, 12, 30] });
    expect(depthOf.snapshot()).toMatchObject({ key: 10, depth: [10, 12, 30] });
    expect(reads).toBe(2);
    // A depth that does not start at the key (read at another moment) is left out, not sent wrong.
    set(3, 11);
    expect(depthOf.snapshot()?.depth).toBeUndefined();
    depthOf.stop();
  });

  it("sees changes no one reported on its poll, and repeats itself every interval", async () => {
    announcer.start();
    set(5);
    await vi.advanceTimersByTimeAsync(100);
    expect(published.at(-1)?.runnable).toBe(5);
    const n = published.length;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(published.length).toBe(n + 2);
    expect(published.at(-1)).toMatchObject({ runnable: 5, key: 10 });
  });

  it("announces nothing while the shard does not serve, and a final state when told", async () => {
    announcer.start();
    frontier = null;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(published).toHaveLength(1);
    announcer.stop(EMPTY_FRONTIER);
    expect(published).toHaveLength(2);
  });

  it("wakes waiters on a change, on their timeout, and on stop", async () => {
    announcer.start();
    let woke = 0;
    void announcer.waitForChange(10_000).then(() => woke++);
    await vi.advanceTimersByTimeAsync(500);
    expect(woke).toBe(0);
    set(1);
    announcer.changed();
    await vi.advanceTimersByTimeAsync(1);
    expect(woke).toBe(1);
    void announcer.waitForChange(50).then(() => woke++);
    await vi.advanceTimersByTimeAsync(50);
    expect(woke).toBe(2);
    void announcer.waitForChange(10_000).then(() => woke++);
    announcer.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(woke).toBe(3);
  });
});
