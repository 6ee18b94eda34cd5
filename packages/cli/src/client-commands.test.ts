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

describe("--type", () => {
  it("takes repeated options and comma lists, each type once, and refuses a bad one", async () => {
    const { parse, typesOption, TYPE_OPTION } = await import("./args.js");
    const parsed = parse("work", ["--type", "img,mail", "--type", " img ", "--type", "video"], TYPE_OPTION);
    expect(typesOption("work", parsed)).toEqual(["img", "mail", "video"]);
    expect(typesOption("work", parse("work", [], TYPE_OPTION))).toBeUndefined();
    expect(() => typesOption("work", parse("work", ["--type", "a b"], TYPE_OPTION))).toThrow(
      /--type "a b" is not a task type/,
    );
    expect(() => typesOption("work", parse("work", ["--type", "img,"], TYPE_OPTION))).toThrow(/--type ""/);
  });
});
