import { describe, expect, it } from "vitest";
import { parse } from "./args.js";
import { CliError } from "./errors.js";
import {
  addedLine,
  durationText,
  parseDuration,
  SCHEDULE_OPTIONS,
  scheduleLine,
  scheduleOf,
} from "./schedule-command.js";

const NOW = Date.parse("2026-01-01T10:03:00Z");
const add = (...argv: string[]) =>
  scheduleOf(parse("schedule", ["add", "x", ...argv], SCHEDULE_OPTIONS), "x", NOW);

describe("frontier schedule add", () => {
  it("reads --every as before", () => {
    expect(add("--every", "5m", "--deadline", "+10m")).toEqual({
      id: "x",
      everyMs: 300_000,
      startAt: NOW,
      deadlineInMs: 600_000,
    });
    expect(parseDuration("90s")).toBe(90_000);
  });

  it("reads --cron with a time zone, UTC by default", () => {
    expect(add("--cron", "*/5 * * * *", "--deadline", "1m")).toEqual({
      id: "x",
      cron: "*/5 * * * *",
      timeZone: "UTC",
      startAt: NOW,
      deadlineInMs: 60_000,
    });
    expect(
      add("--cron", "0 3 * * *", "--tz", "Europe/Paris", "--deadline", "1h", "--workflow", "w"),
    ).toMatchObject({ cron: "0 3 * * *", timeZone: "Europe/Paris", workflowId: "w" });
  });

  it("refuses a bad or ambiguous recurrence with a usage error that says what is wrong", () => {
    const refused = (argv: string[], message: RegExp) => {
      let thrown: unknown;
      try {
        add(...argv);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(CliError);
      expect((thrown as CliError).message).toMatch(message);
      expect((thrown as CliError).exitCode).toBe(2);
    };
    refused(["--deadline", "1m"], /--every DUR or --cron EXPR \(one of them\)/);
    refused(["--every", "1m", "--cron", "* * * * *", "--deadline", "1m"], /one of them/);
    refused(["--every", "1m", "--tz", "UTC", "--deadline", "1m"], /--tz goes with --cron/);
    refused(
      ["--cron", "61 * * * *", "--deadline", "1m"],
      /schedule add: schedule cron: .*Invalid value for minute: 61/,
    );
    refused(
      ["--cron", "* * * * *", "--tz", "Nowhere/Atlantis", "--deadline", "1m"],
      /timeZone: an IANA time zone/,
    );
    refused(["--cron", "0 0 31 2 *", "--deadline", "1m"], /never ticks/);
  });
});

describe("durations, in the words the flags take", () => {
  it("writes a duration exactly, in the largest units, and reads back as written", () => {
    const cases: [number, string][] = [
      [1_000, "1s"],
      [90_000, "1m30s"],
      [300_000, "5m"],
      [7_200_000, "2h"],
      [86_400_000, "1d"],
      [93_784_005, "1d2h3m4s5ms"],
      [1_500, "1s500ms"],
    ];
    for (const [ms, text] of cases) expect(durationText(ms), text).toBe(text);
    for (const text of ["1s", "5m", "2h", "1d"]) expect(durationText(parseDuration(text)!)).toBe(text);
  });

  it("refuses --every out of range in the flag's terms, not in milliseconds", () => {
    expect(() => add("--every", "500ms", "--deadline", "1m")).toThrow(
      /--every must be from 1s to 366d, got 500ms/,
    );
    expect(() => add("--every", "400d", "--deadline", "1m")).toThrow(/--every must be from 1s to 366d/);
  });
});

describe("frontier schedule list and add's report", () => {
  it("shows how each schedule ticks and its next tick", () => {
    const cron = add("--cron", "*/5 * * * *", "--deadline", "1m");
    expect(scheduleLine(cron, NOW)).toBe(
      'x  cron "*/5 * * * *" in UTC, next 2026-01-01T10:05:00.000Z, due +1m',
    );
    expect(addedLine(cron, NOW)).toBe(
      'schedule "x": cron "*/5 * * * *" in UTC, next tick 2026-01-01T10:05:00.000Z; task x-<tick ms> due 1m after its tick',
    );
    const every = add("--every", "1m", "--deadline", "1m", "--workflow", "w");
    expect(addedLine(every, NOW)).toBe(
      'schedule "x": every 1m from 2026-01-01T10:03:00.000Z, next tick 2026-01-01T10:03:00.000Z; task x-<tick> due 1m after its tick',
    );
    expect(scheduleLine(every, NOW + 1)).toBe(
      "x  every 1m from 2026-01-01T10:03:00.000Z, next 2026-01-01T10:04:00.000Z, due +1m, workflow w",
    );
  });
});
