/**
 * The console's JSON API and its guards against a real cluster (nats-server,
 * two shard actors, a coordinator) through the SDK: stats, task pages with
 * their opaque cursor tokens, a task with its prerequisites and dependents,
 * a workflow's graph, and the actions — taken only from the console's own
 * origin with the CSRF token, only with the admin role, each audited; bad
 * input refused with a clear error, changing nothing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { FrontierClient } from "@frontier/client";
import { type ConsoleServer, CSRF_HEADER, startConsole } from "@frontier/console";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsoleWeb } from "./console-web.js";
import { startCluster, type TestCluster, until } from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;
let web: string;
let server: ConsoleServer;
let readOnly: ConsoleServer;
const audit: Record<string, unknown>[] = [];
/** A reply body as JSON.parse gives it: the tests read the fields they check. */
type Json = ReturnType<typeof JSON.parse>;
const HOUR = 3_600_000;
const base = Date.now() + HOUR;

const auditLogger = pino(
  { level: "info" },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") audit.push(JSON.parse(line));
      done();
    },
  }),
);

beforeAll(async () => {
  web = await mkdtemp(join(tmpdir(), "frontier-console-web-"));
  await buildConsoleWeb(web);
  cluster = await startCluster({ shards: 2, cluster: "consoleapi" });
  client = await cluster.client();
  // A workflow a → {b, c}, `a` failing for good on its only attempt; and 25 tasks without a workflow.
  await client.submit([
    { id: "a", deadline: base, workflowId: "wf", maxAttempts: 1 },
    { id: "b", deadline: base + 1, workflowId: "wf", prerequisites: ["a"] },
    { id: "c", deadline: base + 2, workflowId: "wf", prerequisites: ["a"] },
  ]);
  await client.submit(
    Array.from({ length: 25 }, (_, i) => ({ id: `loose-${i}`, deadline: base + HOUR + i })),
  );
  let leased: Awaited<ReturnType<FrontierClient["lease"]>> = [];
  await until(async () => (leased = await client.lease({ max: 1 })).length === 1);
  expect(leased[0]!.taskId).toBe("a");
  await client.fail(leased[0]!, { retryable: false, reason: "<img src=x onerror=alert(1)> exit code 3" });
  const options = { client, port: 0, logger: auditLogger, staticDir: web };
  server = await startConsole({ ...options, role: "admin", actions: true });
  readOnly = await startConsole({ ...options, role: "submitter", actions: false });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await readOnly?.close();
  await cluster?.stop();
  await rm(web, { recursive: true, force: true });
});

async function get(path: string, on: ConsoleServer = server): Promise<{ status: number; body: Json }> {
  const res = await fetch(new URL(path, on.url));
  return { status: res.status, body: await res.json() };
}

async function session(on: ConsoleServer = server): Promise<{ csrfToken: string; actions: boolean }> {
  return (await get("api/session", on)).body;
}

async function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  on: ConsoleServer = server,
): Promise<{ status: number; body: Json }> {
  const url = new URL(path, on.url);
  const res = await fetch(url, {
    method: "POST",
    headers: {
      origin: url.origin,
      "content-type": "application/json",
      [CSRF_HEADER]: (await session(on)).csrfToken,
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe("console API: reads", () => {
  it("answers stats with counts by state and the shards that answered", async () => {
    const { status, body } = await get("api/stats");
    expect(status).toBe(200);
    expect(body.counts.FAILED).toBe(1);
    expect(body.counts.RUNNABLE).toBe(25);
    expect(body.counts.CANCELLED).toBe(2); // b and c, cancelled when a failed
    expect([...body.shards.answered].sort()).toEqual(["shard-0", "shard-1"]);
    expect(body.shards.missing).toEqual([]);
    expect(typeof body.at).toBe("number");
  });

  it("lists failed tasks with reason and attempts", async () => {
    const { status, body } = await get("api/tasks?state=FAILED");
    expect(status).toBe(200);
    expect(body.tasks).toHaveLength(1);
    expect(body.tasks[0]).toMatchObject({
      id: "a",
      state: "FAILED",
      attempts: 1,
      maxAttempts: 1,
      workflowId: "wf",
      reason: expect.stringContaining("<img src=x onerror=alert(1)> exit code 3"),
    });
    expect(body.next).toBeNull();
  });

  it("pages the runnable tasks with opaque tokens until none is left, each task once", async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const q: string = `api/tasks?state=RUNNABLE&limit=10${after === null ? "" : `&after=${after}`}`;
      const { status, body } = await get(q);
      expect(status).toBe(200);
      seen.push(...body.tasks.map((t: { id: string }) => t.id));
      after = body.next;
      if (after !== null) expect(after).toMatch(/^[A-Za-z0-9_-]+$/);
      pages++;
    } while (after !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `loose-${i}`));
  });

  it("filters by workflow and deadline range", async () => {
    const wf = await get("api/tasks?workflow=wf");
    expect(wf.body.tasks.map((t: { id: string }) => t.id)).toEqual(["a", "b", "c"]);
    const range = await get(`api/tasks?deadlineFrom=${base + 1}&deadlineTo=${base + 3}`);
    expect(range.body.tasks.map((t: { id: string }) => t.id)).toEqual(["b", "c"]);
  });

  it("filters by task type, and lists each task's type", async () => {
    await client.submit([
      { id: "img-1", deadline: base + 5, workflowId: "typed", type: "image" },
      { id: "img-2", deadline: base + 6, workflowId: "typed", type: "image" },
      { id: "pdf-1", deadline: base + 7, workflowId: "typed", type: "pdf" },
    ]);
    const images = await get("api/tasks?type=image");
    expect(images.body.tasks.map((t: { id: string; type?: string }) => [t.id, t.type])).toEqual([
      ["img-1", "image"],
      ["img-2", "image"],
    ]);
    const both = await get("api/tasks?type=image,pdf&workflow=typed");
    expect(both.body.tasks.map((t: { id: string }) => t.id)).toEqual(["img-1", "img-2", "pdf-1"]);
    const bad = await get("api/tasks?type=no%20spaces");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/type "no spaces": 1\.\.64 characters/);
  });

  it("shows a task with its prerequisites' and dependents' states", async () => {
    const a = await get("api/tasks/a?workflow=wf");
    expect(a.status).toBe(200);
    expect(a.body.task).toMatchObject({ id: "a", state: "FAILED", attempts: 1 });
    expect(a.body.prerequisites).toEqual([]);
    expect(a.body.dependents).toEqual([
      { id: "b", state: "CANCELLED" },
      { id: "c", state: "CANCELLED" },
    ]);
    const b = await get("api/tasks/b");
    expect(b.body.prerequisites).toEqual([{ id: "a", state: "FAILED" }]);
    expect((await get("api/tasks/no-such-task")).status).toBe(404);
  });

  it("pages a workflow's graph with its prerequisites", async () => {
    const first = await get("api/workflows/wf?limit=2");
    expect(
      first.body.tasks.map((t: { id: string; prerequisites: string[] }) => [t.id, t.prerequisites]),
    ).toEqual([
      ["a", []],
      ["b", ["a"]],
    ]);
    const rest = await get(`api/workflows/wf?limit=2&after=${first.body.next}`);
    expect(rest.body.tasks.map((t: { id: string }) => t.id)).toEqual(["c"]);
    expect(rest.body.next).toBeNull();
  });

  it("refuses bad input with a clear 400, before asking the cluster", async () => {
    const cases: [string, RegExp][] = [
      ["api/tasks?state=DONE", /unknown state "DONE"/],
      ["api/tasks?limit=201", /limit must be an integer in 1\.\.200/],
      ["api/tasks?limit=0", /limit must be/],
      ["api/tasks?deadlineFrom=soon", /deadlineFrom must be milliseconds/],
      ["api/tasks?deadlineFrom=5&deadlineTo=5", /deadlineFrom must be before deadlineTo/],
      ["api/tasks?after=not-a-token", /not a page token/],
      [`api/tasks?workflow=${"w".repeat(257)}`, /workflow must be 1\.\.256/],
    ];
    for (const [path, message] of cases) {
      const { status, body } = await get(path);
      expect([path, status, body.error]).toEqual([path, 400, expect.stringMatching(message)]);
    }
    // A workflow page's token is not a task list's, and the reverse.
    const wfToken = (await get("api/workflows/wf?limit=1")).body.next;
    expect((await get(`api/tasks?after=${wfToken}`)).body.error).toMatch(/a "workflow" token/);
    const forged = Buffer.from(JSON.stringify({ v: 1, kind: "tasks", after: { deadline: "x" } })).toString(
      "base64url",
    );
    expect((await get(`api/tasks?after=${forged}`)).status).toBe(400);
  });

  it("serves the built front end with a strict content security policy, and index.html for any page", async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await res.text();
    const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await fetch(new URL(script!, server.url));
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect((await fetch(new URL("../../etc/passwd", server.url))).headers.get("content-type")).toMatch(
      /html/,
    );
  });

  it("answers only requests addressed to a loopback name (no DNS rebinding)", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolveStatus, reject) => {
      const req = request(
        new URL("api/stats", server.url),
        { headers: { host: "evil.example:80" } },
        (res) => {
          res.resume();
          resolveStatus(res.statusCode ?? 0);
        },
      );
      req.once("error", reject);
      req.end();
    });
    expect(status).toBe(421);
  });
});

describe("console API: actions", () => {
  it("refuses an action without the CSRF token, from another origin, or without JSON, and changes nothing", async () => {
    const refused = [
      await post("api/tasks/a/retry", { workflowId: "wf" }, { [CSRF_HEADER]: "wrong" }),
      await post("api/tasks/a/retry", { workflowId: "wf" }, { origin: "http://evil.example" }),
      await post("api/tasks/a/retry", { workflowId: "wf" }, { "content-type": "text/plain" }),
      await post("api/tasks/a/retry", { workflowId: "wf" }, { "sec-fetch-site": "cross-site" }),
    ];
    expect(refused.map((r) => r.status)).toEqual([403, 403, 415, 403]);
    expect(refused[0]!.body.error).toMatch(/x-frontier-csrf/);
    expect(refused[1]!.body.error).toMatch(/Origin/);
    expect((await client.getTask("a", { workflowId: "wf" }))?.state).toBe("FAILED");
  });

  it("refuses bad bodies with a 400 naming the field, and changes nothing", async () => {
    const cases: [string, unknown, RegExp][] = [
      ["api/tasks/a/retry", "{not json", /not JSON/],
      ["api/tasks/a/retry", [1], /JSON object/],
      ["api/tasks/a/retry", { deadline: "tomorrow" }, /deadline must be/],
      ["api/tasks/a/retry", { priority: 1 }, /unknown field "priority"/],
      ["api/tasks/a/deadline", {}, /deadline is required/],
      ["api/tasks/a/cancel", { reason: "r".repeat(1025) }, /reason must be/],
    ];
    for (const [path, body, message] of cases) {
      const r = await post(path, body);
      expect([path, r.status, r.body.error]).toEqual([path, 400, expect.stringMatching(message)]);
    }
    expect((await post("api/tasks/a/explode", {})).status).toBe(404);
    expect((await client.getTask("a", { workflowId: "wf" }))?.state).toBe("FAILED");
  });

  it("takes no action without the admin role", async () => {
    expect((await session(readOnly)).actions).toBe(false);
    const r = await post("api/tasks/a/retry", { workflowId: "wf" }, {}, readOnly);
    expect(r.status).toBe(403);
    expect(r.body.error).toMatch(/connects as submitter; actions need the admin role/);
    expect((await client.getTask("a", { workflowId: "wf" }))?.state).toBe("FAILED");
  });

  it("retries, moves a deadline and cancels, each audited; a refused one answers the cluster's code", async () => {
    audit.length = 0;
    const retried = await post("api/tasks/a/retry", { workflowId: "wf" });
    expect(retried).toEqual({ status: 200, body: { action: "retry", taskId: "a", state: "RUNNABLE" } });
    expect((await client.getTask("a", { workflowId: "wf" }))?.state).toBe("RUNNABLE");

    const again = await post("api/tasks/a/retry", { workflowId: "wf" });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("INVALID_STATE");

    const moved = await post("api/tasks/loose-0/deadline", { deadline: base + 5 * HOUR });
    expect(moved.status).toBe(200);
    expect((await client.getTask("loose-0"))?.deadline).toBe(base + 5 * HOUR);

    const cancelled = await post("api/tasks/loose-1/cancel", { reason: "operator: not needed" });
    expect(cancelled.status).toBe(200);
    expect((await client.getTask("loose-1"))?.state).toBe("CANCELLED");

    expect((await post("api/tasks/no-such-task/cancel", {})).status).toBe(404);

    expect(audit.map((l) => [l["action"], l["taskId"], l["outcome"], l["code"] ?? null])).toEqual([
      ["retry", "a", "ok", null],
      ["retry", "a", "refused", "INVALID_STATE"],
      ["deadline", "loose-0", "ok", null],
      ["cancel", "loose-1", "ok", null],
      ["cancel", "no-such-task", "refused", "UNKNOWN_TASK"],
    ]);
    expect(audit.every((l) => l["audit"] === true && typeof l["remote"] === "string")).toBe(true);
    expect(audit[3]).toMatchObject({ reason: "operator: not needed" });
  });
});
