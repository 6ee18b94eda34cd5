/** A task id's claim (messages.ts): the claim a task makes, and which of a part's claims are of other tasks. */
import { describe, expect, it } from "vitest";
import { claimOf, claimsOfOtherTasks } from "./index.js";

describe("claimsOfOtherTasks", () => {
  const claims = [
    claimOf({ id: "a", workflowId: "w" }),
    claimOf({ id: "b", workflowId: "w", large: true }),
    claimOf({ id: "c" }),
  ];

  it("keeps the claims of tasks the part does not carry, in order", () => {
    expect(claimsOfOtherTasks(claims, [{ id: "b" }])).toEqual([claims[0], claims[2]]);
    expect(claimsOfOtherTasks(claims, [{ id: "a" }, { id: "b" }, { id: "c" }])).toEqual([]);
  });

  it("is every claim of a part without tasks, and none of a part without claims", () => {
    expect(claimsOfOtherTasks(claims, [])).toEqual(claims);
    expect(claimsOfOtherTasks([], [{ id: "a" }])).toEqual([]);
  });
});
