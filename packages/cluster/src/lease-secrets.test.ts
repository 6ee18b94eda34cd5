import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LEASE_SECRET_KEY_FILE, LeaseSecrets } from "./lease-secrets.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "lease-secrets-"));
  dirs.push(dir);
  return dir;
}

describe("LeaseSecrets", () => {
  it("gives each lease (task, token) its own 22-character secret, the same every time", () => {
    const secrets = LeaseSecrets.withKey(new Uint8Array(32).fill(7));
    const s = secrets.of("t1", 5);
    expect(s).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(secrets.of("t1", 5)).toBe(s);
    expect(new Set([s, secrets.of("t1", 6), secrets.of("t2", 5), secrets.of("5:t1", 0)]).size).toBe(4);
    expect(secrets.matches("t1", 5, s)).toBe(true);
    expect(secrets.matches("t1", 6, s)).toBe(false);
    expect(secrets.matches("t2", 5, s)).toBe(false);
    expect(secrets.matches("t1", 5, "AAAAAAAAAAAAAAAAAAAAAA")).toBe(false);
    expect(secrets.matches("t1", 5, "")).toBe(false);
  });

  it("never begins with a dash, which a command line would take for an option", () => {
    const secrets = LeaseSecrets.withKey(new Uint8Array(32).fill(3));
    const firsts = new Set<string>();
    for (let token = 0; token < 2_000; token++) firsts.add(secrets.of("t", token)[0]!);
    expect([...firsts].filter((c) => !/[A-Za-f]/.test(c))).toEqual([]);
    expect(firsts.size).toBe(32);
  });

  it("depends on the shard's key: another key makes other secrets", () => {
    const a = LeaseSecrets.withKey(new Uint8Array(32).fill(1));
    const b = LeaseSecrets.withKey(new Uint8Array(32).fill(2));
    expect(a.of("t", 1)).not.toBe(b.of("t", 1));
    expect(b.matches("t", 1, a.of("t", 1))).toBe(false);
  });

  it("makes its key once in the data directory, readable by the owner only, and reads it back", () => {
    const dir = freshDir();
    const first = LeaseSecrets.load(dir);
    const file = join(dir, LEASE_SECRET_KEY_FILE);
    expect(readFileSync(file)).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = LeaseSecrets.load(dir);
    expect(again.of("t", 1)).toBe(first.of("t", 1));
    expect(LeaseSecrets.load(freshDir()).of("t", 1)).not.toBe(first.of("t", 1));
  });

  it("refuses a key file of the wrong size rather than make a new key over it", () => {
    const dir = freshDir();
    writeFileSync(join(dir, LEASE_SECRET_KEY_FILE), "short");
    expect(() => LeaseSecrets.load(dir)).toThrow(/5 bytes, expected 32/);
    expect(readFileSync(join(dir, LEASE_SECRET_KEY_FILE), "utf8")).toBe("short");
  });
});
