/**
 * What a shard's memory of grants for resends costs per call, by how many
 * grants it holds (packages/cluster/src/lease-replay.ts; docs/benchmarks.md,
 * "Session 13"). A settle that asks for leases makes two calls: it looks
 * its request id up (`getByBase`) and files its grant (`put`). Under
 * sustained load a shard holds a minute of grants, up to the default bound
 * of 10,000, so the cost of a call must not grow with what is held.
 *
 *   pnpm --filter @frontier/cluster bench:replay
 *
 * FRONTIER_BENCH_CALLS: settles per size (default 20,000). Each row fills a
 * replay with the grants held first (the default bounds: 60 s, 10,000
 * grants, 64 MiB), then times that many settles against it at a clock that
 * does not move (nothing expires, so each put past the bound drops the
 * oldest grant); µs per settle, the median of three passes.
 */
import type { Lease } from "@frontier/core";
import { LeaseReplay } from "../src/lease-replay.js";
import {
  DEFAULT_LEASE_REPLAY_MAX_BYTES,
  DEFAULT_LEASE_REPLAY_MAX_ENTRIES,
  DEFAULT_LEASE_REPLAY_TTL_MS,
} from "../src/options.js";

const calls = Number(process.env["FRONTIER_BENCH_CALLS"] ?? 20_000);
/** About what a one-task grant takes encoded. */
const GRANT_BYTES = 300;

const leaseOf = (taskId: string): Lease => ({
  taskId,
  owner: "worker-1",
  token: 1,
  expiresAt: 0,
  attempt: 1,
  task: { id: taskId, deadline: 0, prerequisites: [] },
});

function pass(held: number): number {
  const replay = new LeaseReplay(
    DEFAULT_LEASE_REPLAY_TTL_MS,
    DEFAULT_LEASE_REPLAY_MAX_ENTRIES,
    DEFAULT_LEASE_REPLAY_MAX_BYTES,
  );
  const now = Date.now();
  for (let i = 0; i < held; i++)
    replay.put("worker-1", `1:1:h${i}`, [leaseOf(`h${i}`)], GRANT_BYTES, now, `h${i}`);
  const started = performance.now();
  for (let i = 0; i < calls; i++) {
    replay.getByBase("worker-1", `s${i}`, now);
    replay.put("worker-1", `1:1:s${i}`, [leaseOf(`s${i}`)], GRANT_BYTES, now, `s${i}`);
  }
  return ((performance.now() - started) * 1000) / calls;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`lease replay: ${calls} settles (getByBase + put) per size, µs per settle, median of 3`);
console.log("| grants held before | µs per settle |\n|---:|---:|");
for (const held of [0, 1_000, 10_000]) {
  pass(held); // warm-up
  console.log(
    `| ${held.toLocaleString("en-US")} | ${median([pass(held), pass(held), pass(held)]).toFixed(2)} |`,
  );
}
