/**
 * What one id space per cluster costs a submit (docs/benchmarks.md, "One id
 * space per cluster"): a two-shard cluster in this process (test/e2e's
 * harness: real shard actors, a real coordinator, a real nats-server), and
 * batches of 100 tasks submitted one after another through the SDK, in two
 * shapes, alternated, each round on fresh ids:
 *
 *   bare      tasks without a workflow, spread over both shards (as
 *             `pnpm bench:peers`' enqueue): each id is homed where it lives;
 *   workflow  each batch one workflow, on one shard; about half of its ids
 *             are homed on the other shard, whose claims are kept there.
 *
 * Prints each round's rate and the medians. Run from the repository root:
 *   node --conditions=source --import tsx scripts/bench-id-space.ts [rounds] [tasks] [idSpace]
 * (`idSpace`: "cluster", the default, or "workflow": the cluster's id space).
 */
import type { TaskInput } from "@frontier/core";
import { startCluster } from "../test/e2e/harness.js";

const rounds = Number(process.argv[2] ?? 5);
const tasks = Number(process.argv[3] ?? 20_000);
const idSpace = process.argv[4] === "workflow" ? "workflow" : undefined;
const BATCH = 100;

const cluster = await startCluster({ shards: 2, cluster: "bench-ids", ...(idSpace ? { idSpace } : {}) });
const client = await cluster.client();
const rates: Record<"bare" | "workflow", number[]> = { bare: [], workflow: [] };

async function round(shape: "bare" | "workflow", r: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < tasks; i += BATCH) {
    const batch: TaskInput[] = [];
    const workflowId = `${shape}-${r}-wf-${i / BATCH}`;
    for (let j = i; j < i + BATCH; j++) {
      const id = `${shape}-${r}-${j}`;
      batch.push(shape === "bare" ? { id, deadline: j } : { id, deadline: j, workflowId });
    }
    await client.submit(batch);
  }
  return tasks / ((performance.now() - start) / 1000);
}

// One warm-up round of each, not counted.
await round("bare", -1);
await round("workflow", -1);
for (let r = 0; r < rounds; r++) {
  for (const shape of ["bare", "workflow"] as const) {
    const rate = await round(shape, r);
    rates[shape].push(rate);
    process.stdout.write(`round ${r} ${shape}: ${Math.round(rate)} tasks/s\n`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(
  `median bare: ${Math.round(median(rates.bare))} tasks/s, workflow: ${Math.round(median(rates.workflow))} tasks/s\n`,
);
await cluster.stop();
