import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterPrincipals, ensureCredentials } from "@frontier/transport";
import { afterAll, describe, expect, it } from "vitest";
import { IMPLICIT_CREDENTIALS_DIR, parse, target } from "./args.js";

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A working directory, with `.frontier/credentials` as `frontier start` leaves it when `withKeys`. */
function workingDir(withKeys: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), "frontier-args-"));
  made.push(dir);
  if (withKeys)
    ensureCredentials(join(dir, IMPLICIT_CREDENTIALS_DIR), "default", clusterPrincipals(["shard-0"]));
  return dir;
}

const targetOf = (command: string, argv: readonly string[], cwd: string) =>
  target(command, parse(command, argv, {}), { env: {}, cwd, userCwd: cwd });

describe("target: the credentials a client command connects with", () => {
  it("finds .frontier/credentials in the working directory and connects as the command's role", () => {
    const cwd = workingDir(true);
    const t = targetOf("status", [], cwd);
    expect(t.credentialsDir).toBe(join(cwd, IMPLICIT_CREDENTIALS_DIR));
    expect(t.access.nkeySeedFile).toMatch(/submitter/);
    expect(t.access.inboxPrefix).toBe("_INBOX.default.submitter");
  });

  it("--role picks another key from the directory it found (it used to drop the directory)", () => {
    const cwd = workingDir(true);
    const t = targetOf("retry", ["--role", "admin"], cwd);
    expect(t.credentialsDir).toBe(join(cwd, IMPLICIT_CREDENTIALS_DIR));
    expect(t.access.nkeySeedFile).toMatch(/admin/);
    expect(t.access.inboxPrefix).toBe("_INBOX.default.admin");
  });

  it("refuses --role when there is no credentials directory to pick from", () => {
    const cwd = workingDir(false);
    expect(() => targetOf("status", ["--role", "admin"], cwd)).toThrow(
      /--role admin needs a credentials directory/,
    );
    expect(targetOf("status", [], cwd).credentialsDir).toBeUndefined();
  });
});
