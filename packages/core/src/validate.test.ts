import { describe, expect, it } from "vitest";
import { ProblemCode } from "./errors.js";
import { checkBatch, parseTask } from "./validate.js";

const defaults = { maxAttempts: 5 };

function codes(inputs: unknown[], opts: { sameWorkflowPrerequisites?: boolean } = {}) {
  return checkBatch(inputs, { defaults, ...opts }).problems.map((p) => [p.taskId, p.code]);
}

describe("parseTask", () => {
  it("fills defaults and freezes the prerequisite list", () => {
    const parsed = parseTask({ id: "a", deadline: 3, prerequisites: ["b"] }, 0, defaults);
    expect(parsed).toEqual({
      task: {
        deadline: 3,
        payloadBytes: 0,
        spec: {
          id: "a",
          prerequisites: ["b"],
          maxAttempts: 5,
          hardDeadline: false,
          onPrerequisiteFailure: "cancel",
        },
      },
    });
  });

  it.each([
    [null, "#0", "not an object"],
    [[1], "#0", "not an object"],
    [{ deadline: 1 }, "#0", "id must be a string"],
    [{ id: "", deadline: 1 }, "#0", "1..256 characters"],
    [{ id: "x".repeat(257), deadline: 1 }, "#0", "1..256 characters"],
    [{ id: "a", deadline: Number.NaN }, "a", "finite number"],
    [{ id: "a", deadline: "1" }, "a", "finite number"],
    [{ id: "a", deadline: 1, prerequisites: "b" }, "a", "array of ids"],
    [{ id: "a", deadline: 1, prerequisites: [1] }, "a", "not a valid id"],
    [{ id: "a", deadline: 1, prerequisites: ["b", "b"] }, "a", "listed twice"],
    [{ id: "a", deadline: 1, maxAttempts: 0 }, "a", "maxAttempts"],
    [{ id: "a", deadline: 1, hardDeadline: "yes" }, "a", "hardDeadline"],
    [{ id: "a", deadline: 1, onPrerequisiteFailure: "skip" }, "a", "onPrerequisiteFailure"],
    [{ id: "a", deadline: 1, workflowId: "" }, "a", "workflowId"],
    [{ id: "a", deadline: 1, prerequisite: ["b"] }, "a", 'unknown field "prerequisite"'],
  ])("rejects %j as MALFORMED", (input, taskId, message) => {
    const parsed = parseTask(input, 0, defaults);
    expect("problems" in parsed).toBe(true);
    const problems = (parsed as { problems: { taskId: string; code: string; message: string }[] }).problems;
    expect(problems[0]).toMatchObject({ taskId, code: ProblemCode.MALFORMED });
    expect(problems.map((p) => p.message).join("; ")).toContain(message);
  });
});

describe("checkBatch without an engine (the coordinator's pre-check)", () => {
  it("accepts a DAG", () => {
    expect(
      codes([
        { id: "a", deadline: 1 },
        { id: "b", deadline: 1, prerequisites: ["a"] },
        { id: "c", deadline: 1, prerequisites: ["a", "b"] },
      ]),
    ).toEqual([]);
  });

  it("reports duplicates, self-dependencies and every cycle with its path", () => {
    const { problems } = checkBatch(
      [
        { id: "a", deadline: 1, prerequisites: ["c"] },
        { id: "b", deadline: 1, prerequisites: ["a"] },
        { id: "c", deadline: 1, prerequisites: ["b"] },
        { id: "a", deadline: 2 },
        { id: "s", deadline: 1, prerequisites: ["s"] },
      ],
      { defaults },
    );
    expect(problems.map((p) => p.code).sort()).toEqual(["CYCLE", "DUPLICATE_ID", "SELF_DEPENDENCY"]);
    const cycle = problems.find((p) => p.code === "CYCLE")!;
    expect(cycle.message).toMatch(/"a" -> "b" -> "c" -> "a"/);
  });

  it("keeps prerequisites inside their workflow when asked", () => {
    expect(
      codes(
        [
          { id: "a", deadline: 1, workflowId: "w1" },
          { id: "b", deadline: 1, workflowId: "w2", prerequisites: ["a"] },
        ],
        { sameWorkflowPrerequisites: true },
      ),
    ).toEqual([["b", "CROSS_WORKFLOW"]]);
  });

  it("handles a long chain without recursion limits", () => {
    const n = 100_000;
    const tasks = Array.from({ length: n }, (_, i) => ({
      id: `t${i}`,
      deadline: i,
      prerequisites: i === 0 ? [`t${n - 1}`] : [`t${i - 1}`],
    }));
    const { problems } = checkBatch(tasks, { defaults });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("CYCLE");
  });
});
