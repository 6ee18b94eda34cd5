import { createServer } from "node:net";
import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { type MetricsEndpoint, startMetricsEndpoint } from "./endpoint.js";
import { processRegistry } from "./process-registry.js";
import { renderMetrics } from "./render.js";
import {
  conventionProblems,
  parseExposition,
  promtoolCheckMetrics,
  promtoolPath,
  sampleValue,
} from "./testing.js";

let endpoint: MetricsEndpoint | undefined;
afterEach(async () => {
  await endpoint?.close();
  endpoint = undefined;
});

/** A registry standing for one shard thread: its series labelled with its shard. */
function shardRegistry(shard: string, submitted: number): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ shard });
  new Counter({ name: "frontier_shard_submitted_total", help: "Tasks.", registers: [registry] }).inc(
    submitted,
  );
  return registry;
}

describe("startMetricsEndpoint", () => {
  it("serves /metrics, /healthz and /readyz; 404 and 405 otherwise", async () => {
    let why: string | null = "slot table not loaded";
    endpoint = await startMetricsEndpoint({
      port: 0,
      host: "127.0.0.1",
      render: () => renderMetrics([processRegistry()]),
      checks: () => ({ nats: () => null, slots: () => why }),
    });
    expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const metrics = await fetch(endpoint.url);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = parseExposition(await metrics.text());
    expect(families.get("process_cpu_user_seconds_total")?.type).toBe("counter");
    expect(families.get("process_start_time_seconds")?.samples.length).toBe(1);

    const base = endpoint.url.replace("/metrics", "");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe("not ready\nok nats\nnot ready slots: slot table not loaded\n");
    why = null;
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe("ready\nok nats\nok slots\n");
    const head = await fetch(`${base}/readyz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(endpoint.url, { method: "POST" })).status).toBe(405);
  });

  it("answers 500 and logs when the render fails", async () => {
    const logged: unknown[] = [];
    endpoint = await startMetricsEndpoint({
      port: 0,
      host: "127.0.0.1",
      render: () => Promise.reject(new Error("boom")),
      logger: { error: (details) => logged.push(details) },
    });
    expect((await fetch(endpoint.url)).status).toBe(500);
    expect(logged).toHaveLength(1);
  });

  it("a check that throws or rejects makes the process not ready, saying why; async checks are awaited", async () => {
    endpoint = await startMetricsEndpoint({
      port: 0,
      host: "127.0.0.1",
      render: async () => "",
      checks: () => ({
        shard: () => {
          throw new Error("gone");
        },
        worker: () => Promise.reject(new Error("no answer")),
        thread: async () => null,
      }),
    });
    const res = await fetch(endpoint.url.replace("/metrics", "/readyz"));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe(
      "not ready\nnot ready shard: check failed: gone\nnot ready worker: check failed: no answer\nok thread\n",
    );
  });

  it("moves to a free port when a default one is taken, and fails when a chosen one is", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      await expect(
        startMetricsEndpoint({ port: taken, host: "127.0.0.1", render: async () => "" }),
      ).rejects.toMatchObject({ code: "EADDRINUSE" });
      endpoint = await startMetricsEndpoint({
        port: taken,
        host: "127.0.0.1",
        render: async () => "",
        anyPortIfTaken: true,
      });
      expect(endpoint.movedFromTakenPort).toBe(true);
      expect(endpoint.port).not.toBe(taken);
      expect((await fetch(endpoint.url)).status).toBe(200);
    } finally {
      blocker.close();
    }
  });
});

describe("renderMetrics", () => {
  it("merges local registries with other threads' JSON, each shard's series apart", async () => {
    const [a, b] = [shardRegistry("shard-0", 3), shardRegistry("shard-1", 4)];
    const text = await renderMetrics(
      [processRegistry()],
      [await a.getMetricsAsJSON(), await b.getMetricsAsJSON()],
    );
    const families = parseExposition(text);
    expect(families.get("frontier_shard_submitted_total")?.type).toBe("counter");
    expect(sampleValue(families, "frontier_shard_submitted_total", { shard: "shard-0" })).toBe(3);
    expect(sampleValue(families, "frontier_shard_submitted_total", { shard: "shard-1" })).toBe(4);
    expect(sampleValue(families, "frontier_shard_submitted_total")).toBe(7);
    expect(families.has("process_start_time_seconds")).toBe(true);
    expect(conventionProblems(families)).toEqual([]);
  });

  it("refuses a metric name that two local registries both export", async () => {
    await expect(renderMetrics([shardRegistry("a", 1), shardRegistry("b", 1)])).rejects.toThrow();
  });
});

describe("conventionProblems", () => {
  it("names what breaks the conventions", () => {
    const text = [
      "# HELP frontier_x_ms A gauge in ms.",
      "# TYPE frontier_x_ms gauge",
      "frontier_x_ms 1",
      "# HELP frontier_done Done.",
      "# TYPE frontier_done counter",
      "frontier_done 1",
      "# HELP frontier_wait Wait.",
      "# TYPE frontier_wait histogram",
      'frontier_wait_bucket{le="+Inf"} 1',
      "frontier_wait_sum 1",
      "frontier_wait_count 1",
      "",
    ].join("\n");
    expect(conventionProblems(parseExposition(text))).toEqual([
      "frontier_x_ms: not in base units",
      "frontier_done: counter without _total",
      "frontier_wait: histogram not in seconds or bytes",
    ]);
  });
});

describe.runIf(promtoolPath() !== null)("promtool check metrics", () => {
  it("passes the process's default metrics and a shard's", async () => {
    const text = await renderMetrics(
      [processRegistry()],
      [await shardRegistry("shard-0", 1).getMetricsAsJSON()],
    );
    expect(promtoolCheckMetrics(text)).toEqual({ parsed: true, problems: [] });
  });

  it("finds a counter without _total and text that does not parse (so the check above can fail)", () => {
    expect(promtoolCheckMetrics("# HELP x_done Done.\n# TYPE x_done counter\nx_done 1\n")).toEqual({
      parsed: true,
      problems: ['x_done counter metrics should have "_total" suffix'],
    });
    expect(promtoolCheckMetrics("garbage line\n").parsed).toBe(false);
  });
});
