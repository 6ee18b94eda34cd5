/**
 * Human-readable output. (`--json` prints the SDK's objects as they are.)
 * Times that look like milliseconds since the epoch are shown as ISO dates;
 * others (a deadline in some other unit) as the number.
 */
import type { ClusterStats } from "@frontier/client";
import { DEFAULT_TASK_TYPE, type Lease, type TaskState, type TaskView } from "@frontier/core";

/** Epoch ms from 2001 on: smaller deadlines are taken to be in some other unit. */
const EPOCH_MS_FROM = 1e12;

export function time(t: number | null | undefined): string {
  if (t === null || t === undefined) return "-";
  if (t >= EPOCH_MS_FROM && t < 1e14) return new Date(t).toISOString();
  return String(t);
}

export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function leaseLine(lease: Lease): string {
  const parts = [
    lease.taskId,
    `token=${lease.token}`,
    ...(lease.secret === undefined ? [] : [`secret=${lease.secret}`]),
    `attempt=${lease.attempt}`,
    `deadline=${time(lease.task.deadline)}`,
    `expires=${time(lease.expiresAt)}`,
  ];
  if (lease.task.workflowId !== undefined) parts.push(`workflow=${lease.task.workflowId}`);
  if (lease.task.type !== undefined) parts.push(`type=${lease.task.type}`);
  if (lease.task.payload !== undefined) parts.push(`payload=${compact(lease.task.payload)}`);
  return parts.join("  ");
}

/**
 * The cluster's stats, and which shards they cover: when some did not
 * answer, a `partial:` line right under the header names them with the
 * error code of their failure, as the numbers leave their tasks out.
 */
export function statsLines(cluster: string, stats: ClusterStats): string[] {
  const { answered, missing } = stats.shards;
  const total = Object.values(stats.counts).reduce((a, b) => a + b, 0);
  const counts = Object.entries(stats.counts)
    .map(([state, n]) => `${state} ${n}`)
    .join("  ");
  const frontier =
    stats.frontierDeadline === null
      ? "nothing runnable"
      : `earliest runnable deadline ${time(stats.frontierDeadline)}, ${stats.runnable} runnable, oldest waiting ${duration(stats.oldestRunnableAgeMs)}`;
  const known = answered.length + missing.length;
  const coverage =
    known === 0
      ? ""
      : missing.length === 0
        ? ` on ${known} shard${known === 1 ? "" : "s"}`
        : ` on ${answered.length} of ${known} shards`;
  return [
    `cluster ${JSON.stringify(cluster)}: ${total} task${total === 1 ? "" : "s"}${coverage}`,
    ...partialLines(missing),
    `  ${counts}`,
    `  frontier: ${frontier}`,
    `  leased ${stats.leased}, lease timeouts ${stats.leaseTimeouts}, retries ${stats.retries}, deadline misses ${stats.deadlineMisses}, stale rejections ${stats.staleRejections}`,
    ...typeLines(stats),
  ];
}

/** Types `status` names one by one; the rest are counted. */
export const TYPES_SHOWN = 12;

/**
 * Runnable and leased tasks per type, when some task of a type other than
 * the default is runnable or leased (else nothing: every task is of the
 * default type, and the lines above say it all).
 */
function typeLines(stats: ClusterStats): string[] {
  const types = stats.types ?? [];
  if (!types.some((t) => t.type !== DEFAULT_TASK_TYPE) && (stats.typesOmitted ?? 0) === 0) return [];
  const shown = types.slice(0, TYPES_SHOWN).map((t) => `${t.type} ${t.runnable}/${t.leased}`);
  const more = types.length - shown.length + (stats.typesOmitted ?? 0);
  return [`  types (runnable/leased): ${shown.join("  ")}${more > 0 ? `  and ${more} more` : ""}`];
}

/** Nothing when every shard answered; else one line naming those that did not. */
function partialLines(missing: ClusterStats["shards"]["missing"]): string[] {
  const [only] = missing;
  if (only === undefined) return [];
  const why = (m: (typeof missing)[number]) => (m.detail === undefined ? m.code : `${m.code}: ${m.detail}`);
  if (missing.length === 1) {
    return [`  partial: ${only.shardId} did not answer (${why(only)}); its tasks are not counted`];
  }
  const named = missing.map((m) => `${m.shardId} (${why(m)})`).join(", ");
  return [`  partial: ${missing.length} shards did not answer: ${named}; their tasks are not counted`];
}

/** Prerequisites `status` shows with their states; the rest are counted. */
export const PREREQUISITES_SHOWN = 20;

/**
 * A task as `status ID` shows it. `prerequisites` holds the states of those
 * looked up (null: not found); without them only the ids are shown, and a
 * waiting task's count of prerequisites not completed.
 */
export function taskLines(
  task: TaskView,
  prerequisites: ReadonlyMap<string, TaskState | null> = new Map(),
): string[] {
  const rows: [string, string][] = [
    ["state", task.state],
    ["deadline", `${time(task.deadline)}${task.hardDeadline ? " (hard)" : ""}`],
    ["attempts", `${task.attempts} of ${task.maxAttempts}`],
  ];
  if (task.type !== undefined) rows.push(["type", task.type]);
  if (task.notBefore !== undefined) rows.push(["not before", time(task.notBefore)]);
  if (task.timeoutMs !== undefined) rows.push(["timeout", `${task.timeoutMs} ms per attempt`]);
  if (task.workflowId !== undefined) rows.push(["workflow", task.workflowId]);
  if (task.prerequisites.length > 0) rows.push(["prerequisites", prerequisiteList(task, prerequisites)]);
  // A released lease: its token stays the task's (spent, fenced) until the next grant.
  if (task.token > 0) rows.push(["token", `${task.token}${task.released ? " (released unstarted)" : ""}`]);
  if (task.leaseOwner !== undefined) rows.push(["lease owner", task.leaseOwner]);
  if (task.state === "LEASED" && task.leaseExpiresAt !== undefined) {
    rows.push(["lease expires", time(task.leaseExpiresAt)]);
  }
  if (task.state === "LEASED" && task.timeoutAt !== undefined) rows.push(["times out", time(task.timeoutAt)]);
  if (task.retryAt !== undefined) rows.push(["retry at", time(task.retryAt)]);
  if (task.finishedAt !== undefined) rows.push(["finished", time(task.finishedAt)]);
  if (task.reason !== undefined && task.reason !== "") rows.push(["reason", task.reason]);
  if (task.payload !== undefined) rows.push(["payload", compact(task.payload)]);
  if (task.result !== undefined) rows.push(["result", compact(task.result)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return [`task ${task.id}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
}

function prerequisiteList(task: TaskView, states: ReadonlyMap<string, TaskState | null>): string {
  const shown = task.prerequisites.slice(0, PREREQUISITES_SHOWN).map((id) => {
    if (!states.has(id)) return id;
    return `${id} (${states.get(id) ?? "not found"})`;
  });
  const more = task.prerequisites.length - shown.length;
  // The engine counts unmet prerequisites only while the task waits for them: once it
  // has ended, 0 says nothing about how they ended (their states above do).
  const waiting =
    task.state === "WAITING" && task.unmetPrerequisites > 0
      ? ` — ${task.unmetPrerequisites} not completed`
      : "";
  return `${shown.join(", ")}${more > 0 ? `, and ${more} more` : ""}${waiting}`;
}

/** JSON of a value on one line, clipped for display. */
export function compact(value: unknown, max = 120): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** JSON for --json output: one line per value. Binary payloads become base64 strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString("base64") };
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  });
}
