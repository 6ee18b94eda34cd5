/**
 * The commands that talk to a running cluster through the SDK: submit,
 * lease, complete, fail, release, cancel, status. Each connects, does one thing,
 * prints it (human lines, or one JSON document with --json) and closes.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { BATCH_BYTE_BUDGET, connect, type FrontierClient, type SubmitResult } from "@frontier/client";
import {
  isTaskType,
  MAX_TASK_TYPE_LENGTH,
  type TaskInput,
  type TaskState,
  type TaskView,
} from "@frontier/core";
import {
  encodeRequest,
  MAX_ID_LENGTH,
  MAX_LEASES_PER_REQUEST,
  MAX_REASON_LENGTH,
  MAX_TASKS_PER_BATCH,
  MAX_WAIT_MS,
  ProtocolError,
} from "@frontier/protocol";
import { flag, int, type OptionSpecs, type Parsed, str, TYPE_OPTION, target, typesOption } from "./args.js";
import { CliError, ExitCode, usageError } from "./errors.js";
import { leaseLine, PREREQUISITES_SHOWN, statsLines, taskLines, toJson } from "./format.js";
import { type Io, println, userPath } from "./io.js";
import { parseTasks, type SourcedTask } from "./tasks-file.js";

/**
 * `frontier lease` long-polls this long by default, ms. It answers as soon as a
 * task is runnable; the wait only covers the moment between a change and the
 * shards' next frontier announcement, when the coordinator may not know yet.
 */
const DEFAULT_LEASE_WAIT_MS = 1_000;

/** Requests from the CLI retry briefly: a person is waiting. */
const CLI_RETRY = { attempts: 3, baseMs: 100, maxMs: 500 } as const;
const CLI_CONNECT_TIMEOUT_MS = 3_000;

export interface CommandContext {
  readonly io: Io;
  readonly parsed: Parsed;
  readonly command: string;
}

export async function withClient<T>(
  ctx: CommandContext,
  f: (client: FrontierClient) => Promise<T>,
): Promise<T> {
  const { natsUrl, cluster, access } = target(ctx.command, ctx.parsed, ctx.io);
  const client = await connect({
    ...access,
    servers: natsUrl.split(","),
    cluster,
    connectTimeoutMs: CLI_CONNECT_TIMEOUT_MS,
    retry: CLI_RETRY,
  });
  try {
    return await f(client);
  } finally {
    await client.close();
  }
}

function out(ctx: CommandContext, human: () => string[], json: () => unknown): void {
  if (flag(ctx.parsed, "json")) println(ctx.io.stdout, toJson(json()));
  else println(ctx.io.stdout, ...human());
}

// ------------------------------------------------------------------ submit

export const SUBMIT_OPTIONS = {
  "idempotency-key": {
    type: "string",
    value: "K",
    description: "resubmitting with the same key changes nothing (default: a fresh key)",
  },
  type: {
    type: "string",
    value: "T",
    description:
      'the type of every task that names none (default: "default"); a task\'s own "type" field wins',
  },
} as const satisfies OptionSpecs;

export async function submit(ctx: CommandContext): Promise<void> {
  const [source, ...extra] = ctx.parsed.positionals;
  if (source === undefined || extra.length > 0) throw usageError("submit: expected one FILE, or - for stdin");
  const key = str(ctx.parsed, "idempotency-key");
  if (key !== undefined && (key === "" || key.length > MAX_ID_LENGTH - 8)) {
    throw usageError(`submit: --idempotency-key must be 1..${MAX_ID_LENGTH - 8} characters`);
  }
  const type = str(ctx.parsed, "type");
  if (type !== undefined && !isTaskType(type))
    throw usageError(
      `submit: --type ${JSON.stringify(type)} is not a task type (1..${MAX_TASK_TYPE_LENGTH} of letters, digits, "_", "." and "-")`,
    );
  const text = source === "-" ? await readStdin(ctx.io) : await readText(source, userPath(ctx.io, source));
  const sizes = new Map<Record<string, unknown>, number>();
  const sourced = parseTasks(text, source === "-" ? "stdin" : source, Date.now(), (task) => {
    if (type !== undefined && task["type"] === undefined) task["type"] = type;
    const size = wireSize(task);
    if (typeof size === "string") return size;
    sizes.set(task, size);
    return null;
  });
  const batches = batchesOf(sourced, sizes);
  // Several batches always go under one command key (made up when not given): batch i under
  // `<key>.<i>`, so the same command with that key resumes, and nothing is submitted twice.
  const commandKey = key ?? (batches.length > 1 ? randomUUID() : undefined);
  const resume = `run the same command with --idempotency-key ${commandKey} to resume (batches accepted already are answered from their keys; nothing is submitted twice)`;
  const progress = submitProgress(ctx, sourced.length, batches.length);
  let interrupted = false;
  const stopListening = batches.length > 1 ? ctx.io.onSignal(() => (interrupted = true)) : () => {};
  const results = await withClient(ctx, async (client) => {
    const done: SubmitResult[] = [];
    for (const [i, batch] of batches.entries()) {
      const accepted = done.reduce((n, r) => n + r.accepted, 0);
      if (interrupted) {
        // Between batches: each batch is all or nothing, so this line says exactly what is in.
        progress.end();
        throw new CliError(
          `interrupted after ${accepted} of ${sourced.length} tasks (${i} of ${batches.length} batches); ${resume}`,
          ExitCode.FAILED,
        );
      }
      progress.show(accepted);
      const idempotencyKey =
        commandKey === undefined ? undefined : batches.length === 1 ? commandKey : `${commandKey}.${i}`;
      try {
        done.push(
          await client.submit(
            batch.map((s) => s.task as unknown as TaskInput),
            idempotencyKey === undefined ? {} : { idempotencyKey },
          ),
        );
      } catch (err) {
        progress.end();
        if (done.length === 0) throw err;
        throw new CliError(
          `batch ${i + 1} of ${batches.length} failed after ${accepted} tasks were accepted: ${messageOf(err)}; ${resume}`,
          ExitCode.FAILED,
          { cause: err },
        );
      }
    }
    progress.end();
    return done;
  }).finally(stopListening);
  const accepted = results.reduce((n, r) => n + r.accepted, 0);
  const replayed = results.every((r) => r.replayed);
  const keys = results.map((r) => r.idempotencyKey);
  out(
    ctx,
    () => [
      replayed
        ? `already submitted: ${accepted} task${accepted === 1 ? "" : "s"} under idempotency key ${keys[0]} (nothing changed)`
        : `submitted ${accepted} task${accepted === 1 ? "" : "s"} (idempotency key ${keys[0]}${keys.length > 1 ? ` and ${keys.length - 1} more batches` : ""})`,
    ],
    () => ({ accepted, replayed, idempotencyKeys: keys }),
  );
}

/**
 * A task's size on the wire, or the wire's objection to its shape, as the
 * coordinator would refuse it: checked per task so a bad one is reported by
 * its line before anything is sent.
 */
function wireSize(task: Record<string, unknown>): number | string {
  try {
    return encodeRequest({ op: "submit", tasks: [task as unknown as TaskInput], idempotencyKey: "k" })
      .byteLength;
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/^tasks\[0\]\.?/, "") : String(err);
    const code = err instanceof ProtocolError ? `${err.code}: ` : "";
    return `${code}${message.replace(/^: /, "")}`;
  }
}

/** The tasks in wire-sized batches (`sizes`: each task's, from wireSize). */
/**
 * A progress line on stderr while a file of several batches is submitted,
 * redrawn in place: only on a terminal, and never with --json (scripts read
 * stdout; a pipe or a file gets nothing extra).
 */
function submitProgress(
  ctx: CommandContext,
  total: number,
  batches: number,
): { show(done: number): void; end(): void } {
  const stderr = ctx.io.stderr as NodeJS.WritableStream & { isTTY?: boolean };
  if (batches < 2 || stderr.isTTY !== true || flag(ctx.parsed, "json")) return { show() {}, end() {} };
  let shown = false;
  return {
    show(done) {
      stderr.write(`\r\u001b[2K${progressLine(done, total)}`);
      shown = true;
    },
    end() {
      if (shown) stderr.write("\r\u001b[2K");
      shown = false;
    },
  };
}

/** `submitting: 12,000 of 100,000 tasks (12%)`. */
export function progressLine(done: number, total: number): string {
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  return `submitting: ${done.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} tasks (${percent}%)`;
}

function batchesOf(
  sourced: readonly SourcedTask[],
  sizes: ReadonlyMap<Record<string, unknown>, number>,
): SourcedTask[][] {
  const batches: SourcedTask[][] = [];
  let current: SourcedTask[] = [];
  let bytes = 0;
  for (const s of sourced) {
    const size = sizes.get(s.task) ?? 0;
    if (current.length >= MAX_TASKS_PER_BATCH || (current.length > 0 && bytes + size > BATCH_BYTE_BUDGET)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(s);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The file at `path`, named in errors as the user wrote it (`given`). */
async function readText(given: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : messageOf(err);
    throw usageError(`submit: cannot read ${given}: ${why}`);
  }
}

async function readStdin(io: Io): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8");
}

// ------------------------------------------------------------------- lease

export const LEASE_OPTIONS = {
  max: {
    type: "string",
    value: "N",
    description: `most tasks to lease, 1..${MAX_LEASES_PER_REQUEST} (default 1)`,
  },
  "lease-ms": { type: "string", value: "MS", description: "lease length in ms (default 30000)" },
  worker: { type: "string", value: "ID", description: "lease owner (default: this host and process)" },
  "wait-ms": {
    type: "string",
    value: "MS",
    description: `wait up to MS for a runnable task, 0..${MAX_WAIT_MS} (default ${DEFAULT_LEASE_WAIT_MS})`,
  },
  ...TYPE_OPTION,
} as const satisfies OptionSpecs;

export async function lease(ctx: CommandContext): Promise<void> {
  noPositionals(ctx);
  const c = ctx.command;
  const max = int(c, ctx.parsed, "max", { min: 1, max: MAX_LEASES_PER_REQUEST }, 1);
  const leaseMs = int(c, ctx.parsed, "lease-ms", { min: 1 }, 30_000);
  const waitMs = int(c, ctx.parsed, "wait-ms", { min: 0, max: MAX_WAIT_MS }, DEFAULT_LEASE_WAIT_MS);
  const owner = idOption(ctx, "worker");
  const types = typesOption(c, ctx.parsed);
  const leases = await withClient(ctx, (client) =>
    client.lease({
      max,
      leaseMs,
      waitMs,
      ...(owner === undefined ? {} : { owner }),
      ...(types === undefined ? {} : { types }),
    }),
  );
  out(
    ctx,
    () => (leases.length === 0 ? ["no runnable task"] : leases.map(leaseLine)),
    () => leases,
  );
}

// ------------------------------------------------- complete, fail, release

const WORKFLOW_OPTION = {
  workflow: {
    type: "string",
    value: "W",
    description: "the task's workflowId, if it has one (routes straight to its shard)",
  },
} as const satisfies OptionSpecs;

const HELD_LEASE_OPTIONS = {
  token: { type: "string", value: "T", description: "the lease's fencing token (required)" },
  secret: {
    type: "string",
    value: "S",
    description: "the lease's secret, as `frontier lease` printed it (required)",
  },
} as const satisfies OptionSpecs;

export const COMPLETE_OPTIONS = {
  ...HELD_LEASE_OPTIONS,
  ...WORKFLOW_OPTION,
} as const satisfies OptionSpecs;

export async function complete(ctx: CommandContext): Promise<void> {
  const taskId = oneId(ctx);
  const token = tokenOf(ctx);
  const secret = secretOf(ctx);
  const workflowId = idOption(ctx, "workflow");
  const r = await withClient(ctx, (client) =>
    client.complete({ taskId, token, secret, ...(workflowId === undefined ? {} : { workflowId }) }),
  );
  out(
    ctx,
    () => [r.duplicate ? `${taskId} was already completed with token ${token}` : `completed ${taskId}`],
    () => ({ taskId, ...r }),
  );
}

export const RELEASE_OPTIONS = {
  ...HELD_LEASE_OPTIONS,
  ...WORKFLOW_OPTION,
} as const satisfies OptionSpecs;

/** Hands a lease back unstarted: the task is runnable again at once, its attempt not spent. */
export async function release(ctx: CommandContext): Promise<void> {
  const taskId = oneId(ctx);
  const token = tokenOf(ctx);
  const secret = secretOf(ctx);
  const workflowId = idOption(ctx, "workflow");
  const r = await withClient(ctx, (client) =>
    client.release({ taskId, token, secret, ...(workflowId === undefined ? {} : { workflowId }) }),
  );
  out(
    ctx,
    () => [
      r.duplicate
        ? `${taskId} was already released with token ${token}`
        : `released ${taskId}; it is runnable again, its attempt not spent`,
    ],
    () => ({ taskId, ...r }),
  );
}

export const FAIL_OPTIONS = {
  ...HELD_LEASE_OPTIONS,
  "no-retry": { type: "boolean", description: "fail the task for good, whatever attempts it has left" },
  reason: { type: "string", value: "TEXT", description: "why it failed" },
  ...WORKFLOW_OPTION,
} as const satisfies OptionSpecs;

export async function fail(ctx: CommandContext): Promise<void> {
  const taskId = oneId(ctx);
  const token = tokenOf(ctx);
  const secret = secretOf(ctx);
  const workflowId = idOption(ctx, "workflow");
  const reason = reasonOption(ctx);
  const r = await withClient(ctx, (client) =>
    client.fail(
      { taskId, token, secret, ...(workflowId === undefined ? {} : { workflowId }) },
      { retryable: !flag(ctx.parsed, "no-retry"), reason: reason ?? "" },
    ),
  );
  out(
    ctx,
    () => [
      r.state === "FAILED"
        ? `failed ${taskId} for good`
        : `failed ${taskId}; it will be retried (${r.state})`,
    ],
    () => ({ taskId, ...r }),
  );
}

// ------------------------------------------------------------------ cancel

export const CANCEL_OPTIONS = {
  reason: { type: "string", value: "TEXT", description: "why it was cancelled" },
  ...WORKFLOW_OPTION,
} as const satisfies OptionSpecs;

export async function cancel(ctx: CommandContext): Promise<void> {
  const taskId = oneId(ctx);
  const workflowId = idOption(ctx, "workflow");
  const reason = reasonOption(ctx);
  await withClient(ctx, (client) =>
    client.cancel(taskId, {
      ...(workflowId === undefined ? {} : { workflowId }),
      ...(reason === undefined ? {} : { reason }),
    }),
  );
  out(
    ctx,
    () => [`cancelled ${taskId}`],
    () => ({ taskId, state: "CANCELLED" }),
  );
}

// ------------------------------------------------------------------ status

export const STATUS_OPTIONS = { ...WORKFLOW_OPTION } as const satisfies OptionSpecs;

export async function status(ctx: CommandContext): Promise<void> {
  const [taskId, ...extra] = ctx.parsed.positionals;
  if (extra.length > 0) throw usageError("status: expected at most one task ID");
  const { cluster } = target(ctx.command, ctx.parsed, ctx.io);
  if (taskId === undefined) {
    // --workflow only routes a task lookup; without an ID it would be ignored, and the
    // cluster's counters shown as if they were the workflow's.
    if (str(ctx.parsed, "workflow") !== undefined) {
      throw usageError(
        "status: --workflow W needs a task ID (frontier status ID --workflow W); a workflow's tasks are not listed",
      );
    }
    const stats = await withClient(ctx, (client) => client.stats());
    out(
      ctx,
      () => statsLines(cluster, stats),
      () => stats,
    );
    return;
  }
  checkId(taskId, "ID");
  const workflowId = idOption(ctx, "workflow");
  const json = flag(ctx.parsed, "json");
  const found = await withClient(ctx, async (client) => {
    const task = await client.getTask(taskId, workflowId === undefined ? {} : { workflowId });
    // For people: each prerequisite's own state (a count of those not completed
    // reads "0" once the task has ended, whatever ended it). --json shows the task as it is.
    if (task === null || json) return { task, prerequisites: new Map<string, TaskState | null>() };
    return { task, prerequisites: await prerequisiteStates(client, task) };
  });
  const { task, prerequisites } = found;
  if (task === null) {
    if (json) println(ctx.io.stdout, "null");
    throw new CliError(`no task ${JSON.stringify(taskId)} in cluster ${JSON.stringify(cluster)}`);
  }
  out(
    ctx,
    () => taskLines(task, prerequisites),
    () => task,
  );
}

/**
 * The states of a task's first PREREQUISITES_SHOWN prerequisites (null: not
 * found, or not answered), looked up at once; they share its workflow, so
 * they live on its shard.
 */
export async function prerequisiteStates(
  client: FrontierClient,
  task: TaskView,
): Promise<Map<string, TaskState | null>> {
  const ids = task.prerequisites.slice(0, PREREQUISITES_SHOWN);
  const options = task.workflowId === undefined ? {} : { workflowId: task.workflowId };
  const states = await Promise.all(
    ids.map((id) =>
      client.getTask(id, options).then(
        (view) => view?.state ?? null,
        () => null,
      ),
    ),
  );
  return new Map(ids.map((id, i) => [id, states[i] ?? null]));
}

// ----------------------------------------------------------------- helpers

function noPositionals(ctx: CommandContext): void {
  if (ctx.parsed.positionals.length > 0) {
    throw usageError(`${ctx.command}: unexpected argument ${JSON.stringify(ctx.parsed.positionals[0])}`);
  }
}

function oneId(ctx: CommandContext): string {
  const [id, ...extra] = ctx.parsed.positionals;
  if (id === undefined || extra.length > 0) throw usageError(`${ctx.command}: expected one task ID`);
  checkId(id, "ID", ctx.command);
  return id;
}

function checkId(id: string, what: string, command = "status"): void {
  if (id === "" || id.length > MAX_ID_LENGTH) {
    throw usageError(`${command}: ${what} must be 1..${MAX_ID_LENGTH} characters`);
  }
}

function idOption(ctx: CommandContext, name: string): string | undefined {
  const v = str(ctx.parsed, name);
  if (v !== undefined) checkId(v, `--${name}`, ctx.command);
  return v;
}

function tokenOf(ctx: CommandContext): number {
  const token = int(ctx.command, ctx.parsed, "token", { min: 0 });
  if (token === undefined)
    throw usageError(`${ctx.command}: --token T is required (the lease's fencing token)`);
  return token;
}

function secretOf(ctx: CommandContext): string {
  const secret = str(ctx.parsed, "secret");
  if (secret === undefined || secret.length === 0)
    throw usageError(`${ctx.command}: --secret S is required (the lease's secret, from its grant)`);
  return secret;
}

function reasonOption(ctx: CommandContext): string | undefined {
  const reason = str(ctx.parsed, "reason");
  if (reason !== undefined && reason.length > MAX_REASON_LENGTH) {
    throw usageError(`${ctx.command}: --reason must be at most ${MAX_REASON_LENGTH} characters`);
  }
  return reason;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
