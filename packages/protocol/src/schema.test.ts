/**
 * The building blocks of the schemas, and what they take from valibot
 * (pinned at 1.5.0): a schema's `~run` with our config, `_addIssue` calling
 * an issue's message function with the issue it keeps (how an issue carries
 * its code), paths added by the object and array schemas as an issue goes
 * up, and one issue only. The codec tests pin every message; these pin the
 * mechanism, so a valibot upgrade that changes it fails here first.
 */
import { InvalidArgumentError } from "@frontier/core";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "./errors.js";
import { bounded, list, map, num, optional, parse, refuse, rule, str, text } from "./schema.js";

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a throw");
}

const point = map({ x: num, y: num, label: optional(str) });

describe("map", () => {
  it("rebuilds a map with only its fields, dropping undefined optionals, leaving the input alone", () => {
    const input = { x: 1, y: 2, label: undefined };
    const out = parse(point, input);
    expect(out).toEqual({ x: 1, y: 2 });
    expect(Object.keys(out)).toEqual(["x", "y"]);
    expect(out).not.toBe(input);
    expect(Object.keys(input)).toEqual(["x", "y", "label"]);
  });

  it("names an unknown field before a missing one, and a missing one by what it expects", () => {
    expect(thrown(() => parse(point, { x: 1, yy: 2 })).message).toBe(
      'message: unknown field "yy" (expected only x, y, label)',
    );
    expect(thrown(() => parse(point, { x: 1 })).message).toBe("y: expected a number, missing");
    expect(thrown(() => parse(point, [1, 2])).message).toBe("message: expected a map, got an array");
    expect(thrown(() => parse(point, new Date(0))).message).toBe("message: expected a map, got a timestamp");
  });

  it("reports one issue, the first, with the path valibot builds as it goes up", () => {
    const nested = map({ points: list(point), at: point });
    const err = thrown(() =>
      parse(nested, {
        points: [
          { x: 1, y: 2 },
          { x: "a", y: "b" },
        ],
        at: null,
      }),
    );
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("BAD_MESSAGE");
    expect(err.message).toBe('points[1].x: expected a number, got string "a"');
  });

  it("runs its rules once every field passed, at the path they name", () => {
    const range = map({ from: num, to: num }, (r) =>
      r.to < r.from ? { at: ["to"], code: "BAD_MESSAGE", text: `below from (${r.from})` } : undefined,
    );
    expect(parse(range, { from: 1, to: 2 })).toEqual({ from: 1, to: 2 });
    expect(thrown(() => parse(range, { from: 3, to: 2 })).message).toBe("to: below from (3)");
    expect(thrown(() => parse(range, { from: 3, to: "2" })).message).toBe(
      'to: expected a number, got string "2"',
    );
  });
});

describe("codes", () => {
  it("carries each issue's own code to the error, INVALID_ARGUMENT as the engine's class", () => {
    const batch = bounded(num, 2, "MAX_TEST", "BATCH_TOO_LARGE");
    const err = thrown(() => parse(map({ xs: batch }), { xs: [1, 2, 3] }));
    expect((err as ProtocolError).code).toBe("BATCH_TOO_LARGE");
    expect(err.message).toBe("xs: 3 items exceed MAX_TEST (2)");
    const note = text(3, "MAX_NOTE", "INVALID_ARGUMENT");
    const invalid = thrown(() => parse(map({ note }), { note: "long" }));
    expect(invalid).toBeInstanceOf(InvalidArgumentError);
    expect(invalid.message).toBe("note: 4 characters exceed MAX_NOTE (3)");
  });

  it("checks a list's length before its items", () => {
    const batch = bounded(num, 1, "MAX_TEST", "BATCH_TOO_LARGE");
    expect((thrown(() => parse(batch, ["a", "b"])) as ProtocolError).code).toBe("BATCH_TOO_LARGE");
  });

  it("names a list's item from a rule, and refuses with a probe's failure", () => {
    const sorted = v.pipe(
      list(num),
      rule<readonly number[]>((xs) => {
        for (let i = 1; i < xs.length; i++)
          if (xs[i]! < xs[i - 1]!) return { at: [i], code: "BAD_MESSAGE", text: "out of order" };
        return undefined;
      }),
    );
    expect(parse(map({ xs: sorted }), { xs: [1, 2] })).toEqual({ xs: [1, 2] });
    expect(thrown(() => parse(map({ xs: sorted }), { xs: [2, 1] })).message).toBe("xs[1]: out of order");
    const never = refuse((input) => ({ at: ["op"], code: "BAD_MESSAGE", text: `no op in ${typeof input}` }));
    expect(thrown(() => parse(never, { op: 1 })).message).toBe("op: no op in object");
  });
});
