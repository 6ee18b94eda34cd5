/**
 * `frontier schedule add|list|remove`: recurring tasks. A schedule is kept
 * in the cluster's schedules bucket (@frontier/protocol schedules.ts), which
 * only the admin role may write; every coordinator reads it and submits one
 * task per tick, each tick once.
 */
import {
  describeRecurrence,
  MAX_ID_LENGTH,
  MAX_SCHEDULE_EVERY_MS,
  MIN_SCHEDULE_EVERY_MS,
  nextTick,
  parseSchedule,
  type Schedule,
  scheduleBucketName,
  scheduleIdOfKey,
  scheduleKey,
} from "@frontier/protocol";
import { natsConnectionOptions } from "@frontier/transport";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { type OptionSpecs, type Parsed, str, target } from "./args.js";
import type { CommandContext } from "./client-commands.js";
import { CliError, usageError } from "./errors.js";
import { println } from "./io.js";

export const SCHEDULE_OPTIONS = {
  every: {
    type: "string",
    value: "DUR",
    description: "add: time between two ticks (90s, 5m, 2h, 1d; at least 1s)",
  },
  cron: {
    type: "string",
    value: "EXPR",
    description:
      'add, instead of --every: tick when a cron expression matches ("*/5 * * * *"; 5 fields, or 6 with seconds first)',
  },
  tz: {
    type: "string",
    value: "ZONE",
    description: "add, with --cron: the time zone the expression is read in (Europe/Paris; default UTC)",
  },
  deadline: {
    type: "string",
    value: "DUR",
    description: "add: each tick's task is due this long after its tick",
  },
  start: {
    type: "string",
    value: "WHEN",
    description:
      "add: the first tick (with --cron: no tick before it): an ISO date, +DUR from now, or ms since the epoch (default: now)",
  },
  workflow: { type: "string", value: "W", description: "add: the tasks' workflow" },
  payload: { type: "string", value: "JSON", description: "add: the tasks' payload, as JSON" },
} as const satisfies OptionSpecs;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `5m` → 300000; a bare integer is milliseconds. Undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const m = DURATION.exec(text);
  return m === null ? undefined : Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

export async function schedule(ctx: CommandContext): Promise<void> {
  const [action, id, ...extra] = ctx.parsed.positionals;
  if (extra.length > 0) throw usageError(`schedule: unexpected argument ${JSON.stringify(extra[0])}`);
  if (action !== "add" && action !== "list" && action !== "remove") {
    throw usageError(`schedule: expected add ID, list or remove ID, got ${JSON.stringify(action ?? "")}`);
  }
  if (action !== "list" && id === undefined)
    throw usageError(`schedule ${action}: expected the schedule's ID`);
  const added = action === "add" ? scheduleOf(ctx.parsed, id!, Date.now()) : undefined;
  const { natsUrl, cluster, access } = target(ctx.command, ctx.parsed, ctx.io);
  const nc = await connect({ ...natsConnectionOptions(natsUrl, access), timeout: 3_000 }).catch(
    (error: unknown) => {
      throw new CliError(`cannot reach NATS at ${natsUrl}: ${(error as Error).message}`, 1);
    },
  );
  try {
    const kvm = new Kvm(nc);
    const bucket = scheduleBucketName(cluster);
    const json = ctx.parsed.values["json"] === true;
    if (added !== undefined) {
      const kv = await kvm.create(bucket, { history: 5 }).catch(() => kvm.open(bucket));
      await kv.put(scheduleKey(added.id), JSON.stringify(added)).catch((error: unknown) => {
        throw refusedWrite(error);
      });
      if (json) println(ctx.io.stdout, JSON.stringify(added));
      else println(ctx.io.stdout, addedLine(added, Date.now()));
      return;
    }
    const kv = await kvm.open(bucket);
    const exists = await kv.status().then(
      () => true,
      () => false,
    );
    if (action === "remove") {
      const current = exists ? await kv.get(scheduleKey(id!)) : null;
      if (current === null || current.operation !== "PUT")
        throw new CliError(`no schedule ${JSON.stringify(id)}`, 1);
      await kv.delete(scheduleKey(id!), { previousSeq: current.revision }).catch((error: unknown) => {
        throw refusedWrite(error);
      });
      println(
        ctx.io.stdout,
        json ? JSON.stringify({ removed: id }) : `schedule ${JSON.stringify(id)} removed`,
      );
      return;
    }
    const schedules: Schedule[] = [];
    if (exists) {
      for await (const key of await kv.keys("schedule.>")) {
        if (scheduleIdOfKey(key) === undefined) continue;
        const entry = await kv.get(key);
        if (entry?.operation !== "PUT") continue;
        try {
          schedules.push(parseSchedule(JSON.parse(entry.string())));
        } catch {
          // Not one of ours, or damaged: the coordinators ignore it too.
        }
      }
    }
    schedules.sort((a, b) => (a.id < b.id ? -1 : 1));
    const now = Date.now();
    if (json)
      println(
        ctx.io.stdout,
        JSON.stringify(schedules.map((s) => ({ ...s, nextTickAt: nextTick(s, now)?.at ?? null }))),
      );
    else if (schedules.length === 0) println(ctx.io.stdout, "no schedules");
    else println(ctx.io.stdout, ...schedules.map((s) => scheduleLine(s, now)));
  } finally {
    await nc.close();
  }
}

/** NATS refusing a write to the schedules bucket: only the admin role may write it. */
function refusedWrite(error: unknown): unknown {
  const message = (error as Error)?.message ?? String(error);
  if (!/permissions violation/i.test(message)) return error;
  return new CliError(
    `NATS refused the write to the schedules bucket (${message}): schedules are the admin role's; connect as admin (--role admin)`,
    1,
  );
}

/** `add`'s report: how the schedule ticks, its first tick from now (now included) and its tasks. */
export function addedLine(s: Schedule, now: number): string {
  const tick = s.everyMs === undefined ? "<tick ms>" : "<tick>";
  return (
    `schedule ${JSON.stringify(s.id)}: ${recurrence(s)}, next tick ${nextAt(s, now - 1)}; ` +
    `task ${s.id}-${tick} due ${durationText(s.deadlineInMs)} after its tick`
  );
}

/** One line of `list`: the schedule, how it ticks, its next tick, its tasks' deadline and workflow. */
export function scheduleLine(s: Schedule, now: number): string {
  return `${s.id}  ${recurrence(s)}, next ${nextAt(s, now)}, due +${durationText(s.deadlineInMs)}${
    s.workflowId === undefined ? "" : `, workflow ${s.workflowId}`
  }`;
}

/** How a schedule ticks, in the words `add` takes (`every 5m`), not in milliseconds. */
function recurrence(s: Schedule): string {
  return s.everyMs === undefined
    ? describeRecurrence(s)
    : `every ${durationText(s.everyMs)} from ${new Date(s.startAt).toISOString()}`;
}

/** A duration as `--every` and `--deadline` take it, exactly: 1d, 2h30m, 90s, 1500ms. */
export function durationText(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join("");
}

function nextAt(s: Schedule, now: number): string {
  const tick = nextTick(s, now);
  return tick === undefined ? "none" : new Date(tick.at).toISOString();
}

/**
 * The schedule `add` describes, checked as the coordinators will read it:
 * `--every DUR` or `--cron EXPR [--tz ZONE]`, and `--deadline DUR`.
 */
export function scheduleOf(parsed: Parsed, id: string, now: number): Schedule {
  const every = str(parsed, "every");
  const cron = str(parsed, "cron");
  const tz = str(parsed, "tz");
  const deadline = str(parsed, "deadline");
  if ((every === undefined) === (cron === undefined) || deadline === undefined) {
    throw usageError(
      "schedule add: --every DUR or --cron EXPR (one of them), and --deadline DUR, are required",
    );
  }
  if (tz !== undefined && cron === undefined) {
    throw usageError("schedule add: --tz goes with --cron (--every ticks in no time zone)");
  }
  let recurrence: { everyMs: number } | { cron: string; timeZone?: string };
  if (every !== undefined) {
    const everyMs = parseDuration(every);
    if (everyMs === undefined)
      throw usageError(`schedule add: --every must be a duration like 5m, got ${JSON.stringify(every)}`);
    // In the flag's own terms (the contract's check would name everyMs in milliseconds).
    if (everyMs < MIN_SCHEDULE_EVERY_MS || everyMs > MAX_SCHEDULE_EVERY_MS) {
      throw usageError(
        `schedule add: --every must be from ${durationText(MIN_SCHEDULE_EVERY_MS)} to ${durationText(MAX_SCHEDULE_EVERY_MS)}, got ${every}`,
      );
    }
    recurrence = { everyMs };
  } else {
    recurrence = { cron: cron!, ...(tz === undefined ? {} : { timeZone: tz }) };
  }
  const deadlineInMs = parseDuration(deadline.replace(/^\+/, ""));
  if (deadlineInMs === undefined) {
    throw usageError(`schedule add: --deadline must be a duration like 10m, got ${JSON.stringify(deadline)}`);
  }
  const startAt = startOf(str(parsed, "start"), now);
  const workflowId = str(parsed, "workflow");
  const payloadText = str(parsed, "payload");
  let payload: unknown;
  if (payloadText !== undefined) {
    try {
      payload = JSON.parse(payloadText);
    } catch {
      throw usageError("schedule add: --payload must be JSON");
    }
  }
  // A tick's task id is `<id>-<k>`; k is at most 16 digits (a cron tick's ms since the epoch).
  if (id.length + 17 > MAX_ID_LENGTH) throw usageError("schedule add: the ID is too long for its tasks' ids");
  try {
    return parseSchedule({
      id,
      ...recurrence,
      startAt,
      deadlineInMs,
      ...(workflowId === undefined ? {} : { workflowId }),
      ...(payload === undefined ? {} : { payload }),
    });
  } catch (error) {
    throw usageError(`schedule add: ${(error as Error).message}`);
  }
}

function startOf(text: string | undefined, now: number): number {
  if (text === undefined) return now;
  if (/^\d+$/.test(text)) return Number(text);
  if (text.startsWith("+")) {
    const ms = parseDuration(text.slice(1));
    if (ms !== undefined) return now + ms;
  }
  const date = Date.parse(text);
  if (Number.isNaN(date))
    throw usageError(`schedule add: --start must be a date, +DUR or ms, got ${JSON.stringify(text)}`);
  return date;
}
