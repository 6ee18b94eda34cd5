/**
 * A coordinator's endpoint scraped as Prometheus would: its own metrics and
 * the process's, named by convention, counters moving with the requests
 * served; nothing about the cluster's tasks (the shards export those); and
 * /healthz, /readyz. Against stand-in shards on a real nats-server.
 */

import {
  conventionProblems,
  parseExposition,
  promtoolCheckMetrics,
  promtoolPath,
  sampleValue,
} from "@frontier/metrics/testing";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ok, refused, startTestCluster, type TestCluster } from "../test-shard.fixture.js";

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(() => server.stop());

let c: TestCluster;
afterEach(() => c?.stop());

async function scrape(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, families: parseExposition(text) };
}

describe("a coordinator's metrics endpoint", () => {
  it("exports its own metrics and the process's, by convention, counters moving with requests", async () => {
    c = await startTestCluster(2, { server });
    const coordinator = await c.startCoordinator({ metricsPort: 0 });
    expect(coordinator.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const before = (await scrape(coordinator.metricsUrl!)).families;
    expect(sampleValue(before, "frontier_coordinator_requests_total")).toBeUndefined();
    expect(sampleValue(before, "frontier_coordinator_lease_requests_total", { outcome: "granted" })).toBe(0);

    await ok(c.nc, c.cluster, {
      op: "submit",
      tasks: Array.from({ length: 10 }, (_, i) => ({ id: `m-${i}`, deadline: Date.now() - 1_000 })),
      idempotencyKey: "m",
    });
    await refused(c.nc, c.cluster, { op: "cancel", taskId: "nope", workflowId: "w" });
    await c.announceAll();
    await ok(c.nc, c.cluster, { op: "lease", owner: "w", max: 3, leaseMs: 1_000, waitMs: 0, requestId: "m" });
    await ok(c.nc, c.cluster, {
      op: "lease",
      owner: "w",
      max: 100,
      leaseMs: 1_000,
      waitMs: 0,
      requestId: "n",
    });
    await ok(c.nc, c.cluster, { op: "lease", owner: "w", max: 1, leaseMs: 1_000, waitMs: 0, requestId: "o" });

    const { text, families } = await scrape(coordinator.metricsUrl!);
    const types = Object.fromEntries([...families.values()].map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      frontier_coordinator_requests_total: "counter",
      frontier_coordinator_request_duration_seconds: "histogram",
      frontier_coordinator_shard_requests_total: "counter",
      frontier_coordinator_shard_request_duration_seconds: "histogram",
      frontier_coordinator_lease_requests_total: "counter",
      frontier_coordinator_leases_granted_total: "counter",
      frontier_coordinator_validations_total: "counter",
      frontier_coordinator_announcements_total: "counter",
      frontier_coordinator_long_polls: "gauge",
      frontier_coordinator_inflight_requests: "gauge",
      frontier_coordinator_slots_owned: "gauge",
      frontier_coordinator_frontier_shards: "gauge",
      frontier_coordinator_validation_queue: "gauge",
      process_cpu_user_seconds_total: "counter",
      nodejs_heap_size_used_bytes: "gauge",
    });
    const v = (name: string, labels?: Record<string, string>) => sampleValue(families, name, labels);
    expect(v("frontier_coordinator_requests_total", { op: "submit", code: "OK" })).toBe(1);
    expect(v("frontier_coordinator_requests_total", { op: "cancel", code: "UNKNOWN_TASK" })).toBe(1);
    expect(v("frontier_coordinator_requests_total", { op: "lease", code: "OK" })).toBe(3);
    expect(v("frontier_coordinator_request_duration_seconds_count", { op: "lease" })).toBe(3);
    expect(v("frontier_coordinator_lease_requests_total", { outcome: "granted" })).toBe(2);
    expect(v("frontier_coordinator_lease_requests_total", { outcome: "empty" })).toBe(1);
    expect(v("frontier_coordinator_leases_granted_total")).toBe(10);
    expect(v("frontier_coordinator_validations_total", { mode: "inline" })).toBe(1);
    expect(v("frontier_coordinator_announcements_total", { outcome: "accepted" })).toBeGreaterThanOrEqual(2);
    expect(v("frontier_coordinator_slots_owned")).toBe(1024);
    expect(v("frontier_coordinator_frontier_shards")).toBe(2);
    expect(v("frontier_coordinator_long_polls")).toBe(0);
    // Only what it owns: no task counts of the shards, no cluster-wide sums.
    expect([...families.keys()].filter((n) => /^frontier_(shard|cluster)_/.test(n))).toEqual([]);
    expect(conventionProblems(families)).toEqual([]);
    if (promtoolPath() !== null) expect(promtoolCheckMetrics(text)).toEqual({ parsed: true, problems: [] });
  });

  it("answers /healthz, and /readyz once connected with its slot table loaded", async () => {
    c = await startTestCluster(1, { server });
    const coordinator = await c.startCoordinator({ metricsPort: 0 });
    const base = coordinator.metricsUrl!.replace("/metrics", "");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(await ready.text()).toBe("ready\nok nats\nok slots\n");
    expect(ready.status).toBe(200);
    expect(Object.keys(coordinator.readiness())).toEqual(["nats", "slots"]);
  });

  it("is not ready while the connection it uses is closed", async () => {
    c = await startTestCluster(1, { server });
    const coordinator = await c.startCoordinator();
    expect(coordinator.readiness()["nats"]!()).toBeNull();
    await c.nc.close();
    expect(coordinator.readiness()["nats"]!()).toBe("the NATS connection is closed");
  });
});
