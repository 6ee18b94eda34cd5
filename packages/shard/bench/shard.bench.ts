/**
 * Shard benchmark (`pnpm --filter @frontier/shard bench`). Prints:
 *  1. Acknowledged operations per second through the journal, next to the
 *     in-memory engine alone in the same run, as a ratio. Workload: C
 *     concurrent callers, each looping submit(1 task) → lease(1) →
 *     complete; every call awaits its answer; completed tasks are compacted
 *     after 1 s. "flushed" and "committed" durability both.
 *  2. Recovery: time to open a directory holding 10^5 and 10^6 live tasks
 *     (journal load, engine rebuild, total), and disk bytes per live task.
 *
 * FRONTIER_BENCH_SECONDS (default 3) sets each throughput run's length;
 * FRONTIER_BENCH_SIZES (default "100000,1000000") the recovery sizes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { type Lease, Scheduler, type TaskInput } from "@frontier/core";
import { type Durability, LmdbJournal, Shard } from "../src/index.js";

const seconds = Number(process.env["FRONTIER_BENCH_SECONDS"] ?? 3);
const sizes = (process.env["FRONTIER_BENCH_SIZES"] ?? "100000,1000000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const root = mkdtempSync(join(tmpdir(), "frontier-shard-bench-"));
let dirs = 0;

/** The three calls of the workload, as async functions. */
interface Target {
  submit(task: TaskInput): Promise<unknown>;
  lease(owner: string): Promise<Lease[]>;
  complete(id: string, token: number): Promise<unknown>;
}

/**
 * Steady state: completed tasks are compacted a second after they finish, so
 * the live population stays bounded (a task's whole life, drop included, is
 * measured) and the engine reuses its handles.
 */
const STEADY_RETENTION_MS = 1_000;

/** The engine alone behind the same async surface: each call answers at once. */
function engineTarget(): Target {
  const engine = new Scheduler({ retentionMs: STEADY_RETENTION_MS });
  return {
    submit: async (task) => engine.addTasks(task),
    lease: async (owner) => engine.lease(owner, { max: 1, leaseMs: 60_000 }),
    complete: async (id, token) => engine.complete(id, token),
  };
}

function shardTarget(shard: Shard): Target {
  return {
    submit: (task) => shard.submit(task),
    lease: (owner) => shard.lease(owner, { max: 1, leaseMs: 60_000 }),
    complete: (id, token) => shard.complete(id, token),
  };
}

/** Runs `callers` loops for `seconds`; returns acknowledged operations per second. */
async function drive(target: Target, callers: number): Promise<{ opsPerSecond: number; ops: number }> {
  let ops = 0;
  let next = 0;
  const end = performance.now() + seconds * 1000;
  const caller = async (c: number) => {
    while (performance.now() < end) {
      const id = `t${next++}`;
      await target.submit({ id, deadline: next });
      ops++;
      const [lease] = await target.lease(`c${c}`);
      ops++;
      if (lease) {
        await target.complete(lease.taskId, lease.token);
        ops++;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)));
  return { opsPerSecond: (ops / (performance.now() - start)) * 1000, ops };
}

async function throughput(): Promise<void> {
  console.log(`\n## Acknowledged ops/s (submit → lease → complete loops, ${seconds} s each)\n`);
  console.log("| callers | target | ops/s | vs engine alone | calls per commit |");
  console.log("|---:|---|---:|---:|---:|");
  for (const callers of [1, 64, 256]) {
    const baseline = await drive(engineTarget(), callers);
    console.log(`| ${callers} | engine alone (no journal) | ${fmt(baseline.opsPerSecond)} | 1.00 | – |`);
    for (const durability of ["flushed", "committed"] as Durability[]) {
      const shard = await Shard.open({
        dataDir: join(root, `t${dirs++}`),
        durability,
        retentionMs: STEADY_RETENTION_MS,
      });
      const result = await drive(shardTarget(shard), callers);
      const { appends, commits } = shard.stats().journal;
      await shard.close();
      const ratio = result.opsPerSecond / baseline.opsPerSecond;
      console.log(
        `| ${callers} | shard, ${durability} | ${fmt(result.opsPerSecond)} | ${ratio.toFixed(3)} | ${(appends / commits).toFixed(1)} |`,
      );
    }
  }
}

/**
 * Writes a live population of n tasks, submitted in batches of 10 000: every
 * third task waits on the one before it, and a tenth of all are then leased
 * (live leases must come back with their expiries). Returns the seconds taken.
 */
async function populate(dataDir: string, n: number): Promise<number> {
  const shard = await Shard.open({ dataDir });
  const start = performance.now();
  const batch = 10_000;
  for (let base = 0; base < n; base += batch) {
    const tasks: TaskInput[] = [];
    for (let i = base; i < Math.min(n, base + batch); i++) {
      // Every third task waits on the one before it (chains), the others stand alone.
      const prerequisites = i % 3 === 2 ? [`task-${String(i - 1).padStart(8, "0")}`] : [];
      tasks.push({
        id: `task-${String(i).padStart(8, "0")}`,
        deadline: 1_000_000 + ((i * 7919) % n),
        prerequisites,
        workflowId: `wf-${i % 1000}`,
      });
    }
    await shard.submit(tasks);
  }
  // Lease a tenth: live leases must survive recovery with their expiries.
  for (let leased = 0; leased < n / 10; leased += 10_000)
    await shard.lease("bench", { max: Math.min(10_000, n / 10 - leased), leaseMs: 3_600_000 });
  const seconds = (performance.now() - start) / 1000;
  await shard.close();
  return seconds;
}

async function recovery(): Promise<void> {
  console.log("\n## Recovery and disk use\n");
  console.log(
    "| live tasks | populate (s) | journal load (s) | Shard.open total (s) | heap after open (MB) | data.mdb bytes / task | used pages bytes / task |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|");
  for (const n of sizes) {
    const dataDir = join(root, `r${n}`);
    const populateSeconds = await populate(dataDir, n);
    const journal = await LmdbJournal.open({ dataDir });
    let start = performance.now();
    const state = journal.load();
    const loadSeconds = (performance.now() - start) / 1000;
    const { fileBytes, usedBytes } = journal.diskUsage();
    await journal.close();
    if (state.tasks.length !== n) throw new Error(`expected ${n} live tasks, loaded ${state.tasks.length}`);
    (globalThis as { gc?: () => void }).gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    start = performance.now();
    const shard = await Shard.open({ dataDir });
    const openSeconds = (performance.now() - start) / 1000;
    (globalThis as { gc?: () => void }).gc?.();
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const stats = shard.stats();
    if (stats.counts.LEASED !== n / 10)
      throw new Error(`expected ${n / 10} live leases, found ${stats.counts.LEASED}`);
    await shard.close();
    console.log(
      `| ${fmt(n)} | ${populateSeconds.toFixed(1)} | ${loadSeconds.toFixed(2)} | ${openSeconds.toFixed(2)} | ${heapMb.toFixed(0)} | ${(fileBytes / n).toFixed(0)} | ${(usedBytes / n).toFixed(0)} |`,
    );
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

console.log(`# @frontier/shard benchmark\n`);
console.log(`Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}, data in ${root}`);
try {
  await throughput();
  await recovery();
} finally {
  rmSync(root, { recursive: true, force: true });
}
