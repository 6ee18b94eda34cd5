/**
 * `frontier schedule add|list|remove`: recurring tasks. A schedule is kept
 * in the cluster's schedules bucket (@frontier/protocol schedules.ts), which
 * only the admin role may write; every coordinator reads it and submits one
 * task per tick, each tick once.
 */
import {
  MAX_ID_LENGTH,
  parseSchedule,
  type Schedule,
  scheduleBucketName,
  scheduleIdOfKey,
  scheduleKey,
} from "@frontier/protocol";
import { natsConnectionOptions } from "@frontier/transport";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { type OptionSpecs, str, target } from "./args.js";
import type { CommandContext } from "./client-commands.js";
import { CliError, usageError } from "./errors.js";
import { println } from "./io.js";

export const SCHEDULE_OPTIONS = {
  every: {
    type: "string",
    value: "DUR",
    description: "add: time between two ticks (90s, 5m, 2h, 1d; at least 1s)",
  },
  deadline: {
    type: "string",
    value: "DUR",
    description: "add: each tick's task is due this long after its tick",
  },
  start: {
    type: "string",
    value: "WHEN",
    description: "add: the first tick: an ISO date, +DUR from now, or ms since the epoch (default: now)",
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
  const added = action === "add" ? scheduleOf(ctx, id!) : undefined;
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
      await kv.put(scheduleKey(added.id), JSON.stringify(added));
      if (json) println(ctx.io.stdout, JSON.stringify(added));
      else
        println(
          ctx.io.stdout,
          `schedule ${JSON.stringify(added.id)}: every ${added.everyMs} ms from ${new Date(added.startAt).toISOString()}; ` +
            `task ${added.id}-<tick> due ${added.deadlineInMs} ms after its tick`,
        );
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
      await kv.delete(scheduleKey(id!), { previousSeq: current.revision });
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
    if (json) println(ctx.io.stdout, JSON.stringify(schedules));
    else if (schedules.length === 0) println(ctx.io.stdout, "no schedules");
    else
      println(
        ctx.io.stdout,
        ...schedules.map(
          (s) =>
            `${s.id}  every ${s.everyMs} ms from ${new Date(s.startAt).toISOString()}, due +${s.deadlineInMs} ms${
              s.workflowId === undefined ? "" : `, workflow ${s.workflowId}`
            }`,
        ),
      );
  } finally {
    await nc.close();
  }
}

/** The schedule `add` describes, checked as the coordinators will read it. */
function scheduleOf(ctx: CommandContext, id: string): Schedule {
  const every = str(ctx.parsed, "every");
  const deadline = str(ctx.parsed, "deadline");
  if (every === undefined || deadline === undefined) {
    throw usageError("schedule add: --every DUR and --deadline DUR are required");
  }
  const everyMs = parseDuration(every);
  const deadlineInMs = parseDuration(deadline.replace(/^\+/, ""));
  if (everyMs === undefined)
    throw usageError(`schedule add: --every must be a duration like 5m, got ${JSON.stringify(every)}`);
  if (deadlineInMs === undefined) {
    throw usageError(`schedule add: --deadline must be a duration like 10m, got ${JSON.stringify(deadline)}`);
  }
  const startAt = startOf(str(ctx.parsed, "start"));
  const workflowId = str(ctx.parsed, "workflow");
  const payloadText = str(ctx.parsed, "payload");
  let payload: unknown;
  if (payloadText !== undefined) {
    try {
      payload = JSON.parse(payloadText);
    } catch {
      throw usageError("schedule add: --payload must be JSON");
    }
  }
  if (id.length + 12 > MAX_ID_LENGTH) throw usageError("schedule add: the ID is too long for its tasks' ids");
  try {
    return parseSchedule({
      id,
      everyMs,
      startAt,
      deadlineInMs,
      ...(workflowId === undefined ? {} : { workflowId }),
      ...(payload === undefined ? {} : { payload }),
    });
  } catch (error) {
    throw usageError(`schedule add: ${(error as Error).message}`);
  }
}

function startOf(text: string | undefined): number {
  if (text === undefined) return Date.now();
  if (/^\d+$/.test(text)) return Number(text);
  if (text.startsWith("+")) {
    const ms = parseDuration(text.slice(1));
    if (ms !== undefined) return Date.now() + ms;
  }
  const date = Date.parse(text);
  if (Number.isNaN(date))
    throw usageError(`schedule add: --start must be a date, +DUR or ms, got ${JSON.stringify(text)}`);
  return date;
}
