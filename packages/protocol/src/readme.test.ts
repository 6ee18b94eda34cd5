import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as protocol from "./index.js";
import { WIRE_ERRORS } from "./index.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The rows of the markdown table under `## <heading>`, as trimmed cells. */
function table(heading: string): string[][] {
  const section = readme.split(`## ${heading}\n`)[1]?.split("\n## ")[0] ?? "";
  return section
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) =>
      line
        .slice(1, -1)
        .split(" | ")
        .map((cell) => cell.trim()),
    );
}

const unquote = (cell: string | undefined): string => (cell ?? "").replace(/`/g, "");

describe("the README", () => {
  it("lists every error code, with the catalogue's retryability and source", () => {
    const rows = table("Error codes");
    expect(rows.map((r) => unquote(r[0]))).toEqual(Object.keys(WIRE_ERRORS));
    for (const [code, retryable, source] of rows) {
      const info = WIRE_ERRORS[unquote(code) as keyof typeof WIRE_ERRORS];
      expect(retryable, code).toBe(info.retryable ? "yes" : "no");
      expect(source, code).toBe(info.source);
    }
  });

  it("lists every limit with its value and the code its violation produces", () => {
    const rows = table("Limits");
    const exported = Object.keys(protocol).filter((k) => k.startsWith("MAX_"));
    expect(rows.map((r) => unquote(r[0])).sort()).toEqual(exported.sort());
    for (const [name, value, code] of rows) {
      const actual = (protocol as unknown as Record<string, number>)[unquote(name)];
      expect(Number((value ?? "").split(" ")[0]?.replace(/,/g, "")), name).toBe(actual);
      expect(Object.keys(WIRE_ERRORS), name).toContain(unquote(code));
    }
  });

  it("documents every op", () => {
    const rows = table("Messages");
    expect(rows.map((r) => unquote(r[0]))).toEqual([...protocol.OPS]);
  });
});
