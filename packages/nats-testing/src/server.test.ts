import { existsSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { NatsHarnessError, NatsHarnessErrorCode, type NatsServer, startNatsServer } from "./index.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

// Everything a test starts is stopped here, even when the test fails half way.
const servers: NatsServer[] = [];
const connections: NatsConnection[] = [];
afterEach(async () => {
  await Promise.all(connections.splice(0).map((nc) => nc.close().catch(() => {})));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function start(options?: Parameters<typeof startNatsServer>[0]): Promise<NatsServer> {
  const s = await startNatsServer(options);
  servers.push(s);
  return s;
}

async function client(server: NatsServer): Promise<NatsConnection> {
  const nc = await connect({
    servers: server.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
  connections.push(nc);
  return nc;
}

/** An echo responder: replies "echo:<data>". */
function echo(nc: NatsConnection, subject: string): void {
  nc.subscribe(subject, {
    callback: (_err, msg) => {
      msg.respond(enc.encode(`echo:${dec.decode(msg.data)}`));
    },
  });
}

/** Retry a request until it succeeds: the client reconnects in the background. */
async function requestEventually(nc: NatsConnection, subject: string, data: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const reply = await nc.request(subject, enc.encode(data), { timeout: 500 });
      return dec.decode(reply.data);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A JetStream API call over plain request/reply (this package does not depend on @nats-io/jetstream). */
async function jsApi(
  nc: NatsConnection,
  api: string,
  body: unknown = undefined,
  timeout = 5_000,
): Promise<Record<string, unknown>> {
  const data = body === undefined ? undefined : enc.encode(JSON.stringify(body));
  const reply = await nc.request(`$JS.API.${api}`, data, { timeout });
  return JSON.parse(dec.decode(reply.data)) as Record<string, unknown>;
}

function portAcceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("startNatsServer", () => {
  it("starts on a free loopback port with JetStream, and serves request/reply", async () => {
    const server = await start();
    expect(server.status).toBe("running");
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.pid).toBeTypeOf("number");

    const nc = await client(server);
    echo(nc, "svc.echo");
    const reply = await nc.request("svc.echo", enc.encode("hi"), { timeout: 2_000 });
    expect(dec.decode(reply.data)).toBe("echo:hi");

    const info = await jsApi(nc, "INFO");
    expect(info["error"]).toBeUndefined();
    expect(info["type"]).toBe("io.nats.jetstream.api.v1.account_info_response");
  });

  it("runs independent servers side by side on different ports", async () => {
    const [a, b] = await Promise.all([start(), start()]);
    expect(a.port).not.toBe(b.port);
    expect(a.storeDir).not.toBe(b.storeDir);
  });

  it("restarts gracefully on the same port, and a client reconnects to it", async () => {
    const server = await start();
    const nc = await client(server);
    echo(nc, "svc.echo");
    expect(await requestEventually(nc, "svc.echo", "before")).toBe("echo:before");
    const { port, url } = server;
    const oldPid = server.pid;

    await server.restart();
    expect(server.port).toBe(port);
    expect(server.url).toBe(url);
    expect(server.pid).not.toBe(oldPid);
    // The client re-subscribes on reconnect, so the same responder answers again.
    expect(await requestEventually(nc, "svc.echo", "after")).toBe("echo:after");
  });

  it("survives kill -9 and restart with its JetStream store intact", async () => {
    const server = await start();
    const nc = await client(server);
    const created = await jsApi(nc, "STREAM.CREATE.CHAOS", {
      name: "CHAOS",
      subjects: ["chaos.>"],
      storage: "file",
    });
    expect(created["error"]).toBeUndefined();
    const ack = await nc.request("chaos.one", enc.encode("persist me"), { timeout: 5_000 });
    expect(JSON.parse(dec.decode(ack.data))).toMatchObject({ stream: "CHAOS", seq: 1 });

    await server.restart({ mode: "kill" });

    const deadline = Date.now() + 10_000;
    let state: Record<string, unknown> | undefined;
    while (state === undefined) {
      try {
        const info = await jsApi(nc, "STREAM.INFO.CHAOS", undefined, 500);
        if (info["error"] === undefined) state = info["state"] as Record<string, unknown>;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      if (state === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(state["messages"]).toBe(1);
  });

  it("kill() leaves the server down until restart() brings it back", async () => {
    const server = await start();
    const { port } = server;
    await server.kill();
    expect(server.status).toBe("down");
    expect(server.pid).toBeNull();
    expect(await portAcceptsTcp(port)).toBe(false);

    await server.kill(); // Idempotent while down.
    await server.restart({ downtimeMs: 10 });
    expect(server.status).toBe("running");
    expect(server.port).toBe(port);
    const nc = await client(server);
    echo(nc, "svc.echo");
    expect(await requestEventually(nc, "svc.echo", "back")).toBe("echo:back");
  });

  it("notices a process that died on its own", async () => {
    const server = await start();
    const pid = server.pid;
    expect(pid).not.toBeNull();
    process.kill(pid!, "SIGKILL");
    await expect.poll(() => server.status, { timeout: 5_000 }).toBe("down");
    await server.restart();
    expect(server.status).toBe("running");
  });

  it("stop() is final: port freed, temp store removed, idempotent, no restart", async () => {
    const server = await start();
    const { port, storeDir } = server;
    expect(existsSync(storeDir)).toBe(true);
    await server.stop();
    expect(server.status).toBe("stopped");
    expect(existsSync(storeDir)).toBe(false);
    expect(await portAcceptsTcp(port)).toBe(false);
    await server.stop();
    const err = await server.restart().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsHarnessError);
    expect((err as NatsHarnessError).code).toBe(NatsHarnessErrorCode.INVALID_STATE);
  });

  it("can run without JetStream", async () => {
    const server = await start({ jetstream: false });
    const nc = await client(server);
    const err = await nc.request("$JS.API.INFO", undefined, { timeout: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error); // No responders: JetStream is off.
  });

  it("fails with START_FAILED and the server's output when the port is taken", async () => {
    const first = await start();
    const err = await start({ port: first.port, startTimeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsHarnessError);
    expect((err as NatsHarnessError).code).toBe(NatsHarnessErrorCode.START_FAILED);
    expect((err as Error).message).toMatch(/address already in use/i);
  });

  it("fails with START_FAILED when the server rejects its arguments", async () => {
    const err = await start({ args: ["--no-such-flag"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsHarnessError);
    expect((err as NatsHarnessError).code).toBe(NatsHarnessErrorCode.START_FAILED);
    expect((err as Error).message).toContain("no-such-flag");
  });

  it("tells the user to install nats-server when the binary is missing", async () => {
    const err = await start({ binary: "/nonexistent/nats-server" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsHarnessError);
    expect((err as NatsHarnessError).code).toBe(NatsHarnessErrorCode.NOT_FOUND);

    const saved = process.env["NATS_SERVER_BIN"];
    process.env["NATS_SERVER_BIN"] = "/nonexistent/nats-server";
    try {
      const err2 = await start().catch((e: unknown) => e);
      expect((err2 as NatsHarnessError).code).toBe(NatsHarnessErrorCode.NOT_FOUND);
      expect((err2 as Error).message).toContain("apt-get install nats-server");
      expect((err2 as Error).message).toContain("NATS_SERVER_BIN");
    } finally {
      if (saved === undefined) delete process.env["NATS_SERVER_BIN"];
      else process.env["NATS_SERVER_BIN"] = saved;
    }
  });

  it("checks its options and names the bad one", async () => {
    for (const [options, name] of [
      [{ port: 70_000 }, "port"],
      [{ port: 1.5 }, "port"],
      [{ startTimeoutMs: 0 }, "startTimeoutMs"],
      [{ stopTimeoutMs: Number.NaN }, "stopTimeoutMs"],
    ] as const) {
      const err = await start(options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NatsHarnessError);
      expect((err as NatsHarnessError).code).toBe(NatsHarnessErrorCode.INVALID_OPTION);
      expect((err as Error).message).toContain(`option ${name}`);
    }
  });
});
