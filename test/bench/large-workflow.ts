/**
 * `pnpm bench:large`: one large workflow (docs/cluster.md, "Large workflows
 * across shards") accepted and drained by `frontier start --shards N`, for
 * N = 1 and 2, as a user runs it: its own nats-server, the service in a
 * child process (a coordinator and N shard threads), the SDK to submit and
 * to work (one worker in this process). A benchmark, not a test: it prints
 * figures and checks only that every task completed.
 *
 * Shapes:
 *   wide     roots (1 % of the tasks) and, for each other task, one root as its
 *            prerequisite: a fan-out of ~100, most edges across slots;
 *   layered  10 layers, each task past the first depending on 2 tasks of the
 *            layer before: a DAG as deep as it is wide, every edge across slots.
 * Baseline in the same run: the same DAG as an ordinary workflow (one slot,
 * one shard's engine, no completion events), on 1 shard.
 *
 * Environment: FRONTIER_BENCH_LARGE_TASKS (default 20,000; up to 1,000,000),
 * FRONTIER_BENCH_LARGE_SHAPES (default "wide,layered"),
 * FRONTIER_BENCH_LARGE_SHARDS (default "1,2"),
 * FRONTIER_BENCH_LARGE_DURABILITY ("flushed", the default, or "committed").
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type FrontierClient } from "@frontier/client";
import type { TaskInput } from "@frontier/core";
import { startNatsServer } from "@frontier/nats-testing";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const TASKS = Number(process.env["FRONTIER_BENCH_LARGE_TASKS"] ?? 20_000);
const SHAPES = (process.env["FRONTIER_BENCH_LARGE_SHAPES"] ?? "wide,layered").split(",") as Shape[];
const SHARDS = (process.env["FRONTIER_BENCH_LARGE_SHARDS"] ?? "1,2").split(",").map(Number);
const DURABILITY = process.env["FRONTIER_BENCH_LARGE_DURABILITY"] ?? "flushed";
/** Frontier's limit of tasks per submit. */
const BATCH = 1_000;
/** Submits in flight at once (within a layer: a batch's prerequisites are committed before it). */
const SUBMITS_IN_FLIGHT = 4;

type Shape = "wide" | "layered";

/** The DAG as layers: every prerequisite of a task is in an earlier layer. */
function dag(shape: Shape, n: number, workflowId: string, large: boolean): TaskInput[][] {
  const base = Date.now() + 3_600_000;
  const make = (id: string, seq: number, prerequisites: string[]): TaskInput => ({
    id,
    deadline: base + seq,
    workflowId,
    ...(large ? { large: true } : {}),
    ...(prerequisites.length > 0 ? { prerequisites } : {}),
  });
  if (shape === "wide") {
    const roots = Math.max(1, Math.floor(n / 100));
    const first = Array.from({ length: roots }, (_, i) => make(`r${i}`, i, []));
    const rest = Array.from({ length: n - roots }, (_, i) => make(`t${i}`, roots + i, [`r${i % roots}`]));
    return [first, rest];
  }
  const layers = 10;
  const width = Math.ceil(n / layers);
  const out: TaskInput[][] = [];
  for (let l = 0; l < layers; l++) {
    const layer: TaskInput[] = [];
    for (let i = 0; i < width && l * width + i < n; i++) {
      const prerequisites =
        l === 0 ? [] : [...new Set([`L${l - 1}-${i}`, `L${l - 1}-${(i * 31 + 7) % width}`])];
      layer.push(make(`L${l}-${i}`, l * width + i, prerequisites));
    }
    out.push(layer);
  }
  return out;
}

/** Submits layer after layer, SUBMITS_IN_FLIGHT batches at a time within one. */
async function submit(client: FrontierClient, layers: TaskInput[][], key: string): Promise<void> {
  let b = 0;
  for (const layer of layers) {
    const batches: TaskInput[][] = [];
    for (let i = 0; i < layer.length; i += BATCH) batches.push(layer.slice(i, i + BATCH));
    for (let i = 0; i < batches.length; i += SUBMITS_IN_FLIGHT)
      await Promise.all(
        batches
          .slice(i, i + SUBMITS_IN_FLIGHT)
          .map((batch) => client.submit(batch, { idempotencyKey: `${key}-${b++}` })),
      );
  }
}

/** Works until `n` tasks completed; resolves with the time it took, ms. */
async function drain(client: FrontierClient, n: number): Promise<number> {
  const started = performance.now();
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => {
    finished = r;
  });
  const worker = client.work(async () => undefined, { concurrency: 256, waitMs: 1_000 });
  worker.on((event) => {
    if (event.type === "task:completed" && ++done === n) finished();
    else if (event.type === "task:failed" || event.type === "task:lost" || event.type === "error")
      console.error(`worker: ${event.type}: ${String((event as { error?: unknown }).error)}`);
  });
  await all;
  const ms = performance.now() - started;
  await worker.stop();
  return ms;
}

/** RSS of a process and its children, MB (ps). */
function rssMb(pid: number): number {
  try {
    const out = execFileSync("ps", ["-o", "rss=", "--ppid", String(pid), "-p", String(pid)]).toString();
    return Math.round(out.split("\n").reduce((sum, line) => sum + (Number(line.trim()) || 0), 0) / 1024);
  } catch {
    return 0;
  }
}

interface Row {
  shape: Shape;
  large: boolean;
  shards: number;
  tasks: number;
  acceptPerSec: number;
  drainPerSec: number;
  rssMb: number;
  load: string;
}

async function run(shape: Shape, shards: number, large: boolean): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), "frontier-bench-large-"));
  const nats = await startNatsServer();
  const cluster = `large${shards}`;
  let service: ChildProcess | undefined;
  let client: FrontierClient | undefined;
  try {
    service = spawn(
      process.execPath,
      [
        ...["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", "start"],
        ...[
          "--nats",
          nats.url,
          "--data",
          join(dir, "data"),
          "--shards",
          String(shards),
          "--cluster",
          cluster,
        ],
        ...["--durability", DURABILITY, "--no-console", "--no-metrics"],
      ],
      { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] },
    );
    client = await connect({ servers: nats.url, cluster });
    for (let i = 0; ; i++) {
      try {
        const stats = await client.stats({ timeoutMs: 1_000, retry: { attempts: 1 } });
        if (stats.shards.answered.length === shards) break;
      } catch {
        // not up yet
      }
      if (i > 600) throw new Error("frontier start did not come up");
      await sleep(200);
    }
    const layers = dag(shape, TASKS, `wf-${shape}`, large);
    const load0 = loadavg()[0]!;
    const t0 = performance.now();
    await submit(client, layers, shape);
    const acceptMs = performance.now() - t0;
    const drainMs = await drain(client, TASKS);
    const rss = service.pid === undefined ? 0 : rssMb(service.pid);
    const stats = await client.stats();
    if (stats.counts.COMPLETED !== TASKS) throw new Error(`${stats.counts.COMPLETED} of ${TASKS} completed`);
    return {
      shape,
      large,
      shards,
      tasks: TASKS,
      acceptPerSec: Math.round(TASKS / (acceptMs / 1000)),
      drainPerSec: Math.round(TASKS / (drainMs / 1000)),
      rssMb: rss,
      load: `${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`,
    };
  } finally {
    await client?.close().catch(() => {});
    if (service && service.exitCode === null) {
      const exited = new Promise((r) => service!.once("exit", r));
      service.kill("SIGINT");
      await Promise.race([exited, sleep(15_000)]);
      if (service.exitCode === null) service.kill("SIGKILL");
    }
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `large workflow bench: ${TASKS} tasks, durability ${DURABILITY}, ${cpus().length} cores, load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
);
const rows: Row[] = [];
for (const shape of SHAPES) {
  rows.push(await run(shape, 1, false));
  console.log(JSON.stringify(rows.at(-1)));
  for (const shards of SHARDS) {
    rows.push(await run(shape, shards, true));
    console.log(JSON.stringify(rows.at(-1)));
  }
}
console.log(
  "\n| shape | workflow | shards | tasks | accepted/s | drained/s | service RSS (MB) | load (1 min) |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| ${r.shape} | ${r.large ? "large" : "ordinary"} | ${r.shards} | ${r.tasks} | ${r.acceptPerSec} | ${r.drainPerSec} | ${r.rssMb} | ${r.load} |`,
  );
