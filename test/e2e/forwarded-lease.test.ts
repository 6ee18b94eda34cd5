/**
 * A one-shard cluster as `frontier start --shards 1` runs it, with the keys
 * it generated (each role admitted only to its subjects): an idle worker's
 * long-poll is handed to the shard with the worker's reply subject, and the
 * shard's grant reaches the worker without the coordinator (docs/cluster.md,
 * "Lease": "One shard"). The shard may answer only because NATS lets a
 * responder answer a request it received (`allow_responses`): no role's
 * permissions widen.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type FrontierClient } from "@frontier/client";
import { accessOf } from "@frontier/transport";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type StartedFrontier, startFrontier, until } from "./harness.js";

const CLUSTER = "forwarded";
let dir: string;
let natsUrl: string;
let started: StartedFrontier | undefined;
const clients: FrontierClient[] = [];

async function client(role: "worker" | "submitter"): Promise<FrontierClient> {
  const c = await connect({
    servers: natsUrl,
    cluster: CLUSTER,
    ...accessOf(join(dir, "data", "credentials"), CLUSTER, { role }),
  });
  clients.push(c);
  return c;
}

/** The coordinator's lease requests by outcome, from `frontier start`'s metrics endpoint. */
async function leaseOutcomes(): Promise<Record<string, number>> {
  const url = (started!.listening as { metrics: string }).metrics;
  const text = await (await fetch(url)).text();
  const counts: Record<string, number> = {};
  for (const [, outcome, n] of text.matchAll(
    /^frontier_coordinator_lease_requests_total\{outcome="(\w+)"\} (\d+)$/gm,
  ))
    counts[outcome!] = Number(n);
  return counts;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-forwarded-"));
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  started = await startFrontier([
    "--nats",
    natsUrl,
    "--cluster",
    CLUSTER,
    "--data",
    join(dir, "data"),
    "--shards",
    "1",
    "--metrics-port",
    String(await freePort()),
    "--no-console",
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await started?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("one shard: an idle worker's grant comes from the shard itself", () => {
  it("hands each task submitted to the idle cluster to the waiting worker, through forwarded long-polls", async () => {
    const submitter = await client("submitter");
    const worker = await client("worker");
    const done: string[] = [];
    const w = worker.work(
      async (task) => {
        done.push(task.id);
      },
      { concurrency: 2, waitMs: 5_000 },
    );
    // Each task is submitted only once the worker is idle again, so it reaches a parked long-poll.
    for (let i = 0; i < 5; i++) {
      await until(async () => ((await leaseOutcomes())["forwarded"] ?? 0) > i, 20_000);
      await submitter.submit([{ id: `idle-${i}`, deadline: i + 1 }]);
      await until(() => done.length === i + 1, 20_000);
    }
    await w.stop();
    expect(done).toEqual(["idle-0", "idle-1", "idle-2", "idle-3", "idle-4"]);
    // Settled at the shard the grant named.
    for (const id of done) expect((await submitter.getTask(id))?.state).toBe("COMPLETED");
    const outcomes = await leaseOutcomes();
    expect(outcomes["forwarded"]).toBeGreaterThanOrEqual(5);
    expect(outcomes["refused"] ?? 0).toBe(0);
  });
});
