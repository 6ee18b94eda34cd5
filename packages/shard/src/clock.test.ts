import { describe, expect, it } from "vitest";
import { ShardClock } from "./clock.js";

describe("ShardClock", () => {
  it("starts at the wall clock, runs on the monotonic one, in whole milliseconds", () => {
    let mono = 1_000.25;
    const clock = new ShardClock(0, { wallNow: () => 5_000.7, monotonicNow: () => mono });
    expect(clock.now()).toBe(5_000);
    mono += 10.6; // 5_011.3 → 5_011
    expect(clock.now()).toBe(5_011);
    expect(Number.isInteger(clock.now())).toBe(true);
  });

  it("never runs backwards: not below the journal's floor, not with a source that goes back", () => {
    let mono = 100;
    const clock = new ShardClock(9_000, { wallNow: () => 1_000, monotonicNow: () => mono });
    expect(clock.now()).toBe(9_000);
    mono = 150;
    expect(clock.now()).toBe(9_050);
    mono = 120;
    expect(clock.now()).toBe(9_050);
  });
});
