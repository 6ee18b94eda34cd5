/**
 * One cluster, one owner, as a user meets it: `frontier start` twice on one
 * NATS server under one cluster name with two data directories. The second
 * is refused (it would split or steal the first one's slots, and `status`
 * would mix their answers) unless it joins with `--join` and shard ids of
 * its own; a restart on the same data is accepted; a shard whose data
 * directory belongs to another cluster of the same name is refused.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, startFrontier } from "./harness.js";

const CLUSTER = "owned";
let server: NatsServer;
let dir: string;

beforeAll(async () => {
  server = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "frontier-owner-"));
});

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const on = (url: string) => ["--nats", url, "--cluster", CLUSTER, "--no-metrics", "--log-level", "warn"];

/** The shards `frontier status` reports, once every shard answers. */
async function shardsInStatus(url: string): Promise<string[]> {
  const r = await frontier(["status", ...on(url).slice(0, 4), "--json"]);
  expect(r.code, r.stderr).toBe(0);
  const status = JSON.parse(r.stdout) as { shards?: { answered?: string[] } };
  return status.shards?.answered ?? [];
}

describe("a cluster name on one NATS server", () => {
  it("refuses a second `frontier start` with another data directory, takes it with --join, and takes a restart", async () => {
    const first = await startFrontier([...on(server.url), "--data", join(dir, "a")]);
    try {
      const second = await frontier(["start", ...on(server.url), "--data", join(dir, "b")]);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toMatch(/already exists on this NATS/);
      expect(second.stderr).toMatch(/--join/);
      expect(second.stderr).not.toMatch(/\n\s+at /);

      // --join with the same shard ids would answer for the first instance's shards: refused too.
      const sameIds = await frontier(["start", ...on(server.url), "--data", join(dir, "b"), "--join"]);
      expect(sameIds.code).not.toBe(0);
      expect(sameIds.stderr).toMatch(/SHARD_ID_TAKEN/);

      const joined = await startFrontier([
        ...on(server.url),
        "--data",
        join(dir, "b"),
        "--join",
        "--first-shard",
        "2",
      ]);
      try {
        expect((await shardsInStatus(server.url)).sort()).toEqual(["shard-0", "shard-1"]);
      } finally {
        await joined.stop();
      }
    } finally {
      await first.stop();
    }
    const again = await startFrontier([...on(server.url), "--data", join(dir, "a")]);
    await again.stop();
    expect(again.output()).not.toMatch(/error/i);
  });

  it("refuses a shard whose data directory belongs to another cluster of the same name", async () => {
    const other = await startNatsServer();
    try {
      // The cluster "owned" on another server: another identity.
      const elsewhere = await startFrontier([...on(other.url), "--data", join(dir, "elsewhere")]);
      try {
        const r = await frontier([
          "shard",
          ...on(other.url),
          "--id",
          "shard-9",
          "--data",
          join(dir, "a", "shards", "shard-0"),
        ]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/belongs to cluster "owned" with identity [0-9a-f-]{36}/);
        expect(r.stderr).toMatch(/has identity [0-9a-f-]{36}/);
      } finally {
        await elsewhere.stop();
      }
    } finally {
      await other.stop();
    }
  });
});
