/**
 * The coordinator: the cluster's front door on `frontier.<cluster>.coord.<op>`.
 *
 * Several coordinators run at once in the queue group COORDINATOR_QUEUE; NATS
 * hands each request to one of them. A coordinator holds no task state, only
 * caches it can lose (the slot table, the shards' frontiers, recent lease
 * replies), so any one of them can answer any request.
 *
 *   submit          → SubmitRouter   (validate, split by slot owner, 2PC when needed)
 *   lease           → LeaseRouter    (EDF across shards by their frontiers, long-poll)
 *   heartbeat, complete, fail, cancel, updateDeadline, getTask, retry
 *                   → TaskOpRouter   (owner of slotOf(workflowId ?? taskId); scatter)
 *   stats           → every shard's stats, merged, naming the shards that did not answer
 *   listTasks, getWorkflow
 *                   → TaskQueryRouter (every shard's page merged; the workflow's owner)
 *   prepare, commit, abort → refused: shard-only
 *
 * Every request is decoded by the protocol codec; anything wrong with it
 * (garbage, wrong types, unknown version, over a limit) is answered with an
 * error reply carrying a stable code, and only that request fails.
 *
 * Lifecycle: `startCoordinator` → running → `close()`: stop taking requests
 * (unsubscribe; the queue group sends them to the other coordinators), end
 * long-polls (they answer with what they have), wait for the requests in
 * hand, then stop the announcements, the slot watch, the pool, the metrics
 * endpoint and, when it is ours, the NATS connection.
 *
 * Metrics: this coordinator's own only (metrics/coordinator-metrics.ts), in
 * `metrics`; with `metricsPort` it serves them with the process's default
 * metrics, and /healthz and /readyz (`readiness()`), itself.
 */

import {
  type ConnectionCheck,
  type MetricsEndpoint,
  processRegistry,
  type ReadinessCheck,
  type Registry,
  renderMetrics,
  startMetricsEndpoint,
  watchConnection,
} from "@frontier/metrics";
import {
  type ClusterSubjects,
  COORDINATOR_QUEUE,
  decodeFrontier,
  decodeRequest,
  encodeReply,
  errorReply,
  type FrontierAnnouncement,
  type LeaseRequest,
  type Op,
  ProtocolError,
  parseSubject,
  type Reply,
  type Request,
  type RequestOf,
  type ResultOf,
  redactUrl,
  subjectsFor,
  toWireError,
  WireErrorCode,
} from "@frontier/protocol";
import { natsConnectionOptions } from "@frontier/transport";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type Logger, pino } from "pino";
import { CoordinatorError, CoordinatorErrorCode, ShardsUnknownError } from "./errors.js";
import { FrontierBoard } from "./frontier-board.js";
import { IdSpaceReader } from "./id-space.js";
import { FORWARDED, LeaseRouter } from "./lease.js";
import { CoordinatorMetrics, type LeaseOutcome } from "./metrics/coordinator-metrics.js";
import { type CoordinatorOptions, type FilledOptions, fillOptions } from "./options.js";
import { ScheduleRunner } from "./schedule-runner.js";
import { NatsShardLink } from "./shard-link.js";
import { type SlotDirectory, SlotMap } from "./slot-table.js";
import { byShardOf, coverageOf, gatherStats, type ShardStatsResult } from "./stats.js";
import { SubmitRouter } from "./submit.js";
import { TaskOpRouter } from "./task-ops.js";
import { TaskQueryRouter } from "./task-queries.js";
import { BatchValidator } from "./validation.js";

/**
 * Ops only shards take (the phases of a multi-shard submit, a rejected
 * batch's check, a slot's tasks arriving, a large workflow's completion
 * events, an id's claim); a coordinator refuses them.
 */
export const SHARD_ONLY_OPS: ReadonlySet<Op> = new Set<Op>([
  "prepare",
  "commit",
  "abort",
  "check",
  "adopt",
  "deliverEvents",
  "locate",
  "holds",
]);

/** How long a request that must ask every shard waits for a starting coordinator's slot table, ms. */
const ALL_SHARDS_WAIT_MS = 2_000;
/**
 * How long a coordinator waits for a slot move to end, ms: a move of one
 * slot carries ~1/1024 of a shard's tasks; a longer one is answered TIMEOUT
 * (the move goes on) and its resend under the same move id joins it.
 */
const MOVE_SLOT_TIMEOUT_MS = 120_000;

/** What a running coordinator knows of the cluster, for status output and tests. */
export interface CoordinatorView {
  readonly cluster: string;
  /** Slots with a known owner, of SLOT_COUNT. */
  readonly slotsOwned: number;
  /** Shards owning at least one slot. */
  readonly slotOwners: readonly string[];
  /** Shards with a fresh frontier announcement, least key first. */
  readonly frontiers: readonly {
    readonly shardId: string;
    readonly key: number | null;
    readonly runnable: number;
    /** The announcement's sequence number. */
    readonly seq: number;
    readonly ageMs: number;
  }[];
  /** Requests being handled now (long-polls included). */
  readonly inflight: number;
}

export interface Coordinator {
  readonly cluster: string;
  /** `http://<host>:<port>/metrics` when `metricsPort` was given. */
  readonly metricsUrl: string | undefined;
  /** This coordinator's own metrics (frontier_coordinator_*), for a process serving several parts on one endpoint. */
  readonly metrics: Registry;
  /**
   * What /readyz checks: `nats` (connected) and `slots` (the slot table
   * loaded, so every shard is known). Each returns null when ready, else why not.
   */
  readiness(): Record<string, ReadinessCheck>;
  inspect(): CoordinatorView;
  /** Every shard's stats, merged, with the shards that did not answer. */
  clusterStats(): Promise<ShardStatsResult>;
  /** Stop taking requests, finish those in hand, release everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a coordinator and resolves once it is subscribed (and the metrics
 * endpoint, if asked for, listens). Rejects with CoordinatorError:
 * INVALID_OPTION, CONNECT_FAILED or METRICS_LISTEN_FAILED.
 */
export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const filled = fillOptions(options);
  const logger = filled.logger ?? pino({ name: "frontier-coordinator" });
  let nc = filled.nc;
  const ownsConnection = nc === undefined;
  if (nc === undefined) {
    const servers = typeof filled.natsUrl === "string" ? filled.natsUrl : [...(filled.natsUrl ?? [])];
    try {
      nc = await connect({
        ...natsConnectionOptions(servers, filled.natsAccess),
        name: `frontier-coordinator-${filled.cluster}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        waitOnFirstConnect: filled.waitForNats,
      });
    } catch (cause) {
      throw new CoordinatorError(
        CoordinatorErrorCode.CONNECT_FAILED,
        `cannot connect to NATS at ${redactUrl(String(servers))}: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
    }
  }
  const coordinator = new CoordinatorImpl(filled, nc, ownsConnection, logger);
  try {
    await coordinator.start();
  } catch (err) {
    await coordinator.close();
    throw err;
  }
  return coordinator;
}

class CoordinatorImpl implements Coordinator {
  readonly cluster: string;
  metricsUrl: string | undefined;
  private readonly subjects: ClusterSubjects;
  private readonly ownMetrics: CoordinatorMetrics;
  private readonly connection: ConnectionCheck;
  /** Whether the slot table has been whole once (readiness); a fixed table always is. */
  private slotsLoaded = false;
  private readonly board: FrontierBoard;
  private readonly slots: SlotDirectory;
  private ownSlotTable: SlotMap | undefined;
  private scheduleRunner: ScheduleRunner | undefined;
  /** The cluster's id space, read from the slot bucket. */
  private readonly idSpace: IdSpaceReader;
  private readonly link: NatsShardLink;
  private readonly validator: BatchValidator;
  private readonly submitter: SubmitRouter;
  private readonly leaser: LeaseRouter;
  private readonly taskOps: TaskOpRouter;
  private readonly queries: TaskQueryRouter;
  private readonly inflight = new Set<Promise<void>>();
  private requestSub: Subscription | undefined;
  private frontierSub: Subscription | undefined;
  private endpoint: MetricsEndpoint | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly options: FilledOptions,
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly logger: Logger,
  ) {
    this.cluster = options.cluster;
    this.subjects = subjectsFor(options.cluster);
    this.board = new FrontierBoard(options.frontierStaleMs);
    this.connection = watchConnection(nc);
    // Its own watcher, started with the coordinator (start), unless given a directory.
    this.slots = options.slots ?? {
      ownerOf: (slot) => this.ownSlotTable?.ownerOf(slot),
      shards: () => this.ownSlotTable?.shards() ?? [],
      ownedCount: () => this.ownSlotTable?.ownedCount() ?? 0,
      whenLoaded: (timeoutMs) => this.ownSlotTable?.whenLoaded(timeoutMs) ?? Promise.resolve(false),
    };
    this.ownMetrics = new CoordinatorMetrics({
      pool: () => this.validator.stats(),
      slotsOwned: () => this.slots.ownedCount(),
      frontierShards: () => this.board.fresh().length,
      longPolls: () => this.leaser.waiting,
      inflight: () => this.inflight.size,
    });
    const metrics = this.ownMetrics;
    this.link = new NatsShardLink(nc, this.subjects, options.shardTimeoutMs, (shard, op, code, seconds) => {
      metrics.shardRequests.inc({ shard, op, code });
      metrics.shardRequestSeconds.observe({ op }, seconds);
    });
    this.idSpace = new IdSpaceReader(nc, options.cluster, logger);
    this.validator = new BatchValidator({
      poolSize: options.poolSize,
      inlineMaxWork: options.inlineValidationMaxWork,
      workerUrl: options.validationWorker,
      logger,
    });
    this.submitter = new SubmitRouter({
      link: this.link,
      slots: this.slots,
      validator: this.validator,
      logger,
      commitAttempts: options.commitAttempts,
      commitBackoffMs: options.commitBackoffMs,
      idSpace: () => this.idSpace.current,
      onCommitRetry: (shard) => metrics.commitRetries.inc({ shard }),
      onValidated: (mode) => metrics.validations.inc({ mode }),
    });
    this.leaser = new LeaseRouter({
      link: this.link,
      board: this.board,
      logger,
      replayMs: options.leaseReplayMs,
      replayEntries: options.leaseReplayEntries,
      onGranted: (shard, n) => metrics.leasesGranted.inc({ shard }, n),
      onDropped: (shard, n) => metrics.leasesDropped.inc({ shard }, n),
      onResend: (outcome) => metrics.leaseResends.inc({ outcome }),
      knownShards: () => this.allShards(),
      shardTimeoutMs: options.shardTimeoutMs,
      maxLongPolls: options.maxLongPolls,
    });
    this.queries = new TaskQueryRouter({
      link: this.link,
      slots: this.slots,
      knownShards: () => this.allShards(),
    });
    this.taskOps = new TaskOpRouter({
      link: this.link,
      slots: this.slots,
      idSpace: () => this.idSpace.current,
      knownShards: () => this.allShards(),
      onScatter: (op) => metrics.scatters.inc({ op }),
    });
  }

  get metrics(): Registry {
    return this.ownMetrics.registry;
  }

  readiness(): Record<string, ReadinessCheck> {
    return {
      nats: this.connection.check,
      slots: () => (this.slotsLoaded ? null : "the slot table is not loaded yet"),
    };
  }

  async start(): Promise<void> {
    // Recurring tasks: every coordinator submits each tick, the shard takes it once (its key).
    this.scheduleRunner = new ScheduleRunner(
      this.nc,
      this.cluster,
      (task, idempotencyKey) => this.submitter.submit({ op: "submit", tasks: [task], idempotencyKey }),
      this.logger,
      this.options.slotRetryMs,
    );
    this.scheduleRunner.start();
    this.idSpace.start();
    if (this.options.slots === undefined) {
      this.ownSlotTable = SlotMap.start(this.nc, {
        cluster: this.cluster,
        retryMs: this.options.slotRetryMs,
        log: this.logger,
      });
    }
    void this.followSlotTable();
    this.frontierSub = this.nc.subscribe(this.subjects.frontier, {
      callback: (err, msg) => {
        if (err) return;
        let announcement: FrontierAnnouncement;
        try {
          announcement = decodeFrontier(msg.data);
        } catch (e) {
          this.ownMetrics.announcements.inc({ outcome: "undecodable" });
          this.logger.debug({ err: e }, "ignored a frontier announcement that does not decode");
          return;
        }
        // Only a slot owner's word routes leases: a process that is not one (a shard that has
        // not claimed its slots yet, or anyone else on the subject) would be asked for tasks.
        if (!this.slots.shards().includes(announcement.shardId)) {
          this.ownMetrics.announcements.inc({ outcome: "stranger" });
          this.logger.debug(
            { shardId: announcement.shardId },
            "ignored the announcement of a shard that owns no slot",
          );
          return;
        }
        this.ownMetrics.announcements.inc({ outcome: "accepted" });
        this.board.update(announcement);
      },
    });
    this.requestSub = this.nc.subscribe(this.subjects.coordAll, {
      queue: COORDINATOR_QUEUE,
      callback: (err, msg) => {
        if (err) {
          this.logger.error({ err }, "request subscription failed");
          return;
        }
        this.onRequest(msg);
      },
    });
    // Make sure the server has our subscriptions before we say we are up.
    await this.nc.flush();
    if (this.options.metricsPort !== undefined) {
      try {
        this.endpoint = await startMetricsEndpoint({
          port: this.options.metricsPort,
          host: this.options.metricsHost,
          render: () => renderMetrics([processRegistry(), this.metrics]),
          checks: () => this.readiness(),
          logger: this.logger,
        });
        this.metricsUrl = this.endpoint.url;
      } catch (cause) {
        throw new CoordinatorError(
          CoordinatorErrorCode.METRICS_LISTEN_FAILED,
          `cannot serve metrics on ${this.options.metricsHost}:${this.options.metricsPort}: ${
            cause instanceof Error ? cause.message : String(cause)
          }`,
          { cause },
        );
      }
    }
    this.logger.info(
      { cluster: this.cluster, subjects: this.subjects.coordAll, metrics: this.metricsUrl },
      "coordinator listening",
    );
  }

  inspect(): CoordinatorView {
    const now = Date.now();
    return {
      cluster: this.cluster,
      slotsOwned: this.slots.ownedCount(),
      slotOwners: [...this.slots.shards()].sort(),
      frontiers: this.board
        .fresh()
        .sort((a, b) => (a.key ?? Number.POSITIVE_INFINITY) - (b.key ?? Number.POSITIVE_INFINITY))
        .map((f) => ({
          shardId: f.shardId,
          key: f.key,
          runnable: f.runnable,
          seq: f.seq,
          ageMs: now - f.receivedAt,
        })),
      inflight: this.inflight.size,
    };
  }

  async clusterStats(): Promise<ShardStatsResult> {
    // Just started: give the slot table a moment to be whole, then sum what is known (a shard
    // not known yet is not counted; one known that does not answer is named as missing).
    await this.slots.whenLoaded?.(ALL_SHARDS_WAIT_MS);
    return gatherStats(this.knownShards(), async (shardId) => {
      const reply = await this.link.request(shardId, { op: "stats" }, this.options.statsTimeoutMs);
      return reply.stats;
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---------------------------------------------------------------- requests

  private onRequest(msg: Msg): void {
    if (!msg.reply) return; // a publish, not a request: nobody to answer
    const started = performance.now();
    const parsed = parseSubject(msg.subject);
    const op = parsed?.role === "coord" ? parsed.op : undefined;
    const replyTo = msg.reply;
    const handling = this.handle(op, msg.subject, msg.data, replyTo).then((reply) => {
      const label = op ?? "unknown";
      if (reply === FORWARDED) {
        // A shard answers this one (a long-poll forwarded to it): nothing to send or time here.
        this.ownMetrics.requests.inc({ op: label, code: "OK" });
        this.ownMetrics.leaseOutcomes.inc({ outcome: "forwarded" });
        return;
      }
      const code = reply.ok ? "OK" : reply.error.code;
      this.respond(msg, reply);
      this.ownMetrics.requests.inc({ op: label, code });
      this.ownMetrics.requestSeconds.observe({ op: label }, (performance.now() - started) / 1000);
      if (op === "lease") this.ownMetrics.leaseOutcomes.inc({ outcome: leaseOutcome(reply) });
    });
    this.inflight.add(handling);
    void handling.finally(() => this.inflight.delete(handling));
  }

  /**
   * The reply to one request, or FORWARDED when a shard answers `replyTo`
   * itself (a long-poll forwarded to it); never rejects.
   */
  private async handle(
    op: Op | undefined,
    subject: string,
    data: Uint8Array,
    replyTo: string,
  ): Promise<Reply | typeof FORWARDED> {
    try {
      if (op === undefined) {
        throw new ProtocolError(
          WireErrorCode.BAD_MESSAGE,
          `${JSON.stringify(subject)} names no coordinator op; send requests to ${this.subjects.coord("submit").replace(/submit$/, "<op>")}`,
        );
      }
      if (SHARD_ONLY_OPS.has(op)) {
        throw new ProtocolError(
          WireErrorCode.BAD_MESSAGE,
          `${op} is a shard-only op (coordinators send it to shards); coordinators do not take it: send submit`,
        );
      }
      const request = decodeRequest(data, op);
      const result = await this.dispatch(request, replyTo);
      if (result === FORWARDED) return FORWARDED;
      return { ok: true, op, ...result } as Reply;
    } catch (err) {
      const reply = errorReply(err);
      if (reply.error.code === WireErrorCode.INTERNAL) this.logger.error({ err, op }, "request failed");
      else this.logger.debug({ op, code: reply.error.code, message: reply.error.message }, "request refused");
      return reply;
    }
  }

  /**
   * An admin's move of one slot (docs/cluster.md, "Slot movement"): sent to
   * the slot's owner, which drives the move and answers once it ended. A
   * resend under the same move id joins it or finds it done (the slot names
   * the target already: 0 tasks, at once). Only admins may send it (NATS roles).
   */
  private async moveSlot(request: RequestOf<"moveSlot">): Promise<ResultOf<"moveSlot">> {
    const owner = this.slots.ownerOf(request.slot);
    if (owner === request.target) return { tasks: 0 };
    if (owner === undefined) {
      throw new ProtocolError(
        WireErrorCode.SLOT_NOT_OWNED,
        `no shard owns slot ${request.slot}: there is nothing to move`,
      );
    }
    const reply = await this.link.request(owner, request, MOVE_SLOT_TIMEOUT_MS);
    return { tasks: reply.tasks };
  }

  private async dispatch(request: Request, replyTo: string): Promise<ResultOf<Op> | typeof FORWARDED> {
    switch (request.op) {
      case "submit":
        return this.submitter.submit(request);
      case "lease": {
        const shardOnly = (["maxKey", "forwarded"] as const).find((field) => request[field] !== undefined);
        if (shardOnly !== undefined) {
          throw new ProtocolError(
            WireErrorCode.BAD_MESSAGE,
            `${shardOnly}: only a coordinator sets it, on its requests to shards; leave it out`,
          );
        }
        const forward = this.options.forwardLongPolls
          ? (shardId: string, ask: LeaseRequest) => this.link.forward(shardId, ask, replyTo)
          : undefined;
        return this.leaser.lease(request, forward);
      }
      case "heartbeat":
      case "complete":
      case "fail":
      case "release":
      case "cancel":
      case "updateDeadline":
      case "getTask":
      case "retry":
        return stripOp(await this.taskOps.route(request));
      case "listTasks":
        return this.queries.listTasks(request);
      case "getWorkflow":
        return this.queries.getWorkflow(request);
      case "settle":
        return this.taskOps.settle(request);
      case "stats": {
        const result = await this.stats();
        return {
          stats: result.merged,
          shards: coverageOf(result),
          byShard: byShardOf(result, (slot) => this.slots.ownerOf(slot)),
        };
      }
      case "moveSlot":
        return this.moveSlot(request);
      case "prepare":
      case "commit":
      case "abort":
      case "check":
      case "adopt":
      case "deliverEvents":
      case "locate":
      case "holds":
        throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `${request.op} is a shard-only op`);
      default: {
        const unreachable: never = request;
        throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `unknown op ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Cluster stats for a `stats` request: partial when some shards do not answer, an error when none does. */
  private async stats(): Promise<ShardStatsResult> {
    const result = await this.clusterStats();
    if (result.missing.length > 0) {
      this.logger.warn({ missing: result.missing }, "stats: some shards did not answer; partial stats");
      if (result.shards.size === 0) {
        const codes = result.missing.map((m) => `${m.shardId}: ${m.code}`).join(", ");
        const timedOut = result.missing.every((m) => m.code === WireErrorCode.TIMEOUT);
        throw new ProtocolError(
          timedOut ? WireErrorCode.TIMEOUT : WireErrorCode.SHARD_UNAVAILABLE,
          `no shard answered the stats request (${codes})`,
        );
      }
    } else if (result.shards.size === 0) {
      throw new ProtocolError(
        WireErrorCode.SHARD_UNAVAILABLE,
        "no shards known yet (no slot owners, no frontier announcements); retry once shards have started",
      );
    }
    return result;
  }

  private respond(msg: Msg, reply: Reply): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeReply(reply);
    } catch (err) {
      this.logger.error({ err }, "reply does not encode");
      bytes = encodeReply(
        errorReply(
          new ProtocolError(WireErrorCode.INTERNAL, `the reply did not encode: ${toWireError(err).message}`),
        ),
      );
    }
    try {
      msg.respond(bytes);
    } catch (err) {
      this.logger.debug({ err }, "could not send a reply (connection closing)");
    }
  }

  /** Slot owners and shards with a fresh frontier. */
  private knownShards(): Set<string> {
    const shards = new Set(this.slots.shards());
    for (const f of this.board.fresh()) shards.add(f.shardId);
    return shards;
  }

  /**
   * Every shard, for requests that must ask them all (a lease resend's
   * lookup, a scatter): first waits, up to ALL_SHARDS_WAIT_MS, for the slot
   * table to be whole, else fails retryably. A coordinator that just started
   * would otherwise ask only the shards it has heard of, and miss a grant or
   * a task held by another.
   */
  private async allShards(): Promise<Set<string>> {
    const loaded = (await this.slots.whenLoaded?.(ALL_SHARDS_WAIT_MS)) ?? true;
    if (!loaded) throw new ShardsUnknownError(ALL_SHARDS_WAIT_MS);
    return this.knownShards();
  }

  /** Marks the slot table loaded once it has been whole (readiness), checking again each second until then. */
  private async followSlotTable(): Promise<void> {
    while (this.closing === undefined) {
      if ((await this.slots.whenLoaded?.(1_000)) ?? true) {
        this.slotsLoaded = true;
        return;
      }
    }
  }

  // ---------------------------------------------------------------- shutdown

  private async shutdown(): Promise<void> {
    this.logger.info({ cluster: this.cluster }, "coordinator closing");
    try {
      if (this.requestSub !== undefined && !this.nc.isClosed()) await this.requestSub.drain();
    } catch (err) {
      this.logger.debug({ err }, "request subscription drain failed");
    }
    this.board.close();
    await Promise.allSettled([...this.inflight]);
    this.frontierSub?.unsubscribe();
    await this.scheduleRunner?.close();
    this.idSpace.close();
    await this.ownSlotTable?.close();
    await this.validator.close();
    await this.endpoint?.close();
    this.connection.stop();
    if (this.ownsConnection && !this.nc.isClosed()) {
      try {
        await this.nc.drain();
      } catch (err) {
        this.logger.debug({ err }, "NATS drain failed");
      }
    }
    this.logger.info({ cluster: this.cluster }, "coordinator closed");
  }
}

function leaseOutcome(reply: Reply): LeaseOutcome {
  if (!reply.ok) return "refused";
  return reply.op === "lease" && reply.leases.length > 0 ? "granted" : "empty";
}

/** A router's ok reply without its `ok` and `op`, to be spread into a new reply. */
function stripOp<T extends { ok: true; op: Op }>(reply: T): Omit<T, "ok" | "op"> {
  const { ok: _ok, op: _op, ...rest } = reply;
  return rest;
}
