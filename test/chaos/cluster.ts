/**
 * The chaos harness: a real Frontier cluster as separate OS processes, a
 * supervisor that brings killed members back, the faults, and the recorder
 * that gathers the history the checker reads.
 *
 *   nats-server ............ @frontier/nats-testing (killed and restarted on its port and store)
 *   shard-0..N-1 ........... `frontier shard --id shard-i --slots i/N`, each with its own data
 *                            directory, with test/chaos/shard-preload.ts (shard tap, stall trigger)
 *   coordinator-0..M-1 ..... `frontier coordinator`
 *   worker-0..W-1 .......... worker-process.ts: the SDK's work(), recorded and with lost replies
 *   submitter .............. in this process: the SDK, recorded and with lost replies
 *
 * Supervision. When a member's process dies without being asked to stop,
 * the supervisor starts it again (same id, same data directory) after a
 * pause — the job systemd (`Restart=on-failure`) or docker (`restart:
 * on-failure`) does in production, since `frontier shard` exits and never
 * restarts itself. A restarted worker gets a new name (a new lease owner).
 *
 * History. The submitter's exchanges, the faults and the recoveries are
 * kept here; workers and shard taps write theirs to files under the run
 * directory, read when the run ends (history()).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type FrontierClient } from "@frontier/client";
import { LeaseSecrets } from "@frontier/cluster";
import type { TaskInput } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { type Op, slotOf } from "@frontier/protocol";
import {
  accessOf,
  clusterPrincipals,
  ensureCredentials,
  natsConnectionOptions,
  SlotMap,
} from "@frontier/transport";
import { connect as natsConnect } from "@nats-io/transport-node";
import type { FaultKind, FinalTask, History, HistoryEvent } from "./history.js";
import { parseEvents } from "./history.js";
import { describeProcess } from "./process-state.js";
import { tapConnection, type WireFaults } from "./wire-tap.js";
import type { WorkerConfig } from "./worker-process.js";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
const NODE_ARGS = ["--conditions=source", "--import", "tsx"];
const CLI = join(REPO_ROOT, "packages/cli/src/bin.ts");
const PRELOAD = join(REPO_ROOT, "test/chaos/shard-preload.ts");
const WORKER = join(REPO_ROOT, "test/chaos/worker-process.ts");
/** How long a member may take to say it serves, ms (tsx compiles on a busy 2-core machine). */
const START_TIMEOUT_MS = 60_000;
/**
 * How long a zombie shard's replacement may take to serve before the zombie is taken to hold the
 * write lock its open waits for, and is woken, ms (a replacement serves within about 10 s here).
 */
const ZOMBIE_LOCK_WAIT_MS = 20_000;
/** How long ChaosCluster.start may take: a start that failed, its report, and a second start, ms. */
export const START_BUDGET_MS = 240_000;
const CHAOS_CLUSTER = "chaos";
const DEFAULT_SHARDS = 3;

export interface ChaosClusterOptions {
  readonly shards?: number;
  readonly coordinators?: number;
  readonly workers?: number;
  /** Handlers per worker. */
  readonly concurrency?: number;
  /** Lease length the workers ask for, ms. */
  readonly leaseMs?: number;
  /** How long a shard's event loop stalls on SIGUSR2, ms. */
  readonly stallMs?: number;
  /** Replies the workers' transport drops, per op. */
  readonly workerDrops?: Partial<Record<Op, number>>;
  /** Pause before a killed shard is restarted, ms. */
  readonly shardRestartMs?: number;
  /** Pause before a killed coordinator is restarted, ms: the other one serves alone meanwhile. */
  readonly coordinatorRestartMs?: number;
  /** The shards' `--order-window` (docs/cluster.md, "The order window"); default 0, exact order. */
  readonly orderWindow?: string;
}

type Role = "shard" | "coordinator" | "worker";

/** A member of the cluster: one OS process at a time, restarted by the supervisor when it dies. */
class Member {
  proc: ChildProcess | undefined;
  /** The current process said it serves, and has not exited since. */
  serving = false;
  generation = 0;
  /** False while the supervisor must leave it down (stopping, or a fault that handles it). */
  supervised = true;
  private readonly listeners = new Set<(line: Record<string, unknown>) => void>();
  private readonly tail: string[] = [];
  /** What the process was doing when a wait for its output timed out (describeProcess), if one did. */
  stalled: string | undefined;
  /** When the last process was killed by a fault, to time the recovery. */
  killedAt: { at: number; kind: FaultKind } | undefined;

  constructor(
    /** Every process's output goes to `<logDir>/<name>-<generation>.log`, for a post-mortem. */
    private readonly logDir: string,
    readonly name: string,
    readonly role: Role,
    private readonly command: (
      m: Member,
      extra: readonly string[],
    ) => { args: string[]; env: NodeJS.ProcessEnv },
    private readonly ready: (line: Record<string, unknown>) => boolean,
    private readonly onExit: (m: Member, proc: ChildProcess) => void,
  ) {}

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  /** The name of the process now (workers get a new one per generation). */
  get current(): string {
    return this.role === "worker" && this.generation > 1 ? `${this.name}.g${this.generation}` : this.name;
  }

  /** Starts a process and resolves once it says it serves. */
  start(extra: readonly string[] = []): Promise<void> {
    this.generation++;
    this.stalled = undefined;
    const { args, env } = this.command(this, extra);
    const proc = spawn(process.execPath, [...NODE_ARGS, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    const log = createWriteStream(join(this.logDir, `${this.name}-${this.generation}.log`));
    proc.on("exit", () => log.end());
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    let buffer = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.note(line);
        if (line.startsWith("{")) {
          try {
            const json = JSON.parse(line) as Record<string, unknown>;
            for (const l of this.listeners) l(json);
          } catch {
            // not JSON after all
          }
        }
        nl = buffer.indexOf("\n");
      }
    });
    proc.stderr?.on("data", (chunk: Buffer) => this.note(chunk.toString().trimEnd()));
    proc.on("exit", () => {
      if (this.proc === proc) this.serving = false;
      this.onExit(this, proc);
    });
    return this.waitFor(this.ready, START_TIMEOUT_MS, proc).then(() => {
      if (this.proc === proc) this.serving = true;
    });
  }

  /** Resolves with the first line matching `match` from the current process. */
  waitFor(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs: number,
    proc = this.proc,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        done();
        // What the silent process is doing (busy, waiting on the network, blocked on a lock) explains it.
        this.stalled = proc?.pid === undefined ? undefined : describeProcess(proc.pid);
        const state = this.stalled === undefined ? "" : `\n${this.stalled}`;
        reject(new Error(`${this.current}: no matching line within ${timeoutMs} ms\n${this.log()}${state}`));
      }, timeoutMs);
      const onExit = (code: number | null, signal: string | null) => {
        done();
        reject(new Error(`${this.current} exited (${code ?? signal}) before it was ready\n${this.log()}`));
      };
      const listener = (line: Record<string, unknown>) => {
        if (!match(line)) return;
        done();
        resolvePromise(line);
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        proc?.off("exit", onExit);
      };
      this.listeners.add(listener);
      proc?.once("exit", onExit);
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  private note(text: string): void {
    for (const line of text.split("\n")) {
      this.tail.push(line.slice(0, 500));
      if (this.tail.length > 60) this.tail.shift();
    }
  }

  /** The process's last lines of output, for failure messages. */
  log(): string {
    return this.tail.join("\n");
  }
}

export interface ZombieShardOutcome {
  /** The paused process's pid, and how it ended after it was woken. */
  readonly pid: number;
  readonly exitCode: number | null;
  /** It stopped by itself within the wait after SIGCONT (fail-stop). */
  readonly exitedByItself: boolean;
  /** When the old one was stopped (SIGSTOP), wall ms. */
  readonly stoppedAt: number;
  /** When the replacement served, wall ms; the old one was woken (SIGCONT) right after, unless wokenFirst. */
  readonly replacedAt: number;
  /**
   * The replacement did not serve within ZOMBIE_LOCK_WAIT_MS, so the zombie was woken before it
   * served: taken to be stopped holding the write lock the replacement's open waits for.
   */
  readonly wokenFirst: boolean;
}

export interface StormOutcome {
  readonly accepted: number;
  readonly rejected: number;
  readonly highestPending: number;
  readonly heapGrowthBytes: number;
  readonly coordinatorRssBytes: number;
  readonly ms: number;
}

export class ChaosCluster {
  readonly events: HistoryEvent[] = [];
  readonly shards: Member[] = [];
  readonly coordinators: Member[] = [];
  readonly workers: Member[] = [];
  /** Every task submitted, with its workflow (reads route by it). */
  readonly submitted = new Map<string, string | undefined>();
  private readonly clients: FrontierClient[] = [];
  private readonly connections: { drain(): Promise<void>; close(): Promise<void> }[] = [];
  private readonly stray: ChildProcess[] = [];
  private stopping = false;
  readonly cluster = CHAOS_CLUSTER;
  /** The credentials directory NATS admits the members with (one key per role and per shard). */
  get credentialsDir(): string {
    return join(this.runDir, "credentials");
  }
  readonly leaseMs: number;
  private readonly o: Required<ChaosClusterOptions>;

  private constructor(
    readonly nats: NatsServer,
    readonly runDir: string,
    options: ChaosClusterOptions,
  ) {
    this.o = {
      shards: options.shards ?? DEFAULT_SHARDS,
      coordinators: options.coordinators ?? 2,
      workers: options.workers ?? 3,
      concurrency: options.concurrency ?? 6,
      leaseMs: options.leaseMs ?? 3_000,
      stallMs: options.stallMs ?? 2_500,
      workerDrops: options.workerDrops ?? {},
      shardRestartMs: options.shardRestartMs ?? 100,
      coordinatorRestartMs: options.coordinatorRestartMs ?? 3_000,
      orderWindow: options.orderWindow ?? "0",
    };
    this.leaseMs = this.o.leaseMs;
  }

  /**
   * The secret of the lease of a task under `token`, made with the key of
   * the shard that owns the task's slot (`--slots i/N`: slot mod N): what
   * only that shard can make. For negative controls that forge lease calls.
   */
  forgeSecret(taskId: string, workflowId: string | undefined, token: number): string {
    const shard = slotOf(workflowId ?? taskId) % this.o.shards;
    return LeaseSecrets.load(join(this.runDir, `shard-${shard}`)).of(taskId, token);
  }

  /**
   * Starts NATS, the shards, the coordinators and the workers; resolves once
   * all serve. A cluster that does not come up is reported (startReport) and
   * a new one is started, once: twice on CI a fresh cluster's first shard
   * said nothing for a minute, which hundreds of starts here never did, and
   * the checks are about the run, not about that start. The report it leaves
   * in the output is what will explain it.
   */
  static async start(options: ChaosClusterOptions = {}): Promise<ChaosCluster> {
    try {
      return await ChaosCluster.startOnce(options);
    } catch (error) {
      const first = (error instanceof Error ? error.message : String(error)).split("\n")[0];
      process.stderr.write(`chaos cluster: starting a new one, once, after: ${first}\n`);
      return ChaosCluster.startOnce(options);
    }
  }

  private static async startOnce(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const runDir = await mkdtemp(join(tmpdir(), "frontier-chaos-"));
    await mkdir(join(runDir, "history"));
    await mkdir(join(runDir, "logs"));
    // Permissions on, as `frontier start` runs: every process connects as its own role.
    const shardIds = Array.from({ length: options.shards ?? DEFAULT_SHARDS }, (_, i) => `shard-${i}`);
    const credentials = ensureCredentials(
      join(runDir, "credentials"),
      CHAOS_CLUSTER,
      clusterPrincipals(shardIds),
    );
    const nats = await startNatsServer({ args: ["-c", credentials.authConfigFile] });
    const c = new ChaosCluster(nats, runDir, options);
    try {
      for (let i = 0; i < c.o.shards; i++) c.shards.push(c.shardMember(i));
      for (let i = 0; i < c.o.coordinators; i++) c.coordinators.push(c.coordinatorMember(i));
      for (let i = 0; i < c.o.workers; i++) c.workers.push(c.workerMember(i));
      await Promise.all([...c.shards, ...c.coordinators].map((m) => m.start()));
      await Promise.all(c.workers.map((m) => m.start()));
    } catch (error) {
      // A cluster that did not come up keeps its run directory (each process's log, its data), and
      // says what each member that does not serve is doing, and how NATS is: that explains it.
      process.stderr.write(
        `chaos cluster did not start; run directory kept: ${runDir}\n${c.startReport()}\n`,
      );
      await c.stop(true);
      throw error;
    }
    return c;
  }

  /** Every member that does not serve (its last output, what its process does) and the NATS server's state. */
  private startReport(): string {
    const parts: string[] = [];
    for (const m of [...this.shards, ...this.coordinators, ...this.workers]) {
      if (m.serving) continue;
      const proc = m.proc;
      const state =
        proc?.pid === undefined
          ? "not started"
          : proc.exitCode !== null || proc.signalCode !== null
            ? `exited (${proc.exitCode ?? proc.signalCode})`
            : (m.stalled ?? describeProcess(proc.pid)); // its timed-out wait read it already
      parts.push(`--- ${m.current} does not serve; its last output:\n${m.log()}\n${state}`);
    }
    const pid = this.nats.pid;
    parts.push(
      `--- nats-server ${this.nats.status} on ${this.nats.url}${pid === null ? "" : `\n${describeProcess(pid, { nativeStacks: false })}`}\nits last output:\n${this.nats.log().slice(-4_000)}`,
    );
    return parts.join("\n");
  }

  // ---------------------------------------------------------------- members

  private shardMember(i: number): Member {
    const id = `shard-${i}`;
    return new Member(
      join(this.runDir, "logs"),
      id,
      "shard",
      (m, extra) => ({
        args: [
          "--import",
          PRELOAD,
          CLI,
          "shard",
          ...["--nats", this.nats.url, "--cluster", this.cluster, "--id", id],
          ...["--credentials", this.credentialsDir],
          ...[
            "--data",
            join(this.runDir, id),
            "--slots",
            `${i}/${this.o.shards}`,
            // Retries of failed tasks within seconds, not minutes: the run drains in bounded time.
            "--backoff-base-ms",
            "100",
            "--backoff-max-ms",
            "2000",
            "--order-window",
            this.o.orderWindow,
            "--json",
            "--log-level",
            "warn",
          ],
          ...extra,
        ],
        env: {
          FRONTIER_CHAOS_TAP: join(this.runDir, "history", `tap-${id}-${m.generation}.jsonl`),
          FRONTIER_CHAOS_SHARD: id,
          FRONTIER_CHAOS_STALL_MS: String(this.o.stallMs),
        },
      }),
      (line) => line["event"] === "listening",
      (m, proc) => this.exited(m, proc, this.o.shardRestartMs),
    );
  }

  private coordinatorMember(i: number): Member {
    return new Member(
      join(this.runDir, "logs"),
      `coordinator-${i}`,
      "coordinator",
      () => ({
        args: [
          CLI,
          "coordinator",
          "--nats",
          this.nats.url,
          "--cluster",
          this.cluster,
          "--credentials",
          this.credentialsDir,
          "--json",
          "--log-level",
          "warn",
        ],
        env: {},
      }),
      (line) => line["event"] === "listening",
      (m, proc) => this.exited(m, proc, this.o.coordinatorRestartMs),
    );
  }

  private workerMember(i: number): Member {
    return new Member(
      join(this.runDir, "logs"),
      `worker-${i}`,
      "worker",
      (m) => ({ args: [WORKER, JSON.stringify(this.workerConfig(m.current, "work"))], env: {} }),
      (line) => line["ctl"] === "ready",
      (m, proc) => this.exited(m, proc, 200),
    );
  }

  private workerConfig(name: string, mode: "work" | "hold"): WorkerConfig {
    return {
      natsUrl: this.nats.url,
      natsAccess: accessOf(this.credentialsDir, this.cluster, { role: "worker" }),
      cluster: this.cluster,
      name,
      historyFile: join(this.runDir, "history", `worker-${name}.jsonl`),
      mode,
      concurrency: this.o.concurrency,
      leaseMs: this.o.leaseMs,
      waitMs: 500,
      requestTimeoutMs: 1_000,
      dropReply: mode === "work" ? this.o.workerDrops : {},
      hold: { max: 2, holdMs: 1_500 },
    };
  }

  /** The supervisor: a member whose process died unasked is started again after `pauseMs`. */
  private exited(m: Member, proc: ChildProcess, pauseMs: number): void {
    if (m.proc !== proc || !m.supervised || this.stopping) return;
    m.proc = undefined;
    void (async () => {
      await sleep(pauseMs);
      if (this.stopping || m.proc !== undefined) return;
      try {
        await m.start();
        const killed = m.killedAt;
        m.killedAt = undefined;
        if (killed)
          this.events.push({
            k: "recovered",
            at: Date.now(),
            kind: killed.kind,
            target: m.name,
            ms: Date.now() - killed.at,
          });
      } catch (error) {
        if (this.stopping) return;
        process.stderr.write(`supervisor: ${m.name} did not come back: ${String(error)}\n`);
        // As systemd does past TimeoutStartSec: a start that hangs is killed, and its exit (above)
        // starts the member again. One that exited is being started again already.
        const hung = m.proc as ChildProcess | undefined; // set by m.start(), which TS cannot see
        if (hung && hung.exitCode === null && hung.signalCode === null) hung.kill("SIGKILL");
      }
    })();
  }

  // ---------------------------------------------------------------- clients

  /** A client in this process, recorded, with `faults` on its transport. */
  async client(name: string, faults: WireFaults = {}, requestTimeoutMs = 2_000): Promise<FrontierClient> {
    // In-process clients submit, read, cancel and forge lease calls: the admin role does all of it.
    const nc = await natsConnect({
      ...natsConnectionOptions(this.nats.url, accessOf(this.credentialsDir, this.cluster, { role: "admin" })),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    this.connections.push(nc);
    const client = await connect({
      nats: tapConnection(nc, { src: name, emit: (e) => this.events.push(e), faults }),
      cluster: this.cluster,
      name,
      requestTimeoutMs,
      retry: { attempts: 10, baseMs: 100, maxMs: 1_000 },
    });
    this.clients.push(client);
    return client;
  }

  /**
   * Submits one batch under `key` until it is acknowledged (the same key
   * every time, so a retry creates nothing twice), or `deadline` passes.
   */
  async submitUntilAcked(
    client: FrontierClient,
    tasks: readonly TaskInput[],
    key: string,
    deadline: number,
  ): Promise<boolean> {
    for (const t of tasks) this.submitted.set(t.id, t.workflowId);
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      try {
        await client.submit(tasks, { idempotencyKey: key });
        return true;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === "VALIDATION_FAILED") throw error;
        await sleep(Math.min(1_000, 100 * 2 ** attempt));
      }
    }
    return false;
  }

  // ----------------------------------------------------------------- faults

  private fault(kind: FaultKind, target: string, pid?: number): number {
    const at = Date.now();
    this.events.push({ k: "fault", at, kind, target, ...(pid === undefined ? {} : { pid }) });
    return at;
  }

  /** SIGKILL a member; the supervisor restarts it, and the recovery is timed to its "listening". */
  kill(m: Member, kind: FaultKind): void {
    if (!m.proc) return;
    m.killedAt = { at: this.fault(kind, m.current, m.pid), kind };
    m.signal("SIGKILL");
  }

  /** Freeze a member's process for `ms` (SIGSTOP … SIGCONT). */
  async pause(m: Member, kind: FaultKind, ms: number): Promise<void> {
    const proc = m.proc;
    if (!proc) return;
    this.fault(kind, m.current, proc.pid);
    proc.kill("SIGSTOP");
    await sleep(ms);
    proc.kill("SIGCONT");
  }

  /** Stall a shard's event loop (SIGUSR2 → a synchronous pause of stallMs); resolves with its length once over. */
  async stall(m: Member): Promise<number> {
    const over = m.waitFor((line) => line["chaos"] === "stalled", this.o.stallMs + 30_000);
    this.fault("shard-stall", m.current, m.pid);
    m.signal("SIGUSR2");
    return (await over)["ms"] as number;
  }

  /**
   * A zombie shard: SIGSTOP it for `ms`, start its replacement on the same
   * data (taking the directory over), then SIGCONT the old one, which must
   * stop by itself (fenced) within `exitWithinMs`; if not, it is killed.
   */
  async zombieShard(m: Member, ms: number, exitWithinMs = 15_000): Promise<ZombieShardOutcome> {
    const old = m.proc;
    if (!old?.pid) throw new Error(`${m.name} is not running`);
    const pid = old.pid;
    const at = this.fault("shard-zombie", m.name, pid);
    m.supervised = false;
    const stoppedAt = Date.now();
    old.kill("SIGSTOP");
    await sleep(ms);
    const exited = new Promise<number | null>((r) => old.once("exit", (code) => r(code)));
    this.stray.push(old);
    m.proc = undefined;
    m.supervised = true;
    // Stopped in the middle of a commit, the zombie holds LMDB's write lock, and the replacement's
    // open waits for it (the shard says so before it opens). Then it is woken first, as a paused
    // owner is in time: it runs on until the replacement's takeover fences it at its next write.
    const starting = m.start(["--takeover"]);
    let wokenFirst: boolean;
    try {
      wokenFirst = await Promise.race([
        starting.then(() => false),
        sleep(ZOMBIE_LOCK_WAIT_MS).then(() => true),
      ]);
      if (wokenFirst) old.kill("SIGCONT");
      await starting;
    } catch (error) {
      // A zombie left stopped would keep the lock from every later start of this shard.
      old.kill("SIGKILL");
      throw error;
    }
    const replacedAt = Date.now();
    this.events.push({
      k: "recovered",
      at: replacedAt,
      kind: "shard-zombie",
      target: m.name,
      ms: replacedAt - at,
    });
    old.kill("SIGCONT");
    const exitCode = await Promise.race([exited, sleep(exitWithinMs).then(() => "timeout" as const)]);
    if (exitCode === "timeout") {
      old.kill("SIGKILL");
      return { pid, exitCode: null, exitedByItself: false, stoppedAt, replacedAt, wokenFirst };
    }
    return { pid, exitCode, exitedByItself: true, stoppedAt, replacedAt, wokenFirst };
  }

  /**
   * A zombie worker: a worker that leases tasks, is frozen past their
   * leases, then completes them with its old tokens. Resolves with what its
   * completes got back.
   */
  async zombieWorker(pauseMs: number): Promise<{ taskIds: string[]; outcomes: string[] }> {
    const name = `zombie-${this.workers.length}-${Date.now() % 100_000}`;
    const m = new Member(
      join(this.runDir, "logs"),
      name,
      "worker",
      () => ({ args: [WORKER, JSON.stringify(this.workerConfig(name, "hold"))], env: {} }),
      (line) => line["ctl"] === "ready",
      () => {},
    );
    m.supervised = false;
    await m.start();
    const holding = m.waitFor((l) => l["ctl"] === "holding", 30_000);
    const held = (await holding)["taskIds"] as string[];
    const done = m.waitFor((l) => l["ctl"] === "done", pauseMs + 30_000);
    await this.pause(m, "worker-zombie", pauseMs);
    const outcomes = (await done)["outcomes"] as string[];
    return { taskIds: held, outcomes };
  }

  /** Kill NATS (kill -9) and bring it back on its port and store after `downMs`; times until a request succeeds. */
  async restartNats(client: FrontierClient, downMs: number): Promise<void> {
    const at = this.fault("nats-restart", "nats-server", this.nats.pid ?? undefined);
    await this.nats.restart({ mode: "kill", downtimeMs: downMs });
    await this.probe(client, "nats-restart", "nats-server", at);
  }

  /** Times from `at` until `client` gets an answer (a stats request) again, and records it. */
  async probe(client: FrontierClient, kind: FaultKind, target: string, at: number): Promise<number> {
    for (;;) {
      try {
        await client.stats({ timeoutMs: 1_000, retry: { attempts: 1 } });
        break;
      } catch {
        await sleep(50);
      }
    }
    const ms = Date.now() - at;
    this.events.push({ k: "recovered", at: Date.now(), kind, target, ms });
    return ms;
  }

  /**
   * A slot move under load (docs/cluster.md, "Slot movement"): a random
   * slot of a serving shard to another serving shard, through `client`
   * (admin); with `kill`, that shard (the source or the target) is SIGKILLed
   * `killAfterMs` into the move, mid-move, and restarted by the supervisor
   * (a killed source drives its outbox to the end when back). Resolves when
   * the move's request settled (the move may still go on), with how it did.
   */
  async moveSlot(
    client: FrontierClient,
    pick: () => number,
    kill: "source" | "target" | undefined,
    killAfterMs: number,
  ): Promise<string> {
    const map = await this.slotMap();
    const serving = this.shards.filter((m) => m.serving);
    if (serving.length < 2) return "skipped: fewer than two shards serve";
    const ofServing = (slot: number) => serving.some((m) => m.name === map.ownerOf(slot));
    // A slot with tasks of the latest workflows submitted (some still running), else any.
    const recent = [...this.submitted.values()].slice(-400);
    const busy = [...new Set(recent.map((wf) => (wf === undefined ? -1 : slotOf(wf))))].filter(
      (slot) => slot >= 0 && ofServing(slot),
    );
    const slots = busy.length > 0 ? busy : Array.from({ length: 1024 }, (_, slot) => slot).filter(ofServing);
    if (slots.length === 0) return "skipped: no slot of a serving shard";
    const slot = slots[Math.floor(pick() * slots.length)]!;
    const source = serving.find((m) => m.name === map.ownerOf(slot))!;
    const others = serving.filter((m) => m !== source);
    const target = others[Math.floor(pick() * others.length)]!;
    this.fault("slot-move", `${slot}:${source.name}->${target.name}`);
    const moving = client.moveSlot(slot, target.name, { timeoutMs: 20_000 }).then(
      (r) => `moved slot ${slot} (${r.tasks} tasks)`,
      (error: unknown) => `move of slot ${slot}: ${String(error)}`,
    );
    if (kill !== undefined) {
      await sleep(killAfterMs);
      this.kill(kill === "source" ? source : target, "slot-move-kill");
    }
    return moving;
  }

  private slotTable: SlotMap | undefined;

  /** The cluster's slot table, as an admin reads it. */
  private async slotMap(): Promise<SlotMap> {
    if (this.slotTable !== undefined) return this.slotTable;
    const nc = await natsConnect({
      ...natsConnectionOptions(this.nats.url, accessOf(this.credentialsDir, this.cluster, { role: "admin" })),
      name: "chaos-slot-table",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    this.connections.push(nc);
    const map = SlotMap.start(nc, { cluster: this.cluster });
    await map.whenLoaded(15_000);
    this.slotTable = map;
    return map;
  }

  /** SIGKILL a coordinator; times until the others answer (the supervisor restarts it later). */
  async killCoordinator(m: Member, client: FrontierClient): Promise<number> {
    const at = this.fault("coordinator-kill", m.name, m.pid);
    m.signal("SIGKILL");
    return this.probe(client, "coordinator-kill", m.name, at);
  }

  /**
   * A submit storm: `count` tasks through the SDK's batching submitter as
   * fast as it takes them. Measures the most tasks it ever held (bounded by
   * `maxPending`), this process's heap growth and the coordinators' memory.
   */
  async storm(client: FrontierClient, tasks: Iterable<TaskInput>, maxPending: number): Promise<StormOutcome> {
    this.fault("submit-storm", "cluster");
    const submitter = client.submitter({ maxPending, maxBatch: 250, lingerMs: 5 });
    const heap0 = process.memoryUsage().heapUsed;
    let highestPending = 0;
    let heapMax = heap0;
    let rss = 0;
    const sampler = setInterval(() => {
      highestPending = Math.max(highestPending, submitter.pending);
      heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
      for (const c of this.coordinators) rss = Math.max(rss, rssOf(c.pid));
    }, 20);
    const started = Date.now();
    const tracked = (function* (self: ChaosCluster) {
      for (const t of tasks) {
        self.submitted.set(t.id, t.workflowId);
        yield t;
      }
    })(this);
    try {
      const result = await submitter.submitAll(tracked);
      await submitter.close();
      return {
        accepted: result.accepted,
        rejected: result.rejected,
        highestPending,
        heapGrowthBytes: heapMax - heap0,
        coordinatorRssBytes: rss,
        ms: Date.now() - started,
      };
    } finally {
      clearInterval(sampler);
    }
  }

  // ------------------------------------------------------------------ the end

  /** Waits until no task is waiting, runnable or leased (everything submitted has ended). */
  async drain(client: FrontierClient, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < end) {
      try {
        const { counts } = await client.stats({ timeoutMs: 2_000, retry: { attempts: 1 } });
        last = JSON.stringify(counts);
        if (counts.WAITING + counts.RUNNABLE + counts.LEASED === 0) return;
      } catch (error) {
        last = String(error);
      }
      await sleep(250);
    }
    throw new Error(`the cluster did not drain within ${timeoutMs} ms: ${last}`);
  }

  /** Stops the workers gracefully (SIGTERM: they finish what they hold). */
  async stopWorkers(): Promise<void> {
    await Promise.all(
      this.workers.map(async (m) => {
        m.supervised = false;
        const proc = m.proc;
        if (!proc || proc.exitCode !== null) return;
        const exited = new Promise<void>((r) => proc.once("exit", () => r()));
        proc.kill("SIGTERM");
        await Promise.race([exited, sleep(10_000).then(() => proc.kill("SIGKILL"))]);
      }),
    );
  }

  /** Reads every submitted task back from the cluster. */
  async readFinal(client: FrontierClient): Promise<Map<string, FinalTask | null>> {
    const final = new Map<string, FinalTask | null>();
    const ids = [...this.submitted.entries()];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < ids.length) {
          const [id, workflowId] = ids[next++]!;
          const t = await client.getTask(id, workflowId === undefined ? {} : { workflowId });
          final.set(
            id,
            t && {
              state: t.state,
              token: t.token,
              attempts: t.attempts,
              unmetPrerequisites: t.unmetPrerequisites,
            },
          );
        }
      }),
    );
    return final;
  }

  /** Everything recorded: this process's events, the workers' files and the shard taps. */
  history(final: ReadonlyMap<string, FinalTask | null>): History {
    const events: HistoryEvent[] = [...this.events];
    const dir = join(this.runDir, "history");
    for (const file of readdirSync(dir)) events.push(...parseEvents(readFileSync(join(dir, file), "utf8")));
    return { events, final };
  }

  /** A member's recent output (for failure messages). */
  logs(): string {
    return [...this.shards, ...this.coordinators, ...this.workers]
      .map((m) => `--- ${m.current} (pid ${m.pid})\n${m.log()}`)
      .join("\n");
  }

  async stop(keepRunDir = false): Promise<void> {
    this.stopping = true;
    await this.slotTable?.close().catch(() => {});
    await Promise.allSettled(this.clients.map((c) => c.close()));
    await Promise.allSettled(this.connections.map((nc) => nc.drain().catch(() => nc.close())));
    const all = [...this.workers, ...this.coordinators, ...this.shards];
    await Promise.all(
      all.map(async (m) => {
        const proc = m.proc;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise<void>((r) => proc.once("exit", () => r()));
        proc.kill("SIGCONT");
        proc.kill("SIGTERM");
        await Promise.race([exited, sleep(5_000).then(() => proc.kill("SIGKILL"))]);
      }),
    );
    for (const p of this.stray) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    await this.nats.stop();
    if (keepRunDir)
      writeFileSync(join(this.runDir, "harness.jsonl"), this.events.map((e) => JSON.stringify(e)).join("\n"));
    else await rm(this.runDir, { recursive: true, force: true });
  }
}

/** Resident memory of a process, bytes (0 when it cannot be read). */
function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}
