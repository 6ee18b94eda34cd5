/**
 * The operators' commands: list (task pages by state, workflow), show (a
 * task with its prerequisites and dependents, or a workflow's DAG), retry
 * (an ended task, again from its first attempt; admin role) and top (the
 * cluster's counters, refreshed in place every second on a terminal).
 * Every line goes out through println, which escapes what others wrote.
 */
import type { ClusterStats, FrontierClient } from "@frontier/client";
import { DEFAULT_TASK_TYPE, TaskState as States, type TaskState, type TaskSummary } from "@frontier/core";
import { encodeRequest, type ListCursor, MAX_LIST_LIMIT, ProtocolError } from "@frontier/protocol";
import { flag, int, type OptionSpecs, str, target, typesOption } from "./args.js";
import { type CommandContext, prerequisiteStates, withClient } from "./client-commands.js";
import { CliError, usageError } from "./errors.js";
import { duration, taskLines, time, toJson } from "./format.js";
import { println } from "./io.js";
import { LiveScreen, type ScreenSize, screenSize } from "./live-screen.js";

const STATES = Object.values(States);
const DEFAULT_LIST_LIMIT = 50;
/** Tasks of a workflow `show` reads at most (pages of MAX_LIST_LIMIT); a bigger one is cut, and says so. */
const WORKFLOW_SHOWN = 10_000;

// -------------------------------------------------------------------- list

export const LIST_OPTIONS = {
  state: {
    type: "string",
    value: "S[,S…]",
    description: `only tasks in these states (${STATES.join(", ")})`,
  },
  workflow: { type: "string", value: "W", description: "only tasks of this workflow" },
  type: {
    type: "string",
    multiple: true,
    value: "T",
    description: 'only tasks of type T (repeatable, or a comma list; "default": those submitted without one)',
  },
  limit: {
    type: "string",
    value: "N",
    description: `tasks per page, 1..${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})`,
  },
  cursor: { type: "string", value: "C", description: "the next page: the cursor the previous page printed" },
} as const satisfies OptionSpecs;

/**
 * A cursor as the command line carries it: the typed ListCursor as JSON, in
 * base64url so a shell passes it untouched. Read back as JSON and checked
 * by the protocol's own shape check — never taken apart by position.
 */
export function cursorText(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

export function cursorOf(text: string, command: string): ListCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw usageError(`${command}: --cursor is not a cursor this command printed`);
  }
  try {
    encodeRequest({ op: "listTasks", limit: 1, after: value as ListCursor });
  } catch (err) {
    const why = err instanceof ProtocolError || err instanceof Error ? err.message : String(err);
    throw usageError(`${command}: --cursor is not a cursor this command printed (${why})`);
  }
  return value as ListCursor;
}

function statesOf(text: string | undefined, command: string): TaskState[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",").map((s) => s.trim().toUpperCase());
  for (const name of names) {
    if (!(STATES as string[]).includes(name))
      throw usageError(`${command}: unknown state ${JSON.stringify(name)} (one of ${STATES.join(", ")})`);
  }
  if (new Set(names).size !== names.length) throw usageError(`${command}: a state appears twice in --state`);
  return names as TaskState[];
}

function idOption(ctx: CommandContext, name: string): string | undefined {
  const v = str(ctx.parsed, name);
  if (v !== undefined && (v === "" || v.length > 256))
    throw usageError(`${ctx.command}: --${name} must be 1..256 characters`);
  return v;
}

export async function list(ctx: CommandContext): Promise<void> {
  const c = ctx.command;
  if (ctx.parsed.positionals.length > 0)
    throw usageError(`${c}: unexpected argument ${JSON.stringify(ctx.parsed.positionals[0])}`);
  const states = statesOf(str(ctx.parsed, "state"), c);
  const workflowId = idOption(ctx, "workflow");
  const types = typesOption(c, ctx.parsed);
  const limit = int(c, ctx.parsed, "limit", { min: 1, max: MAX_LIST_LIMIT }, DEFAULT_LIST_LIMIT);
  const cursor = str(ctx.parsed, "cursor");
  const after = cursor === undefined ? undefined : cursorOf(cursor, c);
  const page = await withClient(ctx, (client) =>
    client.listTasks({
      limit,
      ...(states === undefined ? {} : { states }),
      ...(workflowId === undefined ? {} : { workflowId }),
      ...(types === undefined ? {} : { types }),
      ...(after === undefined ? {} : { after }),
    }),
  );
  if (flag(ctx.parsed, "json")) {
    println(ctx.io.stdout, toJson({ ...page, cursor: page.next === null ? null : cursorText(page.next) }));
    return;
  }
  const lines = page.tasks.length === 0 ? ["no tasks"] : summaryTable(page.tasks);
  for (const m of page.shards.missing) {
    lines.push(
      `partial: shard ${m.shardId} did not answer (${m.code}${m.detail ? `: ${m.detail}` : ""}); its tasks are not listed`,
    );
  }
  if (page.next !== null) lines.push(`more: frontier list … --cursor ${cursorText(page.next)}`);
  println(ctx.io.stdout, ...lines);
}

/**
 * One aligned row per task: id, state, deadline, attempts, workflow, reason;
 * and each task's type after its workflow when the page holds a task of a
 * type other than the default.
 */
function summaryTable(tasks: readonly TaskSummary[]): string[] {
  const typed = tasks.some((t) => t.type !== undefined);
  const rows = tasks.map((t) => [
    t.id,
    t.state,
    time(t.deadline),
    `${t.attempts}/${t.maxAttempts}`,
    t.workflowId ?? "-",
    ...(typed ? [t.type ?? DEFAULT_TASK_TYPE] : []),
    t.reason ?? "",
  ]);
  const head = ["ID", "STATE", "DEADLINE", "ATTEMPTS", "WORKFLOW", ...(typed ? ["TYPE"] : []), "REASON"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

// -------------------------------------------------------------------- show

export const SHOW_OPTIONS = {
  workflow: {
    type: "string",
    value: "W",
    description: "with ID: the task's workflow; alone: draw the workflow's DAG with each task's state",
  },
} as const satisfies OptionSpecs;

/** Up to WORKFLOW_SHOWN tasks of a workflow, page by page; `cut` when there were more. */
async function workflowTasks(
  client: FrontierClient,
  workflowId: string,
): Promise<{ tasks: TaskSummary[]; cut: boolean }> {
  const tasks: TaskSummary[] = [];
  let after: ListCursor | undefined;
  for (;;) {
    const page = await client.getWorkflow(workflowId, {
      limit: MAX_LIST_LIMIT,
      ...(after === undefined ? {} : { after }),
    });
    tasks.push(...page.tasks);
    if (page.next === null) return { tasks, cut: false };
    if (tasks.length >= WORKFLOW_SHOWN) return { tasks, cut: true };
    after = page.next;
  }
}

export async function show(ctx: CommandContext): Promise<void> {
  const c = ctx.command;
  const [taskId, ...extra] = ctx.parsed.positionals;
  if (extra.length > 0) throw usageError(`${c}: expected at most one task ID`);
  const workflowId = idOption(ctx, "workflow");
  const { cluster } = target(c, ctx.parsed, ctx.io);
  const json = flag(ctx.parsed, "json");
  if (taskId === undefined) {
    if (workflowId === undefined)
      throw usageError(`${c}: expected a task ID, or --workflow W for a workflow's DAG`);
    const { tasks, cut } = await withClient(ctx, (client) => workflowTasks(client, workflowId));
    if (tasks.length === 0)
      throw new CliError(`no workflow ${JSON.stringify(workflowId)} in cluster ${JSON.stringify(cluster)}`);
    if (json) println(ctx.io.stdout, toJson({ workflowId, tasks, complete: !cut }));
    else println(ctx.io.stdout, ...dagLines(workflowId, tasks, cut));
    return;
  }
  if (taskId === "" || taskId.length > 256) throw usageError(`${c}: ID must be 1..256 characters`);
  const found = await withClient(ctx, async (client) => {
    const task = await client.getTask(taskId, workflowId === undefined ? {} : { workflowId });
    if (task === null) return null;
    const prerequisites = await prerequisiteStates(client, task);
    // Dependents share the task's workflow (a cluster routes a workflow to one shard).
    const graph =
      task.workflowId === undefined
        ? { tasks: [], cut: false }
        : await workflowTasks(client, task.workflowId);
    const dependents = graph.tasks.filter((t) => t.prerequisites?.includes(taskId));
    return { task, prerequisites, dependents, cut: graph.cut };
  });
  if (found === null) {
    if (json) println(ctx.io.stdout, "null");
    throw new CliError(`no task ${JSON.stringify(taskId)} in cluster ${JSON.stringify(cluster)}`);
  }
  const { task, prerequisites, dependents, cut } = found;
  if (json) {
    println(
      ctx.io.stdout,
      toJson({ ...task, dependents: dependents.map((d) => ({ id: d.id, state: d.state })) }),
    );
    return;
  }
  const lines = taskLines(task, prerequisites);
  if (dependents.length > 0) {
    lines.push(
      `  dependents     ${dependents.map((d) => `${d.id} (${d.state})`).join(", ")}${cut ? ", and perhaps more" : ""}`,
    );
  }
  println(ctx.io.stdout, ...lines);
}

/**
 * A workflow's DAG as an indented tree: roots (no prerequisite in the
 * workflow) first, each task under its first prerequisite with its
 * dependents below it; a task met again under another prerequisite is a
 * reference (`↑ id`), so each task's subtree is drawn once. O(tasks + edges).
 */
export function dagLines(workflowId: string, tasks: readonly TaskSummary[], cut: boolean): string[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const children = new Map<string, string[]>();
  const roots: string[] = [];
  for (const t of tasks) {
    const inWorkflow = (t.prerequisites ?? []).filter((p) => byId.has(p));
    if (inWorkflow.length === 0) roots.push(t.id);
    for (const p of inWorkflow) {
      let list = children.get(p);
      if (list === undefined) children.set(p, (list = []));
      list.push(t.id);
    }
  }
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  const lines = [
    `workflow ${workflowId}: ${tasks.length} task${tasks.length === 1 ? "" : "s"}${cut ? " (the first; more not read)" : ""} — ${[...counts].map(([s, n]) => `${s} ${n}`).join(", ")}`,
  ];
  const drawn = new Set<string>();
  // Iterative depth-first walk: a long chain must not overflow the stack.
  const stack: { id: string; depth: number }[] = roots.map((id) => ({ id, depth: 1 })).reverse();
  while (stack.length > 0) {
    const { id, depth } = stack.pop()!;
    const t = byId.get(id)!;
    const indent = "  ".repeat(depth);
    if (drawn.has(id)) {
      lines.push(`${indent}↑ ${id} (${t.state}, drawn above)`);
      continue;
    }
    drawn.add(id);
    const why = t.reason !== undefined && t.state !== "RUNNABLE" ? `  ${t.reason}` : "";
    lines.push(`${indent}${id}  ${t.state}  ${time(t.deadline)}${why}`);
    const kids = children.get(id) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ id: kids[i]!, depth: depth + 1 });
  }
  // A prerequisite outside what was read (a cut listing) leaves tasks unreached: list them flat.
  for (const t of tasks) if (!drawn.has(t.id)) lines.push(`  ${t.id}  ${t.state}  ${time(t.deadline)}`);
  return lines;
}

// ------------------------------------------------------------------- retry

export const RETRY_OPTIONS = {
  workflow: { type: "string", value: "W", description: "the task's workflowId, if it has one" },
  deadline: {
    type: "string",
    value: "MS",
    description: "a new deadline, ms since the epoch (needed when a hard deadline has passed)",
  },
} as const satisfies OptionSpecs;

export async function retry(ctx: CommandContext): Promise<void> {
  const c = ctx.command;
  const [taskId, ...extra] = ctx.parsed.positionals;
  if (taskId === undefined || extra.length > 0) throw usageError(`${c}: expected one task ID`);
  if (taskId === "" || taskId.length > 256) throw usageError(`${c}: ID must be 1..256 characters`);
  const workflowId = idOption(ctx, "workflow");
  const deadline = int(c, ctx.parsed, "deadline", { min: 0 });
  const r = await withClient(ctx, (client) =>
    client.retry(taskId, {
      ...(workflowId === undefined ? {} : { workflowId }),
      ...(deadline === undefined ? {} : { deadline }),
    }),
  );
  if (flag(ctx.parsed, "json")) println(ctx.io.stdout, toJson({ taskId, ...r }));
  else
    println(
      ctx.io.stdout,
      r.state === "RUNNABLE"
        ? `retried ${taskId}: RUNNABLE, from attempt 1`
        : `retried ${taskId}: WAITING for its prerequisites, then from attempt 1`,
    );
}

// --------------------------------------------------------------------- top

export const TOP_OPTIONS = {
  once: { type: "boolean", description: "print one snapshot and exit (also when stdout is not a terminal)" },
} as const satisfies OptionSpecs;

const TOP_INTERVAL_MS = 1_000;

/** One stats answer and when it came. */
export interface TopReading {
  readonly stats: ClusterStats;
  readonly at: number;
}

/** Per-second rates between two readings: the cluster's, and each shard's completions. */
export interface TopRates {
  readonly completed: number;
  readonly failed: number;
  readonly retries: number;
  readonly leaseTimeouts: number;
  readonly deadlineMisses: number;
  /** By shard id; a shard absent from either reading has none. */
  readonly completedByShard: ReadonlyMap<string, number>;
}

/** Per-second rates between two stats readings, or null for the first. */
export function rates(before: TopReading | undefined, now: TopReading): TopRates | null {
  if (before === undefined) return null;
  const s = Math.max(1e-3, (now.at - before.at) / 1_000);
  // Counts of ended tasks fall when they are compacted away: a rate never goes below 0.
  const per = (a: number, b: number) => Math.max(0, (b - a) / s);
  const completedBefore = new Map(before.stats.byShard.map((e) => [e.shardId, e.stats.counts.COMPLETED]));
  const completedByShard = new Map<string, number>();
  for (const e of now.stats.byShard) {
    const was = completedBefore.get(e.shardId);
    if (was !== undefined) completedByShard.set(e.shardId, per(was, e.stats.counts.COMPLETED));
  }
  return {
    completed: per(before.stats.counts.COMPLETED, now.stats.counts.COMPLETED),
    failed: per(before.stats.counts.FAILED, now.stats.counts.FAILED),
    retries: per(before.stats.retries, now.stats.retries),
    leaseTimeouts: per(before.stats.leaseTimeouts, now.stats.leaseTimeouts),
    deadlineMisses: per(before.stats.deadlineMisses, now.stats.deadlineMisses),
    completedByShard,
  };
}

/** The terminal's size: lines longer than `columns` are cut, a frame keeps under `rows`. */
export type TopScreen = ScreenSize;

/** Longest shard id shown in the table; a longer one is cut with "…". */
const SHARD_COLUMN = 16;

/**
 * The per-shard table's columns: header, the cell of one shard, and `drop`:
 * on a terminal too narrow for all of them, columns go in this order (1
 * first); the shard's id never does.
 */
const SHARD_TABLE: readonly {
  readonly header: string;
  readonly left?: boolean;
  readonly drop?: number;
  readonly cell: (e: ClusterStats["byShard"][number], r: TopRates | null, at: number) => string;
}[] = [
  { header: "shard", left: true, cell: (e) => clip(e.shardId, SHARD_COLUMN) },
  { header: "slots", drop: 1, cell: (e) => String(e.slots) },
  { header: "waiting", drop: 8, cell: (e) => String(e.stats.counts.WAITING) },
  { header: "runnable", drop: 9, cell: (e) => String(e.stats.runnable) },
  { header: "leased", drop: 7, cell: (e) => String(e.stats.leased) },
  {
    header: "done/s",
    drop: 6,
    cell: (e, r) => {
      const rate = r?.completedByShard.get(e.shardId);
      return rate === undefined ? "-" : rate.toFixed(1);
    },
  },
  { header: "deadline", drop: 5, cell: (e, _r, at) => relative(e.stats.frontierDeadline, at) },
  {
    header: "oldest",
    drop: 2,
    cell: (e) => (e.stats.runnable === 0 ? "-" : short(e.stats.oldestRunnableAgeMs)),
  },
  { header: "timeouts", drop: 3, cell: (e) => String(e.stats.leaseTimeouts) },
  { header: "misses", drop: 4, cell: (e) => String(e.stats.deadlineMisses) },
];

/** The per-shard table as lines, leaving out the columns that do not fit in `columns`. */
function shardTable(
  stats: ClusterStats,
  r: TopRates | null,
  at: number,
  columns: number | undefined,
): string[] {
  const cells = [
    SHARD_TABLE.map((c) => c.header),
    ...stats.byShard.map((e) => SHARD_TABLE.map((c) => c.cell(e, r, at))),
  ];
  const widths = SHARD_TABLE.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const kept = new Set(SHARD_TABLE.keys());
  const width = () => 2 + [...kept].reduce((n, i) => n + widths[i]!, 0) + 2 * (kept.size - 1);
  const dropOrder = [...SHARD_TABLE.keys()]
    .filter((i) => SHARD_TABLE[i]!.drop !== undefined)
    .sort((a, b) => SHARD_TABLE[a]!.drop! - SHARD_TABLE[b]!.drop!);
  for (const i of dropOrder) {
    if (columns === undefined || width() <= columns) break;
    kept.delete(i);
  }
  return cells.map((row) => {
    const shown = [...kept].map((i) =>
      SHARD_TABLE[i]!.left ? row[i]!.padEnd(widths[i]!) : row[i]!.padStart(widths[i]!),
    );
    return `  ${shown.join("  ").trimEnd()}`;
  });
}

/**
 * One frame of `top`: the cluster's totals, then a row per shard that
 * answered (slots, backlog, completions per second, frontier deadline,
 * oldest wait, lease timeouts, deadline misses). On a screen, no line is
 * wider than its columns (the table leaves out what does not fit, by
 * SHARD_TABLE's `drop`, then any line is cut with "…") and the frame has
 * fewer lines than its rows (the shards left out are counted on the last
 * line).
 */
export function topLines(
  cluster: string,
  stats: ClusterStats,
  r: TopRates | null,
  at: number,
  screen: TopScreen = {},
): string[] {
  const { answered, missing } = stats.shards;
  const rate = (k: "completed" | "failed" | "retries" | "leaseTimeouts" | "deadlineMisses") =>
    r === null ? "  -  " : `${r[k].toFixed(1)}/s`;
  const lines = [
    `frontier top — cluster ${cluster} — ${new Date(at).toISOString()} — ${answered.length} of ${answered.length + missing.length} shards answered`,
    ...missing.map((m) => `  missing: ${m.shardId} (${m.code}${m.detail ? `: ${m.detail}` : ""})`),
    `  backlog   ${STATES.map((s) => `${s} ${stats.counts[s]}`).join("  ")}`,
    `  runnable  ${stats.runnable}, earliest deadline ${time(stats.frontierDeadline)}, oldest waiting ${duration(stats.oldestRunnableAgeMs)}`,
    `  leases    ${stats.leased} live, ${stats.leaseTimeouts} timed out (${rate("leaseTimeouts")})`,
    `  rates     completed ${rate("completed")}  failed ${rate("failed")}  retries ${rate("retries")}`,
    `  misses    ${stats.deadlineMisses} deadline misses (${rate("deadlineMisses")})`,
  ];
  if (stats.byShard.length > 0) {
    const table = shardTable(stats, r, at, screen.columns);
    // Room for the header and at least one shard, and a line saying how many did not fit.
    const room = screen.rows === undefined ? Number.POSITIVE_INFINITY : screen.rows - 1 - lines.length - 1;
    if (table.length <= room) lines.push("", ...table);
    else if (room >= 3) {
      const shown = room - 2; // the table's header, and the line below
      lines.push("", ...table.slice(0, 1 + shown), `  … ${table.length - 1 - shown} more shards`);
    }
  }
  const columns = screen.columns;
  return columns === undefined ? lines : lines.map((line) => clip(line, columns));
}

/** `text` cut to `width` characters, the last one "…" when cut. */
function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** A deadline from `at`: "+9.8m" ahead, "-2.0s" past, or "-" for none. */
function relative(deadline: number | null, at: number): string {
  if (deadline === null) return "-";
  return deadline >= at ? `+${short(deadline - at)}` : `-${short(at - deadline)}`;
}

/** A duration in at most six characters: 850ms, 2.8s, 9.8m, 1.5h, 3.2d. */
function short(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)}h`;
  return `${Math.min(9_999, Math.round(ms / 86_400_000))}d`;
}

export async function top(ctx: CommandContext): Promise<void> {
  const c = ctx.command;
  if (ctx.parsed.positionals.length > 0)
    throw usageError(`${c}: unexpected argument ${JSON.stringify(ctx.parsed.positionals[0])}`);
  const { cluster } = target(c, ctx.parsed, ctx.io);
  const live = !flag(ctx.parsed, "once") && (ctx.io.stdout as { isTTY?: boolean }).isTTY === true;
  await withClient(ctx, async (client) => {
    if (!live) {
      const stats = await client.stats();
      if (flag(ctx.parsed, "json")) println(ctx.io.stdout, toJson(stats));
      else {
        // One snapshot may scroll: only the width is kept to.
        const { columns } = screenSize(ctx.io.stdout);
        println(
          ctx.io.stdout,
          ...topLines(cluster, stats, null, Date.now(), columns === undefined ? {} : { columns }),
        );
      }
      return;
    }
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    const off = ctx.io.onSignal(() => stop());
    const screen = new LiveScreen(ctx.io.stdout);
    let previous: TopReading | undefined;
    screen.enter();
    try {
      for (;;) {
        const reading = { stats: await client.stats(), at: Date.now() };
        const r = rates(previous, reading);
        previous = reading;
        screen.draw((size) => topLines(cluster, reading.stats, r, reading.at, size));
        const tick = new Promise<"tick">((resolve) =>
          setTimeout(() => resolve("tick"), TOP_INTERVAL_MS).unref(),
        );
        if ((await Promise.race([tick, stopped.then(() => "stop" as const)])) === "stop") return;
      }
    } finally {
      screen.leave();
      off();
    }
  });
}
