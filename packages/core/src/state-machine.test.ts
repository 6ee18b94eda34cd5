/**
 * The state machine as data: TRANSITIONS is what setState enforces, the
 * README draws exactly it, and the model tests (scheduler.model.test.ts)
 * drive the engine through every transition it allows, so an engine change
 * that makes a task move any other way fails them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canTransition, S, STATE_NAMES, TRANSITIONS } from "./task-table.js";

const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");

/** `FROM --> TO` edges between states in the README's mermaid diagram (start and end markers left out). */
function drawn(): string[] {
  const block = /```mermaid\n(stateDiagram-v2[\s\S]*?)```/.exec(readme)?.[1] ?? "";
  return [...block.matchAll(/^\s*([A-Z]+) --> ([A-Z]+)/gm)].map(([, from, to]) => `${from} -> ${to}`).sort();
}

describe("the task state machine", () => {
  it("is drawn in the README exactly as TRANSITIONS has it", () => {
    const table = Object.entries(TRANSITIONS)
      .flatMap(([from, targets]) => targets.map((to) => `${from} -> ${to}`))
      .sort();
    expect(table.length).toBeGreaterThan(0);
    expect(drawn()).toEqual(table);
  });

  it("answers canTransition from the table, and lets a terminal state go only back to the start (retry)", () => {
    for (const [from, code] of Object.entries(S)) {
      for (const [to, target] of Object.entries(S)) {
        const allowed = (TRANSITIONS[from as keyof typeof S] as readonly string[]).includes(to);
        expect([from, to, canTransition(code, target)]).toEqual([from, to, allowed]);
      }
    }
    expect(TRANSITIONS.COMPLETED).toEqual([]);
    for (const ended of ["FAILED", "CANCELLED", "EXPIRED"] as const) {
      expect([...TRANSITIONS[ended]].sort()).toEqual(["RUNNABLE", "WAITING"]);
    }
    expect(Object.keys(TRANSITIONS)).toEqual([...STATE_NAMES]);
  });
});
