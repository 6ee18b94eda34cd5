/**
 * Recurring tasks: the contract of a schedule, as it is stored in the
 * cluster's KV bucket `frontier-<cluster>-schedules` under `schedule.<id>`
 * (JSON, so `nats kv get` shows it), written by an admin (`frontier
 * schedule`) and read by every coordinator, which submits one task per tick.
 *
 * Tick k of a schedule is at `startAt + k · everyMs`; its task has the id
 * `<id>-<k>`, the deadline `tick + deadlineInMs`, and goes in under the
 * idempotency key `schedule:<id>:<k>`: every coordinator may submit it, and
 * the shard accepts it once. A tick missed while no coordinator ran is not
 * made up, except the latest one due.
 */
import { InvalidArgumentError } from "@frontier/core";
import { MAX_DEADLINE } from "./limits.js";
import { isValidToken } from "./subjects.js";

export interface Schedule {
  /** 1..64 characters of A-Z a-z 0-9 _ - (it names a KV key and the tasks' ids). */
  readonly id: string;
  /** Between two ticks, ms: MIN_SCHEDULE_EVERY_MS..MAX_SCHEDULE_EVERY_MS. */
  readonly everyMs: number;
  /** The first tick, ms since the epoch. */
  readonly startAt: number;
  /** Each tick's task is due this long after its tick, ms (≥ 0). */
  readonly deadlineInMs: number;
  readonly workflowId?: string;
  /** Any JSON value, given to every tick's task. */
  readonly payload?: unknown;
}

/** Ticks closer than this would flood the cluster with tasks; a second. */
export const MIN_SCHEDULE_EVERY_MS = 1_000;
/** A year. */
export const MAX_SCHEDULE_EVERY_MS = 366 * 24 * 3_600_000;

/** `frontier-<cluster>-schedules`. */
export function scheduleBucketName(cluster: string): string {
  if (!isValidToken(cluster))
    throw new InvalidArgumentError(`not a cluster name: ${JSON.stringify(cluster)}`);
  return `frontier-${cluster}-schedules`;
}

/** `schedule.<id>`. */
export function scheduleKey(id: string): string {
  return `schedule.${id}`;
}

/** The id a bucket key names, or undefined for another key. */
export function scheduleIdOfKey(key: string): string | undefined {
  const id = key.startsWith("schedule.") ? key.slice("schedule.".length) : "";
  return isValidToken(id) ? id : undefined;
}

/** The task id of tick `k`. */
export function scheduledTaskId(id: string, k: number): string {
  return `${id}-${k}`;
}

/** The idempotency key of tick `k`: the same on every coordinator. */
export function scheduledKey(id: string, k: number): string {
  return `schedule:${id}:${k}`;
}

/** The latest tick due at `now` (−1 before the first). */
export function latestTick(schedule: Schedule, now: number): number {
  return now < schedule.startAt ? -1 : Math.floor((now - schedule.startAt) / schedule.everyMs);
}

/**
 * A schedule from untrusted data (a KV value, a command line), or
 * InvalidArgumentError naming the field: ids, bounds, finite times, no
 * unknown fields.
 */
export function parseSchedule(value: unknown): Schedule {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("a schedule is an object");
  }
  const v = value as Record<string, unknown>;
  const known = new Set(["id", "everyMs", "startAt", "deadlineInMs", "workflowId", "payload"]);
  const unknown = Object.keys(v).find((k) => !known.has(k));
  if (unknown !== undefined)
    throw new InvalidArgumentError(`schedule: unknown field ${JSON.stringify(unknown)}`);
  if (!isValidToken(v["id"])) {
    throw new InvalidArgumentError(
      `schedule id: 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(v["id"])}`,
    );
  }
  const integer = (name: string, min: number, max: number): number => {
    const n = v[name];
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `schedule ${name}: an integer in ${min}..${max}, got ${JSON.stringify(n)}`,
      );
    }
    return n;
  };
  const schedule: { -readonly [K in keyof Schedule]: Schedule[K] } = {
    id: v["id"],
    everyMs: integer("everyMs", MIN_SCHEDULE_EVERY_MS, MAX_SCHEDULE_EVERY_MS),
    startAt: integer("startAt", 0, MAX_DEADLINE),
    deadlineInMs: integer("deadlineInMs", 0, MAX_SCHEDULE_EVERY_MS),
  };
  if (v["workflowId"] !== undefined) {
    const w = v["workflowId"];
    if (typeof w !== "string" || w.length === 0 || w.length > 256) {
      throw new InvalidArgumentError(`schedule workflowId: 1..256 characters, got ${JSON.stringify(w)}`);
    }
    schedule.workflowId = w;
  }
  if (v["payload"] !== undefined) schedule.payload = v["payload"];
  return schedule;
}
