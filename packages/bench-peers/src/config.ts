/**
 * The knobs of `pnpm bench:peers`, all from the environment, and the shapes
 * shared by the orchestrator (main.ts), the systems and the worker process.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const SYSTEMS = [
  "frontier-1",
  "frontier-2",
  // One shard acknowledging once committed to the OS, not flushed (`--durability committed`):
  // the durability class of BullMQ's AOF everysec.
  "frontier-1-committed",
  // Two shards whose settles take their part of the cluster's first 1,000 tasks (`--order-window 1000`),
  // and two keeping only each shard's own order (`--order-window shard`): what exact order across shards costs.
  "frontier-2-window",
  "frontier-2-per-shard",
  "bullmq-everysec",
  "bullmq-always",
  "graphile",
  "pgboss",
] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** `drain` covers the enqueue figures too: the tasks it drains are the ones enqueue timed. */
export const SCENARIOS = ["enqueue", "drain", "light", "chains", "longchain"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = resolve(PACKAGE_DIR, "../..");

export interface Config {
  readonly runs: number;
  readonly systems: readonly SystemName[];
  readonly scenarios: ReadonlySet<ScenarioName>;
  /** Tasks enqueued and drained per drain (scenarios 1 and 2). */
  readonly tasks: number;
  /** Batch size of the batched enqueue. */
  readonly batch: number;
  /** Worker concurrencies of the drain, in order. */
  readonly drainConcurrency: readonly number[];
  /** Concurrency of the worker in the other scenarios. */
  readonly concurrency: number;
  readonly lightMs: number;
  readonly lightIntervalMs: number;
  readonly chains: number;
  readonly chainLength: number;
  readonly longChain: number;
  /** Bound of one scenario (enqueue, drain, ...), ms. */
  readonly timeoutMs: number;
  readonly out: string;
  readonly svg: string;
  readonly pgAdminUrl: string;
  readonly natsBin: string;
  readonly redisBin: string;
}

function int(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw.replaceAll("_", ""));
  if (!Number.isSafeInteger(v) || v < min) {
    throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

function list<T extends string>(name: string, all: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "" || raw.trim() === "all") return [...all];
  const picked = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const p of picked) {
    if (!(all as readonly string[]).includes(p)) {
      throw new Error(`${name}: unknown ${JSON.stringify(p)}; known: ${all.join(", ")}`);
    }
  }
  return picked as T[];
}

export function readConfig(): Config {
  const env = process.env;
  return {
    runs: int("FRONTIER_PEERS_RUNS", 3),
    systems: list("FRONTIER_PEERS_SYSTEMS", SYSTEMS),
    scenarios: new Set(list("FRONTIER_PEERS_SCENARIOS", SCENARIOS)),
    tasks: int("FRONTIER_PEERS_TASKS", 30_000),
    batch: int("FRONTIER_PEERS_BATCH", 100),
    drainConcurrency: (env["FRONTIER_PEERS_DRAIN_CONCURRENCY"] ?? "8,64").split(",").map((s) => {
      const v = Number(s);
      if (!Number.isSafeInteger(v) || v < 1 || v > 1000) {
        throw new Error(`FRONTIER_PEERS_DRAIN_CONCURRENCY: bad concurrency ${JSON.stringify(s)}`);
      }
      return v;
    }),
    concurrency: int("FRONTIER_PEERS_CONCURRENCY", 8),
    lightMs: int("FRONTIER_PEERS_LIGHT_MS", 10_000),
    lightIntervalMs: int("FRONTIER_PEERS_LIGHT_INTERVAL_MS", 5),
    chains: int("FRONTIER_PEERS_CHAINS", 1_000),
    chainLength: int("FRONTIER_PEERS_CHAIN_LENGTH", 10, 2),
    longChain: int("FRONTIER_PEERS_LONG_CHAIN", 200, 2),
    timeoutMs: int("FRONTIER_PEERS_TIMEOUT_S", 300) * 1000,
    out: resolve(env["FRONTIER_PEERS_OUT"] ?? join(PACKAGE_DIR, "results", "latest.jsonl")),
    svg: resolve(env["FRONTIER_PEERS_SVG"] ?? join(REPO_ROOT, "docs", "benchmarks-peers.svg")),
    pgAdminUrl: env["FRONTIER_PEERS_PG_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres",
    natsBin: env["NATS_SERVER_BIN"] ?? "/usr/sbin/nats-server",
    redisBin: env["REDIS_SERVER_BIN"] ?? "redis-server",
  };
}

// ---------------------------------------------------------------------------
// Between the orchestrator and the worker process

/** What the worker's handler does with each task. */
export type WorkMode =
  /** nothing: a no-op task (drain, and chains where the system has dependencies) */
  | "noop"
  /** records handler start − payload.t (submit call start) */
  | "latency"
  /** no-op; where the system has no dependencies, enqueues the chain's next step */
  | "chain"
  /** as chain, and records the step latency: previous step's return → this step's handler start */
  | "longchain";

/** How the worker process reaches the system (JSON on its command line). */
export type Connection =
  | { readonly kind: "frontier"; readonly url: string; readonly cluster: string }
  | { readonly kind: "bullmq"; readonly port: number }
  | { readonly kind: "graphile"; readonly url: string }
  | { readonly kind: "pgboss"; readonly url: string };

export interface WorkerSpec {
  readonly connection: Connection;
  /** Queue (BullMQ, pg-boss), task identifier (graphile); ignored by Frontier (one pool of tasks). */
  readonly queue: string;
  readonly concurrency: number;
  readonly mode: WorkMode;
  /** Completions after which the worker reports done. */
  readonly expect: number;
  /** Steps per chain (chain / longchain modes, emulated systems). */
  readonly chainLength: number;
}

/** Payload of the tasks: a sequence number, a submit time, or a chain position. */
export interface Payload {
  readonly i?: number;
  /** Submit call start, wall ms (nowMs()). */
  readonly t?: number;
  /** Chain number and step (0-based). */
  readonly c?: number;
  readonly k?: number;
}

export type ToWorker = { readonly type: "go" } | { readonly type: "report" } | { readonly type: "stop" };

export interface WorkerReport {
  readonly completed: number;
  /** go → the expected completions, ms (null for partial). */
  readonly elapsedMs: number | null;
  /** process.cpuUsage() of the worker process since go, µs (user + system). */
  readonly cpuUs: number;
  /** Latencies, ms (latency: submit → start; longchain: previous return → start). */
  readonly latencies: readonly number[];
}

export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "progress"; readonly completed: number }
  | ({ readonly type: "done" } & WorkerReport)
  | ({ readonly type: "partial" } & WorkerReport)
  | { readonly type: "fatal"; readonly message: string };

/** The installed version of one of this package's dependencies. */
export function packageVersion(name: string): string {
  try {
    const text = readFileSync(join(PACKAGE_DIR, "node_modules", name, "package.json"), "utf8");
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return "?";
  }
}
