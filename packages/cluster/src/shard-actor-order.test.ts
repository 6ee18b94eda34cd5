/**
 * The order window at a shard actor, against a real nats-server: what a
 * settle's next leases may take, given another shard's announced frontier
 * (published on the cluster's frontier subject, as that shard would).
 */
import { renderMetrics } from "@frontier/metrics";
import { parseExposition, sampleValue } from "@frontier/metrics/testing";
import { encodeFrontier, subjectsFor } from "@frontier/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ok, TestEnv, task } from "../test/support.js";
import type { OrderWindow } from "./order-window.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

/**
 * An actor holding tasks due at 5, 10, 30, 50, 70 and 90, with t5 leased,
 * that has heard shard "peer" announce runnable tasks due at 20, 40, 60 and
 * 80 (its depth at ranks 1–4); then one settle completing t5 and asking for
 * up to `max` next leases. Returns the ids it granted.
 */
async function settleNext(orderWindow: OrderWindow | undefined, max = 10): Promise<string[]> {
  const { actor, nc, q, cluster, wf } = await env.startActor(
    orderWindow === undefined ? {} : { orderWindow },
  );
  const tasks = [5, 10, 30, 50, 70, 90].map((d) => task(`t${d}`, d, { workflowId: wf }));
  ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
  const [held] = ok(
    await q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId: "first" }),
  ).leases;
  nc.publish(
    subjectsFor(cluster).frontier,
    encodeFrontier({
      shardId: "peer",
      deadline: 20,
      key: 20,
      taskId: "p20",
      runnable: 4,
      depth: [20, 40, 60, 80],
      seq: 1,
      at: Date.now(),
    }),
  );
  // Same connection, so the actor has the announcement before this reply (and so before the settle).
  ok(await q({ op: "stats" }));
  const settled = ok(
    await q({
      op: "settle",
      completes: [{ taskId: "t5", workflowId: wf, token: held!.token, secret: held!.secret! }],
      lease: { owner: "w", max, leaseMs: 60_000, requestId: "next" },
    }),
  );
  expect(settled.results).toEqual([{ duplicate: false }]);
  // What operators see of it: asked against granted.
  const families = parseExposition(await renderMetrics([], [await actor.metricsJson()]));
  expect(sampleValue(families, "frontier_shard_settle_leases_total", { kind: "asked" })).toBe(max);
  expect(sampleValue(families, "frontier_shard_settle_leases_total", { kind: "granted" })).toBe(
    settled.leases.length,
  );
  return settled.leases.map((l) => l.taskId);
}

describe("ShardActor order window", () => {
  it("by default grants a settle only what comes before every other shard's first task", async () => {
    expect(await settleNext(undefined)).toEqual(["t10"]);
  });

  it("with a window grants its part of the cluster's first N tasks", async () => {
    // Cluster order: t10, p20, t30, p40, t50, …: the first 4 hold t10 and t30 of this shard.
    expect(await settleNext(4)).toEqual(["t10", "t30"]);
    expect(await settleNext(7)).toEqual(["t10", "t30", "t50", "t70"]);
    // Never more than asked.
    expect(await settleNext(7, 3)).toEqual(["t10", "t30", "t50"]);
  });

  it('with "shard" grants in its own order whatever the other shards hold', async () => {
    expect(await settleNext("shard")).toEqual(["t10", "t30", "t50", "t70", "t90"]);
  });
});
