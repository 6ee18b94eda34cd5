/**
 * deploy/: the Grafana dashboard and the Prometheus rules and scrape config,
 * checked against the metrics the processes really export (their registries,
 * as built by the code) and against docs/metrics.md, which must name every
 * one. With promtool installed (Debian: prometheus), the rules, their unit
 * tests, the config and every dashboard query are checked by Prometheus's
 * own parser too.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { WorkMetrics } from "@frontier/cli";
import { hostRegistry, ShardMetrics } from "@frontier/cluster";
import { CoordinatorMetrics } from "@frontier/coordinator";
import { processRegistry, type Registry } from "@frontier/metrics";
import { promtoolPath, runPromtool } from "@frontier/metrics/testing";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

const root = resolve(import.meta.dirname, "../..");
const deploy = join(root, "deploy");
const scratch = mkdtempSync(join(tmpdir(), "frontier-deploy-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Every metric a Frontier process exports, by name: its type. */
async function catalogue(): Promise<Map<string, string>> {
  const registries: Registry[] = [
    new CoordinatorMetrics({
      pool: () => ({ queued: 0, pending: 0, threads: 1, utilization: 0 }),
      slotsOwned: () => 0,
      frontierShards: () => 0,
      longPolls: () => 0,
      inflight: () => 0,
    }).registry,
    new ShardMetrics("s").registry,
    hostRegistry(() => []),
    new WorkMetrics(1).registry,
    processRegistry(),
  ];
  const types = new Map<string, string>();
  for (const registry of registries)
    for (const m of await registry.getMetricsAsJSON()) types.set(m.name, String(m.type));
  return types;
}

/** The series names a query may use: metrics, a histogram's _bucket/_sum/_count, and Prometheus's `up`. */
function seriesNames(types: Map<string, string>): Map<string, string> {
  const series = new Map<string, string>([["up", "gauge"]]);
  for (const [name, type] of types) {
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) series.set(name + s, "counter");
    else series.set(name, type);
  }
  return series;
}

/** The metric names a PromQL expression reads. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:frontier|process|nodejs)_[a-zA-Z0-9_]+|up(?=\{))/g)].map((m) => m[1]!);
}

/** Problems of an expression: unknown metrics, rate() over a gauge, a quantile not over buckets. */
function queryProblems(expr: string, series: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const name of metricsIn(expr)) if (!series.has(name)) problems.push(`unknown metric ${name}`);
  for (const [, fn, name] of expr.matchAll(/\b(rate|irate|increase|deriv)\(\s*([a-zA-Z_][a-zA-Z0-9_]*)/g)) {
    const type = series.get(name!);
    if (fn !== "deriv" && type !== "counter") problems.push(`${fn}() of ${name}, a ${type}`);
    if (fn === "deriv" && type !== "gauge") problems.push(`deriv() of ${name}, a ${type}`);
  }
  // The first metric after each histogram_quantile( is what it is taken over.
  for (const m of expr.matchAll(/histogram_quantile\(/g)) {
    const over = metricsIn(expr.slice(m.index))[0];
    if (over === undefined || !over.endsWith("_bucket")) problems.push(`histogram_quantile over ${over}`);
  }
  return problems;
}

/** Runs `promtool check rules` on recording rules made of `exprs`: Prometheus's parser on each. */
function promtoolParses(exprs: readonly string[]): { code: number; output: string } {
  const file = join(scratch, `queries-${Math.random().toString(36).slice(2)}.yml`);
  const rules = exprs.map((expr, i) => ({ record: `frontier:query_${i}`, expr }));
  writeFileSync(file, stringifyYaml({ groups: [{ name: "queries", rules }] }));
  return runPromtool(["check", "rules", file]);
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}

const dashboard = JSON.parse(readFileSync(join(deploy, "grafana", "frontier.json"), "utf8")) as {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string }[] };
};
/** A dashboard query as Prometheus would get it: Grafana's variables filled in. */
const asSent = (expr: string) => expr.replaceAll("$__rate_interval", "5m").replaceAll("$shard", ".*");
const queries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
);

describe("deploy/grafana/frontier.json", () => {
  it("is a dashboard with unique panel ids, laid out on the grid without overlaps", () => {
    expect(dashboard.title).toBe("Frontier");
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const { title, gridPos } of dashboard.panels) {
      expect(gridPos.x + gridPos.w, title).toBeLessThanOrEqual(24);
      for (let x = gridPos.x; x < gridPos.x + gridPos.w; x++)
        for (let y = gridPos.y; y < gridPos.y + gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps another panel at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
    for (const p of dashboard.panels.filter((p) => p.type !== "row"))
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
  });

  it("queries only metrics the processes export, rate() over counters, quantiles over buckets", async () => {
    const series = seriesNames(await catalogue());
    const problems = queries.flatMap(({ panel, expr }) =>
      queryProblems(expr, series).map((p) => `${panel}: ${p}`),
    );
    expect(problems).toEqual([]);
    // The checker finds what it looks for.
    expect(queryProblems("rate(frontier_shard_tasks[5m]) + frontier_shard_nope", series)).toEqual([
      "unknown metric frontier_shard_nope",
      "rate() of frontier_shard_tasks, a gauge",
    ]);
    expect(
      queryProblems("histogram_quantile(0.9, sum by (le) (frontier_shard_live_leases))", series),
    ).toEqual(["histogram_quantile over frontier_shard_live_leases"]);
    // The signals the dashboard exists for are all on it.
    const used = new Set(queries.flatMap(({ expr }) => metricsIn(expr)));
    for (const name of [
      "frontier_shard_tasks",
      "frontier_shard_oldest_runnable_age_seconds",
      "frontier_shard_lease_timeouts_total",
      "frontier_shard_deadline_misses_total",
      "frontier_shard_queue_wait_seconds_bucket",
      "frontier_shard_run_duration_seconds_bucket",
      "frontier_coordinator_request_duration_seconds_bucket",
      "frontier_worker_handler_duration_seconds_bucket",
    ])
      expect(used, name).toContain(name);
  });

  it("uses only the variables it defines", () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    const text = JSON.stringify(dashboard.panels);
    for (const [, name] of text.matchAll(/\$\{?([a-zA-Z_]\w*)/g))
      if (!name!.startsWith("__")) expect(defined, name).toContain(name);
  });

  it.runIf(promtoolPath() !== null)("has queries Prometheus parses (promtool)", () => {
    const result = promtoolParses(queries.map(({ expr }) => asSent(expr)));
    expect(result.output).toMatch(/SUCCESS/);
    expect(result.code).toBe(0);
    // The check can fail: a broken query is refused.
    expect(promtoolParses(["sum(rate(frontier_shard_tasks_completed_total[5m])"]).code).not.toBe(0);
  });
});

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const alerts = parseYaml(readFileSync(join(deploy, "prometheus", "alerts.yml"), "utf8")) as {
  groups: { name: string; rules: Rule[] }[];
};
const rules = alerts.groups.flatMap((g) => g.rules);

describe("deploy/prometheus", () => {
  it("alerts on backlog growth, starvation, lease timeouts, deadline misses and a shard down", () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        "FrontierBacklogGrowing",
        "FrontierStarvation",
        "FrontierLeaseTimeoutRate",
        "FrontierDeadlineMissRate",
        "FrontierShardDown",
      ]),
    );
    for (const rule of rules) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(["warning", "critical"], rule.alert).toContain(rule.labels?.["severity"]);
      expect(rule.annotations?.["summary"], rule.alert).toBeTruthy();
      expect(rule.annotations?.["description"], rule.alert).toBeTruthy();
    }
  });

  it("alerts on metrics the processes export", async () => {
    const series = seriesNames(await catalogue());
    expect(rules.flatMap((r) => queryProblems(r.expr, series).map((p) => `${r.alert}: ${p}`))).toEqual([]);
  });

  it("scrapes every process kind, and loads the rules", () => {
    const config = parseYaml(readFileSync(join(deploy, "prometheus", "prometheus.yml"), "utf8")) as {
      rule_files: string[];
      scrape_configs: { job_name: string }[];
    };
    expect(config.rule_files).toEqual(["alerts.yml"]);
    expect(config.scrape_configs.map((s) => s.job_name).sort()).toEqual([
      "frontier-coordinator",
      "frontier-shard",
      "frontier-start",
      "frontier-work",
    ]);
  });

  it.runIf(promtoolPath() !== null)("passes promtool: the config, the rules and their unit tests", () => {
    const dir = join(deploy, "prometheus");
    const checked = runPromtool(["check", "config", join(dir, "prometheus.yml")]);
    expect(checked.output).toMatch(/SUCCESS: 6 rules found/);
    expect(checked.code).toBe(0);
    const tested = runPromtool(["test", "rules", join(dir, "alerts.test.yml")]);
    expect(tested.output).toMatch(/SUCCESS/);
    expect(tested.code).toBe(0);
  });
});

describe("docs/metrics.md", () => {
  it("names every metric a Frontier process exports, and no other", async () => {
    const doc = readFileSync(join(root, "docs", "metrics.md"), "utf8");
    const exported = [...(await catalogue()).keys()].filter((n) => n.startsWith("frontier_")).sort();
    const documented = [...new Set([...doc.matchAll(/`(frontier_[a-z0-9_]+)`/g)].map((m) => m[1]!))].sort();
    expect(documented).toEqual(exported);
  });
});
