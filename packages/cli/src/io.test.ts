import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { printable, println } from "./io.js";

describe("printable", () => {
  it("escapes what a terminal would act on: escape sequences, carriage returns, C1, bidi overrides", () => {
    expect(printable("t\u001b[31mred\u001b[0m")).toBe("t\\u001b[31mred\\u001b[0m");
    expect(printable("ok\rEVIL")).toBe("ok\\u000dEVIL");
    expect(printable("a\nb")).toBe("a\nb");
    expect(printable("x\u009by")).toBe("x\\u009by");
    expect(printable("invoice\u202Efdp.exe")).toBe("invoice\\u202efdp.exe");
    expect(printable("tabs\tstay, and é, 😀, 任务 too")).toBe("tabs\tstay, and é, 😀, 任务 too");
  });

  it("keeps a JSON line the same JSON", () => {
    const value = { id: "t\u202e\u0085", reason: "a\u001bb" };
    const line = printable(JSON.stringify(value));
    for (const c of ["\u0085", "\u202e", "\u001b"]) expect(line).not.toContain(c);
    expect(JSON.parse(line)).toEqual(value);
  });

  it("is what println writes", () => {
    const out = new PassThrough();
    println(out, "started \u001b]0;pwned\u0007");
    expect(out.read().toString()).toBe("started \\u001b]0;pwned\\u0007\n");
  });
});
