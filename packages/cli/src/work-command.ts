/**
 * `frontier work -- CMD ARGS…`: a worker that runs CMD once per leased task,
 * with the task as JSON on stdin and its id in FRONTIER_TASK_ID. The JSON is
 * `{ id, deadline, prerequisites, workflowId?, payload?, type?, timeoutMs?,
 * results?, resultsOmitted? }` (`type` absent for the default type; its
 * type, default included, is in FRONTIER_TASK_TYPE): `results` maps each prerequisite that
 * completed with a result to it (absent when none did); `resultsOmitted`
 * counts those the lease left out for size (read them with `frontier status`).
 * Exit 0 completes the task, with --result stdout taking the command's stdout
 * as the task's result (parsed as JSON when it is JSON, else the text; at
 * most MAX_RESULT_BYTES, else the task fails for good, saying so); any other
 * exit fails it (retryably) with the exit code
 * as the reason, and with --reason-from-stderr the tail of the command's
 * stderr too: a failure reason is visible to anyone who can read the task
 * (`frontier status`), and stderr may hold secrets. While CMD runs, the
 * lease is kept alive by heartbeats; if it is lost anyway, CMD gets SIGTERM.
 *
 * Runs until SIGINT / SIGTERM (then stops leasing and lets running commands
 * finish; a second signal terminates them) or, with --exit-when-idle, until a
 * lease request finds nothing to do and nothing runs. A stdout whose reader
 * went away (`frontier work | head`) stops it as a first signal does. Each
 * command runs in a process group of its own, so the SIGINT a terminal sends
 * to its foreground group on Ctrl-C reaches frontier and not the commands:
 * they finish, and their tasks complete, as promised. Exits 3
 * (ExitCode.TASKS_FAILED) when a task it ran failed for good.
 *
 * The command runs in the directory the user ran frontier in (io.userCwd:
 * under `pnpm frontier`, pnpm's INIT_CWD), as `-- ./script.sh` means.
 *
 * Serves its metrics (metrics/work-metrics.ts) and /healthz, /readyz on
 * DEFAULT_METRICS_PORTS.work unless told otherwise (metrics/serve.ts).
 */
import { spawn } from "node:child_process";
import { TaskError, type WorkerEvent } from "@frontier/client";
import { DEFAULT_TASK_TYPE, type Lease, type Task } from "@frontier/core";
import { encodedByteLength, MAX_RESULT_BYTES, MAX_TIMEOUT_MS, MAX_WAIT_MS } from "@frontier/protocol";
import { flag, int, type OptionSpecs, str, TYPE_OPTION, target, typesOption } from "./args.js";
import { type CommandContext, withClient } from "./client-commands.js";
import { CliError, describeError, ExitCode, usageError } from "./errors.js";
import { duration, toJson } from "./format.js";
import { println } from "./io.js";
import { metricsOptions } from "./metrics/options.js";

export const WORK_OPTIONS = {
  concurrency: { type: "string", value: "N", description: "commands run at once (default 1)" },
  "lease-ms": {
    type: "string",
    value: "MS",
    description: "lease length in ms, kept alive by heartbeats (default 30000)",
  },
  "wait-ms": {
    type: "string",
    value: "MS",
    description: `long-poll of each lease request, 0..${MAX_WAIT_MS} (default 5000)`,
  },
  worker: { type: "string", value: "ID", description: "lease owner (default: this host and process)" },
  ...TYPE_OPTION,
  "exit-when-idle": { type: "boolean", description: "exit once nothing is runnable and nothing runs" },
  timeout: {
    type: "string",
    value: "MS",
    description:
      "run time limit of each command in ms (default: the task's timeoutMs, if any): then SIGTERM, SIGKILL 5 s later, and the task fails retryably, 'timed out after MS ms'",
  },
  result: {
    type: "string",
    value: "FROM",
    description: `stdout: the command's stdout is the task's result (JSON when it parses as JSON, else the text; empty: none; at most ${MAX_RESULT_BYTES} bytes encoded), handed to its dependents on stdin; the stdout is then not shown`,
  },
  "reason-from-stderr": {
    type: "boolean",
    description:
      "add the last lines of a failed command's stderr to the task's failure reason (readable by status)",
  },
  ...metricsOptions("work"),
} as const satisfies OptionSpecs;

/** Bytes of a command's stderr kept for the failure reason. */
const STDERR_TAIL_BYTES = 600;
/** Task ids named in the line `work` ends with when tasks failed for good. */
const FAILED_IDS_SHOWN = 10;
/** After SIGTERM, how long a command gets before SIGKILL, ms. */
const KILL_GRACE_MS = 5_000;

/** A command that cannot be started at all (not found, not executable): the worker stops. */
class SpawnError extends Error {
  override readonly name = "SpawnError";
}

export async function work(ctx: CommandContext): Promise<void> {
  const [cmd, ...args] = ctx.parsed.positionals;
  if (cmd === undefined)
    throw usageError("work: expected a command to run: frontier work [options] -- CMD ARGS…");
  const c = ctx.command;
  const concurrency = int(c, ctx.parsed, "concurrency", { min: 1, max: 1_000 }, 1);
  const leaseMs = int(c, ctx.parsed, "lease-ms", { min: 100 }, 30_000);
  const waitMs = int(c, ctx.parsed, "wait-ms", { min: 0, max: MAX_WAIT_MS }, 5_000);
  const owner = str(ctx.parsed, "worker");
  const types = typesOption(c, ctx.parsed);
  const json = flag(ctx.parsed, "json");
  const exitWhenIdle = flag(ctx.parsed, "exit-when-idle");
  const reasonFromStderr = flag(ctx.parsed, "reason-from-stderr");
  const resultFrom = str(ctx.parsed, "result");
  if (resultFrom !== undefined && resultFrom !== "stdout")
    throw usageError(
      `${c}: --result takes "stdout" (the command's stdout is the task's result), got ${JSON.stringify(resultFrom)}`,
    );
  // The worker's own limit, instead of the task's (the SDK and the shard still enforce a task's
  // own timeoutMs: its signal aborts, which kills the command too).
  const timeoutMs = int(c, ctx.parsed, "timeout", { min: 1, max: MAX_TIMEOUT_MS });
  // Loaded here, not with the command table: other commands need no metrics library.
  const { metricsFlagsOf, serveMetrics } = await import("./metrics/serve.js");
  const { WorkMetrics } = await import("./metrics/work-metrics.js");
  const { processRegistry, renderMetrics, watchConnection } = await import("@frontier/metrics");
  const metricsFlags = metricsFlagsOf(ctx, "work");
  const metrics = new WorkMetrics(concurrency);
  const { io } = ctx;
  const context = target(ctx.command, ctx.parsed, io);

  await withClient(ctx, async (client) => {
    let fatal: unknown = null;
    const failedForGood: string[] = [];
    const started = new Map<string, number>();
    const worker = client.work(
      metrics.timed((task, { lease, signal }) =>
        runCommand(cmd, args, task, lease, signal, {
          env: { ...io.env, FRONTIER_CLUSTER: client.cluster },
          cwd: io.userCwd ?? io.cwd,
          // With --json, stdout carries our events: the command's output goes to stderr.
          stdout: resultFrom === "stdout" ? "result" : json ? "stderr" : "inherit",
          stderr: (chunk) => io.stderr.write(chunk),
          reasonFromStderr,
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        }),
      ),
      {
        concurrency,
        leaseMs,
        waitMs,
        ...(owner === undefined ? {} : { owner }),
        ...(types === undefined ? {} : { types }),
      },
    );
    metrics.follow(worker);
    const connection = watchConnection(client.nats);
    let stopping = false;
    const stopped = () => {
      stopping = true;
    };
    worker.done.then(stopped, stopped);
    const endpoint =
      metricsFlags === null
        ? undefined
        : await serveMetrics(ctx, metricsFlags, {
            render: () => renderMetrics([processRegistry(), metrics.registry]),
            checks: () => ({
              nats: connection.check,
              worker: () => (stopping ? "the worker is stopping" : null),
            }),
          }).catch(async (error: unknown) => {
            await worker.stop();
            throw error;
          });
    if (endpoint !== undefined) {
      if (json)
        println(io.stdout, toJson({ event: "metrics", url: endpoint.url, at: new Date().toISOString() }));
      else println(io.stderr, `frontier work: metrics on ${endpoint.url}`);
    }
    const report = (event: Record<string, unknown>, human: string) => {
      if (json) println(io.stdout, toJson({ ...event, at: new Date().toISOString() }));
      else println(io.stdout, human);
    };
    worker.on((e: WorkerEvent) => {
      switch (e.type) {
        case "task:started":
          started.set(key(e.lease), Date.now());
          report(
            { event: "started", taskId: e.lease.taskId, attempt: e.lease.attempt },
            `started ${e.lease.taskId}`,
          );
          break;
        case "task:completed": {
          const ms = elapsed(started, e.lease);
          report(
            { event: "completed", taskId: e.lease.taskId, ms },
            `completed ${e.lease.taskId} (${duration(ms)})`,
          );
          break;
        }
        case "task:failed": {
          if (e.error instanceof SpawnError && fatal === null) {
            fatal = e.error;
            void worker.stop();
          }
          if (e.state === "FAILED") failedForGood.push(e.lease.taskId);
          const reason = e.error instanceof Error ? e.error.message : String(e.error);
          report(
            { event: "failed", taskId: e.lease.taskId, state: e.state, reason },
            `failed ${e.lease.taskId} (${e.state === "FAILED" ? "for good" : "will retry"}): ${reason}`,
          );
          break;
        }
        case "task:lost":
          report(
            { event: "lost", taskId: e.lease.taskId, reason: e.error.message },
            `lost ${e.lease.taskId}: ${e.error.message}`,
          );
          break;
        case "task:released":
          report(
            { event: "released", taskId: e.lease.taskId, reason: e.reason },
            `released ${e.lease.taskId} unstarted (${e.reason === "stopping" ? "stopping" : "waited too long for a slot"}); its attempt not spent`,
          );
          break;
        case "idle":
          if (exitWhenIdle && e.running === 0) void worker.stop();
          break;
        case "error":
          println(io.stderr, `frontier work: ${e.during}: ${describeError(e.error, context)}`);
          break;
      }
    });
    let signals = 0;
    const off = io.onSignal(() => {
      signals++;
      if (signals === 1) {
        if (!json)
          println(
            io.stderr,
            "frontier work: stopping; running commands finish, leased ones not started go back (signal again to terminate them)",
          );
        void worker.stop();
      } else {
        void worker.stop({ abortInFlight: true });
      }
    });
    // Nobody reads our output any more: stop as on a first signal (running commands finish).
    const outputGone = () => void worker.stop();
    io.stdout.on("error", outputGone);
    try {
      await worker.done;
    } finally {
      off();
      io.stdout.off("error", outputGone);
      connection.stop();
      await endpoint?.close();
    }
    if (fatal !== null) throw new CliError(`work: ${(fatal as Error).message}`);
    if (failedForGood.length > 0) {
      const n = failedForGood.length;
      const shown = failedForGood.slice(0, FAILED_IDS_SHOWN).join(", ");
      const more = n > FAILED_IDS_SHOWN ? ` and ${n - FAILED_IDS_SHOWN} more` : "";
      throw new CliError(
        `work: ${n} task${n === 1 ? "" : "s"} failed for good: ${shown}${more}`,
        ExitCode.TASKS_FAILED,
      );
    }
  });
}

/** What a command reads on stdin: the task, with its prerequisites' results by id when it has any. */
function stdinOf(task: Task, lease: Lease): Record<string, unknown> {
  if (lease.results === undefined && lease.resultsOmitted === undefined) return { ...task };
  // Without prototype: a prerequisite id such as "__proto__" is a plain key.
  const results: Record<string, unknown> = Object.create(null);
  for (const r of lease.results ?? []) results[r.taskId] = r.result;
  return {
    ...task,
    results,
    ...(lease.resultsOmitted === undefined ? {} : { resultsOmitted: lease.resultsOmitted }),
  };
}

/**
 * The result a command's stdout makes (--result stdout): none when empty
 * (blank), the JSON value when it parses as JSON, else the text. Above
 * MAX_RESULT_BYTES (raw, or encoded) a non-retryable TaskError: the same
 * command would print the same again.
 */
export function resultOf(stdout: Buffer): unknown {
  if (stdout.length > MAX_RESULT_BYTES)
    throw new TaskError(
      `--result stdout: the command printed more than MAX_RESULT_BYTES (${MAX_RESULT_BYTES}) bytes`,
      { retryable: false },
    );
  const text = stdout.toString("utf8");
  if (text.trim() === "") return undefined;
  let result: unknown;
  try {
    result = JSON.parse(text);
  } catch {
    result = text.replace(/\r?\n$/, ""); // one trailing newline is the line's end, not the value
  }
  const bytes = encodedByteLength(result);
  if (bytes > MAX_RESULT_BYTES)
    throw new TaskError(
      `--result stdout: the result is ${bytes} bytes encoded, more than MAX_RESULT_BYTES (${MAX_RESULT_BYTES})`,
      { retryable: false },
    );
  return result;
}

function key(lease: Lease): string {
  return `${lease.taskId}\u0000${lease.token}`;
}

function elapsed(started: Map<string, number>, lease: Lease): number {
  const t = started.get(key(lease));
  started.delete(key(lease));
  return t === undefined ? 0 : Date.now() - t;
}

interface RunOptions {
  readonly env: NodeJS.ProcessEnv;
  /** The command's working directory (default: this process's). */
  readonly cwd?: string;
  /** Where the command's stdout goes: ours, our stderr, or the task's result (--result stdout). */
  readonly stdout: "inherit" | "stderr" | "result";
  readonly stderr: (chunk: Buffer) => void;
  /** Put the tail of the command's stderr in the failure reason (else only the exit code or signal). */
  readonly reasonFromStderr?: boolean;
  /**
   * The command's run time limit, ms: then it is killed as on an abort, and
   * the task fails (retryably) with the reason `timed out after N ms`.
   */
  readonly timeoutMs?: number;
  /** After SIGTERM, how long the command gets before SIGKILL, ms. Default KILL_GRACE_MS. */
  readonly killGraceMs?: number;
}

/**
 * Run CMD for one task; resolves on exit 0 (with stdout "result", to the
 * result its stdout makes, see resultOf), throws a TaskError (or SpawnError)
 * otherwise.
 */
export function runCommand(
  cmd: string,
  args: readonly string[],
  task: Task,
  lease: Lease,
  signal: AbortSignal,
  options: RunOptions,
): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      ...options.env,
      FRONTIER_TASK_ID: task.id,
      FRONTIER_TASK_ATTEMPT: String(lease.attempt),
      FRONTIER_TASK_TOKEN: String(lease.token),
      FRONTIER_TASK_DEADLINE: String(task.deadline),
      FRONTIER_TASK_TYPE: task.type ?? DEFAULT_TASK_TYPE,
    };
    if (task.workflowId !== undefined) env["FRONTIER_WORKFLOW_ID"] = task.workflowId;
    else delete env["FRONTIER_WORKFLOW_ID"];
    // detached: a process group of its own (see the top of this file). The
    // command's own children are in that group too, so killing it reaches them.
    const child = spawn(cmd, [...args], {
      stdio: ["pipe", options.stdout === "inherit" ? "inherit" : "pipe", "pipe"],
      env,
      detached: true,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        child.kill(sig); // the group is gone (or never was): the command alone, if it still runs
      }
    };
    let tail = Buffer.alloc(0);
    child.stderr?.on("data", (chunk: Buffer) => {
      options.stderr(chunk);
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
    });
    // --result stdout: kept up to one byte past the limit (enough to say it is too large).
    const out: Buffer[] = [];
    let outBytes = 0;
    child.stdout?.on("data", (chunk: Buffer) => {
      if (options.stdout !== "result") return options.stderr(chunk);
      if (outBytes > MAX_RESULT_BYTES) return;
      out.push(chunk);
      outBytes += chunk.length;
    });
    // The command may exit without reading its input.
    child.stdin?.on("error", () => {});
    child.stdin?.end(`${toJson(stdinOf(task, lease))}\n`);

    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (killTimer !== undefined) return; // killed already (its limit, then an abort)
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), options.killGraceMs ?? KILL_GRACE_MS);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const limitTimer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            onAbort();
          }, options.timeoutMs);
    const cleanup = () => {
      signal.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      clearTimeout(limitTimer);
    };
    child.once("error", (err: NodeJS.ErrnoException) => {
      cleanup();
      const why =
        err.code === "ENOENT"
          ? "command not found"
          : err.code === "EACCES"
            ? "permission denied"
            : err.message;
      reject(new SpawnError(`cannot run ${JSON.stringify(cmd)}: ${why}`));
    });
    child.once("close", (code, sig) => {
      cleanup();
      // Past its limit, whatever it exited with: the limit is why it ended (or should have).
      if (timedOut) return reject(new TaskError(`timed out after ${options.timeoutMs} ms`));
      if (code === 0) {
        if (options.stdout !== "result") return resolve(undefined);
        try {
          return resolve(resultOf(Buffer.concat(out)));
        } catch (error) {
          return reject(error);
        }
      }
      const how = sig !== null ? `killed by ${sig}` : `exit code ${code}`;
      if (options.reasonFromStderr !== true) return reject(new TaskError(how));
      const text = tail
        .toString("utf8")
        .replace(/^[^\n]*\uFFFD/, "")
        .trim()
        .split(/\r?\n/)
        .slice(-3)
        .join(" | ");
      reject(new TaskError(text === "" ? how : `${how}: ${text}`));
    });
  });
}
