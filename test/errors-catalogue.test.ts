/**
 * docs/errors.md is the one catalogue of error codes: every code map of
 * every package, each code listed once under its map, wire codes with the
 * retryability the protocol's catalogue gives them, and the CLI's exit codes.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ExitCode } from "@frontier/cli";
import { ClientErrorCode } from "@frontier/client";
import {
  ClusterIdentityErrorCode,
  JournalShippingErrorCode,
  StreamReplicasErrorCode,
} from "@frontier/cluster";
import { CoordinatorErrorCode } from "@frontier/coordinator";
import { ErrorCode, ProblemCode } from "@frontier/core";
import { NatsHarnessErrorCode } from "@frontier/nats-testing";
import { WIRE_ERRORS, WireErrorCode } from "@frontier/protocol";
import { ShardErrorCode } from "@frontier/shard";
import { describe, expect, it } from "vitest";

const page = readFileSync(join(resolve(import.meta.dirname, ".."), "docs", "errors.md"), "utf8");

const MAPS: Record<string, Record<string, string>> = {
  ErrorCode,
  ProblemCode,
  WireErrorCode,
  ShardErrorCode,
  ClientErrorCode,
  CoordinatorErrorCode,
  ClusterIdentityErrorCode,
  JournalShippingErrorCode,
  StreamReplicasErrorCode,
  NatsHarnessErrorCode,
};

/** The rows of the table under the heading that names `map`: first cell, and the whole row. */
function rowsOf(map: string): { code: string; cells: string[] }[] {
  const section = page.split(/^## /m).find((s) => s.split("\n")[0]!.includes(`\`${map}\``));
  if (section === undefined) return [];
  return section
    .split("\n")
    .filter((l) => /^\| `[A-Z_]+` \|/.test(l))
    .map((l) => {
      const cells = l.split(" | ").map((c) => c.replace(/^\| |`| \|$/g, "").trim());
      return { code: cells[0]!, cells };
    });
}

describe("docs/errors.md", () => {
  it("lists every code of every code map under its map, and nothing else", () => {
    for (const [map, codes] of Object.entries(MAPS)) {
      expect([map, rowsOf(map).map((r) => r.code)]).toEqual([map, Object.values(codes)]);
    }
  });

  it("gives each wire code the retryability of the protocol's catalogue", () => {
    for (const { code, cells } of rowsOf("WireErrorCode")) {
      const info = WIRE_ERRORS[code as WireErrorCode];
      expect([code, cells[1]]).toEqual([code, info.retryable ? "yes" : "no"]);
    }
  });

  it("lists the CLI's exit codes", () => {
    for (const [name, code] of Object.entries(ExitCode)) {
      expect(page).toMatch(new RegExp(`\\| ${code} \\| \`${name}\` \\|`));
    }
  });
});
