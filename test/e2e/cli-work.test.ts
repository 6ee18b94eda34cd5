/**
 * The `frontier` CLI as people run it, where the terminal and pnpm matter:
 * Ctrl-C on `frontier work` (SIGINT to the whole foreground process group),
 * a stdout whose reader went away, `pnpm frontier` run from another
 * directory, the exit code of a `work` whose tasks failed for good, and how
 * `status` shows a cancelled prerequisite. Against a real cluster (NATS,
 * shard actors and a coordinator from the harness); every CLI call is a
 * child process. Each test leaves nothing runnable behind, since the next
 * one's worker would lease it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FrontierClient } from "@frontier/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliResult,
  frontier,
  REPO_ROOT,
  runToEnd,
  startCluster,
  type TestCluster,
  until,
} from "./harness.js";

let cluster: TestCluster;
let client: FrontierClient;
let dir: string;
/** Where the commands reach the test cluster (open NATS: no credentials). */
let target: string[];

beforeAll(async () => {
  cluster = await startCluster({ shards: 2, cluster: "cliwork" });
  client = await cluster.client();
  dir = await mkdtemp(join(tmpdir(), "frontier-cli-work-"));
  target = ["--nats", cluster.url, "--cluster", cluster.cluster];
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A process group of its own, led by `node scripts/frontier.mjs …` (what `pnpm frontier` runs). */
interface Session {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | null>;
  /** A terminal's Ctrl-C: SIGINT to every process of the group. */
  ctrlC(): void;
}

function session(args: readonly string[], env: NodeJS.ProcessEnv = {}): Session {
  const child = spawn(process.execPath, ["scripts/frontier.mjs", ...args], {
    cwd: REPO_ROOT,
    // The sources under tsx: the launcher and the CLI are then two processes in the group,
    // the case where a signal could reach the CLI twice.
    env: { ...process.env, FRONTIER_FROM_SOURCES: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    ctrlC: () => process.kill(-(child.pid as number), "SIGINT"),
  };
}

const view = async (id: string, workflowId?: string) =>
  client.getTask(id, workflowId === undefined ? {} : { workflowId });

describe("Ctrl-C on frontier work", () => {
  it("lets the running command finish and complete its task, on its first attempt", async () => {
    const marker = join(dir, "finished");
    const up = join(dir, "finish-up");
    await client.submit([{ id: "ctrl-c-finish", deadline: Date.now() + 3_600_000 }]);
    const work = session([
      "work",
      ...target,
      "--wait-ms",
      "500",
      "--no-metrics",
      "--",
      "sh",
      "-c",
      `echo up > ${up}; sleep 2; echo "$FRONTIER_TASK_ID" > ${marker}`,
    ]);
    // Once the command runs in its own process group: "started" is printed as the spawn begins,
    // and a Ctrl-C between the fork and the child's setsid would reach the command too.
    await until(() => existsSync(up), 30_000);
    work.ctrlC();
    expect(await work.exited).toBe(0);
    expect(work.stderr()).toContain("frontier work: stopping; running commands finish");
    expect(work.stdout()).toMatch(/completed ctrl-c-finish \(\d/);
    expect((await readFile(marker, "utf8")).trim()).toBe("ctrl-c-finish");
    expect(await view("ctrl-c-finish")).toMatchObject({ state: "COMPLETED", attempts: 1 });
  }, 60_000);

  it("a second Ctrl-C terminates the command, and its task fails retryably", async () => {
    await client.submit([{ id: "ctrl-c-twice", deadline: Date.now() + 3_600_000 }]);
    const up = join(dir, "twice-up");
    const work = session([
      "work",
      ...target,
      "--wait-ms",
      "500",
      "--no-metrics",
      "--",
      "sh",
      "-c",
      `echo up > ${up}; exec sleep 60`,
    ]);
    // The command is running, in its own process group: "started" is printed as the spawn begins,
    // and a Ctrl-C between the fork and the child's setsid reaches the child too (a loaded machine hit it).
    await until(() => existsSync(up), 30_000);
    work.ctrlC();
    await until(() => work.stderr().includes("stopping"), 10_000);
    work.ctrlC();
    await work.exited;
    expect(work.stdout()).toMatch(/failed ctrl-c-twice \(will retry\): killed by SIGTERM/);
    expect(await view("ctrl-c-twice")).toMatchObject({ state: "WAITING", attempts: 1 });
    await client.cancel("ctrl-c-twice");
  }, 60_000);
});

describe("frontier work's exit code", () => {
  it("is 3 when a task it ran failed for good, with one line naming it; 0 when a failure will be retried", async () => {
    await client.submit([
      { id: "doomed", deadline: Date.now() + 60_000, maxAttempts: 1 },
      { id: "fine", deadline: Date.now() + 120_000 },
    ]);
    const script = '[ "$FRONTIER_TASK_ID" = fine ]';
    const args = ["work", ...target, "--exit-when-idle", "--wait-ms", "500", "--no-metrics"];
    const r = await frontier([...args, "--", "sh", "-c", script], { timeoutMs: 60_000 });
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("failed doomed (for good): exit code 1");
    expect(r.stdout).toContain("completed fine");
    expect(r.stderr.trim().split("\n")).toEqual(["frontier work: 1 task failed for good: doomed"]);

    await client.submit([{ id: "retried", deadline: Date.now() + 60_000, maxAttempts: 3 }]);
    const retried = await frontier([...args, "--", "false"], { timeoutMs: 60_000 });
    expect(retried.stdout).toContain("failed retried (will retry)");
    expect(retried.code, retried.stderr).toBe(0);
    await client.cancel("retried");
  }, 120_000);
});

describe("frontier status", () => {
  it("ends quietly when its reader has gone (frontier status | true)", async () => {
    const r = await new Promise<CliResult>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", "status", ...target],
        { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      // Closed before the command writes anything: its first write finds no reader (EPIPE).
      child.stdout.destroy();
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, stdout: "", stderr }));
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 60_000);

  it("says in one line, and exits 1, when its output cannot be written (stdout on a full device)", async () => {
    const full = openSync("/dev/full", "w");
    try {
      const r = await new Promise<CliResult>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", "status", ...target],
          { cwd: REPO_ROOT, stdio: ["ignore", full, "pipe"] },
        );
        let stderr = "";
        child.stderr?.on("data", (c: Buffer) => {
          stderr += c.toString();
        });
        child.once("error", reject);
        child.once("close", (code) => resolve({ code, stdout: "", stderr }));
      });
      expect(r.stderr).toBe("frontier: cannot write the output (ENOSPC)\n");
      expect(r.code).toBe(1);
    } finally {
      closeSync(full);
    }
  }, 60_000);

  it("shows a cancelled prerequisite as CANCELLED, not as '0 not completed'", async () => {
    await client.submit([
      { id: "prep", deadline: Date.now() + 60_000, workflowId: "shown" },
      { id: "main-step", deadline: Date.now() + 60_000, workflowId: "shown", prerequisites: ["prep"] },
    ]);
    await client.cancel("prep", { workflowId: "shown" });
    const r = await frontier(["status", "main-step", "--workflow", "shown", ...target]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/state +CANCELLED/);
    expect(r.stdout).toMatch(/prerequisites +prep \(CANCELLED\)\n/);
    expect(r.stdout).not.toMatch(/not completed/);
  }, 60_000);
});

describe("pnpm frontier from another directory", () => {
  it("reads FILE, and runs work's command, in the directory pnpm was run in (INIT_CWD)", async () => {
    const here = await mkdtemp(join(dir, "elsewhere-"));
    await writeFile(join(here, "tasks.jsonl"), '{"id":"from-elsewhere","deadline":"+1h"}\n');
    await writeFile(join(here, "task.sh"), 'echo "ran in $(pwd -P)" >&2\n', { mode: 0o755 });
    const pnpm = (args: string[]) =>
      runToEnd("pnpm", ["-s", "--dir", REPO_ROOT, "frontier", ...args], { cwd: here });
    const submitted = await pnpm(["submit", "tasks.jsonl", ...target]);
    expect(submitted.stderr).toBe("");
    expect(submitted.stdout).toMatch(/^submitted 1 task /);
    expect(await view("from-elsewhere")).toMatchObject({ state: "RUNNABLE" });

    // A relative command, run where the user is (`--` keeps pnpm's options out of it).
    const worked = await pnpm([
      "work",
      ...target,
      "--exit-when-idle",
      "--wait-ms",
      "500",
      "--no-metrics",
      "--",
      "./task.sh",
    ]);
    expect(worked.code, worked.stderr).toBe(0);
    expect(worked.stdout).toContain("completed from-elsewhere");
    expect(worked.stderr).toContain(`ran in ${await realpath(here)}`);
  }, 120_000);
});
