/**
 * Results end to end, against a real cluster (NATS, shard actors, a
 * coordinator): an SDK handler's return value reaches its dependent's
 * `context.results`; `client.complete(lease, { result })` through the
 * coordinator; a result too large fails its task alone; and the CLI's
 * `work --result stdout` on a two-step chain whose second step reads the
 * first's result from stdin, with `status` and `show` showing both.
 */

import type { FrontierClient, TaskContext, WorkerEvent } from "@frontier/client";
import type { Lease } from "@frontier/core";
import { MAX_RESULT_BYTES } from "@frontier/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, startCluster, type TestCluster, until } from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;
/** Where the commands reach the test cluster (open NATS: no credentials). */
let target: string[];

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "results" });
  client = await cluster.client();
  target = ["--nats", cluster.url, "--cluster", cluster.cluster];
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

const deadline = () => Date.now() + 60_000;

describe("results", () => {
  it("hands an SDK handler's return value to its dependents' context.results, by prerequisite id", async () => {
    const workflowId = "sdk-chain";
    await client.submit([
      { id: "fetch", deadline: deadline(), workflowId },
      // Any string is a task id: the results object has no prototype to collide with.
      { id: "__proto__", deadline: deadline(), workflowId },
      { id: "quiet", deadline: deadline(), workflowId },
      { id: "build", deadline: deadline(), workflowId, prerequisites: ["fetch", "__proto__", "quiet"] },
    ]);
    const seen = new Map<string, TaskContext>();
    const worker = client.work(
      async (task, ctx) => {
        seen.set(task.id, ctx);
        if (task.id === "fetch") return { rows: 3, files: ["a.txt"] };
        if (task.id === "__proto__") return "polluted?";
        return undefined; // "quiet" and "build": no result
      },
      { concurrency: 1, waitMs: 200 },
    );
    await until(() => seen.has("build") && worker.stats.completed === 4, 20_000);
    await worker.stop();
    const build = seen.get("build")!;
    expect(build.results["fetch"]).toEqual({ rows: 3, files: ["a.txt"] });
    expect(Object.getOwnPropertyDescriptor(build.results, "__proto__")?.value).toBe("polluted?");
    expect(Object.getPrototypeOf(build.results)).toBeNull();
    expect("quiet" in build.results).toBe(false);
    expect(build.resultsOmitted).toBe(0);
    expect(build.lease.results?.map((r) => r.taskId)).toEqual(["fetch", "__proto__"]);
    expect((await client.getTask("fetch", { workflowId }))?.result).toEqual({ rows: 3, files: ["a.txt"] });
    expect(await client.getTask("build", { workflowId })).not.toHaveProperty("result");
  });

  it("completes with client.complete(lease, { result }), at the granting shard and through the coordinator; a resend keeps the first", async () => {
    await client.submit([
      { id: "by-hand", deadline: deadline() },
      { id: "by-ref", deadline: deadline() + 1 },
    ]);
    // The two may sit on two shards: a coordinator fills by the shards' announcements, and one may
    // not have reached it yet when the submit's reply did (under load), so ask until both are held.
    const leases: Lease[] = [];
    for (let tries = 0; leases.length < 2 && tries < 10; tries++)
      leases.push(...(await client.lease({ max: 2 - leases.length, waitMs: 1_000 })));
    expect(leases.map((l) => l.taskId)).toEqual(["by-hand", "by-ref"]);
    // A granted Lease goes straight to the shard that granted it.
    expect(await client.complete(leases[0]!, { result: [1, "two"] })).toEqual({ duplicate: false });
    expect(await client.complete(leases[0]!, { result: "other" })).toEqual({ duplicate: true });
    expect((await client.getTask("by-hand"))?.result).toEqual([1, "two"]);
    // A bare reference (no grant to say where) goes through a coordinator, which routes it.
    const { taskId, token, secret } = leases[1]!;
    expect(await client.complete({ taskId, token, secret: secret! }, { result: { ok: true } })).toEqual({
      duplicate: false,
    });
    expect((await client.getTask("by-ref"))?.result).toEqual({ ok: true });
  });

  it("fails a task whose handler returns a result above MAX_RESULT_BYTES, for good and alone", async () => {
    await client.submit([
      { id: "too-big", deadline: deadline(), maxAttempts: 3 },
      { id: "fine", deadline: deadline() },
    ]);
    const events: WorkerEvent[] = [];
    const worker = client.work(
      async (task) => (task.id === "too-big" ? "x".repeat(MAX_RESULT_BYTES + 1) : "small"),
      { concurrency: 2, waitMs: 200 },
    );
    worker.on((e) => events.push(e));
    await until(() => worker.stats.completed + worker.stats.failed >= 2, 20_000);
    await worker.stop();
    const failed = events.find((e) => e.type === "task:failed");
    expect(failed?.type === "task:failed" && failed.state).toBe("FAILED");
    const tooBig = await client.getTask("too-big");
    expect(tooBig).toMatchObject({ state: "FAILED", attempts: 1 });
    expect(tooBig?.reason).toContain("exceeds MAX_RESULT_BYTES");
    expect(tooBig).not.toHaveProperty("result");
    expect((await client.getTask("fine"))?.result).toBe("small");
  });

  it("work --result stdout: a step's stdout is its result, and the next step reads it from stdin", async () => {
    const workflowId = "cli-chain";
    await client.submit([
      { id: "first", deadline: deadline(), workflowId, payload: { n: 20 } },
      { id: "second", deadline: deadline(), workflowId, prerequisites: ["first"] },
    ]);
    // Each step prints JSON: the first its payload's n + 1; the second what it read of the first's result.
    const script = [
      "let s = '';",
      "process.stdin.on('data', (d) => (s += d)).on('end', () => {",
      "  const t = JSON.parse(s);",
      "  if (t.id === 'first') console.log(JSON.stringify({ n: t.payload.n + 1 }));",
      "  else console.log(JSON.stringify({ from: Object.keys(t.results), n: t.results.first.n * 2 }));",
      "});",
    ].join("\n");
    const run = await frontier(
      [
        "work",
        ...target,
        "--no-metrics",
        "--result",
        "stdout",
        "--exit-when-idle",
        "--wait-ms",
        "500",
        "--",
        process.execPath,
        "-e",
        script,
      ],
      { timeoutMs: 60_000 },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("completed second");
    expect((await client.getTask("first", { workflowId }))?.result).toEqual({ n: 21 });
    expect((await client.getTask("second", { workflowId }))?.result).toEqual({ from: ["first"], n: 42 });

    const status = await frontier(["status", ...target, "second", "--workflow", workflowId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^ {2}result +\{"from":\["first"\],"n":42\}$/m);
    const shown = await frontier(["show", ...target, "first", "--workflow", workflowId, "--json"]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: "first", result: { n: 21 } });
  });

  it("work --result stdout: text that is not JSON is kept as text; too much output fails the task for good", async () => {
    await client.submit([
      { id: "text", deadline: deadline(), payload: "words" },
      { id: "flood", deadline: deadline(), payload: "flood", maxAttempts: 3 },
    ]);
    const script = [
      "let s = '';",
      "process.stdin.on('data', (d) => (s += d)).on('end', () => {",
      "  const t = JSON.parse(s);",
      `  process.stdout.write(t.payload === 'flood' ? 'y'.repeat(${MAX_RESULT_BYTES + 100}) : 'plain words\\n');`,
      "});",
    ].join("\n");
    const run = await frontier(
      [
        "work",
        ...target,
        "--no-metrics",
        "--result",
        "stdout",
        "--exit-when-idle",
        "--wait-ms",
        "500",
        "--",
        process.execPath,
        "-e",
        script,
      ],
      { timeoutMs: 60_000 },
    );
    expect(run.code).toBe(3); // a task failed for good
    expect((await client.getTask("text"))?.result).toBe("plain words");
    const flood = await client.getTask("flood");
    expect(flood).toMatchObject({ state: "FAILED", attempts: 1 });
    expect(flood?.reason).toContain("more than MAX_RESULT_BYTES");
    const refused = await frontier(["work", ...target, "--result", "stderr", "--", "true"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--result takes "stdout"');
  });
});
