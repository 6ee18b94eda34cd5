/**
 * The schedules' timers on a hand-driven clock: which ticks are submitted,
 * under which task ids and keys, and when; nothing here waits on real time.
 */
import { parseSchedule, type Schedule } from "@frontier/protocol";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { MAX_TIMER_MS, type ScheduleClock, ScheduleTimers, type SubmitTick } from "./schedule-runner.js";

/** A clock whose time moves only when a test says so, firing due timers in order. */
class HandClock implements ScheduleClock {
  private timers: { at: number; seq: number; fire: () => void }[] = [];
  private seq = 0;
  /** The longest wait any timer was set for. */
  longestWait = 0;

  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  setTimer(fire: () => void, ms: number): () => void {
    this.longestWait = Math.max(this.longestWait, ms);
    const timer = { at: this.time + ms, seq: this.seq++, fire };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Moves to `to`, firing each timer due on the way at its own time. */
  advanceTo(to: number): void {
    for (;;) {
      const next = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = Math.max(this.time, next.at);
      next.fire();
    }
    this.time = to;
  }

  /** Moves to `to` in one jump, as a process that slept: due timers fire late, at `to`. */
  jumpTo(to: number): void {
    this.time = to;
    this.advanceTo(to);
  }

  pending(): number {
    return this.timers.length;
  }
}

interface Submitted {
  readonly id: string;
  readonly deadline: number;
  readonly key: string;
  readonly at: number;
}

function harness(start: number) {
  const clock = new HandClock(start);
  const submitted: Submitted[] = [];
  const submit: SubmitTick = async (task, key) => {
    submitted.push({ id: task.id, deadline: task.deadline, key, at: clock.now() });
  };
  const timers = new ScheduleTimers(submit, pino({ level: "silent" }), clock);
  return { clock, submitted, timers };
}

const ms = (iso: string) => Date.parse(iso);

describe("ScheduleTimers", () => {
  it("runs an every schedule: the latest missed tick at load, then each on time, none after remove", () => {
    const startAt = ms("2026-01-01T00:00:00Z");
    const { clock, submitted, timers } = harness(startAt + 10_500); // ten ticks missed
    timers.load(parseSchedule({ id: "n", everyMs: 1_000, startAt, deadlineInMs: 30_000 }));
    expect(submitted).toEqual([
      { id: "n-10", deadline: startAt + 10_000 + 30_000, key: "schedule:n:10", at: startAt + 10_500 },
    ]);
    clock.advanceTo(startAt + 12_000);
    expect(submitted.map((s) => [s.id, s.at - startAt])).toEqual([
      ["n-10", 10_500],
      ["n-11", 11_000],
      ["n-12", 12_000],
    ]);
    expect(timers.remove("n")).toBe(true);
    clock.advanceTo(startAt + 60_000);
    expect(submitted).toHaveLength(3);
    expect(clock.pending()).toBe(0);
  });

  it("runs a cron schedule: each tick named by its time, none before startAt, none made up twice", () => {
    const startAt = ms("2026-01-01T10:03:00Z");
    const { clock, submitted, timers } = harness(startAt);
    const schedule = parseSchedule({ id: "c", cron: "*/5 * * * *", startAt, deadlineInMs: 60_000 });
    timers.load(schedule);
    expect(submitted).toEqual([]); // 10:00 is before the schedule began
    const t1 = ms("2026-01-01T10:05:00Z");
    clock.advanceTo(t1);
    expect(submitted).toEqual([{ id: `c-${t1}`, deadline: t1 + 60_000, key: `schedule:c:${t1}`, at: t1 }]);
    clock.advanceTo(ms("2026-01-01T10:14:59Z"));
    expect(submitted.map((s) => s.id)).toEqual([`c-${t1}`, `c-${t1 + 300_000}`]);
  });

  it("makes up only the latest tick after a pause, and a restarted coordinator names it the same", () => {
    const startAt = ms("2026-01-01T00:00:00Z");
    const schedule = parseSchedule({ id: "c", cron: "0 * * * *", startAt, deadlineInMs: 0 });
    const first = harness(ms("2026-01-01T00:30:00Z"));
    first.timers.load(schedule);
    first.clock.jumpTo(ms("2026-01-01T03:30:00Z")); // the process slept through 01:00, 02:00, 03:00
    const t3 = ms("2026-01-01T03:00:00Z");
    expect(first.submitted.map((s) => s.key)).toEqual([`schedule:c:${startAt}`, `schedule:c:${t3}`]);
    first.timers.close();
    expect(first.clock.pending()).toBe(0);
    // Another coordinator (or this one restarted) loads it from the bucket later in the hour: the
    // same latest tick under the same id and key, which the shard takes once.
    const second = harness(ms("2026-01-01T03:45:00Z"));
    second.timers.load(parseSchedule(JSON.parse(JSON.stringify(schedule))));
    expect(second.submitted).toEqual([
      { id: `c-${t3}`, deadline: t3, key: `schedule:c:${t3}`, at: second.clock.now() },
    ]);
  });

  it("waits for a tick further away than one timer holds, firing nothing early", () => {
    const startAt = ms("2026-01-01T00:00:00Z");
    const { clock, submitted, timers } = harness(startAt + 1);
    timers.load(parseSchedule({ id: "y", cron: "0 0 1 1 *", startAt: startAt + 1, deadlineInMs: 0 }));
    clock.advanceTo(ms("2026-12-31T23:59:59Z"));
    expect(submitted).toEqual([]);
    expect(clock.longestWait).toBeLessThanOrEqual(MAX_TIMER_MS);
    const newYear = ms("2027-01-01T00:00:00Z");
    clock.advanceTo(newYear);
    expect(submitted.map((s) => s.id)).toEqual([`y-${newYear}`]);
  });

  it("follows a schedule in its time zone across a daylight-saving change", () => {
    // 09:00 in Paris is 08:00Z in winter and 07:00Z from 29 March 2026.
    const { clock, submitted, timers } = harness(ms("2026-03-27T12:00:00Z"));
    timers.load(
      parseSchedule({
        id: "p",
        cron: "0 9 * * *",
        timeZone: "Europe/Paris",
        startAt: ms("2026-03-27T12:00:00Z"),
        deadlineInMs: 0,
      }),
    );
    clock.advanceTo(ms("2026-03-30T12:00:00Z"));
    expect(submitted.map((s) => new Date(s.at).toISOString())).toEqual([
      "2026-03-28T08:00:00.000Z",
      "2026-03-29T07:00:00.000Z",
      "2026-03-30T07:00:00.000Z",
    ]);
  });

  it("replaces a schedule loaded again: the old timer is gone, the new recurrence runs", () => {
    const startAt = ms("2026-01-01T00:00:00Z");
    const { clock, submitted, timers } = harness(startAt - 1);
    const every: Schedule = parseSchedule({ id: "r", everyMs: 1_000, startAt, deadlineInMs: 0 });
    timers.load(every);
    timers.load(parseSchedule({ id: "r", cron: "*/10 * * * * *", startAt, deadlineInMs: 0 }));
    expect(clock.pending()).toBe(1);
    clock.advanceTo(startAt + 20_000);
    expect(submitted.map((s) => s.id)).toEqual([
      `r-${startAt}`,
      `r-${startAt + 10_000}`,
      `r-${startAt + 20_000}`,
    ]);
    expect(timers.schedules().map((s) => s.id)).toEqual(["r"]);
  });
});
