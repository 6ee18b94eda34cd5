/**
 * A shard actor: one durable `Shard` served over NATS.
 *
 * It owns a set of hash slots (recorded in the cluster's KV bucket, see
 * slot-ownership.ts), answers every protocol op on
 * `frontier.<cluster>.shard.<shardId>.<op>`, and announces its frontier on
 * `frontier.<cluster>.frontier`. Every request goes through the codec:
 * decode (version, shape, limits) → the Shard → encodeReply; anything thrown
 * becomes an error reply with a stable code, and nothing a peer sends can
 * stop it from serving the next request.
 *
 * Modes (changed only through `enter`):
 *
 *   STARTING --Shard open, slots claimed, subscribed-->           SERVING
 *   SERVING  --the Shard stopped (journal failure, fenced)-->    FAILED
 *   SERVING | FAILED --close()-->                                CLOSING
 *   CLOSING  --subscription drained, Shard and NATS closed-->    CLOSED
 *
 * SERVING answers every op. FAILED answers SHARD_UNAVAILABLE (the Shard
 * refuses: its memory may be ahead of its disk) and announces nothing; its
 * supervisor learns of it from `done()`, closes it and starts a new actor on
 * the same data, which recovers from the journal. CLOSING answers what is in
 * flight, then stops; a final announcement says it has nothing runnable.
 *
 * It serves a slot only while it claimed the slot and the bucket names it
 * (slot-guard.ts): after NATS reconnects, on any change of its slots in the
 * bucket, and every slotCheckIntervalMs, it checks — a bucket or key lost is
 * claimed again, a slot another shard holds now is no longer served
 * (SLOT_NOT_OWNED), a slot given to it that it never claimed is given up.
 */
import { randomUUID, timingSafeEqual } from "node:crypto";
import {
  DEFAULT_TASK_TYPE,
  type Lease,
  type Problem,
  ProblemCode,
  pastBound,
  type RemoteApplied,
  type SchedulerStats,
  StaleLeaseError,
  type Task,
  type TaskInput,
  type TaskView,
  ValidationError,
} from "@frontier/core";
import {
  type ConnectionCheck,
  type MetricsJson,
  type ReadinessCheck,
  type Registry,
  watchConnection,
} from "@frontier/metrics";
import {
  addedProblems,
  boundTypeCounts,
  claimOf,
  claimsOfOtherTasks,
  decodeFrontier,
  decodeRequest,
  encodedByteLength,
  encodeFrontier,
  encodeReply,
  errorReply,
  FRONTIER_DEPTH_RANKS,
  type HeldLease,
  homeSlotOf,
  type IdClaim,
  isShardUnavailableDetail,
  LEASE_RESULTS_BYTES,
  type LeaseRequest,
  MAX_ANNOUNCED_TYPES,
  MAX_MESSAGE_BYTES,
  type OkReply,
  type Op,
  ProtocolError,
  parseSubject,
  placementProblem,
  type RemoteEventMessage,
  type RemoteLinkMessage,
  type Request,
  type RequestOf,
  type ResultOf,
  type SettleLease,
  type SettleOutcome,
  type SettleRequest,
  type ShardUnavailableDetail,
  SLOT_COUNT,
  type SubmitRequest,
  slotOfLargeTask,
  slotOfTask,
  subjectsFor,
  toWireError,
  unwrapReply,
  WireErrorCode,
  wireProblems,
} from "@frontier/protocol";
import {
  claimRow,
  type IdClaimRow,
  Shard,
  ShardError,
  ShardErrorCode,
  ShardLimitError,
  type ShardStats,
  type SubmitResult,
} from "@frontier/shard";
import { natsConnectionOptions } from "@frontier/transport";
import {
  connect,
  type Msg,
  type NatsConnection,
  errors as natsErrors,
  type QueuedIterator,
  type Status,
  type Subscription,
} from "@nats-io/transport-node";
import type { Logger } from "pino";
import { EMPTY_FRONTIER, type Frontier, FrontierAnnouncer } from "./announcer.js";
import {
  checkShardId,
  enrollShard,
  readDataIdentity,
  resolveClusterIdentity,
  resolveIdSpace,
} from "./cluster-identity.js";
import { CompletionRelay } from "./completion-relay.js";
import { IdHome } from "./id-home.js";
import { JournalStream } from "./journal-stream.js";
import { LeaseReplay } from "./lease-replay.js";
import { LeaseSecrets } from "./lease-secrets.js";
import { leaseSizeBound } from "./lease-size.js";
import { createLogger } from "./log.js";
import { ShardMetrics } from "./metrics/shard-metrics.js";
import {
  CLAIM_SWEEP_ROWS,
  checkShardActorOptions,
  type ResolvedShardActorOptions,
  type ShardActorOptions,
} from "./options.js";
import { settleShare } from "./order-window.js";
import { ParkedLeases } from "./parked-leases.js";
import { PeerFrontiers } from "./peer-frontiers.js";
import { requestPeer } from "./peer-request.js";
import { PreparedParts } from "./prepared.js";
import { planRebalance } from "./rebalance.js";
import { SlotGuard } from "./slot-guard.js";
import { SlotMover } from "./slot-mover.js";
import { openSlotBucket, SlotOwnership } from "./slot-ownership.js";
import { describeSlots } from "./slots.js";
import { StartProgress } from "./start-progress.js";
import { withTaskLog } from "./task-log.js";
import { shardPage } from "./task-pages.js";
import { deferred, messageOf, pause, withTimeout } from "./util.js";

export const ActorState = {
  STARTING: "STARTING",
  SERVING: "SERVING",
  FAILED: "FAILED",
  CLOSING: "CLOSING",
  CLOSED: "CLOSED",
} as const;
export type ActorState = (typeof ActorState)[keyof typeof ActorState];

/** How an actor ended: closed on request, or failed (its supervisor should start a new one). */
export type ActorExit = { readonly kind: "closed" } | { readonly kind: "failed"; readonly error: Error };

export interface ShardActorStats {
  readonly shardId: string;
  readonly cluster: string;
  readonly state: ActorState;
  /** Slots owned now. */
  readonly slots: number;
  /** Requests received, and how many got an error reply. */
  readonly requests: number;
  readonly errors: number;
  readonly inFlight: number;
  /** Frontier announcements published. */
  readonly announcements: number;
  /** Prepared parts waiting for their commit. */
  readonly prepared: number;
  /** Lease grants held for retries. */
  readonly leaseReplays: number;
  /** Lease long-polls parked now, waiting for runnable work (ParkedLeases). */
  readonly parkedLeases: number;
  readonly shard: ShardStats;
}

/** Room for the envelope of a lease reply (`v`, `kind`, `ok`, `op`, the array header), in bytes. */
const LEASE_REPLY_OVERHEAD = 256;
/** What a lease reply's leases may take, in bytes. */
const LEASE_REPLY_BUDGET = MAX_MESSAGE_BYTES - LEASE_REPLY_OVERHEAD;
/** How long a close waits for requests in flight, in ms. */
const DRAIN_TIMEOUT_MS = 5_000;
/** Timeout of one `adopt` part sent to a move's target, ms (a part is at most MOVE_PART_BYTES). */
const MOVE_REQUEST_TIMEOUT_MS = 10_000;
/** Timeout of one `deliverEvents` request (at most MAX_EVENTS_PER_DELIVERY events, one flushed commit), ms. */
const DELIVER_REQUEST_TIMEOUT_MS = 10_000;
/** Timeout of a `holds` request from an id's home to a claim's shard, ms (a read of memory there). */
const HOLDS_TIMEOUT_MS = 5_000;
/** No claim rows: nothing found gone. */
const NO_ROWS: ReadonlySet<IdClaimRow> = new Set();

export class ShardActor {
  private state: ActorState = ActorState.STARTING;
  private sub: Subscription | undefined;
  private peerSub: Subscription | undefined;
  /** The other shards' announced frontiers: the bound of the leases a settle grants (see settleLease). */
  private readonly peers: PeerFrontiers;
  private statusIter: QueuedIterator<Status> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private rebalanceTimer: NodeJS.Timeout | undefined;
  private claimSweepTimer: NodeJS.Timeout | undefined;
  /** A sweep of claim rows in progress (one at a time). */
  private claimSweep: Promise<unknown> | undefined;
  /** A move of automatic rebalancing in progress here (one at a time). */
  private rebalancing: Promise<unknown> | undefined;
  private readonly announcer: FrontierAnnouncer;
  private readonly prepared: PreparedParts;
  /** Commits in progress, by idempotency key: a retried commit waits for the first. */
  private readonly committing = new Map<string, Promise<SubmitResult>>();
  private readonly replay: LeaseReplay;
  /** Lease requests in progress, by owner and request id: a retry waits for the first. */
  private readonly leasing = new Map<string, Promise<LeaseOutcome>>();
  /** The same, by owner and the client's request id (any derived id): a replay-only lookup waits for them. */
  private readonly leasingByBase = new Map<string, Set<Promise<LeaseOutcome>>>();
  /** Lease long-polls waiting here for runnable work; served in the stretch of the change that brings it. */
  private readonly parked = new ParkedLeases<Promise<LeaseOutcome>>();
  /** Owner and client request ids looked up while asks under them were in progress: those do not park. */
  private readonly unparked = new Set<string>();
  /** Serves a slot only while this shard claimed it and the bucket names it; repairs what it can. */
  private readonly guard: SlotGuard;
  /** Slot moves: the ones this shard drives away, and those it adopts (slot-mover.ts). */
  private readonly mover: SlotMover;
  /** Sends the completion events this shard's outbox owes (large workflows; completion-relay.ts). */
  private readonly relay: CompletionRelay;
  /** The claims of the task ids homed here (one id space per cluster, id-home.ts). */
  private readonly ids: IdHome;
  private readonly abort = new AbortController();
  private readonly exit = deferred<ActorExit>();
  private closing: Promise<void> | undefined;
  private idle = deferred<void>();
  private requests = 0;
  private errors = 0;
  private inFlight = 0;
  private readonly connection: ConnectionCheck;
  readonly shardId: string;
  readonly cluster: string;

  private constructor(
    private readonly options: ResolvedShardActorOptions,
    private readonly log: Logger,
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly shard: Shard,
    private readonly ownership: SlotOwnership,
    ownedSlots: readonly number[],
    private readonly secrets: LeaseSecrets,
    private readonly shardMetrics: ShardMetrics,
  ) {
    this.shardId = options.shardId;
    this.cluster = options.cluster;
    this.connection = watchConnection(nc);
    shardMetrics.attach({
      stats: () => {
        try {
          return this.shard.stats();
        } catch {
          return undefined; // a scrape never fails for a shard that cannot say
        }
      },
      serving: () => (this.state === ActorState.SERVING ? 1 : 0),
      slotsOwned: () => this.ownedSlots().length,
      inflight: () => this.inFlight,
      prepared: () => this.prepared.size,
      leaseReplays: () => this.replay.size,
    });
    // Slots leaving (an outbox row of a move) are not claimed; slots adopted here and not yet
    // named for this shard arrive once the bucket names it (slot-guard.ts).
    const leaving = new Set(shard.outgoingMoves().map((row) => row.slot));
    this.guard = new SlotGuard(ownership, {
      shardId: options.shardId,
      claimed: ownedSlots.filter((slot) => !leaving.has(slot)),
      intervalMs: options.slotCheckIntervalMs,
      log,
    });
    for (const slot of leaving) this.guard.leave(slot);
    const owned = new Set(ownedSlots);
    for (const slot of shard.adoptedSlots())
      if (!owned.has(slot) && !leaving.has(slot)) this.guard.arrive(slot);
    this.prepared = new PreparedParts(options.prepareTtlMs, {
      maxParts: options.maxPreparedParts,
      maxBytes: options.maxPreparedBytes,
    });
    // A coordinator drops a shard it has not heard from in three announcement intervals; so do we.
    this.peers = new PeerFrontiers(options.shardId, 3 * options.announceIntervalMs);
    this.mover = new SlotMover({
      shardId: options.shardId,
      cluster: options.cluster,
      shard,
      guard: this.guard,
      ownership,
      nc,
      log,
      secretOf: (taskId, token) => shard.adoptedProof(taskId, token) ?? secrets.of(taskId, token),
      // A prepared part's tasks, or the prerequisites its links name, must not leave before its
      // commit; a prepared claim homed in the slot must end too: the claims move with it.
      busy: (slot) =>
        this.prepared.holdsAny(
          (task) => slotOfTask(task) === slot,
          Date.now(),
          (link) => slotOfLargeTask(link.prerequisite, link.workflowId) === slot,
        ) || this.prepared.claimsAny((id) => homeSlotOf(id) === slot, Date.now()),
      reserved: (id) => this.prepared.reserved.has(id),
      heardFrom: (shardId) => this.peers.heardFrom(shardId),
      changed: () => {
        this.noteChange();
        this.serveParked();
      },
      signal: this.abort.signal,
      requestTimeoutMs: MOVE_REQUEST_TIMEOUT_MS,
    });
    this.relay = new CompletionRelay({
      shardId: options.shardId,
      cluster: options.cluster,
      nc,
      log,
      outbox: (limit, skip) => shard.remoteOutbox(limit, skip),
      acknowledge: (acks) => shard.acknowledgeRemote(acks),
      owing: () => shard.remoteOutboxSize,
      ownerOf: (slot) => ownership.map.ownerOf(slot),
      deliverHere: (events) => this.deliverEvents(events),
      signal: this.abort.signal,
      requestTimeoutMs: DELIVER_REQUEST_TIMEOUT_MS,
    });
    this.ids = new IdHome({
      shard,
      prepared: this.prepared,
      requireHome: (taskId) => this.requireHome(taskId),
      holds: (claim) => this.holdsElsewhere(claim),
    });
    this.replay = new LeaseReplay(
      options.leaseReplayTtlMs,
      options.leaseReplayMaxEntries,
      options.leaseReplayMaxBytes,
    );
    const subject = subjectsFor(options.cluster).frontier;
    this.announcer = new FrontierAnnouncer({
      shardId: options.shardId,
      intervalMs: options.announceIntervalMs,
      throttleMs: options.announceThrottleMs,
      pollMs: options.frontierPollMs,
      read: () => this.readFrontier(),
      readDepth: (type) => this.readDepth(type),
      publish: (a) => {
        // An announcement from a replaced owner would steer leases by its stale memory. Checked
        // here, where one is sent (at most every throttleMs), not on every read of the frontier
        // (after each change, and for each lease reply, whose request was checked already).
        if (!this.stillOwner()) return;
        try {
          this.nc.publish(subject, encodeFrontier(a));
        } catch (error) {
          // A closed connection: the actor is closing, or NATS gave up; nothing to tell.
          this.log.debug({ err: messageOf(error) }, "frontier announcement not sent");
        }
      },
    });
    this.idle.resolve();
  }

  /**
   * Opens the shard's data, claims its slots, subscribes, and resolves once
   * it serves. Rejects (with everything it opened closed again) when any of
   * that fails: options (InvalidArgumentError naming the option), NATS not
   * answering, a data directory another process holds (SHARD_LOCKED), ...
   */
  static async start(options: ShardActorOptions): Promise<ShardActor> {
    const o = checkShardActorOptions(options);
    const log = (o.logger ?? createLogger("frontier-shard", o.logLevel)).child({
      cluster: o.cluster,
      shardId: o.shardId,
    });
    // A start that waits long on one step (NATS, the bucket, the recovery) says which.
    const progress = new StartProgress(log, "connect to NATS");
    const nc =
      o.nc ??
      (await connect({
        ...natsConnectionOptions(o.natsUrl ?? [], o.natsAccess),
        name: `frontier-${o.cluster}-${o.shardId}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        waitOnFirstConnect: o.waitForNats,
      }).catch((error: unknown) => {
        progress.done();
        throw error;
      }));
    const ownsConnection = o.nc === undefined;
    const metrics = new ShardMetrics(o.shardId);
    let shard: Shard | undefined;
    let ownership: SlotOwnership | undefined;
    try {
      // NATS may go away while we start (a restart of the server): with waitForNats, wait for it
      // and go on, as the first connect does, rather than exit and leave it to the supervisor.
      // Without it, a step that timed out (a loaded NATS server) is still tried a few times more:
      // a start should not fail on one slow answer.
      const untilNats = <T>(step: string, run: () => Promise<T>) => {
        progress.at(step);
        return o.waitForNats ? retryWhileNatsDown(step, run, log) : retryTimeouts(step, run, log);
      };
      // One cluster, one owner (cluster-identity.ts), checked before the data directory is opened:
      // a directory of another cluster, a second instance, a shard id held elsewhere change nothing.
      const record = readDataIdentity(o.dataDir);
      const identityKv = await untilNats("open the slot bucket", () =>
        openSlotBucket(nc, { cluster: o.cluster, kvReplicas: o.kvReplicas, logger: log }),
      );
      const { clusterId, created } = await untilNats("check the cluster identity", () =>
        resolveClusterIdentity(identityKv, {
          cluster: o.cluster,
          dirs: [{ dataDir: o.dataDir, record }],
          join: o.join,
          ...(o.clusterId === undefined ? {} : { expected: o.clusterId }),
        }),
      );
      // The directory's id is known before it opens: a replicated journal stream names its writer by it.
      const dataId = record?.dataId ?? randomUUID();
      const enrolling = {
        cluster: o.cluster,
        clusterId,
        shardId: o.shardId,
        dataDir: o.dataDir,
        record,
        dataId,
      };
      await untilNats("check the shard id", () => checkShardId(identityKv, enrolling));
      // One id space for every member: a shard that would keep ids unique otherwise is refused.
      await untilNats("check the id space", () => resolveIdSpace(identityKv, o.cluster, o.idSpace));
      progress.at("open the data directory and recover its tasks");
      if (o.shard.takeover === true) {
        // Said before the open, which cannot say it later: LMDB's open takes the directory's
        // write lock on this thread, and a previous owner paused in the middle of a commit
        // (SIGSTOP, a frozen VM) holds it until it runs again or dies.
        log.warn(
          { dataDir: o.dataDir },
          "taking the data directory over; if its previous owner is paused in the middle of a commit, this waits until it runs again or dies",
        );
      }
      const opening = performance.now();
      const replica = o.replicate
        ? new JournalStream({
            nc,
            cluster: o.cluster,
            shardId: o.shardId,
            origin: dataId,
            replicas: o.kvReplicas,
            timeoutMs: o.replicationTimeoutMs,
            // Read when the base is shipped, once the journal has opened (and so created) the directory.
            leaseKey: () => LeaseSecrets.load(o.dataDir).exportKey(),
            log,
          })
        : undefined;
      shard = await Shard.open({
        ...o.shard,
        ...(replica === undefined ? {} : { replica }),
        ...(o.replicationRebaseBytes === undefined ? {} : { replicaRebaseBytes: o.replicationRebaseBytes }),
        dataDir: o.dataDir,
        sameWorkflowPrerequisites: true,
        // Large workflows: a prerequisite in another slot is remote (completion events, not links).
        partitionOf: slotOfTask,
        observer: withTaskLog(metrics, log),
        maxLiveTasks: o.maxLiveTasks,
        maxStoredBytes: o.maxStoredBytes,
        maxIdempotencyKeys: o.maxIdempotencyKeys,
        // A grant's results stay within the budget the protocol's limits leave a lease reply.
        maxLeaseResultBytes: LEASE_RESULTS_BYTES,
      });
      metrics.recovered((performance.now() - opening) / 1000);
      const secrets = LeaseSecrets.load(o.dataDir);
      const identity = await untilNats("record the cluster identity", () =>
        enrollShard(identityKv, enrolling),
      );
      log.info(
        { clusterId, created, joined: record === undefined, dataId: identity.dataId },
        created ? "created the cluster's identity" : "cluster identity checked",
      );
      ownership = await untilNats("open the slot bucket", () =>
        SlotOwnership.open(nc, {
          cluster: o.cluster,
          kvReplicas: o.kvReplicas,
          claimConcurrency: o.claimConcurrency,
          logger: log,
        }),
      );
      const owning = ownership;
      const claim = await untilNats("claim slots", () => owning.assign(o.shardId, o.slots));
      if (claim.taken.length > 0) {
        log.warn(
          { slots: describeSlots(claim.taken.map((t) => t.slot)) },
          "slots asked for are owned by other shards; not serving them",
        );
      }
      if (claim.owned.length === 0) log.warn("this shard owns no slot: it will get no tasks");
      const actor = new ShardActor(
        o,
        log,
        nc,
        ownsConnection,
        shard,
        ownership,
        claim.owned,
        secrets,
        metrics,
      );
      progress.at("subscribe to its subjects");
      await actor.serve();
      progress.done();
      actor.mover.resume();
      log.info(
        {
          slots: describeSlots(claim.owned),
          claimed: claim.claimed.length,
          owned: claim.owned.length,
          dataDir: o.dataDir,
          tasks: shard.stats().counts,
        },
        "shard serving",
      );
      return actor;
    } catch (error) {
      progress.done();
      await ownership?.close().catch(() => {});
      await shard?.close().catch(() => {});
      if (ownsConnection) await nc.close().catch(() => {});
      throw error;
    }
  }

  /** The actor's logger (a pino child with its cluster and shard id). */
  get logger(): Logger {
    return this.log;
  }

  /** The mode the actor is in. */
  get currentState(): ActorState {
    return this.state;
  }

  /** Resolves when the actor ends: closed, or failed (then a supervisor should close it and start anew). */
  done(): Promise<ActorExit> {
    return this.exit.promise;
  }

  /** The slots this shard serves now (it claimed them, and the bucket names it), ascending. */
  ownedSlots(): number[] {
    return this.guard.served();
  }

  /** Whether this shard serves `slot` now: it claimed it, and the bucket names it (slot-guard.ts). */
  owns(slot: number): boolean {
    return this.guard.serves(slot);
  }

  /**
   * Checks the slot bucket against this shard's claims now, and repairs what
   * it can (slot-guard.ts); the actor does so on every change and every
   * slotCheckIntervalMs by itself.
   */
  checkSlots(): Promise<void> {
    return this.guard.check();
  }

  /** This shard's metrics (frontier_shard_*, each series labelled with its shard id). */
  get metrics(): Registry {
    return this.shardMetrics.registry;
  }

  /** The metrics as plain data, with the shard label: what a worker thread sends its host. */
  metricsJson(): Promise<MetricsJson> {
    return this.shardMetrics.registry.getMetricsAsJSON();
  }

  /**
   * What /readyz checks: `nats` (connected), `shard` (recovered and
   * serving), `slots` (owning at least one). Each returns null when ready,
   * else why not.
   */
  readiness(): Record<string, ReadinessCheck> {
    return {
      nats: this.connection.check,
      shard: () => (this.state === ActorState.SERVING ? null : `the shard is ${this.state}`),
      slots: () => (this.ownedSlots().length > 0 ? null : "this shard owns no slot"),
    };
  }

  stats(): ShardActorStats {
    return {
      shardId: this.shardId,
      cluster: this.cluster,
      state: this.state,
      slots: this.ownedSlots().length,
      requests: this.requests,
      errors: this.errors,
      inFlight: this.inFlight,
      announcements: this.announcer.published,
      prepared: this.prepared.size,
      leaseReplays: this.replay.size,
      parkedLeases: this.parked.size,
      shard: this.shard.stats(),
    };
  }

  /**
   * Stops serving: drains the subscription (requests in flight are
   * answered), announces an empty frontier, closes the Shard (pending writes
   * become durable) and the NATS connection if the actor opened it.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasServing = this.state === ActorState.SERVING;
      this.enter(ActorState.CLOSING);
      this.abort.abort();
      this.guard.stop();
      clearInterval(this.sweepTimer);
      clearInterval(this.claimSweepTimer);
      clearInterval(this.rebalanceTimer);
      this.statusIter?.stop();
      this.connection.stop();
      this.peerSub?.unsubscribe();
      this.announcer.stop(wasServing ? EMPTY_FRONTIER : undefined);
      try {
        if (this.sub && !this.nc.isClosed()) await this.sub.drain();
      } catch (error) {
        this.log.debug({ err: messageOf(error) }, "subscription drain failed");
      }
      await withTimeout(
        this.idle.promise,
        DRAIN_TIMEOUT_MS,
        () => new Error("requests still in flight"),
      ).catch((error) => this.log.warn({ err: messageOf(error), inFlight: this.inFlight }, "closing anyway"));
      await this.ownership.close().catch(() => {});
      await this.shard
        .close()
        .catch((error) => this.log.error({ err: messageOf(error) }, "shard close failed"));
      if (this.ownsConnection) {
        await this.nc.drain().catch(() => this.nc.close().catch(() => {}));
      } else if (!this.nc.isClosed()) {
        await this.nc.flush().catch(() => {});
      }
      this.enter(ActorState.CLOSED);
      this.log.info("shard closed");
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ modes

  private enter(state: ActorState, failure?: Error): void {
    if (this.state === state || this.state === ActorState.CLOSED) return;
    const from = this.state;
    this.state = state;
    this.log.debug({ from, to: state }, "actor state");
    if (state === ActorState.FAILED) {
      this.announcer.stop();
      this.exit.resolve({ kind: "failed", error: failure ?? new Error("the shard failed") });
    } else if (state === ActorState.CLOSED) {
      this.exit.resolve({ kind: "closed" });
    }
  }

  /** The Shard stopped for good: stop announcing, and let the supervisor know. */
  private failed(error: ShardError): void {
    if (this.state !== ActorState.SERVING) return;
    this.log.error(
      { err: error.message, code: error.code },
      "the shard stopped serving; it must be restarted",
    );
    this.enter(ActorState.FAILED, error);
  }

  private async serve(): Promise<void> {
    const subjects = subjectsFor(this.cluster);
    this.sub = this.nc.subscribe(subjects.shardAll(this.shardId), {
      callback: (err, msg) => {
        if (err) {
          this.log.warn({ err: messageOf(err) }, "subscription error");
          return;
        }
        this.onRequest(msg);
      },
    });
    this.peerSub = this.nc.subscribe(subjects.frontier, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.peers.observe(decodeFrontier(msg.data));
        } catch (error) {
          this.log.debug({ err: messageOf(error) }, "frontier announcement ignored");
        }
      },
    });
    // The server knows the subscription before we say we serve (a subscription outlives a
    // reconnect, so a flush that NATS going away interrupted is simply tried again).
    if (this.options.waitForNats) await retryWhileNatsDown("subscribe", () => this.nc.flush(), this.log);
    else await this.nc.flush();
    this.enter(ActorState.SERVING);
    this.guard.start();
    this.announcer.start();
    this.relay.start();
    this.sweepTimer = setInterval(
      () => this.prepared.sweep(Date.now()),
      Math.min(1_000, this.options.prepareTtlMs),
    );
    this.sweepTimer.unref();
    if (this.options.claimSweepMs > 0) {
      this.claimSweepTimer = setInterval(() => this.sweepClaims(), this.options.claimSweepMs);
      this.claimSweepTimer.unref();
    }
    if (this.options.autoRebalanceMs > 0) {
      this.rebalanceTimer = setInterval(() => void this.rebalanceStep(), this.options.autoRebalanceMs);
      this.rebalanceTimer.unref();
    }
    this.followConnection();
  }

  // --------------------------------------------------------------- requests

  private onRequest(msg: Msg): void {
    this.requests++;
    if (this.inFlight++ === 0) this.idle = deferred<void>();
    this.handle(msg)
      .catch((error) => this.log.error({ err: messageOf(error) }, "request handling failed"))
      .finally(() => {
        if (--this.inFlight === 0) this.idle.resolve();
      });
  }

  /** Decode → serve → encode; any error becomes an error reply. Never throws. */
  private async handle(msg: Msg): Promise<void> {
    const started = performance.now();
    let reply: OkReply | ReturnType<typeof errorReply>;
    let op: Op | undefined;
    try {
      const parsed = parseSubject(msg.subject);
      if (parsed?.role !== "shard") {
        throw new ProtocolError(
          WireErrorCode.BAD_MESSAGE,
          `unknown op on subject ${JSON.stringify(msg.subject.slice(0, 200))}`,
        );
      }
      op = parsed.op;
      reply = await this.serveRequest(decodeRequest(msg.data, op), msg.data.byteLength);
    } catch (error) {
      reply = this.errorReplyFor(error, op);
    }
    if (!msg.reply) {
      this.shardMetrics.request(op ?? "unknown", codeOf(reply), (performance.now() - started) / 1000);
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeReply(reply);
    } catch (error) {
      reply = this.errorReplyFor(error, op);
      bytes = encodeReply(reply);
    }
    msg.respond(bytes);
    this.shardMetrics.request(op ?? "unknown", codeOf(reply), (performance.now() - started) / 1000);
  }

  private errorReplyFor(error: unknown, op: Op | undefined): ReturnType<typeof errorReply> {
    this.errors++;
    const reply = errorReply(this.toBoundary(error));
    if (reply.error.code === WireErrorCode.INTERNAL) {
      this.log.error({ op, err: error instanceof Error ? error.stack : String(error) }, "internal error");
    } else {
      this.log.debug({ op, code: reply.error.code, err: reply.error.message }, "request refused");
    }
    return reply;
  }

  /** The Shard's fail-stop errors as SHARD_UNAVAILABLE (and a failed Shard as the actor's failure). */
  private toBoundary(error: unknown): unknown {
    if (!(error instanceof ShardError)) return error;
    // At a limit the shard serves on, and the same request may pass later: OVERLOADED, retryable.
    if (error instanceof ShardLimitError) {
      return new ProtocolError(WireErrorCode.OVERLOADED, `shard ${this.shardId} refuses: ${error.message}`, {
        cause: error,
        retryable: true,
      });
    }
    if (error.code === ShardErrorCode.SHARD_FAILED) this.failed(error);
    return new ProtocolError(
      WireErrorCode.SHARD_UNAVAILABLE,
      `shard ${this.shardId} is unavailable: ${error.message}`,
      { cause: error, ...detailOf(error) },
    );
  }

  /** `bytes`: the request's size on the wire (what a prepared part is counted as, not encoded again). */
  private async serveRequest(request: Request, bytes: number): Promise<OkReply> {
    if (this.state !== ActorState.SERVING) {
      const failed = this.state === ActorState.FAILED;
      throw new ProtocolError(
        WireErrorCode.SHARD_UNAVAILABLE,
        `shard ${this.shardId} is ${failed ? "failed and restarting" : "closing"}`,
        { detail: failed ? "RESTARTING" : "CLOSING" },
      );
    }
    // A replacement may have taken the directory over while this process was paused: then it
    // answers nothing, reads included (its memory is stale), and fails. Writes are fenced anyway.
    this.shard.confirmOwner();
    // A task whose slot is leaving is nobody's to change or show until its new owner serves it.
    if ("taskId" in request) this.refuseMoving(request);
    switch (request.op) {
      case "submit":
        return { ok: true, op: "submit", ...(await this.submit(request)) };
      case "prepare":
        return { ok: true, op: "prepare", ...(await this.prepare(request, bytes)) };
      case "commit":
        return { ok: true, op: "commit", ...(await this.commit(request)) };
      case "abort":
        this.prepared.remove(request.idempotencyKey);
        return { ok: true, op: "abort" };
      case "check":
        return { ok: true, op: "check", problems: await this.check(request) };
      case "lease": {
        const leases = this.withSecrets(await this.lease(request));
        // Answered to the worker itself (its long-poll forwarded here by a coordinator): named
        // as a coordinator names a lease's shard, so the worker settles here.
        if (request.forwarded === true) {
          return { ok: true, op: "lease", leases, shards: leases.map(() => this.shardId) };
        }
        // A lookup learns whether grants of the request left with their slot (leaseMovedAway): the
        // coordinator then looks again, at shards that may have adopted them after answering it.
        const moved =
          request.replayOnly === true && this.shard.leaseMovedAway(request.owner, request.requestId)
            ? { grantsMoved: true }
            : {};
        // The frontier after the grant: the coordinator routes its next ask by it at once.
        const frontier = this.announcer.snapshot();
        return frontier === null
          ? { ok: true, op: "lease", leases, ...moved }
          : { ok: true, op: "lease", leases, frontier, ...moved };
      }
      case "heartbeat": {
        this.requireHolder(request);
        const lease = await this.shard.heartbeat(request.taskId, request.token, { leaseMs: request.leaseMs });
        return { ok: true, op: "heartbeat", expiresAt: lease.expiresAt };
      }
      case "complete": {
        this.requireHolder(request);
        const { duplicate } = await this.announced(
          this.shard.complete(request.taskId, request.token, { result: request.result }),
        );
        return { ok: true, op: "complete", duplicate };
      }
      case "fail": {
        this.requireHolder(request);
        const view = await this.announced(
          this.shard.fail(request.taskId, request.token, {
            retryable: request.retryable,
            reason: request.reason,
          }),
        );
        return { ok: true, op: "fail", state: view.state };
      }
      case "release": {
        this.requireHolder(request);
        // Runnable again: announced, and served to parked asks, as a complete's dependents are.
        const { duplicate } = await this.announced(this.shard.release(request.taskId, request.token));
        return { ok: true, op: "release", duplicate };
      }
      case "settle":
        return { ok: true, op: "settle", ...(await this.settle(request)) };
      case "cancel":
        await this.announced(this.shard.cancel(request.taskId, request.reason));
        return { ok: true, op: "cancel" };
      case "updateDeadline":
        await this.announced(this.shard.updateDeadline(request.taskId, request.deadline));
        return { ok: true, op: "updateDeadline" };
      case "getTask": {
        const task: TaskView | undefined = this.shard.getTask(request.taskId);
        return { ok: true, op: "getTask", task: task ?? null };
      }
      case "stats":
        return { ok: true, op: "stats", stats: engineStats(this.shard.stats()) };
      case "listTasks": {
        const { op: _, after: __, limit: ___, ...filter } = request;
        const page = shardPage(this.shardId, request, filter, (q) => this.shard.listTasks(q));
        return { ok: true, op: "listTasks", ...page };
      }
      case "getWorkflow": {
        const filter = { workflowId: request.workflowId, withPrerequisites: true };
        const page = shardPage(this.shardId, request, filter, (q) => this.shard.listTasks(q));
        return { ok: true, op: "getWorkflow", ...page };
      }
      case "retry": {
        const options = request.deadline === undefined ? {} : { deadline: request.deadline };
        const view = await this.announced(this.shard.retry(request.taskId, options));
        return { ok: true, op: "retry", state: view.state };
      }
      case "moveSlot":
        return {
          ok: true,
          op: "moveSlot",
          tasks: await this.mover.move(request.slot, request.target, request.moveId),
        };
      case "adopt":
        return { ok: true, op: "adopt", ...(await this.mover.adopt(request)) };
      case "deliverEvents":
        return { ok: true, op: "deliverEvents", results: await this.deliverEvents(request.events) };
      case "locate":
        // Ids unique per shard only: no claim says where a task is (the coordinator asks every shard).
        if (this.options.idSpace === "workflow") return { ok: true, op: "locate", claim: null };
        return { ok: true, op: "locate", claim: this.ids.locate(request.taskId) };
      case "holds":
        return { ok: true, op: "holds", held: this.holdsHere(request) };
      default:
        return assertNever(request);
    }
  }

  /**
   * One step of automatic rebalancing (autoRebalanceMs): the plan
   * `frontier rebalance` would make over the shards heard from lately,
   * and of its moves the first whose source is this shard, made now. Each
   * shard moves only its own slots, one at a time, so shards over their
   * share give to those under it until every one holds its share.
   */
  private async rebalanceStep(): Promise<void> {
    if (this.state !== ActorState.SERVING || this.rebalancing !== undefined) return;
    const owners = new Map<number, string>();
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const owner = this.ownership.map.ownerOf(slot);
      if (owner !== undefined) owners.set(slot, owner);
    }
    const move = planRebalance(owners, [this.shardId, ...this.peers.live()]).find(
      (m) => m.from === this.shardId,
    );
    if (move === undefined) return;
    this.rebalancing = this.mover
      .move(move.slot, move.to, randomUUID())
      .then(
        (tasks) => this.log.info({ slot: move.slot, to: move.to, tasks }, "rebalanced a slot"),
        (error: unknown) =>
          this.log.warn(
            { slot: move.slot, to: move.to, err: messageOf(error) },
            "rebalancing: a move did not end",
          ),
      )
      .finally(() => {
        this.rebalancing = undefined;
      });
    await this.rebalancing;
  }

  /** SLOT_MOVING for `what`, carried by the outbox row of move `moveId` (its slot named). */
  private movingIn(moveId: string, what: string): ProtocolError {
    const row = this.shard.outgoingMoves().find((r) => r.moveId === moveId);
    return this.mover.movingError(row?.slot ?? -1, what);
  }

  /**
   * SLOT_MOVING when the task is in a slot leaving this shard (in an outbox
   * row); SLOT_NOT_OWNED (retryable: routing is behind) when it is named
   * with its workflow, its slot moved away from this process and it is not
   * here, rather than UNKNOWN_TASK, which would tell its holder the lease is
   * gone.
   */
  private refuseMoving(ref: {
    readonly taskId: string;
    readonly workflowId?: string | undefined;
    readonly large?: boolean | undefined;
  }): void {
    const { taskId } = ref;
    const moveId = this.shard.movingTask(taskId);
    if (moveId !== undefined) throw this.movingIn(moveId, `task ${JSON.stringify(taskId)}`);
    // Named by id alone, a coordinator asks every shard and counts on UNKNOWN_TASK from the others.
    if (ref.workflowId === undefined) return;
    const slot = slotOfTask({ id: taskId, workflowId: ref.workflowId, large: ref.large });
    const to = this.mover.movedTo(slot);
    if (to === undefined || this.owns(slot) || this.shard.getTask(taskId) !== undefined) return;
    throw new ProtocolError(
      WireErrorCode.SLOT_NOT_OWNED,
      `shard ${this.shardId} does not own slot ${slot} of task ${JSON.stringify(taskId)} any more (it moved to shard ${to}); refresh routing and retry`,
    );
  }

  /**
   * `change`, a Shard call that has already changed the engine (it runs
   * synchronously, then waits for its commit), with the frontier announced
   * now rather than after the commit: a coordinator that acts on the
   * announcement leases in a later journal block, which commits only after
   * this one (blocks commit in order, and a failed one fails every later
   * one), so no grant of a task is acknowledged before the task is durable,
   * and dispatch does not wait for two disk flushes in a row.
   */
  private announced<T>(change: Promise<T>): Promise<T> {
    this.noteChange();
    this.serveParked();
    return change;
  }

  /**
   * What every change of the engine tells: the announcer (the frontier may
   * have moved) and the completion relay (an ended prerequisite may owe its
   * remote dependents an event). Both only take note; their work is later.
   */
  private noteChange(): void {
    this.announcer.changed();
    this.relay.kick();
  }

  // ----------------------------------------------------------------- settle

  /**
   * A worker's completes, in one commit, and its next leases in the same
   * one. Every complete starts in this synchronous stretch, and the grants
   * follow in it too (see leaseOrReplay), after the completes: a dependent
   * they unblocked can be among the grants. Each complete gets its own
   * outcome; a refused one (STALE_LEASE, UNKNOWN_TASK, ...) fails only itself.
   * A settle none of whose completes carries a secret this shard made is
   * granted no leases (the worker leases through a coordinator instead).
   */
  private async settle(request: SettleRequest): Promise<ResultOf<"settle">> {
    // Each complete's secret checked once (an HMAC): for its own outcome and for the next leases.
    let holder = false;
    const results = request.completes.map((held): Promise<SettleOutcome> => {
      const shown = this.holds(held);
      holder ||= shown;
      let refused: Error | undefined;
      try {
        this.refuseMoving(held);
        refused = this.refusedHolder(held, shown);
      } catch (error) {
        refused = error as Error;
      }
      if (refused !== undefined) return Promise.resolve({ error: toWireError(refused) });
      return this.shard.complete(held.taskId, held.token, { result: held.result }).then(
        ({ duplicate }): SettleOutcome => ({ duplicate }),
        (error: unknown): SettleOutcome => ({ error: toWireError(this.toBoundary(error)) }),
      );
    });
    this.noteChange(); // before the commit: see announced()
    // The settling worker's own leases first, then the parked ones, all in this stretch. Only a
    // holder gets more: a worker may send settle straight here, but not lease (docs/security.md),
    // so the next leases go only to one that shows the secret of a lease this shard granted.
    const leasing = request.lease === undefined || !holder ? undefined : this.settleLease(request.lease);
    this.serveParked();
    const granted = leasing === undefined ? undefined : await leasing;
    const leases = granted === undefined ? [] : this.withSecrets(granted.leases);
    const outcomes = await Promise.all(results);
    // No frontier in the reply: a worker does not route by it, and reading it costs.
    return { results: outcomes, leases, ...(granted?.grantsMoved === true ? { grantsMoved: true } : {}) };
  }

  /**
   * The next leases of a settle: a lease request to this shard alone, under
   * the worker's request id, bounded by the other shards' announced
   * frontiers (the `maxKey` a coordinator would send). A resend first looks
   * up, and fences, what the earlier sends were granted here (this shard is
   * the only one asked under the id), as a coordinator does for a resent lease.
   * When some of those grants left with their slot since (their reply was
   * lost, then the slot moved), the resend gets what is still here, nothing
   * new, and `grantsMoved`: the worker then asks a coordinator, whose lookup
   * of every shard finds them (and grants anew only if there are none).
   */
  private async settleLease(ask: SettleLease): Promise<{ leases: Lease[]; grantsMoved: boolean }> {
    const attempt = ask.attempt ?? 1;
    const request: LeaseRequest = {
      op: "lease",
      owner: ask.owner,
      max: ask.max,
      leaseMs: ask.leaseMs,
      waitMs: 0,
      requestId: ask.requestId,
      ...(ask.types === undefined ? {} : { types: ask.types }),
      ...(attempt > 1 ? { attempt } : {}),
    };
    if (attempt > 1) {
      const replayed = await this.lease({ ...request, replayOnly: true });
      if (this.shard.leaseMovedAway(ask.owner, ask.requestId)) return { leases: replayed, grantsMoved: true };
      if (replayed.length > 0) return { leases: replayed, grantsMoved: false };
    }
    const bounded = this.settleBound(ask);
    const leases = bounded.max === 0 ? [] : await this.lease({ ...request, ...bounded });
    this.shardMetrics.settleLeased(ask.max, leases.length);
    return { leases, grantsMoved: false };
  }

  /**
   * What a settle's next leases may take, by the other shards' announced
   * frontiers of the worker's types only (another type's task elsewhere
   * does not come before this worker's next task). Exact order (window 0,
   * or a shard that did not tell its depth): only tasks before every other
   * shard's first, the `maxKey` a coordinator would send. A window: this
   * shard's part of the cluster's first `orderWindow` tasks (order-window.ts).
   */
  private settleBound(ask: SettleLease): Pick<LeaseRequest, "max" | "maxKey" | "maxTaskId"> {
    const window = this.options.orderWindow;
    if (window === "shard") return { max: ask.max };
    // No other shard has such a task: nothing to keep an order with (and nothing to count).
    const bound = this.peers.least(ask.types);
    if (bound === undefined) return { max: ask.max };
    const othersAtOrBefore = window === 0 ? undefined : this.peers.atOrBefore(ask.types);
    if (othersAtOrBefore === undefined)
      return {
        max: ask.max,
        maxKey: bound.key,
        ...(bound.taskId === null ? {} : { maxTaskId: bound.taskId }),
      };
    // Its own first tasks: what it grants now, or earlier ones submitted meanwhile (no later ones).
    const own = this.shard.leastKeys(ask.max, ask.types ?? DEFAULT_TYPES);
    return { max: settleShare(own, othersAtOrBefore, window, ask.max) };
  }

  // ---------------------------------------------------------- lease secrets

  /** Leases as their grant carries them: each with its secret (lease-secrets.ts). */
  private withSecrets(leases: readonly Lease[]): Lease[] {
    return leases.map((lease) => ({ ...lease, secret: this.secrets.of(lease.taskId, lease.token) }));
  }

  /** Refuses a heartbeat, complete, fail or release that does not show the secret of the lease it names. */
  private requireHolder(held: HeldLease): void {
    const refused = this.refusedHolder(held);
    if (refused !== undefined) throw refused;
  }

  /**
   * STALE_LEASE when `held.secret` is not the secret of the live lease of
   * `held.taskId` under `held.token`: answered as a stale token is, saying
   * nothing of which part did not match or of the live lease. A task this
   * shard does not hold is left to the engine's UNKNOWN_TASK: a coordinator
   * that does not know a task's shard asks every shard and counts on it.
   * So is a task not leased under `held.token`: only a live lease can be
   * changed, so the engine refuses the call or answers it as a repeat,
   * changing nothing either way. That is how a complete applied before its
   * task's slot moved here, resent with the old shard's secret (its reply
   * was lost), is answered `duplicate` rather than refused (a task moves
   * with the proof of its live lease only; the chaos suite found it).
   * `shown`: whether the secret matched, when the caller checked already.
   */
  private refusedHolder(held: HeldLease, shown = this.holds(held)): StaleLeaseError | undefined {
    if (shown) return undefined;
    const task = this.shard.getTask(held.taskId);
    if (task === undefined || task.state !== "LEASED" || task.token !== held.token) return undefined;
    return new StaleLeaseError(
      held.taskId,
      `task ${JSON.stringify(held.taskId)}: no lease granted here under token ${held.token} with this secret`,
    );
  }

  /**
   * Whether `held.secret` is the secret of the lease it names: one this
   * shard made, or one a task adopted from another shard carried (its
   * proof, kept while the task is leased under that token).
   */
  private holds(held: HeldLease): boolean {
    if (this.secrets.matches(held.taskId, held.token, held.secret)) return true;
    const proof = this.shard.adoptedProof(held.taskId, held.token);
    if (proof === undefined) return false;
    const given = Buffer.from(held.secret);
    const expected = Buffer.from(proof);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  // ------------------------------------------------------- submit, 2-phase

  private async submit(request: SubmitRequest): Promise<{ accepted: number; replayed: boolean }> {
    const { tasks, idempotencyKey, links } = request;
    this.requireOwnedTasks(tasks);
    this.requirePlaceable(tasks);
    if (links !== undefined) this.requireOwnedLinks(links);
    const claims = this.claimsOf(request);
    const others = claimsOfOtherTasks(claims, tasks);
    // Rows in the way of the claims whose tasks may be gone: asked about (a round trip), then
    // everything is checked again. No await between the last checks and the Shard's (synchronous)
    // acceptance.
    if (this.shard.submitted(idempotencyKey) === undefined) {
      const ownOnly = others.length === 0;
      const suspect = this.ids.free(claims, idempotencyKey, undefined, ownOnly);
      if (suspect.length > 0) {
        const gone = await this.ids.gone(suspect);
        if (this.shard.submitted(idempotencyKey) === undefined)
          this.ids.requireFreeAfter(claims, idempotencyKey, gone, ownOnly);
      }
    }
    if (this.shard.submitted(idempotencyKey) === undefined) this.rejectReserved(tasks, idempotencyKey);
    // The prepared parts will be committed: their room counts against the limits as held.
    const alsoHeld = this.prepared.holdings(Date.now(), idempotencyKey);
    const rows = others.map(claimRow);
    const result = await this.announced(
      this.shard.submit(tasks, {
        idempotencyKey,
        alsoHeld,
        ...(links === undefined ? {} : { links }),
        ...(rows.length === 0 ? {} : { claims: rows }),
      }),
    );
    return { accepted: result.taskIds.length, replayed: result.duplicate };
  }

  /**
   * The claims a submit or prepare takes here: those it carries, or, when
   * the coordinator sent none (it saw one shard owning every slot), every
   * task's own. With every slot served here and no claim row or prepared
   * claim, there is nothing to check: none. Otherwise a task whose home
   * slot another shard owns means the coordinator's view is stale (a first
   * slot just moved away): SLOT_NOT_OWNED, retryable. A home slot nobody
   * owns (a cluster still starting, or a test's shard owning a few slots)
   * holds no claim to check.
   */
  private claimsOf(request: {
    readonly tasks: readonly TaskInput[];
    readonly claims?: readonly IdClaim[] | undefined;
  }): readonly IdClaim[] {
    // Ids unique per shard only (the cluster's choice): the engine's own check is all there is.
    if (this.options.idSpace === "workflow") return [];
    if (request.claims !== undefined) return request.claims;
    if (this.guard.servesAll()) {
      if (this.shard.claimCount === 0 && this.prepared.claimed.size === 0) return [];
      return request.tasks.map(claimOf);
    }
    const claims: IdClaim[] = [];
    for (const task of request.tasks) {
      const home = homeSlotOf(task.id);
      if (this.owns(home)) claims.push(claimOf(task));
      else if (this.ownership.map.ownerOf(home) !== undefined || this.mover.isMoving(home))
        this.requireHome(task.id);
    }
    return claims;
  }

  /** One step of the sweep of claim rows whose tasks are gone (claimSweepMs), unless one runs. */
  private sweepClaims(): void {
    if (this.state !== ActorState.SERVING || this.claimSweep !== undefined) return;
    this.claimSweep = this.ids
      .sweep(CLAIM_SWEEP_ROWS)
      .then(
        (dropped) => {
          if (dropped > 0) this.log.debug({ dropped }, "dropped the id claims of tasks gone");
        },
        (error: unknown) => this.log.warn({ err: messageOf(error) }, "a sweep of id claims failed"),
      )
      .finally(() => {
        this.claimSweep = undefined;
      });
  }

  /** Throws SLOT_MOVING or SLOT_NOT_OWNED unless this shard serves the home slot of `taskId` now. */
  private requireHome(taskId: string): void {
    const slot = homeSlotOf(taskId);
    if (this.mover.isMoving(slot))
      throw this.mover.movingError(slot, `the claim of task id ${JSON.stringify(taskId)}`);
    if (!this.owns(slot)) {
      const owner = this.ownership.map.ownerOf(slot);
      throw new ProtocolError(
        WireErrorCode.SLOT_NOT_OWNED,
        `shard ${this.shardId} does not own slot ${slot}, the home of task id ${JSON.stringify(taskId)}` +
          `${owner === undefined ? " (no shard owns it)" : ` (shard ${owner} does)`}; refresh routing and retry`,
      );
    }
  }

  /**
   * `holds` here: whether the task of this id in this workflow is in the
   * engine, or in a prepared part (which may still commit it). A part with
   * the id in another workflow is not that task (it may be the very batch
   * that asks to take the id over). A commit in progress has put its tasks
   * in the engine already.
   * Refused while the task's slot moves, or when it is not served here.
   */
  private holdsHere(claim: {
    readonly taskId: string;
    readonly workflowId?: string | undefined;
    readonly large?: boolean | undefined;
  }): boolean {
    const slot = slotOfTask({ id: claim.taskId, workflowId: claim.workflowId, large: claim.large });
    if (this.mover.isMoving(slot)) throw this.mover.movingError(slot, `task ${JSON.stringify(claim.taskId)}`);
    if (!this.owns(slot)) this.slotNotOwned([{ slot, taskId: claim.taskId }]);
    const held = this.shard.heldTask(claim.taskId);
    if (
      held !== undefined &&
      held.workflowId === claim.workflowId &&
      (held.large === true) === (claim.large === true)
    )
      return true;
    // holdsAny sweeps expired parts first: an id reserved only by one of them is not held.
    return (
      this.prepared.reserved.has(claim.taskId) &&
      this.prepared.holdsAny((t) => t.id === claim.taskId && t.workflowId === claim.workflowId, Date.now())
    );
  }

  /** `holds` asked of the shard serving the slot of `row`'s task (this one: answered here). */
  private async holdsElsewhere(row: IdClaimRow): Promise<boolean> {
    const slot = slotOfTask({ id: row.taskId, workflowId: row.workflowId, large: row.large });
    if (this.owns(slot) || this.mover.isMoving(slot)) return this.holdsHere(row);
    const owner = this.ownership.map.ownerOf(slot);
    if (owner === undefined)
      throw new ProtocolError(
        WireErrorCode.SHARD_UNAVAILABLE,
        `no shard owns slot ${slot}, which holds the claim of task id ${JSON.stringify(row.taskId)}; retry`,
        { retryable: true },
      );
    const request = {
      op: "holds",
      taskId: row.taskId,
      ...(row.workflowId === undefined ? {} : { workflowId: row.workflowId }),
      ...(row.large === true ? { large: true } : {}),
    } as const;
    const reply = await requestPeer({ nc: this.nc, cluster: this.cluster }, owner, request, HOLDS_TIMEOUT_MS);
    return unwrapReply(reply).held;
  }

  /**
   * A submit may come straight from a client (docs/cluster.md, "Submit"),
   * which no coordinator checked: a task it could not place refuses the
   * batch, with every problem a submit of it would get here, in one report.
   * (A coordinator's part never has one: it refuses such a batch itself.)
   */
  private requirePlaceable(tasks: readonly TaskInput[]): void {
    // A loop, not a map: every direct submit passes here, and nearly all have no problem.
    let misplaced: Problem[] | undefined;
    for (const task of tasks) {
      const problem = placementProblem(task);
      if (problem !== undefined) (misplaced ??= []).push(problem);
    }
    if (misplaced === undefined) return;
    const found = this.shard.check(tasks, this.prepared.reserved);
    throw new ValidationError([...misplaced, ...addedProblems(misplaced, found)]);
  }

  /**
   * Phase one: check the part against the shard's state, its limits and the
   * other parts' reservations, and reserve its ids, and its room under the
   * limits, under the key for prepareTtlMs. Synchronous, so the check and
   * the reservation are one step. A part's commit then fits: every submit
   * and prepare leaves room for the parts held.
   */
  private async prepare(request: RequestOf<"prepare">, bytes: number): Promise<{ accepted: number }> {
    const { tasks, idempotencyKey: key, links } = request;
    this.requireOwnedTasks(tasks);
    if (links !== undefined) this.requireOwnedLinks(links);
    const claims = this.claimsOf(request);
    // Committed already (the client retries the whole submit): the commit will replay, if the
    // claims it kept are still its own (an id whose task another shard lost may have been taken
    // over since; a replay must not let the retry store that task after all).
    const committed = this.shard.submitted(key);
    if (committed) {
      this.ids.requireStillClaimed(claims);
      return { accepted: committed.taskIds.length };
    }
    if (this.committing.has(key)) return { accepted: tasks.length };
    const existing = this.prepared.get(key, Date.now());
    if (existing) return this.prepareAgain(key, tasks, claims);
    // Rows in the way whose tasks may be gone are asked about first (a round trip); all else is
    // checked again, and reserved, in the synchronous stretch after it.
    let gone = NO_ROWS;
    const ownOnly = claimsOfOtherTasks(claims, tasks).length === 0;
    const suspect = this.ids.free(claims, key, undefined, ownOnly);
    if (suspect.length > 0) {
      gone = await this.ids.gone(suspect);
      if (this.shard.submitted(key) !== undefined || this.committing.has(key))
        return { accepted: tasks.length };
      if (this.prepared.get(key, Date.now())) return this.prepareAgain(key, tasks, claims);
    }
    const now = Date.now();
    // Before the checks: a part that cannot be held costs nothing more to refuse.
    const noRoom = this.prepared.noRoomFor(key, bytes, now);
    if (noRoom !== undefined) {
      throw new ProtocolError(
        WireErrorCode.OVERLOADED,
        `shard ${this.shardId} holds as many prepared parts as it may (${noRoom}); retry the submit after a pause`,
        { retryable: true },
      );
    }
    if (suspect.length > 0) this.ids.requireFreeAfter(claims, key, gone, ownOnly);
    const holds = this.shard.admit(tasks, {
      alsoTaken: this.prepared.reserved,
      alsoHeld: this.prepared.holdings(now, key),
      ...(links === undefined ? {} : { links }),
    });
    this.prepared.add(key, tasks, now, bytes, holds.storedBytes, links ?? [], claims);
    return { accepted: tasks.length };
  }

  /** A prepare resent under a key prepared here: the same batch refreshes its part; another is refused. */
  private prepareAgain(
    key: string,
    tasks: readonly TaskInput[],
    claims: readonly IdClaim[],
  ): { accepted: number } {
    const now = Date.now();
    const existing = this.prepared.get(key, now);
    if (!existing) throw new Error("unreachable: prepareAgain without a prepared part");
    if (
      !sameIds(existing.ids, tasks) ||
      !sameIds(
        existing.claims.map((c) => c.taskId),
        claims.map(claimTask),
      )
    ) {
      throw new ProtocolError(
        WireErrorCode.BAD_MESSAGE,
        `idempotency key ${JSON.stringify(key)} is already prepared with another batch on shard ${this.shardId}`,
      );
    }
    this.prepared.add(
      key,
      tasks,
      now,
      existing.bytes,
      existing.payloadBytes,
      existing.links,
      existing.claims,
    );
    return { accepted: tasks.length };
  }

  /**
   * The problems `submit` would find in a part of a batch the coordinator
   * rejects anyway (docs/cluster.md, "One report per rejected batch"): ids
   * taken here or reserved by a prepared part, prerequisites this shard does
   * not know. A read of memory: nothing is reserved, held or journaled, and
   * the limits are not asked (the batch will not be stored).
   */
  private async check(request: RequestOf<"check">): Promise<Problem[]> {
    this.requireOwnedTasks(request.tasks);
    if (request.links !== undefined) this.requireOwnedLinks(request.links);
    const claims = this.claimsOf(request);
    // Claims first (they may ask other shards); the tasks' own check is a read of memory after.
    const claimProblems = claims.length === 0 ? [] : await this.ids.problems(claims);
    this.prepared.sweep(Date.now());
    const taskProblems = this.shard.check(request.tasks, this.prepared.reserved, request.links);
    // An id refused both as taken here and by its claim is reported once.
    return wireProblems([...taskProblems, ...addedProblems(taskProblems, claimProblems)]);
  }

  /** Phase two: the prepared part, made durable under the key. Idempotent. */
  private async commit(request: RequestOf<"commit">): Promise<{ accepted: number; replayed: boolean }> {
    const key = request.idempotencyKey;
    const inProgress = this.committing.get(key);
    if (inProgress) {
      const result = await inProgress;
      return { accepted: result.taskIds.length, replayed: true };
    }
    if (request.claimsOnly === true) {
      const prepared = this.prepared.get(key, Date.now());
      // A part with tasks keeps them prepared and makes its claims durable now; a part of claims
      // alone is committed whole (its key remembered): the batch's last commit skips it.
      if (prepared !== undefined && prepared.tasks.length > 0) {
        const rows = claimRows(prepared.claims, prepared.tasks);
        if (!this.prepared.claimsKeptFor(key) && rows.length > 0) {
          await this.shard.keepClaims(rows);
          this.prepared.keptClaims(key);
        }
        return { accepted: 0, replayed: false };
      }
    }
    const part = this.prepared.take(key, Date.now());
    if (!part) {
      const prior = this.shard.submitted(key);
      if (prior) return { accepted: prior.taskIds.length, replayed: true };
      throw new ProtocolError(
        WireErrorCode.SHARD_UNAVAILABLE,
        `shard ${this.shardId} holds no prepared part under idempotency key ${JSON.stringify(key)} ` +
          `(never prepared, aborted, expired after ${this.options.prepareTtlMs} ms, or lost in a restart); ` +
          "submit the batch again with the same key",
        { retryable: true },
      );
    }
    // The Shard takes the tasks synchronously; the reservation ends as they become the engine's.
    // The other parts' room stays set aside; this part's was, so its commit fits.
    const alsoHeld = this.prepared.holdings(Date.now());
    // Flushed whatever the durability: the batch's other parts are acknowledged with this one.
    const rows = claimRows(part.claims, part.tasks);
    const committing = this.announced(
      this.shard.submit(part.tasks, {
        idempotencyKey: key,
        alsoHeld,
        flush: true,
        ...(part.links.length === 0 ? {} : { links: part.links }),
        ...(rows.length === 0 ? {} : { claims: rows }),
      }),
    );
    this.committing.set(key, committing);
    try {
      const result = await committing;
      return { accepted: result.taskIds.length, replayed: result.duplicate };
    } finally {
      this.committing.delete(key);
    }
  }

  /** VALIDATION_FAILED for tasks whose ids another key's prepared part reserved. */
  private rejectReserved(tasks: readonly TaskInput[], key: string): void {
    const reserved = this.prepared.reservedByOthers(tasks, key, Date.now());
    if (reserved.length === 0) return;
    const problems: Problem[] = reserved.map((id) => ({
      taskId: id,
      code: ProblemCode.DUPLICATE_ID,
      message: `task id ${JSON.stringify(id)} is reserved by a submit being committed`,
    }));
    throw new ValidationError(problems);
  }

  // ------------------------------------------------------------------ lease

  /**
   * Leases with the request id's replay and the long-poll wait. A send of
   * the client's request (its `attempt`) is remembered apart from the
   * others: a later attempt never takes an earlier one's grant as its own,
   * nor joins it in flight (the earlier attempt may be fenced off).
   */
  private async lease(request: LeaseRequest): Promise<Lease[]> {
    const { owner, requestId } = request;
    const now = Date.now();
    if (request.replayOnly === true) return this.leaseReplayOnly(request, now);
    // One send: the client's attempt and the coordinator's ask in its fill, both numbers (so the
    // prefix ends at the second colon), then the client's id.
    const sendId = `${request.attempt ?? 1}:${request.ask ?? 1}:${requestId}`;
    const replayed = this.replay.get(owner, sendId, now);
    if (replayed) return this.heldHere(replayed);
    const leaseKey = ownerKey(owner, sendId);
    const inProgress = this.leasing.get(leaseKey);
    if (inProgress) return (await inProgress).leases;
    const base = requestId;
    const leasing = this.leaseOrReplay(request, base);
    // Registered before the first await, so a retry or a replay-only lookup of the same id joins it.
    this.leasing.set(leaseKey, leasing);
    const baseKey = ownerKey(owner, base);
    let pending = this.leasingByBase.get(baseKey);
    if (!pending) this.leasingByBase.set(baseKey, (pending = new Set()));
    pending.add(leasing);
    try {
      const outcome = await leasing;
      if (outcome.leases.length > 0) {
        this.replay.put(owner, sendId, outcome.leases, outcome.bytes, Date.now(), base);
        this.announcer.changed();
      }
      return outcome.leases;
    } finally {
      this.leasing.delete(leaseKey);
      pending.delete(leasing);
      if (pending.size === 0) {
        this.leasingByBase.delete(baseKey);
        this.unparked.delete(baseKey);
      }
    }
  }

  /**
   * A new grant, unless:
   *  - the client resent the request since this attempt, and the resend
   *    looked its grants up here (the request is fenced at a later attempt):
   *    this one is a retry of it, stale, and gets the grants the request
   *    holds here, never new ones;
   *  - the shard recorded grants under the client's id that this process
   *    does not remember: a previous process made them before a restart, so
   *    this is a retry of that request and gets them. (A process that
   *    remembers grants under the client's id is being asked again under a
   *    new per-shard id: the coordinator's next ask in one fill.)
   */
  private async leaseOrReplay(request: LeaseRequest, base: string): Promise<LeaseOutcome> {
    if ((request.attempt ?? 1) < this.shard.leaseFence(request.owner, base)) {
      const held = (await this.shard.replayLease(request.owner, base)).slice(0, request.max);
      return { leases: held, bytes: encodedByteLength(held) };
    }
    // Nothing recorded under the id (the common case): grant in this same synchronous stretch.
    if (
      this.replay.getByBase(request.owner, base, Date.now()).length === 0 &&
      this.shard.hasLeaseRecord(request.owner, base)
    ) {
      const durable = await this.shard.replayLease(request.owner, base);
      if (durable.length > 0) {
        const leases = durable.slice(0, request.max);
        return { leases, bytes: encodedByteLength(leases) };
      }
    }
    return this.leaseWaiting(request, base);
  }

  /**
   * A replay-only request: the leases granted to `owner` under the client
   * request id `requestId` (by any of its sends and asks), at most `max`;
   * never a new grant. It first waits for lease requests
   * under that client id still in progress here (a grant being made or
   * committed is a grant), and answers only what is durable. With an
   * `attempt`, the shard also fences: from the answer on, asks from earlier
   * attempts grant nothing (Shard.replayLease), so the answer holds every
   * grant those attempts will ever have here.
   */
  private async leaseReplayOnly(request: LeaseRequest, now: number): Promise<Lease[]> {
    const { owner, max, attempt } = request;
    const base = request.requestId;
    // A lease parked under the id, or on its way to park, grants nothing from now on (it answers
    // what it has), so this lookup is final and does not wait out the long-poll.
    const key = ownerKey(owner, base);
    this.parked.cancel(key);
    const pending = this.leasingByBase.get(key);
    if (pending) {
      this.unparked.add(key);
      await Promise.allSettled([...pending]);
    }
    const fromMemory = this.heldHere(this.replay.getByBase(owner, base, now));
    // Recorded durably by the shard: survives a restart of this process. The fence goes in the same run.
    const options = attempt === undefined || attempt === 1 ? {} : { fence: attempt };
    const durable = await this.shard.replayLease(owner, base, options);
    // Read after the lookup's own run, so a move begun before it is seen: grants on their way to
    // another shard are held by neither (the target may not have adopted them), and an answer
    // without them would have the resend fill anew and strand them. Retryable: once the move ends,
    // the target hands them back and this shard says they moved (the reply's `grantsMoved`).
    const moveId = this.shard.leaseMoving(owner, base);
    if (moveId !== undefined) throw this.movingIn(moveId, `grants of lease request ${JSON.stringify(base)}`);
    const seen = new Set<string>();
    const leases: Lease[] = [];
    for (const lease of [...fromMemory, ...durable]) {
      if (leases.length >= max) break;
      if (seen.has(lease.taskId)) continue;
      seen.add(lease.taskId);
      leases.push(lease);
    }
    return leases;
  }

  /**
   * Remembered grants that still hold here: the task is here, LEASED to
   * the grant's owner under its token. A task whose slot moved away is its
   * new shard's to hand back (the lease-request entry moved with it), and a
   * grant that expired, was released or completed since is no lease at
   * all: handed back, it would have its worker run a task another may hold
   * now. (The journal's replay, Shard.replayLease, answers the same way.)
   */
  private heldHere(leases: readonly Lease[]): Lease[] {
    return leases.filter((lease) => this.shard.holdsLease(lease.owner, lease.taskId, lease.token));
  }

  /**
   * Tries to lease; if nothing was granted, parks until waitMs is up
   * (ParkedLeases): a change made by a request serves it in that request's
   * own journal block; a change made by a timer (a lease expiry, a retry's
   * backoff) wakes it to try again; a lookup of its request id ends it.
   */
  private async leaseWaiting(request: LeaseRequest, base: string): Promise<LeaseOutcome> {
    const until = Date.now() + request.waitMs;
    const key = ownerKey(request.owner, base);
    for (;;) {
      const outcome = await this.leaseNow(request);
      const left = until - Date.now();
      if (outcome.leases.length > 0 || left <= 0 || this.state !== ActorState.SERVING) return outcome;
      if (this.unparked.has(key)) return outcome;
      if (this.parked.size >= this.options.maxParkedLeases) {
        throw new ProtocolError(
          WireErrorCode.OVERLOADED,
          `shard ${this.shardId} holds ${this.parked.size} parked long-polls (its limit); retry after a pause`,
          { retryable: true },
        );
      }
      const stop = new AbortController();
      const changed = this.announcer.waitForChange(left, AbortSignal.any([this.abort.signal, stop.signal]));
      const wake = await this.parked.wait(request, key, changed);
      stop.abort(); // the announcer drops its waiter
      if (wake.kind === "served") return wake.outcome;
      if (wake.kind === "cancelled") return NOTHING_GRANTED;
    }
  }

  /**
   * Grants to the leases parked here, in the synchronous stretch of the
   * change that may have made tasks runnable: the grants join that change's
   * journal block. Only tasks within a parked request's `maxKey`.
   */
  private serveParked(): void {
    if (this.parked.size === 0 || this.state !== ActorState.SERVING) return;
    this.parked.serve((request) => {
      if (this.shard.peekFrontier() === null) return null; // nothing runnable of any type
      // Only a parked ask whose types have runnable work here is served.
      const top = this.shard.peekFrontier(typesOf(request));
      if (top === null) return undefined;
      if (request.maxKey !== undefined && pastBound(top.key, top.id, request.maxKey, request.maxTaskId))
        return undefined;
      return this.leaseNow(request);
    });
  }

  /**
   * Grants up to `max` leases, earliest first, keeping the reply under
   * MAX_MESSAGE_BYTES: before each grant it measures the task at the
   * frontier (an upper bound of its lease's encoded size) and stops when
   * the next would not fit. The first always fits (the protocol's limits
   * guarantee it). All grants are made in one synchronous stretch, so the
   * Shard journals them in one commit.
   */
  private async leaseNow(request: LeaseRequest): Promise<LeaseOutcome> {
    const { owner, max, leaseMs, maxKey, maxTaskId } = request;
    const types = typesOf(request);
    // Each grant is recorded durably under the client's request id, added to what it already holds.
    const requestId = request.requestId;
    const attempt = request.attempt ?? 1;
    const options =
      maxKey === undefined
        ? { max: 1, leaseMs, types, requestId, attempt, extend: true }
        : {
            max: 1,
            leaseMs,
            types,
            maxKey,
            ...(maxTaskId === undefined ? {} : { maxTaskId }),
            requestId,
            attempt,
            extend: true,
          };
    const grants: Promise<Lease[]>[] = [];
    const measured: string[] = [];
    let bytes = 0;
    while (grants.length < max) {
      const top = this.shard.peekFrontier(types);
      if (top === null || (maxKey !== undefined && pastBound(top.key, top.id, maxKey, maxTaskId))) break;
      const held = this.shard.leaseTask(top.id);
      const size =
        held === undefined
          ? 0
          : leaseSizeBound(held.task, held.payloadBytes, owner) + resultsSizeBound(this.shard, held.task);
      if (grants.length > 0 && bytes + size > LEASE_REPLY_BUDGET) break;
      bytes += size;
      measured.push(top.id);
      grants.push(this.shard.lease(owner, options));
    }
    const leases = (await Promise.all(grants)).flat();
    if (leases.some((lease, i) => lease.taskId !== measured[i])) {
      // A timer fired between the measure and the grant and put another task first: measure again.
      bytes = encodedByteLength(leases);
      while (bytes > LEASE_REPLY_BUDGET && leases.length > 1) {
        const dropped = leases.pop()!;
        bytes = encodedByteLength(leases);
        this.log.warn(
          { taskId: dropped.taskId, owner },
          "a granted lease did not fit the reply; the task runs again when the lease expires",
        );
      }
    }
    return { leases, bytes };
  }

  // ------------------------------------------------------------ ownership

  /**
   * New tasks must belong to this shard's slots. Requests naming a task
   * (heartbeat, complete, getTask, ...) are not checked: the task is here or
   * it is not, and a coordinator asks every shard about a task named by id
   * alone (its workflow unknown), expecting UNKNOWN_TASK (or null) from
   * those that do not hold it.
   */
  private requireOwnedTasks(tasks: readonly TaskInput[]): void {
    this.requireServed(tasks, slotOfTask, (task) => task.id, "task");
  }

  /**
   * A part's remote links name prerequisites in this shard's slots (the
   * coordinator split the batch by the slot owners it knew): refused as a
   * task of a slot not owned or moving is, with the link's prerequisite named.
   */
  private requireOwnedLinks(links: readonly RemoteLinkMessage[]): void {
    this.requireServed(
      links,
      (link) => slotOfLargeTask(link.prerequisite, link.workflowId),
      (link) => link.prerequisite,
      "prerequisite",
    );
  }

  /**
   * SLOT_MOVING at the first of `items` whose slot (`slotOf`) is moving,
   * else SLOT_NOT_OWNED naming those whose slots this shard does not serve;
   * each is named as `what` and its id (`idOf`). O(items).
   */
  private requireServed<T>(
    items: readonly T[],
    slotOf: (item: T) => number,
    idOf: (item: T) => string,
    what: string,
  ): void {
    let notOwned: { slot: number; taskId: string }[] | undefined;
    for (const item of items) {
      const slot = slotOf(item);
      if (this.mover.isMoving(slot))
        throw this.mover.movingError(slot, `${what} ${JSON.stringify(idOf(item))}`);
      if (!this.owns(slot)) (notOwned ??= []).push({ slot, taskId: idOf(item) });
    }
    if (notOwned) this.slotNotOwned(notOwned);
  }

  // ------------------------------------------------------- large workflows

  /**
   * Completion events for dependents in this shard's slots (deliverEvents,
   * from another shard's relay or this one's): each applied once, durably,
   * before the answer (Shard.applyRemote). An event whose dependent's slot
   * this shard does not serve now (owned elsewhere, moving, arriving) is
   * answered `unknown` without a look: its sender tries again, at the
   * slot's owner then. Unblocked dependents are announced at once.
   */
  private async deliverEvents(events: readonly RemoteEventMessage[]): Promise<RemoteApplied[]> {
    const results: RemoteApplied[] = new Array(events.length).fill("unknown");
    const here: RemoteEventMessage[] = [];
    const at: number[] = [];
    events.forEach((event, i) => {
      const slot = slotOfLargeTask(event.dependent, event.workflowId);
      if (this.mover.isMoving(slot) || !this.owns(slot)) return;
      here.push(event);
      at.push(i);
    });
    if (here.length === 0) return results;
    const applied = await this.announced(this.shard.applyRemote(here));
    applied.forEach((answer, k) => {
      results[at[k]!] = answer;
    });
    return results;
  }

  private slotNotOwned(refs: readonly { slot: number; taskId: string }[]): never {
    const first = refs[0]!;
    const owner = this.ownership.map.ownerOf(first.slot);
    throw new ProtocolError(
      WireErrorCode.SLOT_NOT_OWNED,
      `shard ${this.shardId} does not own slot ${first.slot} of task ${JSON.stringify(first.taskId)}` +
        `${owner === undefined ? " (no shard owns it)" : ` (shard ${owner} does)`}` +
        `${refs.length > 1 ? `, nor the slots of ${refs.length - 1} more tasks` : ""}; refresh routing and retry`,
    );
  }

  /** Logs connection changes; after a reconnect, checks slot ownership again. */
  private followConnection(): void {
    const iter = this.nc.status() as QueuedIterator<Status>;
    this.statusIter = iter;
    void (async () => {
      for await (const s of iter) {
        if (s.type === "disconnect") this.log.warn({ server: s.server }, "NATS disconnected; reconnecting");
        else if (s.type === "reconnect") {
          this.log.info({ server: s.server }, "NATS reconnected");
          void this.guard.check();
        }
      }
    })();
  }

  // -------------------------------------------------------------- frontier

  /** Whether the shard still owns its data directory; once not, the actor fails (see serveRequest). */
  private stillOwner(): boolean {
    try {
      this.shard.confirmOwner();
      return true;
    } catch (error) {
      if (error instanceof ShardError) this.toBoundary(error);
      else this.log.error({ err: messageOf(error) }, "checking ownership failed");
      return false;
    }
  }

  /**
   * The keys at ranks 1, 2, 4, … of the whole shard, or of one task type:
   * for what is published or handed to a coordinator, not for every look.
   */
  private readDepth(type?: string): readonly number[] | undefined {
    if (this.state !== ActorState.SERVING) return undefined;
    try {
      return this.shard.frontierDepth(FRONTIER_DEPTH_RANKS, type === undefined ? undefined : [type]);
    } catch {
      return undefined; // readFrontier reports a failed shard
    }
  }

  private readFrontier(): Frontier | null {
    if (this.state !== ActorState.SERVING) return null;
    try {
      // Called for every lease reply and announcement: the frontier figures only, not the whole stats.
      const { top, runnable, types, typesOmitted } = this.shard.frontier(MAX_ANNOUNCED_TYPES);
      if (top === null) return { ...EMPTY_FRONTIER, runnable };
      return {
        deadline: top.deadline,
        key: top.key,
        taskId: top.id,
        runnable,
        types: types.map((t) => ({
          type: t.type,
          key: t.key,
          deadline: t.deadline,
          taskId: t.id,
          runnable: t.runnable,
        })),
        ...(typesOmitted > 0 ? { typesOmitted } : {}),
      };
    } catch (error) {
      if (error instanceof ShardError) this.toBoundary(error);
      else this.log.error({ err: messageOf(error) }, "reading the frontier failed");
      return null;
    }
  }
}

/** Starts a shard actor; the same as `ShardActor.start`. */
export function startShardActor(options: ShardActorOptions): Promise<ShardActor> {
  return ShardActor.start(options);
}

interface LeaseOutcome {
  readonly leases: Lease[];
  /** Encoded size of the leases (an upper bound). */
  readonly bytes: number;
}

const NOTHING_GRANTED: LeaseOutcome = { leases: [], bytes: 0 };

/** An owner and a request id as one map key (length-prefixed: no two pairs spell the same key). */
function ownerKey(owner: string, requestId: string): string {
  return `${owner.length}:${owner}${requestId}`;
}

/**
 * Upper bound of the bytes the prerequisites' results add to a lease of
 * `task`: the entries (each bounded by the engine's resultEntryBytes) plus
 * the `results` and `resultsOmitted` fields' keys and headers.
 */
function resultsSizeBound(shard: Shard, task: Task): number {
  if (task.prerequisites.length === 0) return 0;
  const picked = shard.prerequisiteResults(task.id);
  if (picked === undefined || (picked.results.length === 0 && picked.omitted === 0)) return 0;
  return picked.bytes + 40;
}

/** The types a lease request names: absent, the default type only. */
function typesOf(request: LeaseRequest): readonly string[] {
  return request.types ?? DEFAULT_TYPES;
}

const DEFAULT_TYPES: readonly string[] = Object.freeze([DEFAULT_TASK_TYPE]);

/** The engine's statistics out of the Shard's (the wire carries exactly SchedulerStats). */
function engineStats(s: ShardStats): SchedulerStats {
  return {
    ...boundTypeCounts(s.types),
    counts: s.counts,
    runnable: s.runnable,
    oldestRunnableAgeMs: s.oldestRunnableAgeMs,
    frontierDeadline: s.frontierDeadline,
    leaseTimeouts: s.leaseTimeouts,
    attemptTimeouts: s.attemptTimeouts,
    deadlineMisses: s.deadlineMisses,
    staleRejections: s.staleRejections,
    retries: s.retries,
    leased: s.leased,
    ...(s.remoteOwed === undefined ? {} : { remoteOwed: s.remoteOwed }),
  };
}

/** A reply's outcome as a metric label: OK or the error code. */
function codeOf(reply: OkReply | ReturnType<typeof errorReply>): string {
  return reply.ok ? "OK" : reply.error.code;
}

function sameIds(ids: readonly string[], tasks: readonly { readonly id: string }[]): boolean {
  return ids.length === tasks.length && tasks.every((t, i) => t.id === ids[i]);
}

/** A claim as sameIds reads it. */
function claimTask(claim: IdClaim): { readonly id: string } {
  return { id: claim.taskId };
}

/** The rows a part keeps of its claims: those of tasks held elsewhere (claimsOfOtherTasks). */
function claimRows(claims: readonly IdClaim[], tasks: readonly TaskInput[]): IdClaimRow[] {
  return claimsOfOtherTasks(claims, tasks).map(claimRow);
}

function assertNever(x: never): never {
  throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `unknown op ${JSON.stringify((x as Request).op)}`);
}

/**
 * Why a Shard's error makes it unavailable, as the typed `detail` of
 * SHARD_UNAVAILABLE: a failed shard's cause when it has one (fenced, disk
 * full, storage failed), else its own code.
 */
function detailOf(error: ShardError): { detail?: ShardUnavailableDetail } {
  const cause = error.cause;
  if (error.code === ShardErrorCode.SHARD_FAILED && cause instanceof ShardError) {
    if (isShardUnavailableDetail(cause.code)) return { detail: cause.code };
  }
  return isShardUnavailableDetail(error.code) ? { detail: error.code } : {};
}

/** Errors of a NATS connection that is down for now (reconnecting), not of a bad request. */
export function isNatsDown(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error instanceof natsErrors.TimeoutError ||
    error instanceof natsErrors.ConnectionError ||
    (error instanceof natsErrors.RequestError && /disconnected/i.test(error.message)) ||
    (error.cause !== undefined && isNatsDown(error.cause))
  );
}

/** Start-up steps tried again after a NATS timeout, when not waiting for NATS. */
const START_STEP_ATTEMPTS = 4;

/** Runs `run`, again after a NATS timeout, up to START_STEP_ATTEMPTS times (250 ms apart). */
async function retryTimeouts<T>(step: string, run: () => Promise<T>, log: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof natsErrors.TimeoutError) || attempt >= START_STEP_ATTEMPTS) throw error;
      log.warn({ err: messageOf(error), attempt }, `NATS did not answer in time; will ${step} again`);
      await pause(250);
    }
  }
}

/** Runs `run` until it succeeds or fails for another reason than NATS being down; waits 250 ms between tries. */
async function retryWhileNatsDown<T>(step: string, run: () => Promise<T>, log: Logger): Promise<T> {
  for (;;) {
    try {
      return await run();
    } catch (error) {
      if (!isNatsDown(error)) throw error;
      log.warn({ err: messageOf(error) }, `NATS is down; will ${step} once it is back`);
      await pause(250);
    }
  }
}
