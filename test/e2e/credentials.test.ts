/**
 * Frontier on a NATS server that requires credentials: `frontier start`
 * (coordinator and shard threads), the CLI and the SDK all authenticate with
 * what they are given (a password file, the environment, a token in the
 * URL), and nothing repeats a secret when the server refuses; a server
 * that requires mutual TLS, with certificates made here by openssl; and a
 * server in operator mode (accounts and JWTs), with creds files made here by
 * @nats-io/jwt, one of them holding a worker's role as JWT permissions.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClientError, connect } from "@frontier/client";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { inboxPrefixOf, permissionsOf } from "@frontier/transport";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
} from "@nats-io/jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, type StartedFrontier, startFrontier, until } from "./harness.js";

const PASSWORD = "pw-0f1e2d3c4b5a";
const TOKEN = "tok-9a8b7c6d5e4f";
const CLUSTER = "creds";

let dir: string;
let server: NatsServer;
let tokenServer: NatsServer;
let start: StartedFrontier | undefined;
let passwordFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-creds-"));
  passwordFile = join(dir, "nats-password");
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  server = await startNatsServer({ args: ["--user", "app", "--pass", PASSWORD] });
  tokenServer = await startNatsServer({ jetstream: false, args: ["--auth", TOKEN] });
  start = await startFrontier([
    "--nats",
    server.url,
    "--nats-user",
    "app",
    "--nats-password-file",
    passwordFile,
    "--cluster",
    CLUSTER,
    "--data",
    join(dir, "data"),
    "--shards",
    "2",
  ]);
}, 120_000);

afterAll(async () => {
  await start?.stop();
  await server?.stop();
  await tokenServer?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("a NATS server that requires a user and password", () => {
  it("runs the cluster, and serves an SDK client that gives them", async () => {
    expect(start!.output()).not.toContain(PASSWORD);
    const client = await connect({ servers: server.url, cluster: CLUSTER, user: "app", pass: PASSWORD });
    try {
      await until(
        async () => (await client.stats({ retry: { attempts: 1 } })).shards.answered.length === 2,
        30_000,
      );
      await client.submit([{ id: "with-creds", deadline: 1 }]);
      const [lease] = await client.lease({ max: 1, waitMs: 5_000 });
      expect(lease?.taskId).toBe("with-creds");
      expect(await client.complete(lease!)).toEqual({ duplicate: false });
    } finally {
      await client.close();
    }
  });

  it("serves the CLI with the password in a file or in the environment", async () => {
    const viaFile = await frontier([
      "status",
      "--nats",
      server.url,
      "--cluster",
      CLUSTER,
      "--nats-user",
      "app",
      "--nats-password-file",
      passwordFile,
    ]);
    expect(viaFile.code, viaFile.stderr).toBe(0);
    expect(viaFile.stdout).toContain(`cluster "${CLUSTER}"`);
    const viaEnv = await frontier(["status", "--json"], {
      env: {
        FRONTIER_NATS_URL: server.url,
        FRONTIER_CLUSTER: CLUSTER,
        FRONTIER_NATS_USER: "app",
        FRONTIER_NATS_PASSWORD: PASSWORD,
      },
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout).shards.answered).toHaveLength(2);
  });

  it("refuses a client without them in one line that repeats no secret", async () => {
    const none = await frontier(["status", "--nats", server.url, "--cluster", CLUSTER]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/authori[sz]ation/i);
    const wrong = await frontier([
      "status",
      "--nats",
      `nats://app:not-${PASSWORD}@${server.url.replace(/^nats:\/\//, "")}`,
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/nats:\/\/app:\*\*\*@/);
    for (const r of [none, wrong]) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });
});

describe("a NATS server that requires a token", () => {
  it("takes it from the URL: the SDK connects and the URL it shows hides it", async () => {
    const at = tokenServer.url.replace(/^nats:\/\//, "");
    const client = await connect({ servers: `nats://${TOKEN}@${at}`, cluster: "token" });
    await client.close();
    const refused = await connect({
      servers: `nats://wrong-token@${at}`,
      cluster: "token",
      connectTimeoutMs: 2_000,
    }).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain("nats://***@");
    expect((refused as Error).message).not.toContain("wrong-token");
  });
});

/** A CA, and a server certificate (for 127.0.0.1) and a client certificate it signed: openssl, into `at`. */
function makeCertificates(at: string) {
  const f = (name: string) => join(at, name);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const days = ["-days", "2"];
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    ...days,
    "-subj",
    "/CN=frontier-test-ca",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
  );
  for (const [name, extensions] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=frontier-test-${name}`,
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
    );
    execFileSync("sh", ["-c", `printf '${extensions}\n' > ${f(`${name}.ext`)}`]);
    ssl(
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      ...days,
      "-extfile",
      f(`${name}.ext`),
      "-out",
      f(`${name}.pem`),
    );
  }
  return {
    ca: f("ca.pem"),
    serverCert: f("server.pem"),
    serverKey: f("server.key"),
    clientCert: f("client.pem"),
    clientKey: f("client.key"),
  };
}

describe("a NATS server that requires mutual TLS", () => {
  it("runs frontier start with the CA, certificate and key files, serves the SDK with them, and refuses a client without", async () => {
    const certs = makeCertificates(await mkdtemp(join(dir, "tls-")));
    const tlsServer = await startNatsServer({
      args: [
        "--tls",
        "--tlscert",
        certs.serverCert,
        "--tlskey",
        certs.serverKey,
        "--tlscacert",
        certs.ca,
        "--tlsverify",
      ],
    });
    const url = tlsServer.url.replace(/^nats:/, "tls:");
    const tlsStart = await startFrontier([
      ...[
        "--nats",
        url,
        "--cluster",
        "tls",
        "--data",
        join(dir, "tls-data"),
        "--shards",
        "1",
        "--no-metrics",
      ],
      ...["--nats-ca", certs.ca, "--nats-cert", certs.clientCert, "--nats-key", certs.clientKey],
    ]);
    try {
      const tls = { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey };
      const client = await connect({ servers: url, cluster: "tls", tls });
      try {
        await until(
          async () => (await client.stats({ retry: { attempts: 1 } })).shards.answered.length === 1,
          30_000,
        );
        await client.submit([{ id: "over-tls", deadline: 1 }]);
        const [lease] = await client.lease({ max: 1, waitMs: 5_000 });
        expect(lease?.taskId).toBe("over-tls");
        expect(await client.complete(lease!)).toEqual({ duplicate: false });
      } finally {
        await client.close();
      }
      const noCertificate = await connect({
        servers: url,
        cluster: "tls",
        tls: { caFile: certs.ca },
        connectTimeoutMs: 2_000,
      }).catch((e: Error) => e);
      expect(noCertificate).toBeInstanceOf(Error);
      const cli = await frontier([
        "status",
        "--nats",
        url,
        "--cluster",
        "tls",
        "--nats-ca",
        certs.ca,
        "--nats-cert",
        certs.clientCert,
        "--nats-key",
        certs.clientKey,
        "--json",
      ]);
      expect(cli.code, cli.stderr).toBe(0);
      expect(JSON.parse(cli.stdout).shards.answered).toHaveLength(1);
    } finally {
      await tlsStart.stop();
      await tlsServer.stop();
    }
  });
});

describe("a NATS server in operator mode (JWTs and creds files)", () => {
  it("runs frontier start with a creds file, serves the SDK with one, and holds a worker's JWT to its role", async () => {
    const at = await mkdtemp(join(dir, "jwt-"));
    const operator = createOperator();
    const account = createAccount();
    const system = createAccount(); // JetStream needs the server's system account
    const operatorJwt = await encodeOperator("frontier-test", operator, {
      system_account: system.getPublicKey(),
    } as never);
    const systemJwt = await encodeAccount("SYS", system, {}, { signer: operator });
    // JetStream on for the account: the slot bucket lives there.
    const accountJwt = await encodeAccount(
      "frontier",
      account,
      {
        // Every limit given: one left out counts as 0 (no connections, say), not unlimited.
        limits: {
          ...{
            subs: -1,
            conn: -1,
            leaf: -1,
            imports: -1,
            exports: -1,
            data: -1,
            payload: -1,
            wildcards: true,
          },
          ...{ mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
        },
      } as never,
      { signer: operator },
    );
    const credsFile = async (name: string, permissions?: ReturnType<typeof permissionsOf>) => {
      const user = createUser();
      const jwt = await encodeUser(
        name,
        user,
        account,
        permissions === undefined
          ? {}
          : {
              pub: { allow: [...permissions.publish] },
              sub: { allow: [...permissions.subscribe] },
              ...(permissions.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
            },
      );
      const file = join(at, `${name}.creds`);
      await writeFile(file, fmtCreds(jwt, user), { mode: 0o600 });
      return file;
    };
    const config = join(at, "operator.conf");
    await writeFile(
      config,
      [
        `operator: ${operatorJwt}`,
        `system_account: ${system.getPublicKey()}`,
        "resolver: MEMORY",
        `resolver_preload: { ${account.getPublicKey()}: ${accountJwt}, ${system.getPublicKey()}: ${systemJwt} }`,
        "",
      ].join("\n"),
    );
    const jwtServer = await startNatsServer({ args: ["-c", config] });
    const service = await credsFile("service");
    const jwtStart = await startFrontier([
      ...["--nats", jwtServer.url, "--cluster", "jwt", "--data", join(dir, "jwt-data"), "--shards", "1"],
      ...["--no-metrics", "--nats-creds", service],
    ]);
    try {
      const submitter = await connect({ servers: jwtServer.url, cluster: "jwt", credsFile: service });
      try {
        await until(
          async () => (await submitter.stats({ retry: { attempts: 1 } })).shards.answered.length === 1,
          30_000,
        );
        await submitter.submit([{ id: "over-jwt", deadline: 1 }]);
      } finally {
        await submitter.close();
      }
      // A worker whose JWT carries the worker role's permissions: it leases and completes, and
      // the server refuses it anything else.
      const workerCreds = await credsFile("worker", permissionsOf("jwt", { role: "worker" }));
      const worker = await connect({
        servers: jwtServer.url,
        cluster: "jwt",
        credsFile: workerCreds,
        inboxPrefix: inboxPrefixOf("jwt", { role: "worker" }),
        retry: { attempts: 1 },
      });
      try {
        const [lease] = await worker.lease({ max: 1, waitMs: 5_000 });
        expect(lease?.taskId).toBe("over-jwt");
        expect(await worker.complete(lease!)).toEqual({ duplicate: false });
        const refused = await worker
          .submit([{ id: "not-for-workers", deadline: 1 }])
          .catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(ClientError);
        expect((refused as ClientError).code).toBe("PERMISSION_DENIED");
      } finally {
        await worker.close();
      }
      const stranger = await connect({
        servers: jwtServer.url,
        cluster: "jwt",
        connectTimeoutMs: 2_000,
      }).catch((e: Error) => e);
      expect(stranger).toBeInstanceOf(Error);
      expect(jwtStart.output()).not.toMatch(/SU[A-Z2-7]{50,}/); // no seed in what it printed
    } finally {
      await jwtStart.stop();
      await jwtServer.stop();
    }
  });
});
