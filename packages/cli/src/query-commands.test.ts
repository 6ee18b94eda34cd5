import type { ClusterStats } from "@frontier/client";
import type { SchedulerStats } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { rates, type TopReading, topLines } from "./query-commands.js";

const AT = Date.parse("2026-11-27T14:20:00.000Z");

function shardStats(
  over: Partial<SchedulerStats> & { completed?: number; waiting?: number; failed?: number },
) {
  const { completed = 0, waiting = 0, failed = 0, ...rest } = over;
  return {
    counts: {
      WAITING: waiting,
      RUNNABLE: rest.runnable ?? 0,
      LEASED: rest.leased ?? 0,
      COMPLETED: completed,
      FAILED: failed,
      CANCELLED: 0,
      EXPIRED: 0,
    },
    runnable: 0,
    oldestRunnableAgeMs: 0,
    frontierDeadline: null,
    leaseTimeouts: 0,
    attemptTimeouts: 0,
    deadlineMisses: 0,
    staleRejections: 0,
    retries: 0,
    leased: 0,
    ...rest,
  } satisfies SchedulerStats;
}

/** Cluster stats of these shards (the sums as a coordinator makes them), `missing` not answering. */
function clusterOf(
  shards: { shardId: string; slots: number; stats: SchedulerStats }[],
  missing: ClusterStats["shards"]["missing"] = [],
): ClusterStats {
  const sum = (f: (s: SchedulerStats) => number) => shards.reduce((n, e) => n + f(e.stats), 0);
  const deadlines = shards.map((e) => e.stats.frontierDeadline).filter((d): d is number => d !== null);
  return {
    counts: {
      WAITING: sum((s) => s.counts.WAITING),
      RUNNABLE: sum((s) => s.counts.RUNNABLE),
      LEASED: sum((s) => s.counts.LEASED),
      COMPLETED: sum((s) => s.counts.COMPLETED),
      FAILED: sum((s) => s.counts.FAILED),
      CANCELLED: 0,
      EXPIRED: 0,
    },
    runnable: sum((s) => s.runnable),
    oldestRunnableAgeMs: Math.max(0, ...shards.map((e) => e.stats.oldestRunnableAgeMs)),
    frontierDeadline: deadlines.length === 0 ? null : Math.min(...deadlines),
    leaseTimeouts: sum((s) => s.leaseTimeouts),
    attemptTimeouts: 0,
    deadlineMisses: sum((s) => s.deadlineMisses),
    staleRejections: 0,
    retries: 0,
    leased: sum((s) => s.leased),
    shards: { answered: shards.map((e) => e.shardId), missing },
    byShard: shards,
  };
}

const busy = {
  shardId: "shard-0",
  slots: 512,
  stats: shardStats({
    waiting: 3,
    runnable: 2,
    leased: 1,
    failed: 1,
    completed: 10,
    oldestRunnableAgeMs: 2_800,
    frontierDeadline: AT + 588_000,
    leaseTimeouts: 4,
    deadlineMisses: 1,
  }),
};
const idle = { shardId: "shard-1", slots: 512, stats: shardStats({ completed: 7 }) };
const late = {
  shardId: "shard-2",
  slots: 0,
  stats: shardStats({ runnable: 1, frontierDeadline: AT - 2_000, oldestRunnableAgeMs: 65_000, completed: 1 }),
};

describe("topLines, per shard", () => {
  it("adds a row per answering shard: slots, backlog, frontier, oldest wait, leases, timeouts, misses", () => {
    const lines = topLines("prod", clusterOf([busy, idle, late]), null, AT);
    const table = lines.slice(lines.indexOf("") + 1);
    expect(table).toEqual([
      "  shard    slots  waiting  runnable  leased  done/s  deadline  oldest  timeouts  misses",
      "  shard-0    512        3         2       1       -     +9.8m    2.8s         4       1",
      "  shard-1    512        0         0       0       -         -       -         0       0",
      "  shard-2      0        0         1       0       -     -2.0s    1.1m         0       0",
    ]);
    // The totals stay above the table, as before.
    expect(lines[0]).toBe("frontier top — cluster prod — 2026-11-27T14:20:00.000Z — 3 of 3 shards answered");
    expect(lines[1]).toBe(
      "  backlog   WAITING 3  RUNNABLE 3  LEASED 1  COMPLETED 18  FAILED 1  CANCELLED 0  EXPIRED 0",
    );
  });

  it("shows each shard's completions per second between two readings", () => {
    const before: TopReading = { stats: clusterOf([busy, idle]), at: AT };
    const more = { ...busy, stats: { ...busy.stats, counts: { ...busy.stats.counts, COMPLETED: 30 } } };
    // shard-2 appears only in the second reading: no rate for it yet.
    const now: TopReading = { stats: clusterOf([more, idle, late]), at: AT + 2_000 };
    const r = rates(before, now);
    expect(r?.completed).toBe(10.5); // (30 + 7 + 1 − 17) / 2 s
    expect([...(r?.completedByShard ?? [])]).toEqual([
      ["shard-0", 10],
      ["shard-1", 0],
    ]);
    const rows = topLines("prod", now.stats, r, now.at).filter((l) => l.startsWith("  shard-"));
    expect(rows.map((l) => l.trim().split(/\s+/)[5])).toEqual(["10.0", "0.0", "-"]);
  });

  it("names a missing shard above the totals and leaves it out of the table", () => {
    const lines = topLines("prod", clusterOf([idle], [{ shardId: "shard-9", code: "TIMEOUT" }]), null, AT);
    expect(lines[0]).toContain("1 of 2 shards answered");
    expect(lines[1]).toBe("  missing: shard-9 (TIMEOUT)");
    expect(lines.filter((l) => l.startsWith("  shard-"))).toHaveLength(1);
  });

  it("leaves out the least telling columns first on a narrow terminal", () => {
    const header = (columns: number) =>
      topLines("prod", clusterOf([busy, idle]), null, AT, { columns }).find((l) => l.startsWith("  shard "));
    expect(header(87)).toBe(
      "  shard    slots  waiting  runnable  leased  done/s  deadline  oldest  timeouts  misses",
    );
    expect(header(80)).toBe(
      "  shard    waiting  runnable  leased  done/s  deadline  oldest  timeouts  misses",
    );
    expect(header(64)).toBe("  shard    waiting  runnable  leased  done/s  deadline  misses");
    expect(header(20)).toBe("  shard    runnable");
  });

  it("keeps every line within the terminal's width, and cuts a long shard id", () => {
    const long = { ...idle, shardId: "a-shard-with-a-very-long-name-indeed" };
    const lines = topLines("prod", clusterOf([busy, long]), null, AT, { columns: 60 });
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(60);
    expect(lines.some((l) => l.endsWith("…"))).toBe(true);
    const wide = topLines("prod", clusterOf([busy, long]), null, AT);
    expect(wide.some((l) => l.startsWith("  a-shard-with-a-…  "))).toBe(true); // 16 characters at most
  });

  it("keeps a frame under the terminal's height, counting the shards left out", () => {
    const many = Array.from({ length: 40 }, (_, i) => ({
      ...idle,
      shardId: `s${String(i).padStart(2, "0")}`,
    }));
    const lines = topLines("prod", clusterOf(many), null, AT, { rows: 20 });
    expect(lines.length).toBeLessThan(20);
    expect(lines.at(-1)).toMatch(/^ {2}… \d+ more shards$/);
    const shown = lines.filter((l) => /^ {2}s\d\d /.test(l)).length;
    expect(shown + Number(/(\d+) more/.exec(lines.at(-1) ?? "")?.[1])).toBe(40);
    // Too short for even one shard: the totals alone.
    expect(topLines("prod", clusterOf(many), null, AT, { rows: 9 }).some((l) => l.includes("shard "))).toBe(
      false,
    );
  });

  it("draws no table for a coordinator that gave no shard's figures", () => {
    const stats = { ...clusterOf([idle]), byShard: [] };
    expect(topLines("prod", stats, null, AT)).not.toContain("");
  });
});
