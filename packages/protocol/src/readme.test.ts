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
    // Wire limits (MAX_*) and the shard-side timeouts (*_TTL_MS), which no wire check enforces.
    const exported = Object.keys(protocol).filter((k) => k.startsWith("MAX_") || k.endsWith("_TTL_MS"));
    expect(exported).toContain("PREPARE_TTL_MS");
    expect(rows.map((r) => unquote(r[0])).sort()).toEqual(exported.sort());
    for (const [name, value, code] of rows) {
      const actual = (protocol as unknown as Record<string, number>)[unquote(name)];
      expect(Number((value ?? "").split(" ")[0]?.replace(/,/g, "")), name).toBe(actual);
      if (unquote(name).startsWith("MAX_")) expect(Object.keys(WIRE_ERRORS), name).toContain(unquote(code));
      else expect(code, name).toBe("—");
    }
  });

  it("documents every op", () => {
    const rows = table("Messages");
    expect(rows.map((r) => unquote(r[0]))).toEqual([...protocol.OPS]);
  });

  it("lists exactly the fields each op's request and ok reply may carry", () => {
    for (const [cell, requestCell, replyCell] of table("Messages")) {
      const op = unquote(cell) as protocol.Op;
      expect(fieldsIn(requestCell), `${op} request`).toEqual(
        allowedFields(
          () => protocol.encodeRequest({ op, [PROBE]: 1 } as unknown as protocol.Request),
          ["op"],
        ),
      );
      expect(fieldsIn(replyCell), `${op} reply`).toEqual(
        allowedFields(
          () => protocol.encodeReply({ ok: true, op, [PROBE]: 1 } as unknown as protocol.Reply),
          ["ok", "op"],
        ),
      );
    }
  });

  it("lists the fields of a frontier announcement, in the prose and in the wire example", () => {
    const allowed = allowedFields(
      () => protocol.encodeFrontier({ [PROBE]: 1 } as unknown as protocol.FrontierAnnouncement),
      [],
    );
    expect(allowed).toContain("key");
    const prose = /`FrontierAnnouncement` — `\{([^}]*)\}`/.exec(readme)?.[1] ?? "";
    expect(
      prose
        .split(",")
        .map((f) => f.trim())
        .sort(),
    ).toEqual(allowed);
    const example =
      new RegExp(`\\{ v: ${protocol.PROTOCOL_VERSION}, kind: "frontier", (.*) \\}`).exec(readme)?.[1] ?? "";
    expect(
      example
        .replace(/\[[^\]]*\]/g, "[]")
        .split(", ")
        .map((f) => f.split(":")[0]!.trim())
        .sort(),
    ).toEqual(allowed);
  });
});

/** A field no message has: the codec refuses it, naming the fields it allows. */
const PROBE = "readmeProbe";

/** The fields a parser allows besides `envelope`, read from its unknown-field error, sorted. */
function allowedFields(encodeWithProbe: () => unknown, envelope: readonly string[]): string[] {
  let message = "";
  try {
    encodeWithProbe();
  } catch (err) {
    message = (err as Error).message;
  }
  const list = /unknown field "readmeProbe" \(expected only ([^)]*)\)/.exec(message)?.[1];
  expect(list, message).toBeDefined();
  return (list ?? "")
    .split(", ")
    .filter((f) => !envelope.includes(f))
    .sort();
}

/** The field names in a README cell: each backquoted name (`?` or a type dropped), not in (remarks). */
function fieldsIn(cell: string | undefined): string[] {
  const names = (cell ?? "").replace(/\([^)]*\)/g, "");
  return [...names.matchAll(/`([A-Za-z]+)[?:`]/g)].map((m) => m[1]!).sort();
}
