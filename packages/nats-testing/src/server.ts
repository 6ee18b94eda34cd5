import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findNatsServer, isExecutableFile, NATS_SERVER_BIN_ENV } from "@frontier/nats-server";
import { NatsHarnessError, NatsHarnessErrorCode } from "./errors.js";
import { reapOnExit } from "./exit-cleanup.js";

/** How long `startNatsServer` / `restart` wait for the server to accept connections, in ms. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;
/** How long a graceful stop waits for the process to exit before it is killed, in ms. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
/** The server is bound to loopback only: tests never expose a port beyond this machine. */
export const NATS_TEST_HOST = "127.0.0.1";

/** Bytes of recent server output kept for `log()` and for failure messages. */
const LOG_LIMIT = 64 * 1024;
/** Pause between readiness probes, in ms. */
const PROBE_INTERVAL_MS = 20;

export interface NatsServerOptions {
  /** Path of the binary. Default: `findNatsServer()`. */
  readonly binary?: string;
  /** Client port. Default: a free port chosen by the server itself (no race with other tests). */
  readonly port?: number;
  /** Enable JetStream. Default: true. */
  readonly jetstream?: boolean;
  /** JetStream store. Default: a fresh temp dir, deleted by `stop()`. A dir you pass is never deleted. */
  readonly storeDir?: string;
  /** Extra command-line flags, appended last (so they can override ours). */
  readonly args?: readonly string[];
  /** See `DEFAULT_START_TIMEOUT_MS`. */
  readonly startTimeoutMs?: number;
  /** See `DEFAULT_STOP_TIMEOUT_MS`. */
  readonly stopTimeoutMs?: number;
  /** Echo the server's output to this process's stderr. Default: false. */
  readonly debug?: boolean;
}

export interface RestartOptions {
  /**
   * "graceful": SIGTERM and wait (SIGKILL after `stopTimeoutMs`);
   * "kill": SIGKILL at once, like a crash (kill -9). Default: "graceful".
   */
  readonly mode?: "graceful" | "kill";
  /** Stay down this long before starting again, in ms. Default: 0. */
  readonly downtimeMs?: number;
}

/**
 * A nats-server child process.
 *
 * Status (one field, changed only in `ManagedNatsServer`):
 *   running --kill() / process died-->  down
 *   down    --restart()-->              running   (same port, same store)
 *   running --restart()-->              running   (stops first: graceful or kill)
 *   running | down --stop()-->          stopped   (final; temp dirs removed)
 */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`; stable across restarts. */
  readonly url: string;
  readonly port: number;
  /** The JetStream store directory (kept across restarts). */
  readonly storeDir: string;
  readonly status: "running" | "down" | "stopped";
  /** Pid of the live process, or null when it is not running. */
  readonly pid: number | null;
  /** Recent output of the server (its last 64 KiB), across restarts. */
  log(): string;
  /** Graceful shutdown, then removal of the temp dirs. Idempotent. The server cannot be restarted after. */
  stop(): Promise<void>;
  /** Kill the process (default SIGKILL, a crash) and leave it down; the store is kept for `restart()`. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stop (if running) and start again on the same port with the same store. */
  restart(options?: RestartOptions): Promise<void>;
}

interface FilledOptions {
  readonly jetstream: boolean;
  readonly args: readonly string[];
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly debug: boolean;
}

/**
 * Start a nats-server on loopback, wait until it accepts connections, and
 * return a handle to it. JetStream is on by default, with a fresh store.
 * Rejects with `NatsHarnessError` (NOT_FOUND, START_FAILED, START_TIMEOUT).
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const filled = fillOptions(options);
  const binary = resolveBinary(options.binary);
  const workDir = await mkdtemp(join(tmpdir(), "frontier-nats-"));
  const storeDir = options.storeDir ?? join(workDir, "store");
  const server = new ManagedNatsServer(binary, workDir, storeDir, options.storeDir === undefined, filled);
  try {
    await server.start(options.port ?? -1);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

function fillOptions(options: NatsServerOptions): FilledOptions {
  const ms = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isFinite(v) || v <= 0) {
      throw new NatsHarnessError(
        NatsHarnessErrorCode.INVALID_OPTION,
        `startNatsServer: option ${name} must be a positive number of ms, got ${v}`,
      );
    }
    return v;
  };
  if (
    options.port !== undefined &&
    (!Number.isInteger(options.port) || options.port < 1 || options.port > 65_535)
  ) {
    throw new NatsHarnessError(
      NatsHarnessErrorCode.INVALID_OPTION,
      `startNatsServer: option port must be an integer in 1..65535, got ${options.port}`,
    );
  }
  return {
    jetstream: options.jetstream ?? true,
    args: options.args ?? [],
    startTimeoutMs: ms("startTimeoutMs", options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS),
    stopTimeoutMs: ms("stopTimeoutMs", options.stopTimeoutMs, DEFAULT_STOP_TIMEOUT_MS),
    debug: options.debug ?? false,
  };
}

function resolveBinary(explicit: string | undefined): string {
  if (explicit !== undefined) {
    if (isExecutableFile(explicit)) return explicit;
    throw new NatsHarnessError(
      NatsHarnessErrorCode.NOT_FOUND,
      `nats-server binary ${JSON.stringify(explicit)} (option binary) is not an executable file`,
    );
  }
  const found = findNatsServer();
  if (found !== null) return found;
  const env = process.env[NATS_SERVER_BIN_ENV];
  const why =
    env !== undefined && env !== ""
      ? `${NATS_SERVER_BIN_ENV}=${JSON.stringify(env)} is not an executable file`
      : "nats-server is neither on PATH nor in /usr/sbin, /usr/local/bin, /usr/bin";
  throw new NatsHarnessError(
    NatsHarnessErrorCode.NOT_FOUND,
    `${why}. Install it with \`apt-get install nats-server\` (or set ${NATS_SERVER_BIN_ENV} to its path).`,
  );
}

type State =
  | { readonly status: "running"; readonly child: ChildProcess; readonly exited: Promise<void> }
  | { readonly status: "down" }
  | { readonly status: "stopped" };

class ManagedNatsServer implements NatsServer {
  private state: State = { status: "down" };
  private assignedPort = 0;
  private output = "";
  private readonly untrack: () => void;

  constructor(
    private readonly binary: string,
    private readonly workDir: string,
    readonly storeDir: string,
    private readonly ownsStore: boolean,
    private readonly options: FilledOptions,
  ) {
    this.untrack = reapOnExit(this);
  }

  get url(): string {
    return `nats://${NATS_TEST_HOST}:${this.assignedPort}`;
  }

  get port(): number {
    return this.assignedPort;
  }

  get status(): NatsServer["status"] {
    return this.state.status;
  }

  get pid(): number | null {
    return this.state.status === "running" ? (this.state.child.pid ?? null) : null;
  }

  log(): string {
    return this.output;
  }

  /** Spawn on `port` (-1: let the server choose) and wait until it answers with INFO. */
  async start(port: number): Promise<void> {
    // Fresh each time: a ports file left by a killed predecessor must not be mistaken for ours.
    const portsDir = join(this.workDir, "ports");
    await rm(portsDir, { recursive: true, force: true });
    await mkdir(portsDir, { recursive: true });
    const args = ["-a", NATS_TEST_HOST, "-p", String(port), "--ports_file_dir", portsDir];
    if (this.options.jetstream) args.push("-js", "-sd", this.storeDir);
    args.push(...this.options.args);

    const child = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    // Set from the child's events; an object so the loop below re-reads it.
    const death: { why: string | null } = { why: null };
    const exited = new Promise<void>((resolve) => {
      child.once("error", (err) => {
        death.why = `could not be spawned: ${err.message}`;
        resolve();
      });
      child.once("exit", (code, signal) => {
        death.why = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
    });
    // A process that dies on its own (crash, external kill) leaves the server down.
    void exited.then(() => {
      if (this.state.status === "running" && this.state.child === child) this.state = { status: "down" };
    });
    child.stdout?.on("data", (chunk: Buffer) => this.append(chunk));
    child.stderr?.on("data", (chunk: Buffer) => this.append(chunk));
    this.state = { status: "running", child, exited };

    const deadline = Date.now() + this.options.startTimeoutMs;
    const fail = (code: NatsHarnessErrorCode, why: string): NatsHarnessError =>
      new NatsHarnessError(code, `nats-server ${why} (${this.binary} ${args.join(" ")})\n${this.tail()}`);

    // Ready = our own process reported its port (so it, and not some other
    // server already on that port, is listening) and the port greets a client.
    let known = 0;
    for (;;) {
      if (death.why !== null)
        throw fail(NatsHarnessErrorCode.START_FAILED, `${death.why} before it was ready`);
      if (known === 0 && child.pid !== undefined) known = await readPortsFile(portsDir, child.pid);
      if (known !== 0 && port > 0 && known !== port) {
        await this.terminate("SIGKILL");
        throw fail(
          NatsHarnessErrorCode.START_FAILED,
          `listens on port ${known}, not on the requested ${port}`,
        );
      }
      if (known !== 0 && (await acceptsClients(known, PROBE_INTERVAL_MS * 25))) break;
      if (Date.now() > deadline) {
        await this.terminate("SIGKILL");
        throw fail(
          NatsHarnessErrorCode.START_TIMEOUT,
          `did not accept connections within ${this.options.startTimeoutMs} ms`,
        );
      }
      await Promise.race([sleep(PROBE_INTERVAL_MS), exited]);
    }
    this.assignedPort = known;
  }

  async stop(): Promise<void> {
    if (this.state.status === "stopped") return;
    await this.terminate("SIGTERM");
    this.state = { status: "stopped" };
    this.untrack();
    await rm(this.workDir, { recursive: true, force: true });
    if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.terminate(signal);
  }

  async restart(options: RestartOptions = {}): Promise<void> {
    if (this.state.status === "stopped") {
      throw new NatsHarnessError(
        NatsHarnessErrorCode.INVALID_STATE,
        "restart() after stop(): the server is gone",
      );
    }
    await this.terminate(options.mode === "kill" ? "SIGKILL" : "SIGTERM");
    if (options.downtimeMs !== undefined && options.downtimeMs > 0) await sleep(options.downtimeMs);
    await this.start(this.assignedPort);
  }

  /** Synchronous last resort for process exit: no graceful shutdown, no awaiting. */
  reapSync(): void {
    if (this.state.status === "running") {
      try {
        this.state.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    rmSync(this.workDir, { recursive: true, force: true });
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }

  /**
   * Send `signal` and wait for the exit; a SIGTERM that is not obeyed within
   * `stopTimeoutMs` is followed by SIGKILL. Leaves the server down.
   */
  private async terminate(signal: NodeJS.Signals): Promise<void> {
    if (this.state.status !== "running") return;
    const { child, exited } = this.state;
    child.kill(signal);
    if (signal !== "SIGKILL") {
      const timer = sleep(this.options.stopTimeoutMs).then(() => "timeout" as const);
      if ((await Promise.race([exited.then(() => "exited" as const), timer])) === "timeout") {
        child.kill("SIGKILL");
      }
    }
    await exited;
    this.state = { status: "down" };
  }

  private append(chunk: Buffer): void {
    const text = chunk.toString("utf8");
    if (this.options.debug) process.stderr.write(`[nats-server:${this.assignedPort}] ${text}`);
    this.output += text;
    if (this.output.length > LOG_LIMIT) this.output = this.output.slice(-LOG_LIMIT);
  }

  private tail(): string {
    const lines = this.output.trimEnd().split("\n").slice(-15);
    return lines.length > 0 && lines[0] !== "" ? `last output:\n${lines.join("\n")}` : "(no output)";
  }
}

/**
 * The port from the ports file nats-server writes once its listeners are up
 * (`<exe>_<pid>.ports`, `{"nats":["nats://host:port"]}`), or 0 if not there yet.
 * Reading the server's own report avoids the race of picking a free port
 * ourselves and hoping nobody takes it before the server binds, and the pid in
 * the name proves which process listens.
 */
async function readPortsFile(dir: string, pid: number): Promise<number> {
  try {
    const name = (await readdir(dir)).find((f) => f.endsWith(`_${pid}.ports`));
    if (name === undefined) return 0;
    const parsed = JSON.parse(await readFile(join(dir, name), "utf8")) as { nats?: unknown };
    const url = Array.isArray(parsed.nats) ? parsed.nats[0] : undefined;
    const match = typeof url === "string" ? /:(\d+)$/.exec(url) : null;
    return match?.[1] !== undefined ? Number(match[1]) : 0;
  } catch {
    // Half-written file: try again on the next probe.
    return 0;
  }
}

/**
 * True once a TCP client gets the server's INFO greeting. JetStream is
 * enabled before the client listener opens, so this also means JetStream is up.
 */
function acceptsClients(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: NATS_TEST_HOST, port });
    let received = "";
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => settle(false), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n")) settle(received.startsWith("INFO "));
    });
    socket.on("error", () => settle(false));
    socket.on("close", () => settle(false));
  });
}
