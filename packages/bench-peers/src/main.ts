/**
 * `pnpm bench:peers`: Frontier side by side with BullMQ, graphile-worker and
 * pg-boss on the same work, each on its own server on loopback, started and
 * torn down here. See packages/bench-peers/README.md for the scenarios, the
 * knobs and how each figure is measured.
 *
 * Per run, per system: start its server; then
 *   drain    — enqueue N tasks in batches (timed: enqueue-batch), drain them
 *              with a worker process at concurrency 8 (drain-c8); enqueue N
 *              more (Frontier: its streaming submitter, enqueue-stream) and
 *              drain at 64 (drain-c64);
 *   light    — a task every 5 ms for 10 s, submit call → handler start;
 *   chains   — 1,000 chains of 10 dependent steps, drained at concurrency 8;
 *   longchain— one chain of 200 steps, prerequisite done → dependent start;
 * then stop the server. A failed scenario is recorded, the system restarted,
 * and the next scenario goes on.
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, type as osType, release, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import {
  type Config,
  type FromWorker,
  REPO_ROOT,
  readConfig,
  type ScenarioName,
  type SystemName,
  type ToWorker,
  type WorkerReport,
  type WorkerSpec,
  type WorkMode,
} from "./config.js";
import {
  cleanupAll,
  cleanupSync,
  cpuDeltaUs,
  nowMs,
  onCleanup,
  sleep,
  trackGroup,
  untrackGroup,
  waitUntil,
} from "./proc.js";
import { type Machine, type ResultLine, svgChart, table } from "./report.js";
import { summarize } from "./stats.js";
import type { SystemHandle } from "./system.js";

const SRC = dirname(fileURLToPath(import.meta.url));
const TSX_ARGS = ["--conditions=source", "--import", "tsx"];

let aborted = false;

function log(msg: string): void {
  process.stderr.write(`bench-peers: ${msg}\n`);
}

async function startSystem(name: SystemName, config: Config, run: number): Promise<SystemHandle> {
  if (name.startsWith("frontier")) return (await import("./frontier.js")).startFrontier(name, config, run);
  if (name.startsWith("bullmq")) return (await import("./bullmq.js")).startBullmq(name, config);
  if (name === "graphile") return (await import("./graphile.js")).startGraphile(name, config);
  return (await import("./pgboss.js")).startPgboss(name, config);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// The worker process

class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly waiters = new Set<(m: FromWorker | Error) => void>();
  private exited = false;
  private readonly exitP: Promise<void>;
  completed = 0;

  constructor(spec: WorkerSpec) {
    this.child = fork(join(SRC, "worker.ts"), [JSON.stringify(spec)], {
      cwd: REPO_ROOT,
      execArgv: TSX_ARGS,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      detached: true,
    });
    const pid = this.child.pid;
    if (pid !== undefined) trackGroup(pid);
    this.child.on("message", (raw) => {
      const m = raw as FromWorker;
      if (m.type === "progress" || m.type === "done" || m.type === "partial") this.completed = m.completed;
      for (const w of [...this.waiters]) w(m);
    });
    this.exitP = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        if (pid !== undefined) untrackGroup(pid);
        const err = new Error(`worker process exited (${signal ?? `code ${code}`})`);
        for (const w of [...this.waiters]) w(err);
        resolve();
      });
    });
  }

  send(msg: ToWorker): void {
    if (!this.exited && this.child.connected) this.child.send(msg);
  }

  /** The first message of `type`; rejects on a fatal message, the process's exit, or the timeout. */
  next<T extends FromWorker["type"]>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exited) {
        reject(new Error("worker process is not running"));
        return;
      }
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no "${type}" from the worker in ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const waiter = (m: FromWorker | Error) => {
        if (m instanceof Error || m.type === "fatal" || m.type === type) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (m instanceof Error) reject(m);
          else if (m.type === "fatal") reject(new Error(`worker: ${m.message}`));
          else resolve(m as Extract<FromWorker, { type: T }>);
        }
      };
      this.waiters.add(waiter);
    });
  }

  /** Graceful stop (the worker lets running handlers finish), SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.exited) return;
    this.send({ type: "stop" });
    await Promise.race([this.exitP, sleep(graceMs)]);
    if (!this.exited) {
      try {
        process.kill(-this.child.pid!, "SIGKILL");
      } catch {
        // gone
      }
      await Promise.race([this.exitP, sleep(2_000)]);
    }
  }
}

interface Measured {
  /** go → the worker's last completion confirmed by the server, s. */
  readonly seconds: number;
  readonly serviceCpuUs: number;
  readonly report: WorkerReport;
  /** Messages the broker received meanwhile (requests, replies, announcements), when it can say. */
  readonly messages?: number;
}

/**
 * Starts a worker process, waits until it is connected, then starts the
 * clock and the service CPU count and says go; `during` runs meanwhile (the
 * light-load submitter). The clock stops once the worker has seen `expect`
 * completions and the server holds none outstanding.
 */
async function measureWorker(
  handle: SystemHandle,
  spec: WorkerSpec,
  timeoutMs: number,
  during?: () => Promise<void>,
): Promise<Measured> {
  const started = Date.now();
  const w = new WorkerProcess(spec);
  try {
    await w.next("ready", 60_000);
    const messages0 = await handle.sampleMessages?.();
    const cpu0 = handle.sampleCpu();
    const t0 = nowMs();
    w.send({ type: "go" });
    const duringP = during?.();
    let report: WorkerReport;
    try {
      report = await w.next("done", timeoutMs - (Date.now() - started));
    } catch (err) {
      w.send({ type: "report" });
      const partial = await w.next("partial", 5_000).catch(() => undefined);
      throw new Error(
        `${(err as Error).message}; ${partial?.completed ?? w.completed} of ${spec.expect} completed`,
      );
    }
    await duringP;
    await waitUntil(
      "server-side completion",
      async () => (await handle.outstanding(spec.queue)) === 0,
      Math.max(5_000, timeoutMs - (Date.now() - started)),
      5,
    );
    const t1 = nowMs();
    const cpu1 = handle.sampleCpu();
    const messages1 = await handle.sampleMessages?.();
    return {
      seconds: (t1 - t0) / 1000,
      serviceCpuUs: cpuDeltaUs(cpu0, cpu1),
      report,
      ...(messages0 === undefined || messages1 === undefined ? {} : { messages: messages1 - messages0 }),
    };
  } finally {
    await w.stop();
  }
}

// ---------------------------------------------------------------------------
// Scenarios

type RecordFn = (scenario: string, fields: Partial<ResultLine> & { ok: boolean }) => void;

interface Ctx {
  readonly config: Config;
  readonly run: number;
  readonly handle: SystemHandle;
  readonly record: RecordFn;
  readonly prefix: string;
}

function spec(ctx: Ctx, queue: string, concurrency: number, mode: WorkMode, expect: number, chainLength = 0) {
  return { connection: ctx.handle.connection, queue, concurrency, mode, expect, chainLength };
}

async function drainPass(ctx: Ctx, pass: number, concurrency: number, recordEnqueue: boolean): Promise<void> {
  const { config, handle, record } = ctx;
  const n = config.tasks;
  const queue = `d${pass}`;
  const prefix = `${ctx.prefix}-d${pass}`;
  const stream = pass === 1 && handle.enqueueStream !== undefined;
  const t0 = nowMs();
  const enqueue = stream
    ? handle.enqueueStream!(queue, prefix, n)
    : handle.enqueueBatches(queue, prefix, n, config.batch);
  await withTimeout(enqueue, config.timeoutMs, "enqueue");
  const seconds = (nowMs() - t0) / 1000;
  if (recordEnqueue) {
    record(stream ? "enqueue-stream" : "enqueue-batch", {
      ok: true,
      tasks: n,
      seconds,
      tasksPerSec: n / seconds,
      ...(stream ? { notes: "client.submitter() with its defaults, submitAll over a generator" } : {}),
    });
  }
  const m = await measureWorker(handle, spec(ctx, queue, concurrency, "noop", n), config.timeoutMs);
  record(`drain-c${concurrency}`, {
    ok: true,
    tasks: n,
    concurrency,
    seconds: m.seconds,
    tasksPerSec: n / m.seconds,
    serviceCpuUsPerTask: m.serviceCpuUs / n,
    serviceCpuNote: handle.cpuNote,
    workerCpuUsPerTask: m.report.cpuUs / n,
    ...(m.messages === undefined ? {} : { messagesPerTask: m.messages / n }),
  });
}

async function light(ctx: Ctx): Promise<void> {
  const { config, handle } = ctx;
  const n = Math.max(1, Math.floor(config.lightMs / config.lightIntervalMs));
  let submitErrors = 0;
  let firstError: string | undefined;
  const submitter = async () => {
    await sleep(500); // the worker connects and waits for work
    const pending: Promise<unknown>[] = [];
    const start = nowMs();
    for (let i = 0; i < n; i++) {
      const due = start + i * config.lightIntervalMs;
      const wait = due - nowMs();
      if (wait > 0) await sleep(wait);
      const t = nowMs();
      pending.push(
        handle.submitOne("light", `${ctx.prefix}-l${i}`, { t }).catch((err: unknown) => {
          submitErrors++;
          firstError ??= String(err);
        }),
      );
    }
    await Promise.all(pending);
    if (submitErrors > 0) throw new Error(`${submitErrors} submits failed, first: ${firstError}`);
  };
  const m = await measureWorker(
    handle,
    spec(ctx, "light", config.concurrency, "latency", n),
    config.timeoutMs,
    submitter,
  );
  ctx.record("light", {
    ok: true,
    tasks: n,
    concurrency: config.concurrency,
    latency: summarize(m.report.latencies),
    notes: `one task every ${config.lightIntervalMs} ms, each submitted alone; latency = submit call start (orchestrator process) → handler start (worker process), wall clock`,
  });
}

const EMULATED_NOTE =
  "no dependency feature: each step's handler enqueues the next step before it returns (not atomic with the completion)";

async function chains(ctx: Ctx): Promise<void> {
  const { config, handle } = ctx;
  const n = config.chains * config.chainLength;
  await withTimeout(
    handle.enqueueChains("chain", `${ctx.prefix}-ch`, config.chains, config.chainLength),
    config.timeoutMs,
    "enqueue chains",
  );
  const m = await measureWorker(
    handle,
    spec(ctx, "chain", config.concurrency, "chain", n, config.chainLength),
    config.timeoutMs,
  );
  ctx.record("chains", {
    ok: true,
    tasks: n,
    concurrency: config.concurrency,
    seconds: m.seconds,
    tasksPerSec: n / m.seconds,
    serviceCpuUsPerTask: m.serviceCpuUs / n,
    serviceCpuNote: handle.cpuNote,
    workerCpuUsPerTask: m.report.cpuUs / n,
    ...(m.messages === undefined ? {} : { messagesPerTask: m.messages / n }),
    dependencies: handle.dependencies,
    notes:
      handle.dependencies === "emulated"
        ? EMULATED_NOTE
        : handle.name.startsWith("bullmq")
          ? `FlowProducer: each chain a flow nested ${config.chainLength} deep (a parent waits for its child)`
          : "prerequisites within one workflowId per chain, all submitted up front",
  });
}

async function longChain(ctx: Ctx): Promise<void> {
  const { config, handle } = ctx;
  const n = config.longChain;
  await withTimeout(handle.enqueueChains("long", `${ctx.prefix}-long`, 1, n), config.timeoutMs, "enqueue");
  const m = await measureWorker(
    handle,
    spec(ctx, "long", config.concurrency, "longchain", n, n),
    config.timeoutMs,
  );
  ctx.record("longchain", {
    ok: true,
    tasks: n,
    concurrency: config.concurrency,
    seconds: m.seconds,
    tasksPerSec: n / m.seconds,
    latency: summarize(m.report.latencies),
    dependencies: handle.dependencies,
    notes:
      handle.dependencies === "emulated"
        ? `${EMULATED_NOTE}; step latency = when the handler began to enqueue the next step → its handler start`
        : "step latency = the prerequisite's handler returned → the dependent's handler started (same worker process)",
  });
}

// ---------------------------------------------------------------------------

async function machineInfo(config: Config): Promise<Machine> {
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, {
        encoding: "utf8",
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "ignore"],
      })
        .trim()
        .split("\n")[0]!;
    } catch {
      return "?";
    }
  };
  let postgres = "?";
  try {
    const c = new pg.Client({ connectionString: config.pgAdminUrl });
    await c.connect();
    postgres = String(
      (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v,
    );
    await c.end();
  } catch {
    // reported as "?"
  }
  const status = sh("git", ["status", "--porcelain", "--untracked-files=no", "packages"]);
  const dirty = status !== "" && status !== "?";
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    platform: osType(),
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    frontierCommit:
      process.env["FRONTIER_PEERS_FRONTIER_REV"] ??
      `${sh("git", ["rev-parse", "--short", "HEAD"])}${dirty ? " (+ uncommitted changes in packages/)" : ""}`,
    servers: {
      "nats-server": sh(config.natsBin, ["--version"]),
      "redis-server": sh(config.redisBin, ["--version"]),
      postgresql: postgres,
    },
  };
}

async function main(): Promise<void> {
  const config = readConfig();
  const reportFiles = process.env["FRONTIER_PEERS_REPORT"];
  if (reportFiles !== undefined && reportFiles !== "") {
    reportOnly(
      config,
      reportFiles.split(",").map((f) => f.trim()),
    );
    return;
  }
  const machine = await machineInfo(config);
  mkdirSync(dirname(config.out), { recursive: true });
  writeFileSync(config.out, "");
  const results: ResultLine[] = [];
  const began = Date.now();
  log(
    `${config.runs} run(s) of ${config.systems.join(", ")}; scenarios ${[...config.scenarios].join(", ")}; ${config.tasks} tasks per drain; results to ${relative(process.cwd(), config.out)}`,
  );
  const want = (s: ScenarioName) => config.scenarios.has(s);
  for (let run = 1; run <= config.runs && !aborted; run++) {
    for (const system of config.systems) {
      if (aborted) break;
      const steps: { name: string; fn: (ctx: Ctx) => Promise<void> }[] = [];
      if (want("enqueue") || want("drain")) {
        config.drainConcurrency.forEach((c, i) => {
          steps.push({ name: `drain-c${c}`, fn: (ctx) => drainPass(ctx, i, c, want("enqueue")) });
        });
      }
      if (want("light")) steps.push({ name: "light", fn: light });
      if (want("chains")) steps.push({ name: "chains", fn: chains });
      if (want("longchain")) steps.push({ name: "longchain", fn: longChain });
      let handle: SystemHandle | undefined;
      /** Stops the system once, whether called here or by the cleanup on a signal. */
      let stopHandle = async () => {};
      let settings: ResultLine["settings"] = {};
      const record: RecordFn = (scenario, fields) => {
        if (scenario.startsWith("drain") && !want("drain")) return;
        const line: ResultLine = {
          bench: "peers",
          ts: new Date().toISOString(),
          run,
          system,
          scenario,
          ...fields,
          settings,
          load1: Math.round(loadavg()[0]! * 100) / 100,
          machine,
        };
        results.push(line);
        appendFileSync(config.out, `${JSON.stringify(line)}\n`);
        log(`run ${run} ${system} ${scenario}: ${brief(line)}`);
      };
      for (const [i, step] of steps.entries()) {
        if (aborted) break;
        try {
          if (handle === undefined) {
            log(`run ${run}: starting ${system}`);
            const h = await withTimeout(startSystem(system, config, run), 120_000, `start ${system}`);
            handle = h;
            stopHandle = onCleanup(() => h.stop());
            settings = h.settings;
          }
          await step.fn({ config, run, handle, record, prefix: `r${run}s${i}` });
        } catch (err) {
          if (aborted) break;
          record(step.name, { ok: false, error: (err as Error).message });
          // A failed scenario may leave tasks behind: the next one gets a fresh server.
          await stopHandle().catch(() => {});
          handle = undefined;
        }
      }
      if (handle !== undefined) await stopHandle().catch((err: unknown) => log(`stop ${system}: ${err}`));
    }
  }
  if (aborted) return; // the signal handler cleans up and exits; no partial table or chart
  if (results.length === 0) {
    log("no results");
    return;
  }
  writeReport(config, results, machine, config.runs, `${((Date.now() - began) / 60_000).toFixed(1)} min`);
  log(`wrote ${relative(process.cwd(), config.out)}`);
}

/** The table of medians (stdout) and the chart (config.svg). */
function writeReport(
  config: Config,
  results: readonly ResultLine[],
  machine: Machine,
  runs: number,
  took: string,
): void {
  const t = table(results, config.systems, config.drainConcurrency, runs);
  const machineLine = `${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}, Linux ${machine.kernel}`;
  const day = (results[results.length - 1]?.ts ?? new Date().toISOString()).slice(0, 10);
  process.stdout.write(
    `\n## bench:peers — ${day}, ${took}\n\nMachine: ${machineLine}; Frontier ${machine.frontierCommit}.\n\n${t}\n`,
  );
  const tasks =
    results.find((r) => r.scenario.startsWith("drain") && r.tasks !== undefined)?.tasks ?? config.tasks;
  const perSystem = new Map<string, Set<number>>();
  for (const r of results) {
    if (!r.ok) continue;
    const set = perSystem.get(r.system) ?? new Set<number>();
    set.add(r.run);
    perSystem.set(r.system, set);
  }
  const counts = new Set([...perSystem.values()].map((set) => set.size));
  const medians =
    counts.size <= 1
      ? `medians of ${runs} run${runs === 1 ? "" : "s"}`
      : `medians of ${[...perSystem].map(([s, set]) => `${s} ${set.size}`).join(", ")} runs`;
  const subtitle = `${day} · ${machineLine} · Frontier ${machine.frontierCommit}\n${medians} · ${tasks.toLocaleString("en-US")} tasks per drain`;
  mkdirSync(dirname(config.svg), { recursive: true });
  writeFileSync(config.svg, svgChart(results, config.systems, config.drainConcurrency, subtitle));
  log(`wrote ${relative(process.cwd(), config.svg)}`);
}

/**
 * FRONTIER_PEERS_REPORT=a.jsonl,b.jsonl: no measurement, only the table and
 * the chart of the result lines in those files (their runs pooled: the
 * medians are over every run of every file).
 */
function reportOnly(config: Config, files: readonly string[]): void {
  const results: ResultLine[] = [];
  /** Runs renumbered 1, 2, … across the files. */
  const runs = new Map<string, number>();
  for (const file of files) {
    for (const text of readFileSync(file, "utf8").split("\n")) {
      if (text.trim() === "") continue;
      const line = JSON.parse(text) as ResultLine;
      const key = `${file}#${line.run}`;
      if (!runs.has(key)) runs.set(key, runs.size + 1);
      results.push({ ...line, run: runs.get(key)! });
    }
  }
  if (results.length === 0) throw new Error(`no result lines in ${files.join(", ")}`);
  writeReport(
    config,
    results,
    results[0]!.machine,
    runs.size,
    `${results.length} result lines from ${files.length} file(s)`,
  );
}

function brief(r: ResultLine): string {
  if (!r.ok) return `FAILED: ${r.error}`;
  const parts: string[] = [];
  if (r.tasksPerSec !== undefined) parts.push(`${Math.round(r.tasksPerSec).toLocaleString("en-US")} tasks/s`);
  if (r.seconds !== undefined) parts.push(`${r.seconds.toFixed(2)} s`);
  if (r.serviceCpuUsPerTask !== undefined) parts.push(`service ${Math.round(r.serviceCpuUsPerTask)} µs/task`);
  if (r.workerCpuUsPerTask !== undefined) parts.push(`worker ${Math.round(r.workerCpuUsPerTask)} µs/task`);
  if (r.messagesPerTask !== undefined) parts.push(`${r.messagesPerTask.toFixed(2)} messages/task`);
  if (r.latency !== undefined) {
    const l = r.latency;
    parts.push(`p50 ${l.p50Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms, max ${l.maxMs.toFixed(1)} ms`);
  }
  return parts.join(", ");
}

let interrupts = 0;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    interrupts++;
    aborted = true;
    if (interrupts > 1) {
      cleanupSync();
      process.exit(130);
    }
    log(`${sig}: stopping servers and workers, dropping databases (again to force)`);
    void cleanupAll().finally(() => process.exit(130));
  });
}
process.on("exit", cleanupSync);

main()
  .then(() => cleanupAll())
  .catch(async (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanupAll();
    process.exitCode = 1;
  });
