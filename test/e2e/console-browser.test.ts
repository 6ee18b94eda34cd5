/**
 * The web console end to end, as a person sees it, in headless Chromium
 * (Debian's chromium, driven by playwright-core): `frontier start` with the
 * credentials it makes serves the console; a release workflow whose first
 * step fails for good; the overview's counts, the failed-task list with its
 * reason (written as text, never as markup), the workflow's DAG with each
 * task's state and the critical path, and a retry clicked and confirmed on
 * the task page, after which the task has left FAILED.
 *
 * Screenshots go to a temporary directory (its path is printed);
 * FRONTIER_UPDATE_DOCS_SCREENSHOT=1 also writes docs/console.png.
 * Skipped, saying so, only when /usr/bin/chromium is absent
 * (scripts/setup.sh installs it).
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accessOf, connect, type FrontierClient } from "@frontier/client";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsoleWeb } from "./console-web.js";
import { freePort, REPO_ROOT, type StartedFrontier, startFrontier, until } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
const CLUSTER = "consoleweb";
const HOSTILE = '<img src=x onerror="document.title=1">';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `console-browser: skipped: ${CHROMIUM} is absent (apt-get install -y chromium, or sh scripts/setup.sh)`,
  );
}

let dir: string;
let shots: string;
let started: StartedFrontier | undefined;
let submitter: FrontierClient;
let worker: FrontierClient;
let browser: Browser | undefined;
let page: Page;
let consoleUrl: string;

async function shot(name: string): Promise<string> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

describe.skipIf(!haveChromium)("the web console in Chromium", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "frontier-console-browser-"));
    shots = await mkdtemp(join(tmpdir(), "frontier-console-screenshots-"));
    console.info(`console-browser: screenshots in ${shots}`);
    await buildConsoleWeb();
    const natsUrl = `nats://127.0.0.1:${await freePort()}`;
    started = await startFrontier([
      ...["--nats", natsUrl, "--cluster", CLUSTER, "--data", join(dir, "data"), "--shards", "2"],
      ...["--console-port", "0", "--metrics-port", "0"],
    ]);
    consoleUrl = String(started.listening["console"]);
    expect(consoleUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const credentials = join(dir, "data", "credentials");
    submitter = await connect({
      servers: natsUrl,
      cluster: CLUSTER,
      ...accessOf(credentials, CLUSTER, { role: "submitter" }),
    });
    worker = await connect({
      servers: natsUrl,
      cluster: CLUSTER,
      ...accessOf(credentials, CLUSTER, { role: "worker" }),
    });
    const now = Date.now();
    const min = 60_000;
    await until(async () => (await submitter.stats()).shards.answered.length === 2, 60_000);
    await submitter.submit([
      { id: "lint", deadline: now + 5 * min, workflowId: "release" },
      { id: "fetch", deadline: now + 10 * min, workflowId: "release", maxAttempts: 1 },
      { id: "compile", deadline: now + 20 * min, workflowId: "release", prerequisites: ["fetch"] },
      { id: "docs", deadline: now + 25 * min, workflowId: "release", prerequisites: ["fetch"] },
      { id: "test", deadline: now + 30 * min, workflowId: "release", prerequisites: ["compile"] },
      {
        id: "publish",
        deadline: now + 40 * min,
        workflowId: "release",
        prerequisites: ["test", "docs", "lint"],
      },
    ]);
    await submitter.submit(
      Array.from({ length: 12 }, (_, i) => ({ id: `report-${i}`, deadline: now + 60 * min + i })),
    );
    // lint runs and completes; fetch fails for good, with a reason that looks like markup.
    const [lint] = await worker.lease({ max: 1, waitMs: 5_000 });
    expect(lint?.taskId).toBe("lint");
    await worker.complete(lint!);
    const [fetch] = await worker.lease({ max: 1, waitMs: 5_000 });
    expect(fetch?.taskId).toBe("fetch");
    await worker.fail(fetch!, { retryable: false, reason: `exit code 3: ${HOSTILE}` });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await submitter?.close();
    await worker?.close();
    await started?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("shows the cluster at a glance: counts by state, charts, both shards", async () => {
    await page.goto(consoleUrl);
    await page.locator('#counts [data-state="FAILED"] .count', { hasText: "1" }).waitFor();
    expect(await page.locator('#counts [data-state="COMPLETED"] .count').textContent()).toBe("1");
    expect(await page.locator('#counts [data-state="CANCELLED"] .count').textContent()).toBe("4");
    expect(await page.locator('#counts [data-state="RUNNABLE"] .count').textContent()).toBe("12");
    expect(await page.locator("table.shards tbody tr").allTextContents()).toEqual([
      expect.stringContaining("shard-0"),
      expect.stringContaining("shard-1"),
    ]);
    // Each shard's own figures: its half of the slots, and runnable counts that add up to the cluster's.
    const cells = async (shard: string) =>
      page.locator(`table.shards tr[data-shard="${shard}"] td`).allTextContents();
    const [zero, one] = [await cells("shard-0"), await cells("shard-1")];
    expect([zero[2], one[2]]).toEqual(["512", "512"]);
    expect(Number(zero[4]) + Number(one[4])).toBe(12);
    // Throughput is drawn once two readings exist.
    await page.locator('[data-chart="completed per second"] polyline').waitFor({ state: "attached" });
    await expect(page.locator("header .who").textContent()).resolves.toContain("admin");
    await shot("overview");
  });

  it("lists the failed task with its reason and attempts, the reason as text", async () => {
    await page.goto(`${consoleUrl}#/tasks?state=FAILED`);
    const row = page.locator('tr[data-task-id="fetch"]');
    await row.waitFor();
    expect(await page.locator("tbody tr[data-task-id]").count()).toBe(1);
    expect(await row.getAttribute("data-state")).toBe("FAILED");
    expect(await row.locator("td.reason").textContent()).toContain(`exit code 3: ${HOSTILE}`);
    expect(await row.textContent()).toContain("1/1");
    expect(await page.locator("main img").count()).toBe(0);
    expect(await page.title()).toBe("Frontier console");
    await shot("failed-tasks");
  });

  it("draws the workflow's DAG with each task's state and the path to its latest deadline", async () => {
    await page.goto(`${consoleUrl}#/workflow/release`);
    await page.locator("svg.dag g.node").first().waitFor();
    const nodes = await page
      .locator("svg.dag g.node")
      .evaluateAll((gs) =>
        gs.map((g) => [
          g.getAttribute("data-task-id"),
          g.getAttribute("data-state"),
          g.classList.contains("critical"),
        ]),
      );
    expect(new Map(nodes.map(([id, state]) => [id, state]))).toEqual(
      new Map([
        ["lint", "COMPLETED"],
        ["fetch", "FAILED"],
        ["compile", "CANCELLED"],
        ["docs", "CANCELLED"],
        ["test", "CANCELLED"],
        ["publish", "CANCELLED"],
      ]),
    );
    expect(
      nodes
        .filter(([, , critical]) => critical)
        .map(([id]) => id)
        .sort(),
    ).toEqual(["compile", "fetch", "publish", "test"]);
    // One edge per prerequisite: fetch→compile, fetch→docs, compile→test, test/docs/lint→publish.
    expect(await page.locator("svg.dag polyline.edge").count()).toBe(6);
    expect(await page.locator("svg.dag polyline.edge.critical").count()).toBe(3);
    const path = await shot("workflow");
    if (process.env["FRONTIER_UPDATE_DOCS_SCREENSHOT"] === "1") {
      await mkdir(join(REPO_ROOT, "docs"), { recursive: true });
      await copyFile(path, join(REPO_ROOT, "docs", "console.png"));
    }
  });

  it("retries the failed task after a confirmation, and it leaves FAILED", async () => {
    await page.locator('svg.dag g.node[data-task-id="fetch"]').click();
    const task = page.locator('section.task[data-task-id="fetch"]');
    await task.waitFor();
    expect(await task.getAttribute("data-state")).toBe("FAILED");
    expect(await page.locator("#reason").textContent()).toContain(HOSTILE);
    expect(await page.locator(".links li").allTextContents()).toEqual([
      expect.stringContaining("compile"),
      expect.stringContaining("docs"),
    ]);
    await page.locator('button[data-action="retry"]').click();
    // Nothing happens before the confirmation.
    await page.locator('button[data-confirm="retry"]').waitFor();
    expect((await submitter.getTask("fetch", { workflowId: "release" }))?.state).toBe("FAILED");
    await shot("retry-confirm");
    await page.locator('button[data-confirm="retry"]').click();
    await page.locator('section.task[data-task-id="fetch"]:not([data-state="FAILED"])').waitFor();
    expect(await task.getAttribute("data-state")).toBe("RUNNABLE");
    expect((await submitter.getTask("fetch", { workflowId: "release" }))?.state).toBe("RUNNABLE");
    expect(await page.locator(".actions .ok").textContent()).toContain("Retry: done (now RUNNABLE)");
    await shot("retried");
    // The action is in the audit log of `frontier start`.
    await until(() => started!.output().includes('"audit":true'));
    const line = started!
      .output()
      .split("\n")
      .find((l) => l.includes('"audit":true'))!;
    expect(JSON.parse(line)).toMatchObject({
      action: "retry",
      taskId: "fetch",
      outcome: "ok",
      workflowId: "release",
    });
  });
});
