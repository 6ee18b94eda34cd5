/**
 * Slots moved onto a shard added to a loaded cluster, as an operator does
 * it (docs/cluster.md, "Slot movement"): two shards with DAG workflows and
 * leases held, a third shard started (it owns no slot), `frontier
 * rebalance` run as a user runs it; then every task is still there exactly
 * once, the leases held across the moves complete, dependents unblock, and
 * the cluster drains. Then `frontier shard drain` empties a shard again.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ShardActor, startShardActor } from "@frontier/cluster";
import type { Lease } from "@frontier/core";
import { SLOT_COUNT } from "@frontier/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, startCluster, type TestCluster, until } from "./harness.js";

let c: TestCluster;
let third: ShardActor;
let dataRoot: string;

beforeAll(async () => {
  c = await startCluster({ shards: 2, cluster: "rebal" });
  dataRoot = await mkdtemp(join(tmpdir(), "frontier-rebalance-"));
}, 60_000);

afterAll(async () => {
  await third?.close();
  await c?.stop();
  if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
});

const WORKFLOWS = 60;
const on = () => ["--nats", c.url, "--cluster", c.cluster];

function slotsHeld(shards: readonly ShardActor[]): number[] {
  return shards.map((s) => s.ownedSlots().length);
}

describe("frontier rebalance onto a new shard", () => {
  it("moves a third of the slots with their tasks; nothing lost or doubled, held leases complete, dependents unblock", async () => {
    const client = await c.client();
    // Workflows of three steps (a → b → c), and tasks of their own.
    const tasks = [];
    for (let w = 0; w < WORKFLOWS; w++) {
      const workflowId = `wf-${w}`;
      tasks.push({ id: `${workflowId}-a`, deadline: 1_000 + w, workflowId });
      tasks.push({
        id: `${workflowId}-b`,
        deadline: 2_000 + w,
        workflowId,
        prerequisites: [`${workflowId}-a`],
      });
      tasks.push({
        id: `${workflowId}-c`,
        deadline: 3_000 + w,
        workflowId,
        prerequisites: [`${workflowId}-b`],
      });
      // Half of them of a task type of their own (each type its own runnable heap).
      tasks.push({
        id: `solo-${w}`,
        deadline: 4_000 + w,
        payload: { w },
        ...(w % 2 === 0 ? { type: "render" } : {}),
      });
    }
    await client.submit(tasks, { idempotencyKey: "load-1" });
    const held: Lease[] = [];
    while (held.length < 40)
      held.push(...(await client.lease({ max: 40 - held.length, leaseMs: 120_000, owner: "holder" })));
    expect(held.every((l) => l.taskId.endsWith("-a"))).toBe(true);

    third = await startShardActor({
      natsUrl: c.url,
      cluster: c.cluster,
      shardId: "shard-2",
      dataDir: join(dataRoot, "shard-2"),
      logger: pino({ level: "silent" }),
      shard: { durability: "committed" },
    });
    expect(third.ownedSlots()).toEqual([]);

    const dry = await frontier(["rebalance", ...on(), "--dry-run"], { timeoutMs: 60_000 });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would move slot \d+ from shard-[01] to shard-2/);
    expect(dry.stdout).toMatch(
      /341 moves would leave: shard-0 341, shard-1 341, shard-2 342|341 moves would leave: shard-0 342, shard-1 341, shard-2 341|341 moves would leave: shard-0 341, shard-1 342, shard-2 341/,
    );
    expect(third.ownedSlots()).toEqual([]);

    const run = await frontier(["rebalance", ...on()], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/341 slots moved; slots held: /);
    const shards = [...c.shards, third];
    await until(() => slotsHeld(shards).reduce((a, b) => a + b, 0) === SLOT_COUNT, 10_000);
    for (const n of slotsHeld(shards)) expect(Math.abs(n - SLOT_COUNT / 3)).toBeLessThanOrEqual(1);
    // Balanced already: a second run moves nothing.
    const again = await frontier(["rebalance", ...on(), "--json"], { timeoutMs: 60_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout.trim().split("\n").at(-1)!)).toMatchObject({ moves: 0 });

    // Every task exactly once in the cluster, and some on the new shard.
    const counts = shards.map((s) => s.stats().shard.counts);
    const total = counts.reduce((sum, k) => sum + Object.values(k).reduce((a, b) => a + b, 0), 0);
    expect(total).toBe(tasks.length);
    expect(Object.values(counts[2]!).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    for (const t of tasks) {
      const view = await client.getTask(t.id, t.workflowId === undefined ? {} : { workflowId: t.workflowId });
      expect(view?.id).toBe(t.id);
    }
    // The same submit again is a replay wherever its tasks are now.
    const replay = await client.submit(tasks, { idempotencyKey: "load-1" });
    expect(replay.replayed).toBe(true);

    // Leases held across the moves complete, at their tasks' new shards too.
    for (const lease of held) expect((await client.complete(lease)).duplicate).toBe(false);
    // Everything else runs: dependents unblock after their prerequisites, wherever the workflow went.
    let done = held.length;
    while (done < tasks.length) {
      const leases = await client.lease({
        max: 100,
        leaseMs: 60_000,
        waitMs: 2_000,
        types: ["default", "render"],
      });
      expect(leases.length).toBeGreaterThan(0);
      for (const lease of leases) expect((await client.complete(lease)).duplicate).toBe(false);
      done += leases.length;
    }
    expect(done).toBe(tasks.length);
    const stats = await client.stats();
    expect(stats.counts.COMPLETED).toBe(tasks.length);
    expect([...stats.shards.answered].sort()).toEqual(["shard-0", "shard-1", "shard-2"]);
  }, 300_000);

  it("frontier shard drain moves every slot of a shard to the others", async () => {
    const drained = await frontier(["shard", "drain", "shard-1", ...on()], { timeoutMs: 240_000 });
    expect(drained.code, drained.stderr).toBe(0);
    const shards = [...c.shards, third];
    await until(() => c.shards[1]!.ownedSlots().length === 0, 10_000);
    expect(c.shards[0]!.ownedSlots().length + third.ownedSlots().length).toBe(SLOT_COUNT);
    expect(Math.abs(c.shards[0]!.ownedSlots().length - third.ownedSlots().length)).toBeLessThanOrEqual(1);
    const client = await c.client();
    const stats = await client.stats();
    expect(stats.counts.COMPLETED).toBe(WORKFLOWS * 4);
    expect(shards[1]!.stats().shard.counts.COMPLETED).toBe(0);
  }, 300_000);
});
