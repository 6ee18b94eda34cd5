/**
 * Every kind of Frontier process scraped as Prometheus would, each a real
 * `frontier` child process against a real nats-server: `start` (coordinator
 * and shard threads on one endpoint), `shard` and `coordinator` alone, and
 * `work`. Each exports only what it owns, under Prometheus's conventions
 * (and `promtool check metrics` when it is installed); counters move with
 * the work done; /healthz and /readyz answer.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  conventionProblems,
  type ExposedFamily,
  parseExposition,
  promtoolCheckMetrics,
  promtoolPath,
  sampleValue,
} from "@frontier/metrics/testing";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, REPO_ROOT, type StartedFrontier, startFrontier, until } from "./harness.js";

let dir: string;
let nats: NatsServer;
let started: StartedFrontier | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-metrics-"));
  nats = await startNatsServer();
}, 60_000);

afterAll(async () => {
  await started?.stop();
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A long-running `frontier …args` child; its output so far, and its exit. */
function run(args: readonly string[]): {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", ...args],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, out: () => out, exited };
}

/** The first JSON line of `out` whose `event` is `event`, once it is there. */
async function eventOf(out: () => string, event: string): Promise<Record<string, unknown>> {
  const find = () =>
    out()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e["event"] === event);
  await until(() => find() !== undefined, 60_000);
  return find()!;
}

/** Scrapes `url`, checks the conventions (and promtool), and returns the families. */
async function scrape(url: string): Promise<Map<string, ExposedFamily>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const text = await res.text();
  const families = parseExposition(text);
  expect(conventionProblems(families)).toEqual([]);
  if (promtoolPath() !== null) expect(promtoolCheckMetrics(text)).toEqual({ parsed: true, problems: [] });
  // The process's own metrics, once each.
  expect(families.get("process_cpu_user_seconds_total")?.type).toBe("counter");
  expect(families.get("nodejs_heap_size_used_bytes")?.samples).toHaveLength(1);
  return families;
}

async function readyz(metricsUrl: string): Promise<{ status: number; body: string }> {
  const res = await fetch(metricsUrl.replace(/\/metrics$/, "/readyz"));
  return { status: res.status, body: await res.text() };
}

const prefixes = (families: Map<string, ExposedFamily>) =>
  [
    ...new Set([...families.keys()].filter((n) => n.startsWith("frontier_")).map((n) => n.split("_")[1])),
  ].sort();

describe("metrics of every process kind", () => {
  it("frontier start and frontier work: one endpoint each, their own metrics, counters moving", async () => {
    const env = { FRONTIER_NATS_URL: nats.url, FRONTIER_CLUSTER: "m" };
    started = await startFrontier([
      "--nats",
      nats.url,
      "--cluster",
      "m",
      "--data",
      join(dir, "start"),
      "--shards",
      "2",
      "--metrics-port",
      "0",
    ]);
    const startUrl = started.listening["metrics"] as string;
    expect(startUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect((await fetch(startUrl.replace(/\/metrics$/, "/healthz"))).status).toBe(200);
    await until(async () => (await readyz(startUrl)).status === 200, 30_000);
    expect((await readyz(startUrl)).body).toBe(
      "ready\nok coordinator.nats\nok coordinator.slots\nok shard-0\nok shard-1\n",
    );

    const tasks = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ id: `t${i}`, deadline: Date.now() + i }),
    );
    const submitted = await frontier(["submit", "-"], { env, input: `${tasks.join("\n")}\n` });
    expect(submitted.stdout, submitted.stderr).toMatch(/^submitted 6 tasks/);

    const worker = run([
      "work",
      "--nats",
      nats.url,
      "--cluster",
      "m",
      "--metrics-port",
      "0",
      "--json",
      "--",
      "true",
    ]);
    const workUrl = (await eventOf(worker.out, "metrics"))["url"] as string;
    // Wait for the work to be done, as the worker's own counter says.
    await until(async () => {
      const text = await (await fetch(workUrl)).text();
      return (
        sampleValue(parseExposition(text), "frontier_worker_tasks_finished_total", {
          outcome: "succeeded",
        }) === 6
      );
    }, 60_000);
    const work = await scrape(workUrl);
    expect(prefixes(work)).toEqual(["worker"]);
    const w = (name: string, labels?: Record<string, string>) => sampleValue(work, name, labels);
    expect(work.get("frontier_worker_handler_duration_seconds")?.type).toBe("histogram");
    expect(w("frontier_worker_tasks_started_total")).toBe(6);
    expect(w("frontier_worker_tasks_finished_total", { outcome: "failed" })).toBe(0);
    expect(w("frontier_worker_handler_duration_seconds_count", { outcome: "succeeded" })).toBe(6);
    expect(w("frontier_worker_concurrency")).toBe(1);
    expect(work.get("frontier_worker_leases_held")?.type).toBe("gauge");
    expect((await readyz(workUrl)).body).toBe("ready\nok nats\nok worker\n");

    const all = await scrape(startUrl);
    // The coordinator's, the shards' and the host's: no cluster-wide sums.
    expect(prefixes(all)).toEqual(["coordinator", "shard"]);
    const v = (name: string, labels?: Record<string, string>) => sampleValue(all, name, labels);
    expect(v("frontier_shard_tasks_submitted_total")).toBe(6);
    expect(v("frontier_shard_tasks_completed_total")).toBe(6);
    expect(v("frontier_shard_tasks_leased_total")).toBe(6);
    expect(v("frontier_shard_tasks", { state: "COMPLETED" })).toBe(6);
    expect(v("frontier_shard_queue_wait_seconds_count")).toBe(6);
    expect(v("frontier_shard_run_duration_seconds_count")).toBe(6);
    expect(v("frontier_shard_slots_owned", { shard: "shard-0" })).toBe(512);
    expect(v("frontier_shard_slots_owned", { shard: "shard-1" })).toBe(512);
    expect(v("frontier_shard_host_worker_running", { shard: "shard-1" })).toBe(1);
    expect(v("frontier_coordinator_requests_total", { op: "submit", code: "OK" })).toBe(1);
    expect(v("frontier_coordinator_slots_owned")).toBe(1024);
    expect(all.get("frontier_shard_commit_duration_seconds")?.type).toBe("histogram");

    worker.child.kill("SIGTERM");
    expect(await worker.exited).toBe(0);
  });

  it("frontier shard and frontier coordinator alone: their own endpoints, ready once serving", async () => {
    const cluster = ["--nats", nats.url, "--cluster", "split", "--json", "--log-level", "warn"];
    const shard = run(["shard", ...cluster, "--id", "s0", "--data", join(dir, "s0"), "--metrics-port", "0"]);
    const coordinator = run(["coordinator", ...cluster, "--metrics-port", "0"]);
    const shardUrl = (await eventOf(shard.out, "listening"))["metrics"] as string;
    const coordinatorUrl = (await eventOf(coordinator.out, "listening"))["metrics"] as string;

    expect((await readyz(shardUrl)).body).toBe("ready\nok nats\nok shard\nok slots\n");
    const s = await scrape(shardUrl);
    expect(prefixes(s)).toEqual(["shard"]);
    expect(sampleValue(s, "frontier_shard_slots_owned", { shard: "s0" })).toBe(1024);
    expect(sampleValue(s, "frontier_shard_serving", { shard: "s0" })).toBe(1);
    expect(s.get("frontier_shard_recovery_seconds")?.type).toBe("gauge");

    await until(async () => (await readyz(coordinatorUrl)).status === 200, 30_000);
    await until(
      async () =>
        (await frontier(["status"], { env: { FRONTIER_NATS_URL: nats.url, FRONTIER_CLUSTER: "split" } }))
          .code === 0,
      30_000,
    );
    const c = await scrape(coordinatorUrl);
    expect(prefixes(c)).toEqual(["coordinator"]);
    expect(
      sampleValue(c, "frontier_coordinator_requests_total", { op: "stats", code: "OK" }),
    ).toBeGreaterThanOrEqual(1);
    expect(sampleValue(c, "frontier_coordinator_slots_owned")).toBe(1024);
    const shardAfter = await scrape(shardUrl);
    expect(
      sampleValue(shardAfter, "frontier_shard_requests_total", { op: "stats", code: "OK" }),
    ).toBeGreaterThanOrEqual(1);

    shard.child.kill("SIGTERM");
    coordinator.child.kill("SIGTERM");
    expect(await Promise.all([shard.exited, coordinator.exited])).toEqual([0, 0]);
  });
});
