/**
 * Recurring tasks: the contract of a schedule, as it is stored in the
 * cluster's KV bucket `frontier-<cluster>-schedules` under `schedule.<id>`
 * (JSON, so `nats kv get` shows it), written by an admin (`frontier
 * schedule`) and read by every coordinator, which submits one task per tick.
 *
 * A schedule ticks in one of two ways, told apart by which field it has:
 * - `everyMs`: tick k is at `startAt + k · everyMs`;
 * - `cron` (with `timeZone`, UTC when absent): each time the expression
 *   matches, in that zone, from `startAt` on; tick k is the tick's time in
 *   ms since the epoch. The expression is read by croner (pinned exactly:
 *   every coordinator must find the same ticks), 5 fields (minute hour
 *   day-of-month month day-of-week) or 6 with seconds first.
 *
 * Tick k's task has the id `<id>-<k>`, the deadline `tick + deadlineInMs`,
 * and goes in under the idempotency key `schedule:<id>:<k>`: every
 * coordinator computes the same k for the same tick, so each may submit it
 * and the shard accepts it once. A tick missed while no coordinator ran is
 * not made up, except the latest one due.
 *
 * A schedule stored before cron existed (`everyMs` only) reads as it did,
 * and an `every` schedule is stored as before, so a coordinator that knows
 * no cron still runs it (and ignores a cron schedule: an unknown field).
 */
import { InvalidArgumentError } from "@frontier/core";
import { Cron } from "croner";
import { MAX_DEADLINE } from "./limits.js";
import { isValidToken } from "./subjects.js";

interface ScheduleCommon {
  /** 1..64 characters of A-Z a-z 0-9 _ - (it names a KV key and the tasks' ids). */
  readonly id: string;
  /** `every`: the first tick; `cron`: no tick before it. Ms since the epoch. */
  readonly startAt: number;
  /** Each tick's task is due this long after its tick, ms (≥ 0). */
  readonly deadlineInMs: number;
  readonly workflowId?: string;
  /** Any JSON value, given to every tick's task. */
  readonly payload?: unknown;
}

/** Ticks a fixed time apart. */
export interface EverySchedule extends ScheduleCommon {
  /** Between two ticks, ms: MIN_SCHEDULE_EVERY_MS..MAX_SCHEDULE_EVERY_MS. */
  readonly everyMs: number;
  readonly cron?: never;
  readonly timeZone?: never;
}

/** Ticks when a cron expression matches, in a time zone. */
export interface CronSchedule extends ScheduleCommon {
  /** 5 fields, or 6 with seconds first (croner's syntax, nicknames such as `@daily` too). */
  readonly cron: string;
  /** An IANA time zone (`Europe/Paris`); the expression is read in it, DST included. */
  readonly timeZone: string;
  readonly everyMs?: never;
}

export type Schedule = EverySchedule | CronSchedule;

/** One tick of a schedule: when, and the number that names its task and key. */
export interface ScheduleTick {
  /** `every`: the tick's index from startAt; `cron`: `at`. */
  readonly k: number;
  /** Ms since the epoch. */
  readonly at: number;
}

/**
 * Ticks closer than this would flood the cluster with tasks; a second. A
 * cron expression's ticks fall on whole seconds (croner has no finer field),
 * so no expression ticks more often than this; were it raised, cron
 * schedules would need a check of their own (a test pins the bound).
 */
export const MIN_SCHEDULE_EVERY_MS = 1_000;
/** A year. */
export const MAX_SCHEDULE_EVERY_MS = 366 * 24 * 3_600_000;
/** The time zone of a cron schedule that names none. */
export const DEFAULT_SCHEDULE_TIME_ZONE = "UTC";
/** Longest cron expression (and time zone name) taken. */
export const MAX_CRON_LENGTH = 256;

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

/** Each cron schedule's parsed expression, made once (a schedule is immutable). */
const crons = new WeakMap<CronSchedule, Cron>();

function cronOf(schedule: CronSchedule): Cron {
  let cron = crons.get(schedule);
  if (cron === undefined) {
    cron = parseCron(schedule.cron, schedule.timeZone);
    crons.set(schedule, cron);
  }
  return cron;
}

/** The expression as croner reads it (no timer: `paused`, no function), or croner's error. */
function parseCron(expression: string, timeZone: string): Cron {
  return new Cron(expression, { timezone: timeZone, mode: "5-or-6-parts", paused: true });
}

/** The latest tick due at `now` (at ≤ now, and not before startAt), or undefined before the first. */
export function latestTick(schedule: Schedule, now: number): ScheduleTick | undefined {
  if (now < schedule.startAt) return undefined;
  if (schedule.everyMs !== undefined) {
    const k = Math.floor((now - schedule.startAt) / schedule.everyMs);
    return { k, at: schedule.startAt + k * schedule.everyMs };
  }
  // croner's previous runs are strictly before the reference, to the ms.
  const at = cronOf(schedule)
    .previousRuns(1, new Date(now + 1))[0]
    ?.getTime();
  return at === undefined || at < schedule.startAt ? undefined : { k: at, at };
}

/** The first tick after `after` (strictly) and not before startAt, or undefined when none comes. */
export function nextTick(schedule: Schedule, after: number): ScheduleTick | undefined {
  if (schedule.everyMs !== undefined) {
    const k = after < schedule.startAt ? 0 : Math.floor((after - schedule.startAt) / schedule.everyMs) + 1;
    return { k, at: schedule.startAt + k * schedule.everyMs };
  }
  const from = Math.max(after, schedule.startAt - 1);
  const at = cronOf(schedule).nextRun(new Date(from))?.getTime();
  return at === undefined || at > MAX_DEADLINE ? undefined : { k: at, at };
}

/** What `frontier schedule list` and the logs say of how a schedule ticks. */
export function describeRecurrence(schedule: Schedule): string {
  return schedule.everyMs !== undefined
    ? `every ${schedule.everyMs} ms from ${new Date(schedule.startAt).toISOString()}`
    : `cron ${JSON.stringify(schedule.cron)} in ${schedule.timeZone}`;
}

/**
 * A schedule from untrusted data (a KV value, a command line), or
 * InvalidArgumentError naming the field: ids, bounds, finite times, no
 * unknown fields; exactly one of `everyMs` and `cron`, a cron expression
 * that parses and ticks at least once from startAt, a known time zone.
 */
export function parseSchedule(value: unknown): Schedule {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("a schedule is an object");
  }
  const v = value as Record<string, unknown>;
  const known = new Set([
    "id",
    "everyMs",
    "cron",
    "timeZone",
    "startAt",
    "deadlineInMs",
    "workflowId",
    "payload",
  ]);
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
  const common: { -readonly [K in keyof ScheduleCommon]: ScheduleCommon[K] } = {
    id: v["id"],
    startAt: integer("startAt", 0, MAX_DEADLINE),
    deadlineInMs: integer("deadlineInMs", 0, MAX_SCHEDULE_EVERY_MS),
  };
  if (v["workflowId"] !== undefined) {
    const w = v["workflowId"];
    if (typeof w !== "string" || w.length === 0 || w.length > 256) {
      throw new InvalidArgumentError(`schedule workflowId: 1..256 characters, got ${JSON.stringify(w)}`);
    }
    common.workflowId = w;
  }
  if (v["payload"] !== undefined) common.payload = v["payload"];
  if ((v["everyMs"] === undefined) === (v["cron"] === undefined)) {
    throw new InvalidArgumentError("schedule: exactly one of everyMs and cron");
  }
  if (v["everyMs"] !== undefined) {
    if (v["timeZone"] !== undefined)
      throw new InvalidArgumentError("schedule timeZone: only with cron (everyMs ticks in no zone)");
    // Field order as stored before cron existed.
    const { id, startAt, deadlineInMs, ...rest } = common;
    return {
      id,
      everyMs: integer("everyMs", MIN_SCHEDULE_EVERY_MS, MAX_SCHEDULE_EVERY_MS),
      startAt,
      deadlineInMs,
      ...rest,
    };
  }
  const cron = v["cron"];
  if (typeof cron !== "string" || cron.length === 0 || cron.length > MAX_CRON_LENGTH) {
    throw new InvalidArgumentError(
      `schedule cron: a cron expression of 1..${MAX_CRON_LENGTH} characters, got ${JSON.stringify(cron)}`,
    );
  }
  const timeZone = v["timeZone"] ?? DEFAULT_SCHEDULE_TIME_ZONE;
  if (!isTimeZone(timeZone)) {
    throw new InvalidArgumentError(
      `schedule timeZone: an IANA time zone such as "Europe/Paris" or "UTC", got ${JSON.stringify(timeZone)}`,
    );
  }
  try {
    parseCron(cron, timeZone);
  } catch (error) {
    throw new InvalidArgumentError(
      `schedule cron: ${JSON.stringify(cron)} is not a cron expression (5 fields: minute hour day-of-month month day-of-week, or 6 with seconds first): ${cronMessage(error)}`,
    );
  }
  const { id, startAt, deadlineInMs, ...rest } = common;
  const schedule: CronSchedule = { id, cron, timeZone, startAt, deadlineInMs, ...rest };
  if (nextTick(schedule, schedule.startAt - 1) === undefined) {
    throw new InvalidArgumentError(`schedule cron: ${JSON.stringify(cron)} never ticks from startAt on`);
  }
  return schedule;
}

function isTimeZone(value: unknown): value is string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_CRON_LENGTH) return false;
  try {
    new Intl.DateTimeFormat("en", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

/** croner's message without its class prefix ("CronPattern: "). */
function cronMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^CronPattern:\s*/, "");
}
