import { describe, expect, it } from "vitest";
import { progressLine } from "./client-commands.js";

describe("submit's progress line", () => {
  it("counts tasks submitted of all, with the share done", () => {
    expect(progressLine(0, 2_500)).toBe("submitting: 0 of 2,500 tasks (0%)");
    expect(progressLine(1_000, 2_500)).toBe("submitting: 1,000 of 2,500 tasks (40%)");
    expect(progressLine(2_500, 2_500)).toBe("submitting: 2,500 of 2,500 tasks (100%)");
    expect(progressLine(0, 0)).toBe("submitting: 0 of 0 tasks (100%)");
  });
});
