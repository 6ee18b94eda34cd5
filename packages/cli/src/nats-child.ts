/**
 * `frontier start` without a NATS server: find out whether one answers at the
 * URL, and if not, run `nats-server` (JetStream on, store under the data
 * directory, on the URL's port) as a child that stops with us.
 *
 * The child is spawned here rather than through @frontier/nats-testing's
 * `startNatsServer`: that harness binds 127.0.0.1 on a port of its choosing
 * and SIGKILLs its servers on the first signal, while `start` needs the
 * URL's own host and port and a graceful stop after the shards have closed.
 * Both find the binary with @frontier/nats-server's `findNatsServer`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { findNatsServer } from "@frontier/nats-server";
import { redactUrl } from "@frontier/protocol";
import { type NatsAccess, natsConnectionOptions } from "@frontier/transport";
import { connect } from "@nats-io/transport-node";
import { CliError } from "./errors.js";

/** The line printed when NATS is neither running nor installed. */
export const INSTALL_NATS_HINT =
  "install NATS with `apt-get install nats-server` (or see https://docs.nats.io/running-a-nats-service/introduction/installation), or point --nats at a running server";

/** How long to wait for a NATS child to accept clients, ms. */
const NATS_START_TIMEOUT_MS = 10_000;
/** How long a NATS child gets to exit after SIGTERM before SIGKILL, ms. */
const NATS_STOP_TIMEOUT_MS = 5_000;

/**
 * How a NATS server at `url` answers within `timeoutMs`: "admitted" (it
 * accepts this client, with `access`), "refused" (a server is there but wants
 * other credentials), or "absent".
 */
export type NatsAnswer = "admitted" | "refused" | "absent";

export async function natsAnswer(
  url: string,
  access: NatsAccess = {},
  timeoutMs = 1_000,
): Promise<NatsAnswer> {
  try {
    const nc = await connect({
      ...natsConnectionOptions(url, access),
      timeout: timeoutMs,
      maxReconnectAttempts: 0,
      reconnect: false,
    });
    await nc.close();
    return "admitted";
  } catch (error) {
    return /authori[sz]ation|authentication/i.test(String((error as Error)?.message ?? error))
      ? "refused"
      : "absent";
  }
}

export interface NatsChild {
  readonly url: string;
  readonly pid: number;
  readonly binary: string;
  readonly storeDir: string;
  /** SIGTERM, wait (SIGKILL after a grace period). Idempotent. */
  stop(): Promise<void>;
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "0.0.0.0", "::1", "::", ""]);

export interface NatsChildOptions {
  /** A configuration file for the server (the authorization block of a credentials directory). */
  readonly configFile?: string;
}

/**
 * Start nats-server for `url` (host must be this machine) with JetStream
 * storing under `storeDir`, and `configFile` when given (the flags here
 * override what it sets of address, port and store). Throws CliError with
 * the install hint when there is no nats-server binary.
 */
export async function startNatsChild(
  host: string,
  port: number,
  storeDir: string,
  url: string,
  options: NatsChildOptions = {},
): Promise<NatsChild> {
  const binary = findNatsServer();
  if (binary === null)
    throw new CliError(`no NATS server answers at ${redactUrl(url)}; ${INSTALL_NATS_HINT}`);
  if (!LOCAL_HOSTS.has(host)) {
    throw new CliError(
      `no NATS server answers at ${redactUrl(url)}, and a NATS server can only be started here for a local address (127.0.0.1:${port})`,
    );
  }
  await mkdir(storeDir, { recursive: true });
  const bind = host === "localhost" ? "127.0.0.1" : host;
  const args = [
    ...(options.configFile === undefined ? [] : ["-c", options.configFile]),
    ...["-a", bind, "-p", String(port), "-js", "-sd", storeDir],
  ];
  // Its own process group: a Ctrl-C in the terminal reaches us, not it, and we stop it
  // after the shards have closed (they still need it to finish cleanly).
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  let dead = false;
  void exited.then(() => {
    dead = true;
  });

  const deadline = Date.now() + NATS_START_TIMEOUT_MS;
  const probeUrl = `nats://${bind.includes(":") ? `[${bind}]` : bind === "0.0.0.0" ? "127.0.0.1" : bind}:${port}`;
  while ((await natsAnswer(probeUrl, {}, 500)) === "absent") {
    if (dead || Date.now() > deadline) {
      await terminate(child, exited);
      const last = output.trim().split("\n").slice(-1)[0] ?? "";
      throw new CliError(
        `nats-server (${binary}) did not start on ${bind}:${port}${last === "" ? "" : `: ${last.replace(/^\[\d+\]\s*\S+\s+\S+\s+/, "")}`}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Whatever way we exit, the child does not outlive us.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  let stopping: Promise<void> | null = null;
  return {
    url: probeUrl,
    pid: child.pid ?? -1,
    binary,
    storeDir,
    stop() {
      stopping ??= terminate(child, exited).finally(() => process.off("exit", reap));
      return stopping;
    },
  };
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), NATS_STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
