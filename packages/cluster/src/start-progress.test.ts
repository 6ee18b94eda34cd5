import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StartProgress } from "./start-progress.js";

describe("StartProgress", () => {
  let now: number;
  const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }) };

  beforeEach(() => {
    vi.useFakeTimers();
    now = 0;
    warnings.length = 0;
  });
  afterEach(() => vi.useRealTimers());

  const advance = (ms: number) => {
    now += ms;
    vi.advanceTimersByTime(ms);
  };

  it("says nothing about a quick start", () => {
    const p = new StartProgress(log as never, "connect to NATS", 10_000, () => now);
    advance(3_000);
    p.at("claim slots");
    advance(3_000);
    p.done();
    advance(60_000);
    expect(warnings).toEqual([]);
  });

  it("names the step a slow start waits on, how long it has, and again until it is done", () => {
    const p = new StartProgress(log as never, "connect to NATS", 10_000, () => now);
    advance(4_000);
    p.at("claim slots");
    advance(6_000);
    expect(warnings).toEqual([
      {
        fields: { step: "claim slots", stepMs: 6_000, startMs: 10_000 },
        msg: "start: still waiting to claim slots",
      },
    ]);
    advance(10_000);
    expect(warnings[1]?.fields).toEqual({ step: "claim slots", stepMs: 16_000, startMs: 20_000 });
    p.done();
    advance(30_000);
    expect(warnings).toHaveLength(2);
  });
});
