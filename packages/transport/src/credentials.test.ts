import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  AUTH_CONFIG_FILE,
  accessOf,
  clusterPrincipals,
  ensureCredentials,
  seedFileOf,
} from "./credentials.js";
import { NatsAccessError } from "./nats-access.js";
import { inboxPrefixOf, permissionsOf } from "./roles.js";

const root = mkdtempSync(join(tmpdir(), "frontier-credentials-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("ensureCredentials", () => {
  it("makes one private seed per principal and an auth.conf with their public keys only", () => {
    const dir = join(root, "fresh");
    const made = ensureCredentials(dir, "c1", clusterPrincipals(["shard-0", "shard-1"]));
    expect(made.created.map((p) => (p.role === "shard" ? p.shardId : p.role))).toEqual([
      "coordinator",
      "worker",
      "submitter",
      "admin",
      "shard-0",
      "shard-1",
    ]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const conf = readFileSync(join(dir, AUTH_CONFIG_FILE), "utf8");
    for (const user of made.users) {
      const file = seedFileOf(dir, user.principal);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const seed = readFileSync(file, "utf8").trim();
      expect(seed).toMatch(/^SU[A-Z2-7]+$/);
      expect(conf).not.toContain(seed);
      expect(conf).toContain(user.publicKey);
    }
    expect(conf).toContain(JSON.stringify("frontier.c1.shard.shard-1.*"));
    expect(conf).toContain('"frontier.c1.coord.* frontier-coordinators"');
  });

  it("keeps the seeds it finds and adds the missing ones (a shard added later)", () => {
    const dir = join(root, "grow");
    const first = ensureCredentials(dir, "c1", clusterPrincipals(["a"]));
    const second = ensureCredentials(dir, "c1", clusterPrincipals(["a", "b"]));
    expect(second.created).toEqual([{ role: "shard", shardId: "b" }]);
    const key = (creds: typeof first, id: string) =>
      creds.users.find((u) => u.principal.role === "shard" && u.principal.shardId === id)?.publicKey;
    expect(key(second, "a")).toBe(key(first, "a"));
  });

  it("refuses a seed file that holds something else, naming the file and not its content", () => {
    const dir = join(root, "bad");
    ensureCredentials(dir, "c1", clusterPrincipals([]));
    writeFileSync(seedFileOf(dir, { role: "worker" }), "not-a-seed-at-all\n");
    expect(() => ensureCredentials(dir, "c1", clusterPrincipals([]))).toThrow(NatsAccessError);
    expect(() => ensureCredentials(dir, "c1", clusterPrincipals([]))).toThrow(/worker\.nk.*nkey user seed/);
  });
});

describe("accessOf", () => {
  it("gives a principal its seed file and its inbox prefix", () => {
    const dir = join(root, "access");
    ensureCredentials(dir, "c1", clusterPrincipals(["s"]));
    expect(accessOf(dir, "c1", { role: "shard", shardId: "s" })).toEqual({
      nkeySeedFile: join(dir, "shards", "s.nk"),
      inboxPrefix: "_INBOX.c1.shard.s",
    });
    expect(() => accessOf(dir, "c1", { role: "shard", shardId: "t" })).toThrow(/no seed for shard\.t/);
  });
});

describe("roles", () => {
  it("gives every principal an inbox of its own, the only inbox it may subscribe to", () => {
    const principals = clusterPrincipals(["a", "b"]);
    const prefixes = principals.map((p) => inboxPrefixOf("c", p));
    expect(new Set(prefixes).size).toBe(principals.length);
    for (const [i, p] of principals.entries()) {
      const inboxes = permissionsOf("c", p).subscribe.filter((subject) => subject.startsWith("_INBOX"));
      expect(inboxes).toEqual([`${prefixes[i]}.>`]);
    }
  });

  it("lets only shards publish announcements or write the slot bucket, and only admins write schedules", () => {
    for (const p of clusterPrincipals(["a"])) {
      const publish = permissionsOf("c", p).publish;
      const slots = publish.includes("frontier.c.frontier") || publish.includes("$KV.frontier-c-slots.>");
      expect([p.role, slots]).toEqual([p.role, p.role === "shard"]);
      const schedules = publish.includes("$KV.frontier-c-schedules.>");
      expect([p.role, schedules]).toEqual([p.role, p.role === "admin"]);
      const otherWrites = publish.filter(
        (s) => s.startsWith("$KV.") && s !== "$KV.frontier-c-slots.>" && s !== "$KV.frontier-c-schedules.>",
      );
      expect(otherWrites).toEqual([]);
    }
  });

  it("refuses names that are not subject tokens", () => {
    expect(() => permissionsOf("c.*", { role: "worker" })).toThrow(/cluster name/);
    expect(() => inboxPrefixOf("c", { role: "shard", shardId: ">" })).toThrow(/shard id/);
  });
});
