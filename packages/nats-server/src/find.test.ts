import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findNatsServer } from "./find.js";

const root = mkdtempSync(join(tmpdir(), "find-nats-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh directory, holding a file named nats-server (executable or not) unless `executable` is null. */
function makeDir(name: string, executable: boolean | null): string {
  const dir = mkdtempSync(join(root, `${name}-`));
  if (executable !== null) {
    const file = join(dir, "nats-server");
    writeFileSync(file, "#!/bin/sh\n");
    chmodSync(file, executable ? 0o755 : 0o644);
  }
  return dir;
}

describe("findNatsServer", () => {
  it("finds the real binary on this machine", () => {
    expect(findNatsServer()).toMatch(/nats-server$/);
  });

  it("searches PATH in order and skips files that are not executable", () => {
    const empty = makeDir("empty", null);
    const notExec = makeDir("noexec", false);
    const good = makeDir("good", true);
    const later = makeDir("later", true);
    const PATH = [empty, notExec, good, later].join(":");
    expect(findNatsServer({ env: { PATH }, locations: [] })).toBe(join(good, "nats-server"));
  });

  it("falls back to the fixed locations after PATH", () => {
    const fallback = join(makeDir("fallback", true), "nats-server");
    expect(findNatsServer({ env: { PATH: makeDir("none", null) }, locations: ["/nope", fallback] })).toBe(
      fallback,
    );
  });

  it("returns null when there is none", () => {
    expect(findNatsServer({ env: { PATH: makeDir("none", null) }, locations: [] })).toBeNull();
    expect(findNatsServer({ env: {}, locations: [] })).toBeNull();
  });

  it("uses NATS_SERVER_BIN exclusively when it is set", () => {
    const onPath = makeDir("onpath", true);
    const chosen = join(makeDir("chosen", true), "nats-server");
    expect(findNatsServer({ env: { PATH: onPath, NATS_SERVER_BIN: chosen }, locations: [] })).toBe(chosen);
    // A wrong explicit choice is not silently replaced by the binary on PATH.
    expect(findNatsServer({ env: { PATH: onPath, NATS_SERVER_BIN: "/nope" }, locations: [] })).toBeNull();
    // An empty value counts as unset.
    expect(findNatsServer({ env: { PATH: onPath, NATS_SERVER_BIN: "" }, locations: [] })).toBe(
      join(onPath, "nats-server"),
    );
  });

  it("does not take a directory named nats-server for the binary", () => {
    const dir = makeDir("dir", null);
    mkdirSync(join(dir, "nats-server"));
    expect(findNatsServer({ env: { PATH: dir }, locations: [] })).toBeNull();
  });
});
