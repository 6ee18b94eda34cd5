import { describe, expect, it } from "vitest";
import {
  type CronSchedule,
  describeRecurrence,
  latestTick,
  MIN_SCHEDULE_EVERY_MS,
  nextTick,
  parseSchedule,
  type Schedule,
  scheduleBucketName,
  scheduledKey,
  scheduledTaskId,
  scheduleIdOfKey,
  scheduleKey,
} from "./schedules.js";

const good = { id: "nightly", everyMs: 60_000, startAt: 1_700_000_000_000, deadlineInMs: 600_000 };
const ms = (iso: string) => Date.parse(iso);
const cron = (expression: string, timeZone?: string, startAt = ms("2026-01-01T00:00:00Z")) =>
  parseSchedule({
    id: "c",
    cron: expression,
    ...(timeZone === undefined ? {} : { timeZone }),
    startAt,
    deadlineInMs: 0,
  }) as CronSchedule;
/** The next `n` ticks after `from`, as ISO times. */
const ticks = (schedule: Schedule, from: string, n: number): string[] => {
  const out: string[] = [];
  let after = ms(from);
  for (let i = 0; i < n; i++) {
    const tick = nextTick(schedule, after);
    if (tick === undefined) break;
    out.push(new Date(tick.at).toISOString());
    after = tick.at;
  }
  return out;
};

describe("schedules", () => {
  it("takes a well-formed schedule, payload and workflow included", () => {
    expect(parseSchedule({ ...good, workflowId: "w", payload: { a: 1 } })).toEqual({
      ...good,
      workflowId: "w",
      payload: { a: 1 },
    });
  });

  it("reads an every schedule as stored before cron existed, and stores it the same way", () => {
    const stored = JSON.stringify({ ...good, workflowId: "w" });
    expect(JSON.stringify(parseSchedule(JSON.parse(stored)))).toBe(stored);
  });

  it("refuses what the coordinators could not run, naming the field", () => {
    expect(() => parseSchedule(null)).toThrow(/an object/);
    expect(() => parseSchedule({ ...good, id: "a.b" })).toThrow(/schedule id/);
    expect(() => parseSchedule({ ...good, everyMs: MIN_SCHEDULE_EVERY_MS - 1 })).toThrow(/everyMs/);
    expect(() => parseSchedule({ ...good, everyMs: 1.5e3 + 0.5 })).toThrow(/everyMs/);
    expect(() => parseSchedule({ ...good, startAt: -1 })).toThrow(/startAt/);
    expect(() => parseSchedule({ ...good, deadlineInMs: "10m" })).toThrow(/deadlineInMs/);
    expect(() => parseSchedule({ ...good, workflowId: "" })).toThrow(/workflowId/);
    expect(() => parseSchedule({ ...good, every: "1m" })).toThrow(/unknown field "every"/);
  });

  it("takes a cron schedule, in UTC unless it names a zone", () => {
    const s = cron("*/5 * * * *");
    expect(s).toEqual({ id: "c", cron: "*/5 * * * *", timeZone: "UTC", startAt: s.startAt, deadlineInMs: 0 });
    expect(cron("0 3 * * *", "Europe/Paris").timeZone).toBe("Europe/Paris");
    expect(cron("*/10 * * * * *").cron).toBe("*/10 * * * * *"); // 6 fields: seconds first
    expect(cron("@daily").cron).toBe("@daily");
    expect(describeRecurrence(cron("0 3 * * *", "Europe/Paris"))).toBe('cron "0 3 * * *" in Europe/Paris');
  });

  it("refuses a bad cron schedule, saying what is wrong", () => {
    const at = { id: "c", startAt: 0, deadlineInMs: 0 };
    expect(() => parseSchedule({ ...at })).toThrow(/exactly one of everyMs and cron/);
    expect(() => parseSchedule({ ...at, everyMs: 60_000, cron: "* * * * *" })).toThrow(
      /exactly one of everyMs and cron/,
    );
    expect(() => parseSchedule({ ...good, timeZone: "UTC" })).toThrow(/timeZone: only with cron/);
    expect(() => parseSchedule({ ...at, cron: "" })).toThrow(/schedule cron: a cron expression of 1\.\.256/);
    expect(() => parseSchedule({ ...at, cron: 5 })).toThrow(/schedule cron/);
    expect(() => parseSchedule({ ...at, cron: "61 * * * *" })).toThrow(
      /schedule cron: "61 \* \* \* \*" is not a cron expression .*: Invalid value for minute: 61/,
    );
    expect(() => parseSchedule({ ...at, cron: "* * *" })).toThrow(/not a cron expression.*five, six/);
    expect(() => parseSchedule({ ...at, cron: "0 * * * * * 2030" })).toThrow(/requires exactly 5 or 6 parts/);
    expect(() => parseSchedule({ ...at, cron: "*/0 * * * *" })).toThrow(/illegal stepping/);
    expect(() => parseSchedule({ ...at, cron: "@reboot" })).toThrow(/not a cron expression/);
    expect(() => parseSchedule({ ...at, cron: "0 0 30 2 *" })).toThrow(/"0 0 30 2 \*" never ticks/);
    expect(() => parseSchedule({ ...at, cron: "* * * * *", timeZone: "Mars/Olympus" })).toThrow(
      /schedule timeZone: an IANA time zone .*"Mars\/Olympus"/,
    );
  });

  it("has no cron expression tick more often than MIN_SCHEDULE_EVERY_MS: ticks fall on whole seconds", () => {
    // The finest expression there is ticks once a second; were the minimum raised above a second,
    // cron schedules would need a check of their own (schedules.ts).
    expect(MIN_SCHEDULE_EVERY_MS).toBeLessThanOrEqual(1_000);
    expect(ticks(cron("* * * * * *"), "2026-01-01T00:00:00.300Z", 3)).toEqual([
      "2026-01-01T00:00:01.000Z",
      "2026-01-01T00:00:02.000Z",
      "2026-01-01T00:00:03.000Z",
    ]);
  });

  it("names keys, tasks and idempotency keys by schedule and tick", () => {
    expect(scheduleBucketName("prod")).toBe("frontier-prod-schedules");
    expect(scheduleKey("nightly")).toBe("schedule.nightly");
    expect(scheduleIdOfKey("schedule.nightly")).toBe("nightly");
    expect(scheduleIdOfKey("schedule.a.b")).toBeUndefined();
    expect(scheduleIdOfKey("other.nightly")).toBeUndefined();
    expect(scheduledTaskId("nightly", 7)).toBe("nightly-7");
    expect(scheduledKey("nightly", 7)).toBe("schedule:nightly:7");
  });

  it("counts an every schedule's ticks from startAt", () => {
    const every = parseSchedule(good);
    expect(latestTick(every, good.startAt - 1)).toBeUndefined();
    expect(latestTick(every, good.startAt)).toEqual({ k: 0, at: good.startAt });
    expect(latestTick(every, good.startAt + 59_999)).toEqual({ k: 0, at: good.startAt });
    expect(latestTick(every, good.startAt + 60_000)).toEqual({ k: 1, at: good.startAt + 60_000 });
    expect(nextTick(every, 0)).toEqual({ k: 0, at: good.startAt });
    expect(nextTick(every, good.startAt)).toEqual({ k: 1, at: good.startAt + 60_000 });
    expect(nextTick(every, good.startAt + 59_999)).toEqual({ k: 1, at: good.startAt + 60_000 });
  });

  it("names a cron tick by its time, the same whoever computes it", () => {
    const s = cron("*/5 * * * *");
    const t = ms("2026-01-01T00:05:00Z");
    expect(latestTick(s, t - 1)).toEqual({ k: t - 300_000, at: t - 300_000 });
    expect(latestTick(s, t)).toEqual({ k: t, at: t });
    expect(latestTick(s, t + 299_999)).toEqual({ k: t, at: t });
    expect(nextTick(s, t - 1)).toEqual({ k: t, at: t });
    expect(nextTick(s, t)).toEqual({ k: t + 300_000, at: t + 300_000 });
    // A copy parsed elsewhere (another coordinator) finds the same ticks.
    const again = parseSchedule(JSON.parse(JSON.stringify(s)));
    expect(nextTick(again, t)).toEqual(nextTick(s, t));
  });

  it("has no cron tick before startAt", () => {
    const s = cron("0 * * * *", undefined, ms("2026-01-01T10:03:00Z"));
    expect(latestTick(s, ms("2026-01-01T10:30:00Z"))).toBeUndefined(); // 10:00 was before it
    expect(nextTick(s, 0)?.at).toBe(ms("2026-01-01T11:00:00Z"));
    expect(latestTick(s, ms("2026-01-01T11:00:00Z"))?.at).toBe(ms("2026-01-01T11:00:00Z"));
    const onTick = cron("0 * * * *", undefined, ms("2026-01-01T10:00:00Z"));
    expect(nextTick(onTick, 0)?.at).toBe(ms("2026-01-01T10:00:00Z")); // startAt itself may tick
  });

  it("reads the expression in its time zone, daylight saving included", () => {
    // Europe/Paris: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
    const paris = (e: string) => cron(e, "Europe/Paris");
    expect(ticks(paris("0 9 * * *"), "2026-03-27T12:00:00Z", 3)).toEqual([
      "2026-03-28T08:00:00.000Z", // 09:00 CET
      "2026-03-29T07:00:00.000Z", // 09:00 CEST
      "2026-03-30T07:00:00.000Z",
    ]);
    // A fixed time in the gap runs at the first time after it, that day; at a repeated time, once.
    expect(ticks(paris("30 2 * * *"), "2026-03-28T12:00:00Z", 2)).toEqual([
      "2026-03-29T01:00:00.000Z", // 03:00 CEST
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
    ]);
    expect(ticks(paris("30 2 * * *"), "2026-10-24T12:00:00Z", 2)).toEqual([
      "2026-10-25T00:30:00.000Z", // 02:30 CEST, not again at 02:30 CET
      "2026-10-26T01:30:00.000Z", // 02:30 CET
    ]);
    // An interval skips the times in the gap and runs on both passes through the repeated hour,
    // each a tick of its own (its own time, so its own task).
    expect(ticks(paris("*/30 * * * *"), "2026-03-29T00:00:00Z", 3)).toEqual([
      "2026-03-29T00:30:00.000Z", // 01:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST
      "2026-03-29T01:30:00.000Z",
    ]);
    expect(ticks(paris("*/30 * * * *"), "2026-10-24T23:59:00Z", 5)).toEqual([
      "2026-10-25T00:00:00.000Z", // 02:00 CEST
      "2026-10-25T00:30:00.000Z", // 02:30 CEST
      "2026-10-25T01:00:00.000Z", // 02:00 CET
      "2026-10-25T01:30:00.000Z", // 02:30 CET
      "2026-10-25T02:00:00.000Z", // 03:00 CET
    ]);
    // The latest tick due inside the repeated hour is the second pass's.
    expect(latestTick(paris("*/30 * * * *"), ms("2026-10-25T01:10:00Z"))?.at).toBe(
      ms("2026-10-25T01:00:00Z"),
    );
  });
});
