/**
 * Negative controls on the real engine: a simulated cluster (simulation.ts)
 * runs the `Scheduler` of @frontier/core with misbehaving workers and lost
 * replies. Correct, it must pass every check for any seed; with one promise
 * deliberately broken, the check that guards that promise must fail. So a
 * green chaos run means something.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CheckName, checkHistory, formatReport } from "./checker.js";
import { SIM_BUGS, type SimBug, simulate } from "./simulation.js";

/** The check each broken build must trip. */
const CAUGHT_BY: Readonly<Record<SimBug, CheckName>> = {
  "drop-acked-submit": "lost",
  "no-fencing": "doubleLease",
  "fast-lease-clock": "doubleLease",
  "strip-prerequisites": "doubleUnblock",
  "revert-acked": "wrongEnd",
  "no-lease-replay": "retry",
};

describe("simulated cluster", () => {
  it("passes every check, whatever the seed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const report = checkHistory(simulate({ seed }));
        if (!report.ok) throw new Error(formatReport(report, `seed ${seed}`));
        // The faults really happened: retries, zombies, crashes.
        expect(report.stats.executionsBeyondFirst).toBeGreaterThan(0);
        expect(report.stats.droppedReplies["lease"]).toBeGreaterThan(0);
      }),
      { numRuns: 20 },
    );
  });

  it("every check has a negative control", () => {
    expect(new Set(Object.values(CAUGHT_BY))).toEqual(
      new Set(["lost", "doubleLease", "doubleUnblock", "wrongEnd", "retry"]),
    );
  });

  for (const bug of SIM_BUGS) {
    it(`catches a build with ${bug} (${CAUGHT_BY[bug]})`, () => {
      for (const seed of [1, 2, 3]) {
        const report = checkHistory(simulate({ seed, bug }));
        expect(report.counts[CAUGHT_BY[bug]], formatReport(report, `${bug}, seed ${seed}`)).toBeGreaterThan(
          0,
        );
      }
    });
  }
});
