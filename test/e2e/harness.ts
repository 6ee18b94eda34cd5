/**
 * An end-to-end cluster for the tests: a real nats-server (JetStream on, on a
 * free port), N shard actors and a coordinator, in this process, each with
 * its own NATS connection as separate processes would have, and clients of
 * the SDK. `frontier` runs the CLI as a user does, in a child process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type FrontierClient } from "@frontier/client";
import { type ShardActor, startShardActor } from "@frontier/cluster";
import { type Coordinator, startCoordinator } from "@frontier/coordinator";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { SLOT_COUNT } from "@frontier/protocol";
// Workspace packages by path: the repository root has no node_modules/@frontier.
import { pino } from "pino";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");

export interface TestCluster {
  readonly server: NatsServer;
  readonly url: string;
  readonly cluster: string;
  readonly shards: readonly ShardActor[];
  readonly coordinator: Coordinator;
  /** A new client of the cluster (closed by `stop`). */
  client(options?: Parameters<typeof connect>[0]): Promise<FrontierClient>;
  stop(): Promise<void>;
}

const silent = pino({ level: "silent" });

/** Start NATS, `shards` shard actors (slots spread evenly) and a coordinator; wait until every slot is routable. */
export async function startCluster(
  options: {
    shards?: number;
    cluster?: string;
    engine?: Parameters<typeof startShardActor>[0]["shard"];
    /** The cluster's id space (default: "cluster"). */
    idSpace?: Parameters<typeof startShardActor>[0]["idSpace"];
    /** How often shards sweep the id claims of tasks gone (default: the actor's). */
    claimSweepMs?: number;
  } = {},
): Promise<TestCluster> {
  const shardCount = options.shards ?? 3;
  const cluster = options.cluster ?? "e2e";
  const server = await startNatsServer();
  const dataRoot = await mkdtemp(join(tmpdir(), "frontier-e2e-"));
  const shards = await Promise.all(
    Array.from({ length: shardCount }, (_, i) =>
      startShardActor({
        natsUrl: server.url,
        cluster,
        shardId: `shard-${i}`,
        dataDir: join(dataRoot, `shard-${i}`),
        slots: { index: i, of: shardCount },
        logger: silent,
        shard: { durability: "committed", ...options.engine },
        ...(options.idSpace === undefined ? {} : { idSpace: options.idSpace }),
        ...(options.claimSweepMs === undefined ? {} : { claimSweepMs: options.claimSweepMs }),
      }),
    ),
  );
  const coordinator = await startCoordinator({ natsUrl: server.url, cluster, logger: silent });
  await until(() => {
    const view = coordinator.inspect();
    return view.slotsOwned === SLOT_COUNT && view.frontiers.length === shardCount;
  }, 15_000);
  const clients: FrontierClient[] = [];
  return {
    server,
    url: server.url,
    cluster,
    shards,
    coordinator,
    async client(clientOptions = {}) {
      const c = await connect({ servers: server.url, cluster, ...clientOptions });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.allSettled(clients.map((c) => c.close()));
      await coordinator.close();
      await Promise.allSettled(shards.map((s) => s.close()));
      await server.stop();
      await rm(dataRoot, { recursive: true, force: true });
    },
  };
}

/** A TCP port free on 127.0.0.1 right now (for a server a test asks to start there). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() => resolvePort(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command args…` to its end and gives its exit code and output; killed (SIGKILL) and
 * rejected, with what it wrote, if it has not ended within `timeoutMs`. Stdin is `input`, or
 * none.
 */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; label?: string },
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      const label = options.label ?? `${command} ${args.join(" ")}`;
      reject(new Error(`${label} did not finish in time\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 120_000);
    child.stdin?.end(options.input);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Run `frontier args…` as a user does (from the repository root, through tsx), to completion. */
export function frontier(
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runToEnd(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", ...args],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env },
      input: options.input ?? "",
      timeoutMs: options.timeoutMs ?? 30_000,
      label: `frontier ${args.join(" ")}`,
    },
  );
}

/** A `frontier start` child process that said it listens. */
export interface StartedFrontier {
  readonly child: ChildProcess;
  /** Its JSON `listening` event. */
  readonly listening: Record<string, unknown>;
  /** What it printed so far, stdout and stderr. */
  output(): string;
  /** SIGINT, as a terminal's Ctrl-C (its own nats-server stops with it), then SIGKILL after 15 s. Idempotent. */
  stop(): Promise<void>;
}

/** Run `frontier start …args --json` as a user does, until it says it listens. */
export async function startFrontier(args: readonly string[], timeoutMs = 40_000): Promise<StartedFrontier> {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", "start", ...args, "--json"],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolvePromise) => child.once("exit", resolvePromise));
    child.kill("SIGINT");
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  await until(() => out.includes('"event":"listening"') || child.exitCode !== null, timeoutMs);
  if (child.exitCode !== null) throw new Error(`frontier start exited: ${out}`);
  const listening = JSON.parse(out.split("\n").find((l) => l.includes('"listening"')) ?? "{}");
  return { child, listening, output: () => out, stop };
}
