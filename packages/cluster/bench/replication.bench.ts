/**
 * What journal shipping costs (docs/cluster.md, "Standby shards"): the same
 * shard loop with and without its JetStream replica, alternating in one
 * process against one local nats-server (file store), so the baseline is
 * measured beside it.
 *
 *   pnpm --filter @frontier/cluster bench
 *
 * FRONTIER_BENCH_SECONDS: each run (default 3); FRONTIER_BENCH_ROUNDS:
 * rounds of both modes (default 3); FRONTIER_BENCH_CALLERS: callers
 * (default 1,64); FRONTIER_BENCH_DURABILITIES (default flushed,committed);
 * FRONTIER_BENCH_BASE: live tasks of the open measured with and without
 * shipping its base (default 100000; 0 skips it).
 * Each caller loops submit(1 task) → lease(1) → complete, awaiting every
 * answer; a row gives acknowledged calls per second and the latency of a
 * call (p50, p99), medians over the rounds.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "@frontier/nats-testing";
import { type Durability, Shard } from "@frontier/shard";
import { connect } from "@nats-io/transport-node";
import { JournalStream } from "../src/journal-stream.js";

const seconds = Number(process.env["FRONTIER_BENCH_SECONDS"] ?? 3);
const rounds = Number(process.env["FRONTIER_BENCH_ROUNDS"] ?? 3);
const callerCounts = (process.env["FRONTIER_BENCH_CALLERS"] ?? "1,64").split(",").map(Number);
const durabilities = (process.env["FRONTIER_BENCH_DURABILITIES"] ?? "flushed,committed").split(
  ",",
) as Durability[];

interface Row {
  opsPerSecond: number;
  p50: number;
  p99: number;
}

const server = await startNatsServer();
const nc = await connect({ servers: server.url });
const root = mkdtempSync(join(tmpdir(), "frontier-replication-bench-"));
let n = 0;

async function run(callers: number, durability: Durability, replicated: boolean): Promise<Row> {
  const cluster = `bench${n}`;
  const shard = await Shard.open({
    dataDir: join(root, `d${n++}`),
    durability,
    retentionMs: 1_000,
    ...(replicated
      ? { replica: new JournalStream({ nc, cluster, shardId: "s0", origin: randomUUID() }) }
      : {}),
  });
  const latencies: number[] = [];
  let ops = 0;
  const end = performance.now() + seconds * 1_000;
  let next = 0;
  const timed = async <T>(call: () => Promise<T>): Promise<T> => {
    const at = performance.now();
    const result = await call();
    latencies.push(performance.now() - at);
    ops++;
    return result;
  };
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      while (performance.now() < end) {
        const id = `t${next++}`;
        await timed(() => shard.submit([{ id, deadline: next }]));
        const [lease] = await timed(() => shard.lease(`w${c}`, { max: 1, leaseMs: 60_000 }));
        if (lease) await timed(() => shard.complete(lease.taskId, lease.token));
      }
    }),
  );
  const started = end - seconds * 1_000;
  const elapsed = (performance.now() - started) / 1_000;
  await shard.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { opsPerSecond: ops / elapsed, p50: at(0.5), p99: at(0.99) };
}

const baseTasks = Number(process.env["FRONTIER_BENCH_BASE"] ?? 100_000);

/** An open of a directory holding `tasks` live tasks, without and with its base shipped (ms, medians). */
async function openCost(tasks: number): Promise<{ local: number; replicated: number }> {
  const dataDir = join(root, `base${n++}`);
  const filling = await Shard.open({ dataDir });
  for (let i = 0; i < tasks; i += 1_000)
    await filling.submit(
      Array.from({ length: Math.min(1_000, tasks - i) }, (_, j) => ({ id: `t${i + j}`, deadline: i + j })),
    );
  await filling.close();
  const local: number[] = [];
  const replicated: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let at = performance.now();
    await (await Shard.open({ dataDir })).close();
    local.push(performance.now() - at);
    at = performance.now();
    const cluster = `base${n++}`;
    const shard = await Shard.open({
      dataDir,
      replica: new JournalStream({ nc, cluster, shardId: "s0", origin: randomUUID() }),
    });
    replicated.push(performance.now() - at);
    await shard.close();
  }
  return { local: median(local), replicated: median(replicated) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

try {
  console.log(
    `journal shipping: ${seconds} s runs, ${rounds} rounds alternating, nats-server ${server.url} (file store), medians`,
  );
  console.log("| callers | durability | replica | ops/s | call p50 ms | call p99 ms |");
  console.log("|---:|---|---|---:|---:|---:|");
  for (const callers of callerCounts) {
    for (const durability of durabilities) {
      const results: Record<"local" | "replicated", Row[]> = { local: [], replicated: [] };
      for (let r = 0; r < rounds; r++) {
        results.local.push(await run(callers, durability, false));
        results.replicated.push(await run(callers, durability, true));
      }
      for (const [mode, rows] of Object.entries(results)) {
        if (rows.length === 0) continue;
        console.log(
          `| ${callers} | ${durability} | ${mode === "replicated" ? "JetStream" : "none"} | ${Math.round(median(rows.map((x) => x.opsPerSecond)))} | ${median(rows.map((x) => x.p50)).toFixed(2)} | ${median(rows.map((x) => x.p99)).toFixed(2)} |`,
        );
      }
    }
  }
  if (baseTasks > 0) {
    const cost = await openCost(baseTasks);
    console.log(
      `open of ${baseTasks} live tasks: ${cost.local.toFixed(0)} ms without a replica, ${cost.replicated.toFixed(0)} ms shipping its base`,
    );
  }
} finally {
  await nc.close();
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
