import { type Problem, ProblemCode } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { addedProblems, oneTakenPerId } from "./index.js";

const problem = (taskId: string, code: ProblemCode, message = `${code} of ${taskId}`): Problem => ({
  taskId,
  code,
  message,
});

describe("addedProblems", () => {
  it("leaves out a finding (code and task) reported already, whatever its words", () => {
    const reported = [problem("a", ProblemCode.CYCLE, "a -> b -> a")];
    const more = [
      problem("a", ProblemCode.CYCLE, "b -> a -> b"),
      problem("a", ProblemCode.DUPLICATE_ID),
      problem("b", ProblemCode.CYCLE),
    ];
    expect(addedProblems(reported, more)).toEqual([more[1], more[2]]);
  });

  it("keeps repeats within what it adds", () => {
    const more = [
      problem("d", ProblemCode.UNKNOWN_PREREQUISITE, "prerequisite p1 is not known"),
      problem("d", ProblemCode.UNKNOWN_PREREQUISITE, "prerequisite p2 is not known"),
    ];
    expect(addedProblems([], more)).toEqual(more);
  });
});

describe("oneTakenPerId", () => {
  it("keeps the first report of each id taken, and every other problem", () => {
    const problems = [
      problem("a", ProblemCode.DUPLICATE_ID, "taken by the task's shard"),
      problem("a", ProblemCode.UNKNOWN_PREREQUISITE, "p1"),
      problem("a", ProblemCode.UNKNOWN_PREREQUISITE, "p2"),
      problem("b", ProblemCode.DUPLICATE_ID),
      problem("a", ProblemCode.DUPLICATE_ID, "taken in the cluster"),
    ];
    expect(oneTakenPerId(problems)).toEqual(problems.slice(0, 4));
  });
});
