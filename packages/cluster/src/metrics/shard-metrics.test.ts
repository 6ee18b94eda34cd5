/**
 * A shard's metrics scraped as Prometheus would, from an actor in this
 * thread and from a ShardHost's worker threads (merged into one exposition,
 * apart by `shard`): names and types by convention, counters and histograms
 * moving with the requests served, gauges read at the scrape, and the
 * readiness checks. Against a real nats-server.
 */
import { renderMetrics } from "@frontier/metrics";
import {
  conventionProblems,
  type ExposedFamily,
  parseExposition,
  promtoolCheckMetrics,
  promtoolPath,
  sampleValue,
} from "@frontier/metrics/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  CRASHABLE_WORKER,
  crashWorker,
  keysInSlots,
  logLevel,
  ok,
  silent,
  TEST_SLOTS,
  TestEnv,
  task,
} from "../../test/support.js";
import { ShardHost, type ShardHostEvent } from "../shard-host.js";
import { spreadSlots } from "../slots.js";
import { METRIC_TYPES_SHOWN, OTHER_TYPES_LABEL } from "./shard-metrics.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const SLOTS = TEST_SLOTS;

/** Every `frontier_` family's type, by name. */
function typesOf(families: Map<string, ExposedFamily>): Record<string, string | undefined> {
  return Object.fromEntries(
    [...families.values()].filter((f) => f.name.startsWith("frontier_")).map((f) => [f.name, f.type]),
  );
}

describe("a shard's metrics", () => {
  it("count, time and gauge what the shard does, named by convention", async () => {
    const { actor, q, wf } = await env.startActor({
      shard: { backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } },
    });
    const ref = (taskId: string) => ({ taskId, workflowId: wf });
    const past = Date.now() - 60_000;

    const tasks = [
      task("a", past, { workflowId: wf }),
      task("b", past + 1, { workflowId: wf, prerequisites: ["a"] }),
      task("c", Date.now() + 3_600_000, { workflowId: wf }),
    ];
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" })); // a repeat: duplicate
    const lease = (requestId: string) =>
      q({ op: "lease", owner: "w", max: 1, leaseMs: 60_000, waitMs: 0, requestId }).then(
        (r) => ok(r).leases[0]!,
      );
    const a = await lease("r1"); // late: its deadline passed
    ok(await q({ op: "complete", ...ref("a"), token: a.token, secret: a.secret! }));
    ok(await q({ op: "complete", ...ref("a"), token: a.token, secret: a.secret! })); // duplicate
    const b = await lease("r2"); // unblocked by a: its dispatch latency is timed
    ok(await q({ op: "fail", ...ref("b"), token: b.token, secret: b.secret!, retryable: true, reason: "x" }));
    const stale = await q({
      op: "heartbeat",
      ...ref("b"),
      token: b.token,
      secret: b.secret!,
      leaseMs: 1_000,
    });
    expect(stale.ok).toBe(false);
    await lease("r3"); // c: a live lease, on time

    const text = await renderMetrics([], [await actor.metricsJson()]);
    const families = parseExposition(text);
    expect(typesOf(families)).toEqual({
      frontier_shard_tasks_submitted_total: "counter",
      frontier_shard_tasks_leased_total: "counter",
      frontier_shard_tasks_completed_total: "counter",
      frontier_shard_tasks_failed_total: "counter",
      frontier_shard_tasks_cancelled_total: "counter",
      frontier_shard_tasks_retried_total: "counter",
      frontier_shard_lease_timeouts_total: "counter",
      frontier_shard_leases_released_total: "counter",
      frontier_shard_attempt_timeouts_total: "counter",
      frontier_shard_deadline_misses_total: "counter",
      frontier_shard_stale_calls_total: "counter",
      frontier_shard_duplicate_calls_total: "counter",
      frontier_shard_settle_leases_total: "counter",
      frontier_shard_queue_wait_seconds: "histogram",
      frontier_shard_run_duration_seconds: "histogram",
      frontier_shard_dependent_dispatch_seconds: "histogram",
      frontier_shard_commit_duration_seconds: "histogram",
      frontier_shard_requests_total: "counter",
      frontier_shard_request_duration_seconds: "histogram",
      frontier_shard_recovery_seconds: "gauge",
      frontier_shard_tasks: "gauge",
      frontier_shard_tasks_by_type: "gauge",
      frontier_shard_oldest_runnable_age_seconds: "gauge",
      frontier_shard_live_leases: "gauge",
      frontier_shard_serving: "gauge",
      frontier_shard_slots_owned: "gauge",
      frontier_shard_inflight_requests: "gauge",
      frontier_shard_prepared_parts: "gauge",
      frontier_shard_lease_replay_entries: "gauge",
      frontier_shard_journal_pending_appends: "gauge",
    });
    expect(conventionProblems(families)).toEqual([]);
    if (promtoolPath() !== null) expect(promtoolCheckMetrics(text)).toEqual({ parsed: true, problems: [] });
    // Every series carries the shard's id.
    for (const f of families.values()) for (const s of f.samples) expect(s.labels["shard"]).toBe("s0");

    const v = (name: string, labels?: Record<string, string>) => sampleValue(families, name, labels);
    expect(v("frontier_shard_tasks_submitted_total")).toBe(3);
    expect(v("frontier_shard_tasks_leased_total")).toBe(3);
    expect(v("frontier_shard_tasks_completed_total")).toBe(1);
    expect(v("frontier_shard_tasks_retried_total")).toBe(1);
    expect(v("frontier_shard_tasks_failed_total")).toBe(0);
    expect(v("frontier_shard_deadline_misses_total", { kind: "dispatch" })).toBe(2);
    expect(v("frontier_shard_deadline_misses_total", { kind: "completion" })).toBe(1);
    expect(v("frontier_shard_deadline_misses_total", { kind: "expiry" })).toBe(0);
    expect(v("frontier_shard_stale_calls_total")).toBe(1);
    expect(v("frontier_shard_duplicate_calls_total", { op: "submit" })).toBe(1);
    expect(v("frontier_shard_duplicate_calls_total", { op: "complete" })).toBe(1);
    expect(v("frontier_shard_queue_wait_seconds_count")).toBe(3);
    expect(v("frontier_shard_run_duration_seconds_count")).toBe(1);
    expect(v("frontier_shard_dependent_dispatch_seconds_count")).toBe(1);
    expect(v("frontier_shard_commit_duration_seconds_count")).toBeGreaterThanOrEqual(6);
    expect(v("frontier_shard_requests_total", { op: "submit", code: "OK" })).toBe(2);
    expect(v("frontier_shard_requests_total", { op: "heartbeat", code: "STALE_LEASE" })).toBe(1);
    expect(v("frontier_shard_request_duration_seconds_count", { op: "lease" })).toBe(3);
    expect(v("frontier_shard_tasks", { state: "LEASED" })).toBe(1);
    expect(v("frontier_shard_tasks", { state: "WAITING" })).toBe(1);
    expect(v("frontier_shard_tasks", { state: "COMPLETED" })).toBe(1);
    expect(v("frontier_shard_live_leases")).toBe(1);
    expect(v("frontier_shard_tasks_by_type", { type: "default", state: "LEASED" })).toBe(1);
    expect(v("frontier_shard_oldest_runnable_age_seconds")).toBe(0);
    expect(v("frontier_shard_serving")).toBe(1);
    expect(v("frontier_shard_slots_owned")).toBe(SLOTS.length);
    expect(v("frontier_shard_recovery_seconds")).toBeGreaterThan(0);

    const readiness = actor.readiness();
    expect(Object.keys(readiness)).toEqual(["nats", "shard", "slots"]);
    for (const check of Object.values(readiness)) expect(await check()).toBeNull();
    await actor.close();
    expect(await readiness["shard"]!()).toBe("the shard is CLOSED");
    expect(await readiness["nats"]!()).toBe("the NATS connection is closed");
  });

  it("count runnable and leased tasks by type, the busiest by name and the rest as (other)", async () => {
    const { actor, q, wf } = await env.startActor();
    const later = Date.now() + 3_600_000;
    const tasks = [
      ...Array.from({ length: METRIC_TYPES_SHOWN + 2 }, (_, i) =>
        task(`t${i}`, later, { workflowId: wf, type: `k${i}` }),
      ),
      task("img1", later, { workflowId: wf, type: "img" }),
      task("img2", later + 1, { workflowId: wf, type: "img" }),
    ];
    ok(await q({ op: "submit", tasks, idempotencyKey: "k" }));
    ok(
      await q({
        op: "lease",
        owner: "w",
        max: 1,
        leaseMs: 60_000,
        waitMs: 0,
        requestId: "r",
        types: ["img"],
      }),
    );
    const families = parseExposition(await renderMetrics([], [await actor.metricsJson()]));
    const v = (labels: Record<string, string>) =>
      sampleValue(families, "frontier_shard_tasks_by_type", labels);
    expect(v({ type: "img", state: "RUNNABLE" })).toBe(1);
    expect(v({ type: "img", state: "LEASED" })).toBe(1);
    // img first (2 tasks), then the one-task types by name; those past the bound summed.
    expect(v({ type: OTHER_TYPES_LABEL, state: "RUNNABLE" })).toBe(3);
    const series = families.get("frontier_shard_tasks_by_type")!.samples;
    expect(series).toHaveLength(2 * (METRIC_TYPES_SHOWN + 1));
  });

  it("reach one exposition from every worker thread of a ShardHost, each labelled with its shard", async () => {
    const cluster = env.freshCluster();
    const host = await ShardHost.start({
      natsUrl: env.url,
      cluster,
      dataDir: env.freshDir(),
      shards: 2,
      logLevel,
      logger: silent,
      // A crashed worker stays down for the test to look at it.
      restartInitialMs: 600_000,
      restartMaxMs: 600_000,
      workerEntry: CRASHABLE_WORKER,
    });
    env.defer(() => host.close());
    const nc = await env.connect();
    const [wf] = keysInSlots("wf", spreadSlots(1, 2), 1) as [string];
    // An id homed on the same shard: a submit straight to the shard carries no claim for another.
    const [id] = keysInSlots("t", spreadSlots(1, 2), 1) as [string];
    ok(
      await ask(nc, cluster, "shard-1", {
        op: "submit",
        tasks: [task(id, 1, { workflowId: wf })],
        idempotencyKey: "k",
      }),
    );

    const scrape = async () =>
      parseExposition(await renderMetrics([host.metrics], await host.workerMetrics()));
    let families = await scrape();
    const v = (name: string, labels?: Record<string, string>) => sampleValue(families, name, labels);
    expect(v("frontier_shard_tasks_submitted_total", { shard: "shard-0" })).toBe(0);
    expect(v("frontier_shard_tasks_submitted_total", { shard: "shard-1" })).toBe(1);
    expect(v("frontier_shard_tasks", { shard: "shard-1", state: "RUNNABLE" })).toBe(1);
    expect(v("frontier_shard_slots_owned", { shard: "shard-0" })).toBe(spreadSlots(0, 2).length);
    expect(v("frontier_shard_host_worker_running", { shard: "shard-0" })).toBe(1);
    expect(v("frontier_shard_host_worker_restarts_total", { shard: "shard-1" })).toBe(0);
    expect(families.get("frontier_shard_host_worker_running")?.type).toBe("gauge");
    expect(families.get("frontier_shard_host_worker_restarts_total")?.type).toBe("counter");
    expect(conventionProblems(families)).toEqual([]);
    for (const check of Object.values(host.readiness())) expect(await check()).toBeNull();

    const exited = new Promise<ShardHostEvent>((resolve) =>
      host.onEvent((e) => {
        if (e.type === "worker:exit") resolve(e);
      }),
    );
    crashWorker("shard-0");
    await exited;
    families = await scrape();
    // The crashed worker exports nothing; its host says it is down.
    expect(v("frontier_shard_tasks_submitted_total", { shard: "shard-0" })).toBeUndefined();
    expect(v("frontier_shard_tasks_submitted_total", { shard: "shard-1" })).toBe(1);
    expect(v("frontier_shard_host_worker_running", { shard: "shard-0" })).toBe(0);
    expect(await host.readiness()["shard-0"]!()).toBe("its worker is BACKOFF");
    expect(await host.readiness()["shard-1"]!()).toBeNull();
  });
});
