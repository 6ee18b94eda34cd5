import { FrontierError, InvalidArgumentError } from "@frontier/core";
import { describe, expect, it } from "vitest";
import { COORDINATOR_QUEUE, isValidToken, OPS, type Op, parseSubject, subjectsFor } from "./index.js";

describe("subjectsFor", () => {
  const s = subjectsFor("prod-eu_1");

  it("lays out coordinator, shard and frontier subjects under the cluster", () => {
    expect(s.cluster).toBe("prod-eu_1");
    expect(s.coord("submit")).toBe("frontier.prod-eu_1.coord.submit");
    expect(s.coordAll).toBe("frontier.prod-eu_1.coord.*");
    expect(s.shard("shard-7", "lease")).toBe("frontier.prod-eu_1.shard.shard-7.lease");
    expect(s.shardAll("shard-7")).toBe("frontier.prod-eu_1.shard.shard-7.*");
    expect(s.frontier).toBe("frontier.prod-eu_1.frontier");
    expect(s.all).toBe("frontier.prod-eu_1.>");
    expect(COORDINATOR_QUEUE).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("keeps clusters apart: no subject of one lies under another's wildcard", () => {
    const a = subjectsFor("a");
    const ab = subjectsFor("ab");
    expect(ab.coord("submit").startsWith(a.all.slice(0, -1))).toBe(false);
  });

  it.each(["", "a.b", "a*", ">", "a b", "tab\t", "ü", "x".repeat(65), "a/b"])(
    "refuses %j as a cluster name or shard id",
    (bad) => {
      expect(() => subjectsFor(bad)).toThrow(InvalidArgumentError);
      expect(() => s.shard(bad, "lease")).toThrow(InvalidArgumentError);
      expect(() => s.shardAll(bad)).toThrow(/shard id must be/);
      expect(isValidToken(bad)).toBe(false);
    },
  );

  it("accepts names of 64 characters and refuses unknown ops", () => {
    expect(isValidToken("x".repeat(64))).toBe(true);
    const err = (() => {
      try {
        s.coord("launch" as Op);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(FrontierError);
    expect((err as FrontierError).code).toBe("INVALID_ARGUMENT");
    expect((err as Error).message).toContain("submit, lease");
  });
});

describe("parseSubject", () => {
  const s = subjectsFor("c1");

  it("reads back every subject subjectsFor builds", () => {
    for (const op of OPS) {
      expect(parseSubject(s.coord(op))).toEqual({ role: "coord", cluster: "c1", op });
      expect(parseSubject(s.shard("s-1", op))).toEqual({ role: "shard", cluster: "c1", shardId: "s-1", op });
    }
    expect(parseSubject(s.frontier)).toEqual({ role: "frontier", cluster: "c1" });
  });

  it.each([
    "",
    "frontier",
    "frontier.c1",
    "other.c1.coord.submit",
    "frontier.c1.coord",
    "frontier.c1.coord.launch",
    "frontier.c1.coord.submit.extra",
    "frontier.c1.shard.s1",
    "frontier.c1.shard.s1.launch",
    "frontier.c1.frontier.x",
    "frontier..coord.submit",
    "frontier.c1.coord.*",
    "_INBOX.abc",
  ])("returns null for %j", (subject) => {
    expect(parseSubject(subject)).toBeNull();
  });
});
