/**
 * ShardHost: N shard actors on worker threads of one process, supervised.
 *
 * Shard i has id `shard-<F+i>` (F: `firstShard`, 0 by default), keeps its
 * data in `<dataDir>/shard-<F+i>`, and asks for the slots n with n mod N == i.
 * Each runs in its own worker thread with its own NATS connection and LMDB
 * environment; the host only starts, watches and stops them.
 *
 * Before any worker starts, the host checks the cluster's identity for all
 * its shards at once (cluster-identity.ts): its data directories of another
 * cluster are refused, and so is a host whose directories are all fresh when
 * a cluster of that name exists, unless it was told to `join`. Every worker
 * then expects that identity.
 *
 * Supervision, per worker (modes change only through `enter`):
 *
 *   STARTING --ready-->                               RUNNING
 *   STARTING | RUNNING --exit, host not closing-->    BACKOFF
 *   BACKOFF  --pause over-->                          STARTING  (same id, same data)
 *   any      --close()-->                             STOPPING --exit--> STOPPED
 *
 * The pause before a restart doubles with each consecutive crash, from
 * restartInitialMs up to restartMaxMs; a worker that ran stableAfterMs
 * before it crashed starts over at restartInitialMs. A restarted actor
 * recovers its shard from the journal and keeps its slots. While it is down
 * its slots answer NO_RESPONDERS, which clients retry.
 *
 * `start` fails (and stops what it started) when any worker cannot start the
 * first time: a misconfiguration is reported, not retried forever.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { backoffDelay } from "@frontier/core";
import type { MetricsJson, ReadinessCheck, Registry } from "@frontier/metrics";
import { natsConnectionOptions } from "@frontier/transport";
import { connect } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { readDataIdentity, resolveClusterIdentity } from "./cluster-identity.js";
import { createLogger } from "./log.js";
import { hostRegistry } from "./metrics/host-metrics.js";
import {
  checkShardHostOptions,
  hostShardId,
  type ResolvedShardHostOptions,
  type ShardHostOptions,
} from "./options.js";
import { openSlotBucket } from "./slot-ownership.js";
import { deferred, messageOf, withTimeout } from "./util.js";
import type { HostMessage, WorkerConfig, WorkerMessage } from "./worker-messages.js";

export const WorkerState = {
  STARTING: "STARTING",
  RUNNING: "RUNNING",
  BACKOFF: "BACKOFF",
  STOPPING: "STOPPING",
  STOPPED: "STOPPED",
} as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

export interface ShardWorkerStatus {
  readonly shardId: string;
  readonly dataDir: string;
  readonly state: WorkerState;
  /** Times the worker was restarted after it ended unasked. */
  readonly restarts: number;
  /** Thread id of the live worker, or null. */
  readonly threadId: number | null;
  /** Slots the actor owned when it last became ready. */
  readonly slots: number;
  /** How the last worker ended, if one did. */
  readonly lastExit: { readonly code: number; readonly reason: string | undefined } | undefined;
}

/** What a host reports to `onEvent` listeners. */
export type ShardHostEvent =
  | {
      readonly type: "worker:ready";
      readonly shardId: string;
      readonly restarts: number;
      readonly slots: number;
    }
  | {
      readonly type: "worker:exit";
      readonly shardId: string;
      readonly code: number;
      readonly reason: string | undefined;
      /** Pause before the restart, or null when the worker is not restarted (the host is closing). */
      readonly restartInMs: number | null;
    }
  | { readonly type: "worker:restart"; readonly shardId: string; readonly restarts: number };

/** How long a scrape waits for a worker's metrics and readiness, ms; a worker that does not answer is left out. */
const COLLECT_TIMEOUT_MS = 2_000;

/** A worker's answer to a scrape. */
interface Collected {
  readonly metrics: MetricsJson;
  readonly readiness: Readonly<Record<string, string | null>>;
}

/**
 * The cluster's identity for every shard of the host at once (created when
 * the cluster is new), or ClusterIdentityError. Asked as the host's first
 * shard, whose NATS role may read and write the slot bucket.
 */
async function checkIdentity(o: ResolvedShardHostOptions, log: Logger): Promise<string> {
  const nc = await connect({
    ...natsConnectionOptions(o.natsUrl, o.shardAccess[0]!),
    name: `frontier-${o.cluster}-host`,
  });
  try {
    const kv = await openSlotBucket(nc, { cluster: o.cluster, kvReplicas: o.kvReplicas, logger: log });
    const dirs = Array.from({ length: o.shards }, (_, i) => {
      const dataDir = join(o.dataDir, hostShardId(o.firstShard + i));
      return { dataDir, record: readDataIdentity(dataDir) };
    });
    const { clusterId, created } = await resolveClusterIdentity(kv, {
      cluster: o.cluster,
      dirs,
      join: o.join,
    });
    log.info({ cluster: o.cluster, clusterId, created }, "cluster identity checked");
    return clusterId;
  } finally {
    await nc.close().catch(() => {});
  }
}

/**
 * The worker's module: `entry` when given (a module that wraps the
 * default), else the .ts source under vitest/tsx, the compiled .js in dist.
 */
function spawnWorker(config: WorkerConfig, entry: string | undefined): Worker {
  const here = import.meta.url;
  const options = { workerData: config, name: `frontier-${config.shardId}` };
  const module =
    entry ?? new URL(here.endsWith(".ts") ? "./shard-worker.ts" : "./shard-worker.js", here).href;
  if (!module.endsWith(".ts")) return new Worker(new URL(module), options);
  // Source mode. Node 20 does not apply `--import tsx` from a worker's execArgv
  // before loading its entry, so the worker registers tsx itself, then loads
  // the .ts entry; `--conditions=source` resolves @frontier/* to their src.
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(module)}); });`;
  return new Worker(bootstrap, { ...options, eval: true, execArgv: ["--conditions=source"] });
}

/** One supervised shard worker. */
class SupervisedShard {
  private state: WorkerState = WorkerState.STARTING;
  private worker: Worker | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private consecutiveCrashes = 0;
  private readyAt: number | undefined;
  private failure: string | undefined;
  private slots = 0;
  private lastExit: ShardWorkerStatus["lastExit"];
  private stopped = deferred<void>();
  /** Scrapes waiting for the worker's answer, by id. */
  private readonly collecting = new Map<number, (answer: Collected | undefined) => void>();
  private nextCollect = 0;
  /** Settles when the first worker is ready (or rejects when it ends before). */
  readonly firstReady = deferred<void>();
  restarts = 0;

  constructor(
    private readonly config: WorkerConfig,
    private readonly options: ResolvedShardHostOptions,
    private readonly log: Logger,
    private readonly emit: (event: ShardHostEvent) => void,
  ) {
    this.firstReady.promise.catch(() => {});
  }

  get shardId(): string {
    return this.config.shardId;
  }

  status(): ShardWorkerStatus {
    return {
      shardId: this.shardId,
      dataDir: this.config.dataDir,
      state: this.state,
      restarts: this.restarts,
      threadId: this.worker?.threadId ?? null,
      slots: this.slots,
      lastExit: this.lastExit,
    };
  }

  start(): void {
    this.enter(WorkerState.STARTING);
    this.failure = undefined;
    this.readyAt = undefined;
    let worker: Worker;
    try {
      worker = spawnWorker(this.config, this.options.workerEntry);
    } catch (error) {
      this.onExit(1, `could not start the worker: ${messageOf(error)}`);
      return;
    }
    this.worker = worker;
    worker.on("message", (message: WorkerMessage) => this.onMessage(message));
    worker.on("error", (error) => {
      this.failure ??= `uncaught exception: ${messageOf(error)}`;
      this.log.error({ shardId: this.shardId, err: error.stack ?? messageOf(error) }, "shard worker crashed");
    });
    worker.on("exit", (code) => {
      if (this.worker === worker) this.worker = undefined;
      this.onExit(code, this.failure);
    });
  }

  /** Stops the worker cleanly (terminating it after closeTimeoutMs); no restart. */
  async stop(): Promise<void> {
    if (this.state === WorkerState.STOPPED) return;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    this.enter(WorkerState.STOPPING);
    if (!worker) {
      this.enter(WorkerState.STOPPED);
      return;
    }
    this.post({ type: "close" });
    try {
      await withTimeout(
        this.stopped.promise,
        this.options.closeTimeoutMs,
        () => new Error("close timed out"),
      );
    } catch {
      this.log.warn({ shardId: this.shardId }, "shard worker did not close in time; terminating it");
      await worker.terminate();
      await this.stopped.promise;
    }
  }

  /** The worker's readiness, and its metrics if asked; undefined when it is not running or does not answer in time. */
  collect(what: "metrics" | "readiness"): Promise<Collected | undefined> {
    if (!this.worker || this.state !== WorkerState.RUNNING) return Promise.resolve(undefined);
    const id = ++this.nextCollect;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), COLLECT_TIMEOUT_MS);
      const settle = (answer: Collected | undefined) => {
        clearTimeout(timer);
        this.collecting.delete(id);
        resolve(answer);
      };
      this.collecting.set(id, settle);
      this.post({ type: "collect", id, what });
    });
  }

  private post(message: HostMessage): void {
    this.worker?.postMessage(message);
  }

  private onMessage(message: WorkerMessage): void {
    switch (message.type) {
      case "ready":
        this.slots = message.slots;
        this.readyAt = Date.now();
        if (this.state === WorkerState.STARTING) this.enter(WorkerState.RUNNING);
        this.firstReady.resolve();
        this.log.info(
          { shardId: this.shardId, slots: message.slots, restarts: this.restarts },
          "shard ready",
        );
        this.emit({
          type: "worker:ready",
          shardId: this.shardId,
          restarts: this.restarts,
          slots: message.slots,
        });
        break;
      case "failed":
        this.failure = message.code ? `${message.code}: ${message.message}` : message.message;
        break;
      case "collected":
        this.collecting.get(message.id)?.({ metrics: message.metrics, readiness: message.readiness });
        break;
    }
  }

  private onExit(code: number, reason: string | undefined): void {
    this.lastExit = { code, reason };
    for (const settle of [...this.collecting.values()]) settle(undefined);
    if (this.state === WorkerState.STOPPING || this.state === WorkerState.STOPPED) {
      this.enter(WorkerState.STOPPED);
      this.emit({ type: "worker:exit", shardId: this.shardId, code, reason, restartInMs: null });
      return;
    }
    if (this.readyAt === undefined && this.restarts === 0) {
      // The first start failed: ShardHost.start reports it; no restart.
      this.firstReady.reject(
        new Error(`shard ${this.shardId} did not start: ${reason ?? `exit code ${code}`}`),
      );
      this.enter(WorkerState.STOPPED);
      this.emit({ type: "worker:exit", shardId: this.shardId, code, reason, restartInMs: null });
      return;
    }
    const ranMs = this.readyAt === undefined ? 0 : Date.now() - this.readyAt;
    if (ranMs >= this.options.stableAfterMs) this.consecutiveCrashes = 0;
    // The engine's named policy, without jitter: one supervisor per worker, no herd to spread.
    const policy = { baseMs: this.options.restartInitialMs, maxMs: this.options.restartMaxMs, jitter: 0 };
    const delay = backoffDelay(policy, this.consecutiveCrashes + 1, Math.random);
    this.consecutiveCrashes++;
    this.log.error(
      { shardId: this.shardId, code, reason, restartInMs: delay, restarts: this.restarts },
      "shard worker ended; restarting it on the same data",
    );
    this.enter(WorkerState.BACKOFF);
    this.emit({ type: "worker:exit", shardId: this.shardId, code, reason, restartInMs: delay });
    this.restartTimer = setTimeout(() => {
      if (this.state !== WorkerState.BACKOFF) return;
      this.restarts++;
      this.emit({ type: "worker:restart", shardId: this.shardId, restarts: this.restarts });
      this.start();
    }, delay);
  }

  private enter(state: WorkerState): void {
    if (this.state === state) return;
    this.log.debug({ shardId: this.shardId, from: this.state, to: state }, "shard worker state");
    this.state = state;
    if (state === WorkerState.STOPPED) this.stopped.resolve();
    else if (state === WorkerState.STARTING) this.stopped = deferred<void>();
  }
}

export class ShardHost {
  private readonly listeners = new Set<(event: ShardHostEvent) => void>();
  private readonly shards: SupervisedShard[];
  private closing: Promise<void> | undefined;
  /** The host's own metrics: its workers' supervision (metrics/host-metrics.ts). */
  readonly metrics: Registry = hostRegistry(() => this.workers());

  private constructor(
    options: ResolvedShardHostOptions,
    clusterId: string,
    private readonly log: Logger,
  ) {
    const of = options.shards;
    this.shards = Array.from({ length: of }, (_, index) => {
      const shardId = hostShardId(options.firstShard + index);
      const config: WorkerConfig = {
        natsUrl: options.natsUrl,
        natsAccess: options.shardAccess[index]!,
        cluster: options.cluster,
        clusterId,
        shardId,
        dataDir: join(options.dataDir, shardId),
        slots: { index, of },
        shard: options.shard,
        replicate: options.replicate,
        tuning: {
          announceIntervalMs: options.announceIntervalMs,
          announceThrottleMs: options.announceThrottleMs,
          frontierPollMs: options.frontierPollMs,
          prepareTtlMs: options.prepareTtlMs,
          maxPreparedParts: options.maxPreparedParts,
          maxPreparedBytes: options.maxPreparedBytes,
          maxLiveTasks: options.maxLiveTasks,
          maxStoredBytes: options.maxStoredBytes,
          maxIdempotencyKeys: options.maxIdempotencyKeys,
          leaseReplayTtlMs: options.leaseReplayTtlMs,
          leaseReplayMaxEntries: options.leaseReplayMaxEntries,
          leaseReplayMaxBytes: options.leaseReplayMaxBytes,
          kvReplicas: options.kvReplicas,
          claimConcurrency: options.claimConcurrency,
          slotCheckIntervalMs: options.slotCheckIntervalMs,
          autoRebalanceMs: options.autoRebalanceMs,
          idSpace: options.idSpace,
          claimSweepMs: options.claimSweepMs,
          maxParkedLeases: options.maxParkedLeases,
          orderWindow: options.orderWindow,
        },
        logLevel: options.logLevel,
      };
      return new SupervisedShard(config, options, log, (event) => this.emit(event));
    });
  }

  /**
   * Starts `shards` actors on worker threads and resolves once every one
   * serves. Rejects, having stopped them all, when options are bad
   * (InvalidArgumentError naming the option), when a worker cannot start
   * (its reason in the message), or after startTimeoutMs.
   */
  static async start(options: ShardHostOptions): Promise<ShardHost> {
    const o = checkShardHostOptions(options);
    const log = o.logger ?? createLogger("frontier-shard-host", o.logLevel);
    const clusterId = await checkIdentity(o, log);
    mkdirSync(o.dataDir, { recursive: true });
    const host = new ShardHost(o, clusterId, log);
    for (const shard of host.shards) shard.start();
    try {
      await withTimeout(
        Promise.all(host.shards.map((s) => s.firstReady.promise)),
        o.startTimeoutMs,
        () => new Error(`shards did not start within ${o.startTimeoutMs} ms`),
      );
    } catch (error) {
      await host.close();
      throw error;
    }
    log.info({ shards: o.shards, cluster: o.cluster, dataDir: o.dataDir }, "shard host started");
    return host;
  }

  /** `shard-0` … `shard-<N-1>`. */
  get shardIds(): string[] {
    return this.shards.map((s) => s.shardId);
  }

  /** Restarts of all workers so far. */
  get restarts(): number {
    return this.shards.reduce((sum, s) => sum + s.restarts, 0);
  }

  /** Each worker's state, restarts and last exit. */
  workers(): ShardWorkerStatus[] {
    return this.shards.map((s) => s.status());
  }

  /**
   * Every running worker's metrics (frontier_shard_*, labelled by shard), as
   * plain data for renderMetrics; a worker that is down or does not answer
   * within COLLECT_TIMEOUT_MS is left out (`frontier_shard_host_worker_running`
   * in `metrics` says which are down).
   */
  async workerMetrics(): Promise<MetricsJson[]> {
    const answers = await Promise.all(this.shards.map((s) => s.collect("metrics")));
    return answers.flatMap((a) => (a === undefined ? [] : [a.metrics]));
  }

  /**
   * What /readyz checks, one per shard: its worker runs, and its actor is
   * connected to NATS, recovered and serving, and owns slots (the first
   * check that fails says why).
   */
  readiness(): Record<string, ReadinessCheck> {
    const checks: Record<string, ReadinessCheck> = {};
    for (const shard of this.shards) {
      checks[shard.shardId] = async () => {
        const { state } = shard.status();
        if (state !== WorkerState.RUNNING) return `its worker is ${state}`;
        const answer = await shard.collect("readiness");
        if (answer === undefined) return "its worker did not answer";
        const failing = Object.entries(answer.readiness).find(([, why]) => why !== null);
        return failing === undefined ? null : `${failing[0]}: ${failing[1]}`;
      };
    }
    return checks;
  }

  /** Calls `listener` on every worker event; returns the function that stops it. Listener errors are logged, never thrown. */
  onEvent(listener: (event: ShardHostEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes every actor cleanly (in parallel) and stops supervising. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(this.shards.map((s) => s.stop()));
      this.log.info("shard host stopped");
    })();
    return this.closing;
  }

  private emit(event: ShardHostEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.log.error({ err: messageOf(error), event: event.type }, "a ShardHost listener threw");
      }
    }
  }
}
