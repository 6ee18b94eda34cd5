import { describe, expect, it } from "vitest";
import type { Machine, ResultLine } from "./report.js";
import { svgChart, table } from "./report.js";
import { median, quantile, summarize } from "./stats.js";

const machine: Machine = {
  cpus: 2,
  cpuModel: "test",
  memGiB: 1,
  node: "v20",
  kernel: "6",
  platform: "Linux",
  loadavgAtStart: [0, 0, 0],
  frontierCommit: "abc",
  servers: {},
};

function line(system: ResultLine["system"], scenario: string, fields: Partial<ResultLine>): ResultLine {
  return {
    bench: "peers",
    ts: "",
    run: 1,
    system,
    scenario,
    ok: true,
    settings: {},
    load1: 0,
    machine,
    ...fields,
  };
}

describe("stats", () => {
  it("takes nearest-rank quantiles and medians", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile([], 0.5)).toBeNaN();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
    expect(summarize([1, 2, 3]).maxMs).toBe(3);
  });
});

describe("report", () => {
  const results = [
    line("frontier-1", "drain-c8", { tasksPerSec: 1000, serviceCpuUsPerTask: 600 }),
    line("frontier-1", "drain-c8", { run: 2, tasksPerSec: 3000, serviceCpuUsPerTask: 200 }),
    line("bullmq-everysec", "drain-c8", { tasksPerSec: 4000, serviceCpuUsPerTask: 50 }),
    line("bullmq-everysec", "light", { latency: summarize([1, 1, 2]) }),
    line("frontier-1", "light", { latency: summarize([4, 4, 8]) }),
    line("bullmq-everysec", "chains", { ok: false, error: "boom" }),
  ];

  it("prints medians and Frontier/peer ratios, and lists failures", () => {
    const t = table(results, ["frontier-1", "bullmq-everysec"], [8], 2);
    expect(t).toContain("| drain, concurrency 8 (tasks/s) | 2,000 | 4,000 |");
    expect(t).toContain("| frontier-1: drain c8 (tasks/s) | 0.50× |");
    expect(t).toContain("| frontier-1: light p50 (ms) | 4.00× |");
    expect(t).toContain("| frontier-1: service CPU/task c8 (µs) | 8.00× |");
    expect(t).toContain("run 1, bullmq-everysec, chains: boom");
  });

  it("draws a bar per system and figure", () => {
    const svg = svgChart(results, ["frontier-1", "bullmq-everysec"], [8], "sub & title");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("sub &amp; title");
    expect(svg).toContain("2,000/s");
    expect(svg).toContain("4,000/s");
  });
});
