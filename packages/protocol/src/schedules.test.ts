import { describe, expect, it } from "vitest";
import {
  latestTick,
  MIN_SCHEDULE_EVERY_MS,
  parseSchedule,
  scheduleBucketName,
  scheduledKey,
  scheduledTaskId,
  scheduleIdOfKey,
  scheduleKey,
} from "./schedules.js";

const good = { id: "nightly", everyMs: 60_000, startAt: 1_700_000_000_000, deadlineInMs: 600_000 };

describe("schedules", () => {
  it("takes a well-formed schedule, payload and workflow included", () => {
    expect(parseSchedule({ ...good, workflowId: "w", payload: { a: 1 } })).toEqual({
      ...good,
      workflowId: "w",
      payload: { a: 1 },
    });
  });

  it("refuses what the coordinators could not run, naming the field", () => {
    expect(() => parseSchedule(null)).toThrow(/an object/);
    expect(() => parseSchedule({ ...good, id: "a.b" })).toThrow(/schedule id/);
    expect(() => parseSchedule({ ...good, everyMs: MIN_SCHEDULE_EVERY_MS - 1 })).toThrow(/everyMs/);
    expect(() => parseSchedule({ ...good, everyMs: 1.5e3 + 0.5 })).toThrow(/everyMs/);
    expect(() => parseSchedule({ ...good, startAt: -1 })).toThrow(/startAt/);
    expect(() => parseSchedule({ ...good, deadlineInMs: "10m" })).toThrow(/deadlineInMs/);
    expect(() => parseSchedule({ ...good, workflowId: "" })).toThrow(/workflowId/);
    expect(() => parseSchedule({ ...good, cron: "* * * * *" })).toThrow(/unknown field "cron"/);
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

  it("counts the latest tick due", () => {
    expect(latestTick(good, good.startAt - 1)).toBe(-1);
    expect(latestTick(good, good.startAt)).toBe(0);
    expect(latestTick(good, good.startAt + 59_999)).toBe(0);
    expect(latestTick(good, good.startAt + 60_000)).toBe(1);
  });
});
