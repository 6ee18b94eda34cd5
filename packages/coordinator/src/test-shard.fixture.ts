/**
 * Test fixtures: a stand-in shard and a small cluster around real nats-server
 * processes. Not a mock of the coordinator: `TestShard` is a real NATS
 * responder on `frontier.<cluster>.shard.<id>.*` that speaks the protocol
 * through the codec and keeps its tasks in the real engine (`Scheduler`), so
 * EDF order, fencing tokens and validation are the engine's own. What it adds
 * is the shard protocol's bookkeeping in memory (idempotency keys, prepared
 * parts, lease request ids and their fences, the id claims homed here, kept
 * and prepared, without the takeover of a claim whose task is gone) and
 * knobs to misbehave: `hold`
 * an op (no reply, so the coordinator times out), `delay` it (answered only
 * when the test says, as a slow shard or a slow network would), `fail` an op
 * with an error, `stop()` (no responders).
 */
import {
  type Lease,
  type Problem,
  Scheduler,
  type SchedulerStats,
  type TaskInput,
  type TaskQuery,
  ValidationError,
} from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import {
  decodeReply,
  decodeRequest,
  encodeFrontier,
  encodeReply,
  encodeRequest,
  errorReply,
  type FrontierAnnouncement,
  type IdClaim,
  type ListCursor,
  MAX_ANNOUNCED_TYPES,
  type OkReply,
  type Op,
  parseSubject,
  type Reply,
  type Request,
  type RequestOf,
  SLOT_COUNT,
  slotOfTask,
  subjectsFor,
  toWireError,
  withinListBudget,
} from "@frontier/protocol";
import { StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { type Coordinator, startCoordinator } from "./coordinator.js";
import type { CoordinatorOptions } from "./options.js";
import { slotBucketName } from "./slot-table.js";

export const silent = pino({ level: "silent" });

interface ParkedAsk {
  readonly request: RequestOf<"lease">;
  /** The client request id it derives from. */
  readonly base: string;
  answer(leases: readonly Lease[]): void;
}

export class TestShard {
  readonly engine: Scheduler;
  /** Every request this shard decoded, in arrival order. */
  readonly received: Request[] = [];
  /** Outcomes by idempotency key (submit and commit). */
  readonly committed = new Map<string, number>();
  readonly prepared = new Map<string, readonly TaskInput[]>();
  /** The claims of the prepared parts, by key. */
  readonly preparedClaims = new Map<string, readonly IdClaim[]>();
  /** Claims kept here of ids whose tasks another shard holds, by task id. */
  readonly claims = new Map<string, IdClaim>();
  /** Lease grants by client request id, then by send (`<attempt>:<ask>`). */
  private readonly grants = new Map<string, Map<string, readonly Lease[]>>();
  /** Per client request id (base): the latest attempt a replay-only lookup fenced at. */
  private readonly fences = new Map<string, number>();
  /** Client request ids whose grants left here with their slot (`handOver`): lookups say `grantsMoved`. */
  private readonly movedAway = new Set<string>();
  /** Ops that get no reply (the coordinator times out); each entry counts down, Infinity = always. */
  readonly hold = new Map<Op, number>();
  /** Requests of delayed ops, handled when their `delay` is released. */
  private readonly delayed = new Map<Op, { left: number; queue: (() => void)[] }>();
  /** Ops answered with this error. */
  readonly fail = new Map<Op, Error>();
  private sub: Subscription | undefined;
  /** Sequence number of the last announcement. */
  seq = 0;
  /** Whether lease replies carry the frontier after the grant (as real shards do). */
  sendsFrontier = true;
  /**
   * Lease asks that may wait (`waitMs`) and found nothing, parked as a real
   * shard parks them: answered by `serveParked` (a change), by a replay-only
   * lookup of their request id (empty), or empty at `waitMs`.
   */
  private readonly parkedAsks: ParkedAsk[] = [];

  constructor(
    readonly nc: NatsConnection,
    readonly cluster: string,
    readonly shardId: string,
  ) {
    this.engine = new Scheduler({ sameWorkflowPrerequisites: true });
  }

  start(): this {
    const subjects = subjectsFor(this.cluster);
    this.sub = this.nc.subscribe(subjects.shardAll(this.shardId), {
      callback: (_err, msg) => {
        const op = parseSubject(msg.subject);
        if (op?.role !== "shard") return;
        const held = this.hold.get(op.op);
        if (held !== undefined && held > 0) {
          this.hold.set(op.op, held - 1);
          return;
        }
        const delayed = this.delayed.get(op.op);
        if (delayed !== undefined && delayed.left > 0) {
          delayed.left--;
          delayed.queue.push(() => this.answer(op.op, msg));
          return;
        }
        this.answer(op.op, msg);
      },
    });
    return this;
  }

  /**
   * The next `count` requests of `op` wait, unanswered, until the returned
   * function is called; then they are handled, in order, as if they had
   * just arrived.
   */
  delay(op: Op, count = 1): () => void {
    const entry = { left: count, queue: [] as (() => void)[] };
    this.delayed.set(op, entry);
    return () => {
      entry.left = 0;
      for (const handle of entry.queue.splice(0)) handle();
    };
  }

  /**
   * What a real shard's slot move does to a lease request's grants: the
   * grants made here under `requestId` now belong to `to`, which hands them
   * back to lookups, and this shard's lookups of the id say `grantsMoved`.
   * (The records move; the tasks stay in this engine: the stand-ins' lookups read records only.)
   */
  handOver(requestId: string, to: TestShard): void {
    this.movedAway.add(requestId);
    const sends = this.grants.get(requestId);
    if (sends === undefined) return;
    this.grants.delete(requestId);
    for (const [send, leases] of sends) to.sendsOf(requestId).set(`moved:${send}`, leases);
  }

  /** Requests of `op` waiting for their `delay` to be released. */
  waiting(op: Op): number {
    return this.delayed.get(op)?.queue.length ?? 0;
  }

  private answer(op: Op, msg: Msg): void {
    let reply: Reply;
    try {
      const request = decodeRequest(msg.data, op);
      this.received.push(request);
      const failure = this.fail.get(op);
      if (failure !== undefined) throw failure;
      const result = this.handle(request);
      if (request.op === "lease" && this.parks(request, result, msg)) return;
      reply =
        request.op === "lease"
          ? this.leaseReply(request, (result as { leases: readonly Lease[] }).leases, result)
          : ({ ok: true, op, ...result } as Reply);
    } catch (err) {
      reply = errorReply(err);
    }
    msg.respond(encodeReply(reply));
  }

  /** The grants made under a client request id, by send. */
  private sendsOf(requestId: string): Map<string, readonly Lease[]> {
    let sends = this.grants.get(requestId);
    if (sends === undefined) this.grants.set(requestId, (sends = new Map()));
    return sends;
  }

  /** Parks a lease ask that found nothing and may wait; false when it is answered now. */
  private parks(request: RequestOf<"lease">, result: object, msg: Msg): boolean {
    if (request.waitMs <= 0 || request.replayOnly === true) return false;
    if ((result as { leases: readonly Lease[] }).leases.length > 0) return false;
    const ask: ParkedAsk = {
      request,
      base: request.requestId,
      answer: (leases) => {
        clearTimeout(timer);
        this.parkedAsks.splice(this.parkedAsks.indexOf(ask), 1);
        msg.respond(encodeReply(this.leaseReply(request, leases, { frontier: this.frontier() })));
      },
    };
    const timer = setTimeout(() => ask.answer([]), request.waitMs);
    this.parkedAsks.push(ask);
    return true;
  }

  /**
   * A lease reply, as a real shard answers: to a forwarded ask (the worker's
   * own reply subject), naming this shard for each lease and no frontier;
   * otherwise with `extra` (the frontier, when this shard sends it).
   */
  private leaseReply(request: RequestOf<"lease">, leases: readonly Lease[], extra: object): Reply {
    if (request.forwarded === true) {
      return { ok: true, op: "lease", leases: [...leases], shards: leases.map(() => this.shardId) };
    }
    return { ...extra, ok: true, op: "lease", leases: [...leases] } as Reply;
  }

  /** Called after each new grant, before the reply's frontier is read: what changed meanwhile (a submit). */
  afterLease: (() => void) | undefined;

  /** Lease asks parked here now. */
  get parked(): readonly RequestOf<"lease">[] {
    return this.parkedAsks.map((a) => a.request);
  }

  /** Grants to the parked asks, oldest first, as a real shard does when a change makes tasks runnable. */
  serveParked(): void {
    for (const ask of [...this.parkedAsks]) {
      const { request } = ask;
      const leases = this.engine.lease(request.owner, {
        max: request.max,
        leaseMs: request.leaseMs,
        ...(request.types === undefined ? {} : { types: request.types }),
        ...(request.maxKey === undefined ? {} : { maxKey: request.maxKey }),
        ...(request.maxTaskId === undefined ? {} : { maxTaskId: request.maxTaskId }),
      });
      if (leases.length === 0) continue;
      this.sendsOf(request.requestId).set(sendOf(request), leases);
      ask.answer(leases);
    }
  }

  /** Unsubscribe: requests to this shard now find no responders. */
  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    for (const ask of [...this.parkedAsks]) ask.answer([]);
  }

  /**
   * Publish the engine's frontier now, as a shard does on change and every
   * second; parked asks are served first, as a change serves them.
   */
  announce(): void {
    this.serveParked();
    this.nc.publish(subjectsFor(this.cluster).frontier, encodeFrontier(this.frontier()));
  }

  /** The engine's frontier as an announcement (per type too, as a shard's), numbered next. */
  frontier(): FrontierAnnouncement {
    const top = this.engine.peekFrontier();
    const { frontiers, omitted } = this.engine.typeFrontiers(MAX_ANNOUNCED_TYPES);
    return {
      shardId: this.shardId,
      deadline: top?.deadline ?? null,
      key: top?.key ?? null,
      taskId: top?.id ?? null,
      runnable: this.engine.stats().runnable,
      ...(top === null
        ? {}
        : {
            types: frontiers.map((t) => ({
              type: t.type,
              key: t.key,
              deadline: t.deadline,
              taskId: t.id,
              runnable: t.runnable,
            })),
          }),
      ...(omitted > 0 ? { typesOmitted: omitted } : {}),
      seq: ++this.seq,
      at: Date.now(),
    };
  }

  /** The requests of one op this shard decoded. */
  requests<O extends Op>(op: O): RequestOf<O>[] {
    return this.received.filter((r): r is RequestOf<O> => r.op === op);
  }

  private handle(request: Request): object {
    const e = this.engine;
    switch (request.op) {
      case "submit": {
        const first = this.committed.get(request.idempotencyKey);
        if (first !== undefined) return { accepted: first, replayed: true };
        this.requireFree(request.claims ?? [], request.idempotencyKey);
        const accepted = e.addTasks(request.tasks);
        this.committed.set(request.idempotencyKey, accepted);
        return { accepted, replayed: false };
      }
      case "prepare": {
        const first = this.committed.get(request.idempotencyKey);
        if (first !== undefined) return { accepted: first };
        const reserved = new Set<string>();
        for (const [key, tasks] of this.prepared) {
          if (key !== request.idempotencyKey) for (const t of tasks) reserved.add(t.id);
        }
        const problems = e.check(request.tasks, reserved);
        if (problems.length > 0) throw new ValidationError(problems);
        this.requireFree(request.claims ?? [], request.idempotencyKey);
        this.prepared.set(request.idempotencyKey, request.tasks);
        this.preparedClaims.set(request.idempotencyKey, request.claims ?? []);
        return { accepted: request.tasks.length };
      }
      case "check": {
        // As a shard checks: against its tasks and every prepared part's ids, reserving nothing.
        const reserved = new Set<string>();
        for (const tasks of this.prepared.values()) for (const t of tasks) reserved.add(t.id);
        return {
          problems: [...e.check(request.tasks, reserved), ...this.claimProblems(request.claims ?? [])],
        };
      }
      case "commit": {
        const first = this.committed.get(request.idempotencyKey);
        if (first !== undefined) return { accepted: first, replayed: true };
        const tasks = this.prepared.get(request.idempotencyKey);
        if (tasks === undefined) throw new Error(`nothing prepared under ${request.idempotencyKey}`);
        const own = new Set(tasks.map((t) => t.id));
        for (const c of this.preparedClaims.get(request.idempotencyKey) ?? [])
          if (!own.has(c.taskId)) this.claims.set(c.taskId, c);
        if (request.claimsOnly === true && tasks.length > 0) return { accepted: 0, replayed: false };
        const accepted = e.addTasks(tasks);
        this.prepared.delete(request.idempotencyKey);
        this.preparedClaims.delete(request.idempotencyKey);
        this.committed.set(request.idempotencyKey, accepted);
        return { accepted, replayed: false };
      }
      case "abort":
        this.prepared.delete(request.idempotencyKey);
        this.preparedClaims.delete(request.idempotencyKey);
        return {};
      case "locate": {
        const held = e.getTask(request.taskId);
        if (held !== undefined)
          return {
            claim:
              held.workflowId === undefined
                ? { taskId: held.id }
                : { taskId: held.id, workflowId: held.workflowId },
          };
        return { claim: this.claims.get(request.taskId) ?? null };
      }
      case "holds":
        return { held: e.getTask(request.taskId)?.workflowId === request.workflowId };
      case "moveSlot":
      case "adopt":
        throw new Error(`the stand-in shard does not move slots (${request.op})`);
      case "deliverEvents":
        throw new Error("the stand-in shard holds no large workflows (deliverEvents)");
      case "lease": {
        const base = request.requestId;
        const attempt = request.attempt ?? 1;
        const kept = () => [...this.sendsOf(base).values()].flat().slice(0, request.max);
        if (request.replayOnly === true) {
          for (const ask of this.parkedAsks.filter((a) => a.base === base)) ask.answer([]);
          if (attempt > (this.fences.get(base) ?? 1)) this.fences.set(base, attempt);
          return this.movedAway.has(base) ? { leases: kept(), grantsMoved: true } : { leases: kept() };
        }
        // An earlier attempt than a resend that looked the grants up (its client gave it up): a stale
        // retry of the request, answered with what the request holds, never with a new grant.
        if (attempt < (this.fences.get(base) ?? 1)) return { leases: kept() };
        const sendId = sendOf(request);
        const first = this.sendsOf(base).get(sendId);
        if (first !== undefined) return { leases: first };
        const leases = e.lease(request.owner, {
          max: request.max,
          leaseMs: request.leaseMs,
          ...(request.types === undefined ? {} : { types: request.types }),
          ...(request.maxKey === undefined ? {} : { maxKey: request.maxKey }),
          ...(request.maxTaskId === undefined ? {} : { maxTaskId: request.maxTaskId }),
        });
        this.sendsOf(base).set(sendId, leases);
        this.afterLease?.();
        return this.sendsFrontier ? { leases, frontier: this.frontier() } : { leases };
      }
      case "heartbeat":
        return {
          expiresAt: e.heartbeat(request.taskId, request.token, { leaseMs: request.leaseMs }).expiresAt,
        };
      case "complete":
        return e.complete(request.taskId, request.token);
      case "settle":
        // Each complete on its own outcome; the lease part is the real shard's (not modelled here).
        return {
          results: request.completes.map((c) => {
            try {
              return e.complete(c.taskId, c.token);
            } catch (error) {
              return { error: toWireError(error) };
            }
          }),
          leases: [],
        };
      case "fail":
        return {
          state: e.fail(request.taskId, request.token, {
            retryable: request.retryable,
            reason: request.reason,
          }).state,
        };
      case "release":
        return e.release(request.taskId, request.token);
      case "cancel":
        e.cancel(request.taskId, request.reason);
        return {};
      case "updateDeadline":
        e.updateDeadline(request.taskId, request.deadline);
        return {};
      case "getTask":
        return { task: e.getTask(request.taskId) ?? null };
      case "stats":
        return { stats: e.stats() satisfies SchedulerStats };
      case "listTasks": {
        const { op: _, after: __, limit: ___, ...filter } = request;
        return this.page(request, filter);
      }
      case "getWorkflow":
        return this.page(request, { workflowId: request.workflowId, withPrerequisites: true });
      case "retry":
        return {
          state: e.retry(request.taskId, request.deadline === undefined ? {} : { deadline: request.deadline })
            .state,
        };
    }
  }

  /** DUPLICATE_ID for claims another part or task holds here (no takeover: a stand-in). */
  private claimProblems(claims: readonly IdClaim[], key?: string): Problem[] {
    const problems: Problem[] = [];
    for (const c of claims) {
      const prepared = [...this.preparedClaims].some(
        ([k, cs]) => k !== key && cs.some((o) => o.taskId === c.taskId),
      );
      const held = this.engine.getTask(c.taskId);
      const kept = this.claims.get(c.taskId);
      if (
        prepared ||
        (held !== undefined && held.workflowId !== c.workflowId) ||
        (kept !== undefined && kept.workflowId !== c.workflowId)
      )
        problems.push({ taskId: c.taskId, code: "DUPLICATE_ID", message: `task id ${c.taskId} is taken` });
    }
    return problems;
  }

  private requireFree(claims: readonly IdClaim[], key: string): void {
    const problems = this.claimProblems(claims, key);
    if (problems.length > 0) throw new ValidationError(problems);
  }

  /** A page as a shard makes it (cluster's task-pages.ts): ties after the cursor's shard included. */
  private page(
    request: { readonly after?: ListCursor; readonly limit: number },
    filter: Omit<TaskQuery, "limit">,
  ): object {
    const { after, limit } = request;
    const page = this.engine.listTasks(
      after === undefined
        ? { ...filter, limit }
        : { ...filter, limit, after, inclusive: this.shardId > after.shardId },
    );
    const tasks = withinListBudget(page.tasks);
    const last = tasks.at(-1);
    const more = page.more || tasks.length < page.tasks.length;
    return {
      tasks,
      next: more && last ? { deadline: last.deadline, id: last.id, shardId: this.shardId } : null,
    };
  }
}

/** Writes the slot table as shards would: `slot.<n>` → owner(n). */
export async function claimSlots(
  nc: NatsConnection,
  cluster: string,
  owner: (slot: number) => string | undefined,
): Promise<void> {
  const kv = await new Kvm(nc).create(slotBucketName(cluster), { history: 1, storage: StorageType.Memory });
  const writes: Promise<unknown>[] = [];
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const id = owner(slot);
    if (id !== undefined) writes.push(kv.put(`slot.${slot}`, id));
  }
  await Promise.all(writes);
}

/** Sends a request the way a client does; the decoded reply. */
export async function call<O extends Op>(
  nc: NatsConnection,
  cluster: string,
  request: RequestOf<O>,
  timeoutMs = 5_000,
): Promise<Reply<O>> {
  const msg = await nc.request(subjectsFor(cluster).coord(request.op), encodeRequest(request), {
    timeout: timeoutMs,
  });
  return decodeReply(msg.data, request.op as O);
}

/** `call`, expecting an ok reply. */
export async function ok<O extends Op>(
  nc: NatsConnection,
  cluster: string,
  request: RequestOf<O>,
  timeoutMs?: number,
): Promise<OkReply<O>> {
  const reply = await call(nc, cluster, request, timeoutMs);
  if (!reply.ok) throw new Error(`expected ok, got ${reply.error.code}: ${reply.error.message}`);
  return reply;
}

/** `call`, expecting an error reply: its wire error. */
export async function refused<O extends Op>(nc: NatsConnection, cluster: string, request: RequestOf<O>) {
  const reply = await call(nc, cluster, request);
  if (reply.ok) throw new Error(`expected an error, got an ok ${reply.op} reply`);
  return reply.error;
}

export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A task id (with a prefix) whose slot the given shard owns under `ownerOf`. */
export function idOn(shardId: string, ownerOf: (slot: number) => string | undefined, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (ownerOf(slotOfTask({ id })) === shardId) return id;
  }
}

export interface TestCluster {
  readonly server: NatsServer;
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly shards: TestShard[];
  readonly ownerOf: (slot: number) => string | undefined;
  readonly coordinators: Coordinator[];
  startCoordinator(options?: Partial<CoordinatorOptions>): Promise<Coordinator>;
  /** Each shard announces its frontier; resolves when every coordinator has seen every one. */
  announceAll(): Promise<void>;
  stop(): Promise<void>;
}

let clusterSeq = 0;

/**
 * A nats-server, `shardCount` TestShards owning the slots round-robin
 * (slot n → shard n mod count), no coordinator yet.
 */
export async function startTestCluster(
  shardCount: number,
  options: { server?: NatsServer; owner?: (slot: number) => string | undefined } = {},
): Promise<TestCluster> {
  const server = options.server ?? (await startNatsServer());
  const nc = await connect({ servers: server.url });
  const cluster = `t${process.pid}-${++clusterSeq}`;
  const shards = Array.from({ length: shardCount }, (_, i) => new TestShard(nc, cluster, `s${i}`).start());
  const ownerOf = options.owner ?? ((slot: number) => shards[slot % shardCount]?.shardId);
  await claimSlots(nc, cluster, ownerOf);
  const coordinators: Coordinator[] = [];
  const self: TestCluster = {
    server,
    nc,
    cluster,
    shards,
    ownerOf,
    coordinators,
    async startCoordinator(extra = {}) {
      const c = await startCoordinator({
        nc,
        cluster,
        logger: silent,
        shardTimeoutMs: 1_000,
        statsTimeoutMs: 500,
        frontierStaleMs: 60_000,
        ...extra,
      });
      coordinators.push(c);
      const owned = Array.from({ length: SLOT_COUNT }, (_, s) => ownerOf(s)).filter(
        (x) => x !== undefined,
      ).length;
      await until(() => c.inspect().slotsOwned === owned, "the coordinator's slot table");
      return c;
    },
    async announceAll() {
      for (const shard of shards) shard.announce();
      await nc.flush();
      // Announcements are plain publishes: wait until each coordinator has taken them in.
      await until(
        () =>
          coordinators.every((c) =>
            shards.every((s) => c.inspect().frontiers.find((f) => f.shardId === s.shardId)?.seq === s.seq),
          ),
        "frontier announcements",
      );
    },
    async stop() {
      for (const c of coordinators) await c.close();
      for (const s of shards) s.stop();
      await nc.close();
      if (options.server === undefined) await server.stop();
    },
  };
  return self;
}

/** Submit `tasks` through the coordinator; the reply. */
export function submit(c: TestCluster, tasks: TaskInput[], idempotencyKey = `k-${Math.random()}`) {
  return call(c.nc, c.cluster, { op: "submit", tasks, idempotencyKey });
}

/** One send of a lease ask: its attempt and its ask in the fill, as a shard keeps them apart. */
function sendOf(request: RequestOf<"lease">): string {
  return `${request.attempt ?? 1}:${request.ask ?? 1}`;
}
