import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Lease } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { runCommand } from "./work-command.js";

const task = { id: "t", deadline: 1, prerequisites: [] };
const lease: Lease = { taskId: "t", owner: "w", token: 1, expiresAt: 0, attempt: 1, task };
const run = (
  script: string,
  reasonFromStderr?: boolean,
  more: { signal?: AbortSignal; cwd?: string; timeoutMs?: number; killGraceMs?: number } = {},
) =>
  runCommand("sh", ["-c", script], task, lease, more.signal ?? new AbortController().signal, {
    env: process.env,
    stdout: "stderr",
    stderr: () => {},
    ...(reasonFromStderr === undefined ? {} : { reasonFromStderr }),
    ...(more.cwd === undefined ? {} : { cwd: more.cwd }),
    ...(more.timeoutMs === undefined ? {} : { timeoutMs: more.timeoutMs }),
    ...(more.killGraceMs === undefined ? {} : { killGraceMs: more.killGraceMs }),
  }).then(
    () => "completed",
    (error: Error) => error.message,
  );

describe("runCommand", () => {
  it("fails with the exit code alone: a command's stderr can hold secrets, and a reason is readable by status", async () => {
    expect(await run("echo DB_PASSWORD=hunter2 >&2; exit 3")).toBe("exit code 3");
  });

  it("adds the tail of stderr to the reason when asked (--reason-from-stderr)", async () => {
    expect(await run("echo one >&2; echo disk full >&2; exit 3", true)).toBe("exit code 3: one | disk full");
  });

  it("completes on exit 0 and gives the command no lease secret", async () => {
    expect(await run('[ -z "$FRONTIER_TASK_SECRET" ] && [ "$FRONTIER_TASK_ID" = t ]')).toBe("completed");
  });

  it("runs the command in a process group of its own, so a terminal's Ctrl-C to frontier's group misses it", async () => {
    // Field 5 of /proc/PID/stat is the process group: the shell leads its own.
    expect(await run('[ "$(cut -d" " -f5 /proc/$$/stat)" = "$$" ]')).toBe("completed");
  });

  it("runs the command where it is told (the user's directory)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "frontier-work-cwd-"));
    try {
      expect(await run(`[ "$(pwd -P)" = "$(cd ${dir} && pwd -P)" ]`, false, { cwd: dir })).toBe("completed");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("past its --timeout, terminates the command (SIGKILL if it ignores SIGTERM) and fails: 'timed out after N ms'", async () => {
    expect(await run("sleep 30", false, { timeoutMs: 100 })).toBe("timed out after 100 ms");
    // A command that ignores SIGTERM still ends: SIGKILL after the grace.
    expect(
      await run("trap '' TERM; sleep 30 & wait; sleep 30", false, { timeoutMs: 100, killGraceMs: 100 }),
    ).toBe("timed out after 100 ms");
    // One that finishes within its limit is unaffected.
    expect(await run("exit 0", false, { timeoutMs: 60_000 })).toBe("completed");
  });

  it("when aborted, terminates the command's whole group, its children too, and fails the attempt", async () => {
    const dir = await mkdtemp(join(tmpdir(), "frontier-work-kill-"));
    try {
      const controller = new AbortController();
      const pidFile = join(dir, "child.pid");
      const outcome = run(`sleep 30 & echo $! > ${pidFile}; wait`, false, { signal: controller.signal });
      let pid = "";
      while (pid === "") {
        await sleep(20);
        pid = await readFile(pidFile, "utf8").then(
          (t) => t.trim(),
          () => "",
        );
      }
      controller.abort();
      expect(await outcome).toBe("killed by SIGTERM");
      // The shell's child got the signal as well: it is gone (or a zombie being reaped).
      const alive = () =>
        readFile(`/proc/${pid}/stat`, "utf8").then(
          (t) => !/\) Z /.test(t),
          () => false,
        );
      for (let i = 0; i < 100 && (await alive()); i++) await sleep(20);
      expect(await alive()).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
