import { describe, expect, it } from "vitest";
import { ForwardReferences } from "./forward-references.js";

describe("ForwardReferences", () => {
  it("keeps each id's waiters in naming order until the id is taken, and forgets removed ones", () => {
    const refs = new ForwardReferences();
    expect(refs.take("x")).toBeUndefined();
    refs.add("x", 3);
    refs.add("y", 4);
    refs.add("x", 1);
    expect(refs.waitingFor("x")).toEqual([3, 1]);
    refs.remove("x", 3);
    refs.remove("x", 9); // not waiting: nothing changes
    expect(refs.take("x")).toEqual([1]);
    expect(refs.take("x")).toBeUndefined();
    expect(refs.waitingFor("x")).toEqual([]);
    refs.remove("y", 4);
    expect(refs.take("y")).toBeUndefined();
  });
});
