import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeFileDurably } from "./durable-file.js";

const dir = mkdtempSync(join(tmpdir(), "frontier-durable-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("writeFileDurably", () => {
  it("creates, then replaces, a file with its mode, leaving no temporary file behind", () => {
    writeFileDurably(dir, "a.json", "first\n", 0o600);
    expect(readFileSync(join(dir, "a.json"), "utf8")).toBe("first\n");
    expect(statSync(join(dir, "a.json")).mode & 0o777).toBe(0o600);
    writeFileDurably(dir, "a.json", new Uint8Array([1, 2, 3]), 0o600);
    expect([...readFileSync(join(dir, "a.json"))]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(["a.json"]);
  });
});
