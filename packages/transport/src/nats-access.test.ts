import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NatsAccessError, natsConnectionOptions } from "./nats-access.js";

const dir = mkdtempSync(join(tmpdir(), "nats-access-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

describe("natsConnectionOptions", () => {
  it("passes servers on, split and trimmed, with nothing else for an open server", () => {
    expect(natsConnectionOptions("nats://a:4222, nats://b:4222")).toEqual({
      servers: ["nats://a:4222", "nats://b:4222"],
    });
  });

  it("takes a user and password, or a token, out of the URLs", () => {
    expect(natsConnectionOptions("nats://app:p%40ss@h:4222")).toEqual({
      servers: ["nats://h:4222"],
      user: "app",
      pass: "p@ss",
    });
    expect(natsConnectionOptions(["nats://t0k3n@h1:4222", "nats://t0k3n@h2:4222"])).toEqual({
      servers: ["nats://h1:4222", "nats://h2:4222"],
      token: "t0k3n",
    });
    expect(() => natsConnectionOptions("nats://a:1@h1,nats://b:2@h2")).toThrow(NatsAccessError);
  });

  it("lets the options' own credentials win over the URL's", () => {
    expect(natsConnectionOptions("nats://x:y@h", { user: "app", pass: "pw" })).toMatchObject({
      servers: ["nats://h"],
      user: "app",
      pass: "pw",
    });
    expect(natsConnectionOptions("nats://x:y@h", { token: "t" })).toEqual({
      servers: ["nats://h"],
      token: "t",
    });
  });

  it("refuses settings that contradict each other, naming them and no secret", () => {
    expect(() => natsConnectionOptions("h", { pass: "hunter2" })).toThrow(/a NATS password needs a user/);
    const both = () => natsConnectionOptions("h", { user: "u", pass: "hunter2", token: "t0k3n" });
    expect(both).toThrow(/one kind of credentials, not user and password and token/);
    expect(both).not.toThrow(/hunter2|t0k3n/);
    expect(() => natsConnectionOptions("h", { tls: { certFile: file("c.pem", "x") } })).toThrow(
      /certificate needs its key/,
    );
  });

  it("reads an nkey seed or a creds file into an authenticator, and says which file it cannot read", () => {
    const seed = file("user.nk", "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\n");
    const nkey = natsConnectionOptions("h", { nkeySeedFile: seed });
    expect(typeof nkey.authenticator).toBe("function");
    expect(() => natsConnectionOptions("h", { credsFile: join(dir, "missing.creds") })).toThrow(
      /cannot read the creds file ".*missing\.creds" \(ENOENT\)/,
    );
    expect(() => natsConnectionOptions("h", { tls: { caFile: join(dir, "no-ca.pem") } })).toThrow(
      /cannot read the TLS CA file/,
    );
  });

  it("carries TLS files and the inbox prefix", () => {
    const ca = file("ca.pem", "ca");
    expect(
      natsConnectionOptions("tls://h:4222", { tls: { caFile: ca }, inboxPrefix: "_INBOX_worker" }),
    ).toEqual({
      servers: ["tls://h:4222"],
      tls: { caFile: ca },
      inboxPrefix: "_INBOX_worker",
    });
  });
});
