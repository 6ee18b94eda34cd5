import type { Lease } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { runCommand } from "./work-command.js";

const task = { id: "t", deadline: 1, prerequisites: [] };
const lease: Lease = { taskId: "t", owner: "w", token: 1, expiresAt: 0, attempt: 1, task };
const run = (script: string, reasonFromStderr?: boolean) =>
  runCommand("sh", ["-c", script], task, lease, new AbortController().signal, {
    env: process.env,
    stdout: "stderr",
    stderr: () => {},
    ...(reasonFromStderr === undefined ? {} : { reasonFromStderr }),
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
});
