/**
 * Lease routing: fill a request for N tasks from the shards in global
 * earliest-deadline-first order, using only the frontiers the shards publish
 * (no peek round trips).
 *
 * One attempt: take the shard with the least key among those with runnable
 * tasks and ask it for up to the remaining count with `maxKey` = the next
 * shard's key (it gives only tasks that come before that shard's earliest).
 * Its reply carries its frontier after the grant (`frontier`), so the board
 * knows its new key at once; pick the least key again, and so on until the
 * request is full or nothing is runnable. So a request may be filled from
 * several shards, even alternating between them, in exactly global
 * earliest-deadline-first order as far as the announcements are current. A
 * shard that grants nothing or fails is not asked again in the attempt: at
 * most `max` + shards asks. (A shard too old to send its frontier leaves the
 * board to guess from the grant; `noteGrant`.)
 *
 * Long-poll: when an attempt grants nothing and `waitMs` has time left, wait
 * (no polling) for an announcement with runnable tasks, then try again; at the
 * deadline, answer empty. While no shard has anything runnable, the long-poll
 * waits at the shards themselves (`park`). When there is only one shard, the
 * whole request is handed to it with the worker's reply subject
 * (`forwarded`): it grants at once or holds the long-poll, as a fill here
 * would, and its grant goes straight to the worker, one relay fewer (nothing
 * to combine, no other shard's key or news to wait for). A shard that joins
 * meanwhile is seen at the worker's next long-poll (within `waitMs`).
 *
 * Task types: a request names `types` (absent: the default type), and every
 * step above reads the shards' frontiers for those types only (the board's
 * `runnable(types)`): the shard asked first is the one whose first task of
 * those types comes first, bounded by the next shard's first task of those
 * types; parks and long-polls wait for announcements of those types; each
 * ask carries the types, so a shard grants nothing else.
 *
 * Retries: each shard is asked under the client's request id, its n-th ask
 * in one fill numbered (`ask`, a typed field), and records its grants under
 * the client's id. A resend (`attempt` 2 and up) may
 * find its first send granted, its reply lost, perhaps by another coordinator
 * that is still filling it. So a resend first asks every known shard, in
 * parallel and `replayOnly`, for what it granted under the client's request
 * id (all its asks), and each shard, as it answers, fences
 * the earlier attempts: it grants nothing more to them. Once every shard has
 * answered, the grants of earlier sends are all known and no more can be
 * made: if there are any, they are the reply, and nothing is granted anew;
 * else this attempt fills as usual. If a shard cannot say (down, restarting,
 * timed out), the resend fails retryably instead of granting anew: the first
 * grant may be there, or be made there yet. A shard whose grants under the
 * id are on their way to another shard with their slot fails the lookup
 * the same way (SLOT_MOVING) until the move ends, and a shard that says
 * they left (`grantsMoved`) has every shard looked up again: the target may
 * have answered before it adopted them. So does a resend reaching a
 * coordinator that does not know every shard yet (just started, its slot
 * table still loading: `knownShards` rejects). (Without the fence, a slow fill
 * on one coordinator could grant after a resend's lookup on another, and that
 * grant would reach no one: stranded until it expired.) A reply is kept here
 * for `replayMs` and a send that arrives while the same send is still open
 * joins it, so a duplicate of one send gets the same grant without asking the
 * shards again; a resend never takes an earlier send's kept reply, which
 * another coordinator's fill may have superseded.
 *
 * Failures: a shard with no responders is dropped from the board (it is down)
 * and the others are asked. A shard that times out may have granted: the
 * request fails with TIMEOUT, even if other shards granted, and is not kept,
 * so the client's resend collects every grant made under its id (the replay
 * above) rather than leave the timed-out shard's grant stranded. A combined
 * reply is kept under MAX_MESSAGE_BYTES: no further shard is asked once half
 * of that is used, and leases past the limit (possible only with very large
 * tasks) are left to expire, logged.
 */
import type { Lease } from "@frontier/core";
import {
  atMostAtOrBefore,
  type DepthPart,
  encodedByteLength,
  isRetryable,
  type LeaseRequest,
  MAX_MESSAGE_BYTES,
  ProtocolError,
  type ResultOf,
  WireErrorCode,
} from "@frontier/protocol";
import { LRUCache } from "lru-cache";
import type { Logger } from "pino";
import { ShardTimeoutError, ShardUnavailableError } from "./errors.js";
import type { FrontierBoard, ShardFrontier } from "./frontier-board.js";
import type { ShardLink } from "./shard-link.js";

/** Bytes of a lease reply around its leases: envelope, `ok`, `op`, array header. */
const REPLY_OVERHEAD_BYTES = 64;
/** A combined lease reply never exceeds this. */
export const LEASE_REPLY_MAX_BYTES = MAX_MESSAGE_BYTES - REPLY_OVERHEAD_BYTES;
/** Once a combined reply holds this much, no further shard is asked. */
export const LEASE_REPLY_SOFT_BYTES = Math.floor(MAX_MESSAGE_BYTES / 2);

export interface LeaseContext {
  readonly link: ShardLink;
  readonly board: FrontierBoard;
  readonly logger: Logger;
  readonly replayMs: number;
  readonly replayEntries: number;
  readonly now?: () => number;
  /** Told of every grant, per shard. */
  readonly onGranted?: (shardId: string, count: number) => void;
  readonly onDropped?: (shardId: string, count: number) => void;
  /** Told of every resend (`attempt` 2 and up) and what became of it. */
  readonly onResend?: (outcome: ResendOutcome) => void;
  /**
   * Shards that may hold a grant besides those on the board (slot owners):
   * asked on a retry. Rejects (retryably) while the coordinator cannot know
   * them all: a shard left out could hold the first grant and be left unfenced.
   */
  readonly knownShards?: () => Promise<Iterable<string>>;
  /** How long a parked ask may take past its `waitMs` before it counts as timed out. */
  readonly shardTimeoutMs?: number;
  /** Most long-polls waiting at once; one more is refused as OVERLOADED. Default: no limit. */
  readonly maxLongPolls?: number;
}

/** A parked ask's time past its `waitMs` when the context does not say. */
const DEFAULT_PARK_MARGIN_MS = 5_000;

type LeaseResult = ResultOf<"lease">;

/**
 * A lease request a shard answers itself: the coordinator published its
 * long-poll to the shard with the worker's reply subject (`forwarded`), so
 * the coordinator sends no reply of its own.
 */
export const FORWARDED = Symbol("forwarded");
export type LeaseAnswer = LeaseResult | typeof FORWARDED;

/**
 * Publishes `ask` to `shardId` with the worker's own reply subject (NATS
 * reply forwarding): the shard's answer goes to the worker, not here.
 */
export type ForwardLease = (shardId: string, ask: LeaseRequest) => void;

/** One shard's answer to an ask: its leases, or the error that kept it from answering (then none). */
interface ShardAnswer {
  readonly shardId: string;
  readonly leases: readonly Lease[];
  readonly err?: unknown;
  /** A replay-only lookup only: grants of the request left this shard with their slot (`grantsMoved`). */
  readonly moved?: boolean;
}

/**
 * Most rounds of replay-only lookups one resend makes: the first, and more
 * while a shard says grants left it with their slot and the last round
 * still found grants the earlier ones had not (each move of a grant's slot
 * during the lookup costs one round).
 */
const MAX_LOOKUP_ROUNDS = 4;

/** Leases, each with the shard that granted it (`shards[i]` granted `leases[i]`): the worker settles there. */
interface Granted {
  readonly leases: Lease[];
  readonly shards: string[];
}

/** What became of a resend: its earlier grant handed back, a new fill, or a shard that could not say. */
export type ResendOutcome = "replayed" | "filled" | "unanswered";

/** The typed `ask` of a shard's n-th ask in one fill (absent for the first). */
function askOf(n: number): { ask?: number } {
  return n > 1 ? { ask: n } : {};
}

export class LeaseRouter {
  /**
   * Replies kept for resends (replayMs, at most replayEntries): lru-cache's
   * bounds, on this router's clock (shifted by one: lru-cache reads a start
   * of 0 as "no TTL"); undefined when nothing is kept.
   */
  private readonly replies: LRUCache<string, LeaseResult> | undefined;
  private readonly open = new Map<string, Promise<LeaseAnswer>>();
  private readonly now: () => number;
  private waitingNow = 0;

  constructor(private readonly ctx: LeaseContext) {
    this.now = ctx.now ?? Date.now;
    const now = this.now;
    this.replies =
      ctx.replayMs === 0 || ctx.replayEntries === 0
        ? undefined
        : new LRUCache<string, LeaseResult>({
            max: ctx.replayEntries,
            ttl: ctx.replayMs,
            ttlResolution: 0,
            perf: { now: () => now() + 1 },
          });
  }

  /**
   * `forward`: how to hand a request to a shard with the worker's reply
   * subject. Given, a request goes forwarded to the only shard there is, and
   * the answer is FORWARDED: the shard replies to the worker itself (the
   * grant reaches the worker one hop sooner).
   */
  async lease(request: LeaseRequest, forward?: ForwardLease): Promise<LeaseAnswer> {
    // Length-prefixed, and the attempt ends at its colon, so no (owner, attempt, requestId) spells another's key.
    const key = `${request.owner.length}:${request.owner}${request.attempt ?? 1}:${request.requestId}`;
    const kept = this.replies?.get(key, { updateAgeOnGet: false });
    if (kept !== undefined) return kept;
    const running = this.open.get(key);
    if (running !== undefined) {
      // A duplicate of a send whose long-poll went to a shard: the shard answers only the
      // first's reply subject, so this one is filled (and forwarded) on its own, under the same id.
      const joined = await running;
      return joined === FORWARDED ? this.fill(request, forward) : joined;
    }
    const filling = this.fill(request, forward);
    this.open.set(key, filling);
    try {
      const result = await filling;
      if (result !== FORWARDED) this.keep(key, result);
      return result;
    } finally {
      this.open.delete(key);
    }
  }

  /** Lease requests being filled or long-polling now. */
  get openRequests(): number {
    return this.open.size;
  }

  private keep(key: string, result: LeaseResult): void {
    this.replies?.set(key, result);
  }

  private async fill(request: LeaseRequest, forward?: ForwardLease): Promise<LeaseAnswer> {
    const deadline = this.now() + request.waitMs;
    if ((request.attempt ?? 1) > 1) {
      let replayed: Granted;
      try {
        replayed = await this.replayed(request);
      } catch (err) {
        this.ctx.onResend?.("unanswered");
        throw err;
      }
      this.ctx.onResend?.(replayed.leases.length > 0 ? "replayed" : "filled");
      if (replayed.leases.length > 0) return replayed;
    }
    // How often each shard was asked in this fill: each ask gets its own derived request id.
    const visits = new Map<string, number>();
    // The board's news when the last park began: a park that ended with no news since (its wait
    // was up, or a shard answered it at once) is not tried again; the fill waits for news here.
    let parkedAt: number | undefined;
    const { board } = this.ctx;
    for (;;) {
      const only = forward === undefined ? undefined : this.onlyShard();
      if (only !== undefined && forward !== undefined) {
        // The only shard grants at once what an attempt here would (its earliest, up to `max`:
        // no other shard's key bounds it) and else holds the long-poll, so the whole request
        // goes there and the shard answers the worker. Asking it from here first would cost a
        // round trip, and leave the long-poll unparked meanwhile: a task submitted then would
        // wait for an announcement and an ask of its own (a second commit) to be granted.
        const left = Math.max(0, deadline - this.now());
        forward(only, { ...this.parkAsk(request, only, visits, request.max, left), forwarded: true });
        return FORWARDED;
      }
      const news = board.newsFor(request.types);
      const granted = await this.attempt(request, visits);
      if (granted.leases.length > 0) return granted;
      const left = deadline - this.now();
      if (left <= 0) return { leases: [] };
      const idle =
        board.newsFor(request.types) === news && parkedAt !== news ? this.idleShards(request) : undefined;
      this.startWaiting();
      try {
        if (idle !== undefined) {
          parkedAt = news;
          const parked = await this.park(request, visits, idle, left);
          if (parked.leases.length > 0) return parked;
          continue;
        }
        if (!(await board.waitForRunnable(left, news, undefined, request.types))) return { leases: [] };
      } finally {
        this.waitingNow--;
      }
    }
  }

  /** Long-polls waiting now (at this coordinator or parked at shards). */
  get waiting(): number {
    return this.waitingNow;
  }

  /**
   * One more long-poll waits, unless `maxLongPolls` already do: then the
   * request is refused as OVERLOADED (retryable; nothing was granted), so a
   * flood of idle long-polls cannot take the coordinator's memory.
   */
  private startWaiting(): void {
    const max = this.ctx.maxLongPolls ?? Number.POSITIVE_INFINITY;
    if (this.waitingNow >= max) {
      throw new ProtocolError(
        WireErrorCode.OVERLOADED,
        `this coordinator holds ${this.waitingNow} waiting long-polls (its limit); retry after a pause`,
        { retryable: true },
      );
    }
    this.waitingNow++;
  }

  /** The one shard heard from lately, when there is exactly one; else undefined. */
  private onlyShard(): string | undefined {
    const fresh = this.ctx.board.fresh();
    return fresh.length === 1 ? fresh[0]!.shardId : undefined;
  }

  /**
   * The shards to park a long-poll at: every fresh shard, when none has
   * anything runnable of the request's types and the request has room for
   * one lease from each.
   * Undefined when the long-poll should wait here for an announcement
   * instead (a shard has runnable tasks the last attempt could not take,
   * or there are more shards than the request's room).
   */
  private idleShards(request: LeaseRequest): string[] | undefined {
    const fresh = this.ctx.board.fresh();
    if (fresh.length === 0 || fresh.length > request.max) return undefined;
    if (this.ctx.board.runnable(request.types).length > 0) return undefined;
    return fresh.map((f) => f.shardId).sort();
  }

  /**
   * Long-polls at the shards themselves while none has anything runnable:
   * each is asked, with the time left as its `waitMs`, for its share of the
   * request's room. A shard holds the ask (parked) and grants it in the
   * same journal block as the change that makes a task runnable (a submit,
   * an unblocking complete), so a task reaches an idle worker one disk
   * flush after it was submitted, with no announcement in between.
   *
   * The first shard to grant ends the wait for all: every shard still
   * holding the ask is asked, `replayOnly`, for what it granted under the
   * request id, which also ends its parked ask (it grants nothing more
   * under the id), and the grants are put together. So is any announcement
   * of runnable work (a shard has more than its parked asks took, or came
   * back from a restart without them): the fill then asks again as usual. A
   * shard that could not say what it granted (timed out, gone), or says a
   * grant left with its slot, fails the request retryably, as a resend's
   * lookup does (`replayed`).
   */
  private async park(
    request: LeaseRequest,
    visits: Map<string, number>,
    shards: readonly string[],
    waitMs: number,
  ): Promise<Granted> {
    const { link, board, logger } = this.ctx;
    const news = board.newsFor(request.types);
    const share = Math.floor(request.max / shards.length);
    const extra = request.max % shards.length;
    const pending = new Set<string>(shards);
    let firstGrant: () => void = () => {};
    const granted = new Promise<void>((resolve) => {
      firstGrant = resolve;
    });
    const asks = shards.map(async (shardId, i): Promise<ShardAnswer> => {
      const ask = this.parkAsk(request, shardId, visits, share + (i < extra ? 1 : 0), waitMs);
      try {
        const { reply } = await link.requestSized(
          shardId,
          ask,
          waitMs + (this.ctx.shardTimeoutMs ?? DEFAULT_PARK_MARGIN_MS),
        );
        if (reply.frontier !== undefined) board.observe(reply.frontier);
        if (reply.leases.length > 0) firstGrant();
        return { shardId, leases: reply.leases };
      } catch (err) {
        if (err instanceof ShardUnavailableError) board.forget(shardId);
        firstGrant(); // a shard that failed cannot hold the others up
        return { shardId, leases: [], err };
      } finally {
        pending.delete(shardId);
      }
    });
    const all = Promise.all(asks);
    const woken = new AbortController();
    await Promise.race([all, granted, board.waitForRunnable(waitMs, news, woken.signal, request.types)]);
    woken.abort();
    // Whatever is still parked: end it, and collect what it granted meanwhile.
    const lookups = [...pending].map((shardId) => this.lookUp(request, shardId));
    // The lookups first: a shard that cannot answer one fails the request now, rather than after
    // its parked ask times out; every shard that did answer has ended its ask, which replies at once.
    const looked = await Promise.all(lookups);
    const lost = looked.find((r) => "err" in r);
    const parked = lost === undefined ? await all : [];
    // A parked ask that never reached its shard (no responders) granted nothing; any other
    // failure, or a lookup that failed, may hide a grant: fail retryably, the resend replays it.
    const unanswered = lost ?? parked.find((r) => "err" in r && !(r.err instanceof ShardUnavailableError));
    if (unanswered !== undefined && "err" in unanswered) {
      logger.warn(
        { shardId: unanswered.shardId, requestId: request.requestId, err: unanswered.err },
        "lease: a parked ask could not say what it granted",
      );
      throw unanswered.err;
    }
    // A grant that left with its slot since it was made is at a shard not asked here: the
    // client's resend looks up every shard, in rounds (`replayed`), and finds it.
    const movedFrom = looked.find((r) => r.moved === true);
    if (movedFrom !== undefined) {
      throw new ProtocolError(
        WireErrorCode.SLOT_MOVING,
        `grants of lease request ${JSON.stringify(request.requestId)} left shard ${movedFrom.shardId} with their slot; retry`,
        { retryable: true },
      );
    }
    const result = this.combine(request, [...parked, ...looked]);
    const perShard = new Map<string, number>();
    for (const shardId of result.shards) perShard.set(shardId, (perShard.get(shardId) ?? 0) + 1);
    for (const [shardId, count] of perShard) this.ctx.onGranted?.(shardId, count);
    return byDeadline(result.leases, result.shards);
  }

  /** A long-poll's ask of `shardId` for `max` tasks, waiting up to `waitMs`: the fill's next ask there. */
  private parkAsk(
    request: LeaseRequest,
    shardId: string,
    visits: Map<string, number>,
    max: number,
    waitMs: number,
  ): LeaseRequest {
    const visit = (visits.get(shardId) ?? 0) + 1;
    visits.set(shardId, visit);
    return {
      op: "lease",
      owner: request.owner,
      max,
      leaseMs: request.leaseMs,
      waitMs,
      requestId: request.requestId,
      ...typesOf(request),
      ...askOf(visit),
      ...attemptOf(request),
    };
  }

  /**
   * Grants from several shards under one request id, as one reply: each
   * task once, at most `max`, within the reply's byte limit (the rest are
   * left to expire, logged and counted).
   */
  private combine(request: LeaseRequest, replies: readonly ShardAnswer[]): Granted {
    const leases: Lease[] = [];
    const shardIds: string[] = [];
    const seen = new Set<string>();
    let bytes = 0;
    for (const { shardId, leases: kept } of replies) {
      let dropped = 0;
      for (const lease of kept) {
        if (seen.has(lease.taskId)) continue;
        const size = encodedByteLength(lease);
        if (leases.length >= request.max || bytes + size > LEASE_REPLY_MAX_BYTES) {
          dropped++;
          continue;
        }
        seen.add(lease.taskId);
        bytes += size;
        leases.push(lease);
        shardIds.push(shardId);
      }
      if (dropped > 0) {
        this.ctx.logger.warn(
          { shardId, dropped, requestId: request.requestId },
          "lease: granted leases past the reply's room left to expire",
        );
        this.ctx.onDropped?.(shardId, dropped);
      }
    }
    return { leases, shards: shardIds };
  }

  /**
   * What the shards granted earlier under this request id, by any
   * coordinator: every known shard is asked in parallel with `replayOnly`
   * (a shard never grants anew on that, and from then on grants nothing to
   * earlier attempts). At most `max` leases, within the reply's byte limit.
   * A shard that does not answer (down, restarting, timed out) may hold the
   * grant: then the retry fails with that shard's retryable error rather
   * than grant anew and strand the first grant; the client asks again, and
   * a restarted shard replays from its journal.
   */
  private async replayed(request: LeaseRequest): Promise<Granted> {
    const { board, logger } = this.ctx;
    const answers: ShardAnswer[] = [];
    const found = new Set<string>();
    for (let round = 1; ; round++) {
      // Asked anew each round: a grant's slot may have gone to a shard that joined meanwhile.
      const shards = new Set<string>((await this.ctx.knownShards?.()) ?? []);
      for (const f of board.fresh()) shards.add(f.shardId);
      const replies = await Promise.all([...shards].sort().map((shardId) => this.lookUp(request, shardId)));
      const failed = replies.find((r) => "err" in r);
      if (failed !== undefined) {
        logger.warn(
          { shardId: failed.shardId, requestId: request.requestId, err: failed.err },
          "lease retry: shard did not replay",
        );
        throw failed.err;
      }
      let fresh = 0;
      for (const { leases } of replies) {
        for (const lease of leases) {
          const grant = `${lease.taskId}\u0000${lease.token}`;
          if (!found.has(grant)) fresh++;
          found.add(grant);
        }
      }
      // The latest round first: a grant found twice is named with the shard that holds it now.
      answers.unshift(...replies);
      // A shard that says grants left it with their slot answered after their move ended, so after
      // the target adopted them; but the target may have answered this round before it did. The
      // next round, asked after every answer of this one, finds them there. (A moved-away mark
      // stays after its grants are found, so a round that finds nothing new ends the lookup.)
      const moved = replies.some((r) => r.moved === true);
      if (!moved || (round > 1 && fresh === 0)) break;
      if (round >= MAX_LOOKUP_ROUNDS) {
        // Answering now could leave out a grant on its way: the client asks again instead.
        throw new ProtocolError(
          WireErrorCode.SLOT_MOVING,
          `grants of lease request ${JSON.stringify(request.requestId)} kept moving between shards through ${round} lookups; retry`,
          { retryable: true },
        );
      }
    }
    return this.combine(request, answers);
  }

  /**
   * Asks `shardId`, replay-only, for what it granted under the request's id
   * (and fences earlier sends, for a resend; ends an ask parked under the
   * id): the answer, or the error that kept the shard from giving it.
   */
  private async lookUp(request: LeaseRequest, shardId: string): Promise<ShardAnswer> {
    try {
      const { reply } = await this.ctx.link.requestSized(shardId, {
        op: "lease",
        owner: request.owner,
        max: request.max,
        leaseMs: request.leaseMs,
        waitMs: 0,
        requestId: request.requestId,
        ...attemptOf(request),
        replayOnly: true,
      });
      return { shardId, leases: reply.leases, ...(reply.grantsMoved === true ? { moved: true } : {}) };
    } catch (err) {
      return { shardId, leases: [], err };
    }
  }

  /**
   * One pass: ask the shards for what comes first, learn their new keys from
   * their replies, and pick again, until the request is full or no shard
   * has runnable tasks. Each round is either one parallel ask of several
   * shards (when their announced depths say which tasks are globally first:
   * `parallelPlan`), or one ask of the shard with the least key for what
   * comes before the next shard's key. A shard that grants nothing (the
   * board was stale) or fails is not asked again in this pass, so a pass
   * makes at most `max` + shards asks.
   */
  private async attempt(request: LeaseRequest, visits: Map<string, number>): Promise<Granted> {
    const fill: Fill = {
      granted: [],
      grantedBy: [],
      taken: new Set(),
      done: new Set(),
      bytes: 0,
      full: false,
    };
    for (;;) {
      const remaining = request.max - fill.granted.length;
      if (remaining <= 0 || fill.bytes >= LEASE_REPLY_SOFT_BYTES || fill.full) break;
      const candidates = this.ctx.board.runnable(request.types).filter((f) => !fill.done.has(f.shardId));
      if (candidates.length === 0) break;
      // Ask only for what should fit the reply, judging by the leases seen so
      // far: a lease that does not fit is stranded until its expiry.
      const room =
        fill.granted.length === 0 ? remaining : Math.min(remaining, fitting(fill.bytes, fill.granted.length));
      if (room <= 0) break;
      const plan = parallelPlan(candidates, room);
      if (plan.length > 1) {
        const before = fill.granted.length;
        await Promise.all(plan.map((p) => this.ask(request, visits, fill, p.shard, p.max, p.maxKey)));
        // A round that filled half the room answers: what is left would go in small asks, one
        // commit each, where the interleaved keys allow only a task or two per ask.
        if (fill.granted.length - before >= room / 2) break;
        continue;
      }
      const next = candidates[1];
      await this.ask(
        request,
        visits,
        fill,
        candidates[0]!,
        room,
        next?.key ?? undefined,
        next?.taskId ?? undefined,
      );
    }
    // A shard that timed out may have granted: answering with the others' grants would strand
    // its grant, so fail; the client's resend collects every grant made under its id (replay).
    if (fill.failure instanceof ShardTimeoutError) throw fill.failure;
    // Nothing granted and a failure every shard would share (a bad argument): say so, rather than answer empty.
    if (fill.granted.length === 0 && fill.failure !== undefined && !isRetryable(fill.failure))
      throw fill.failure;
    return byDeadline(fill.granted, fill.grantedBy);
  }

  /**
   * One ask of one shard in a fill: up to `ask` tasks, none after (`maxKey`,
   * `maxTaskId`); what it grants joins the fill.
   */
  private async ask(
    request: LeaseRequest,
    visits: Map<string, number>,
    fill: Fill,
    shard: ShardFrontier,
    ask: number,
    maxKey: number | undefined,
    maxTaskId?: string,
  ): Promise<void> {
    const { link, board, logger } = this.ctx;
    const { shardId, seq } = shard;
    const visit = (visits.get(shardId) ?? 0) + 1;
    visits.set(shardId, visit);
    let leases: readonly Lease[];
    let replyBytes: number;
    try {
      const { reply, bytes: size } = await link.requestSized(shardId, {
        op: "lease",
        owner: request.owner,
        max: ask,
        leaseMs: request.leaseMs,
        waitMs: 0,
        requestId: request.requestId,
        ...typesOf(request),
        ...askOf(visit),
        ...attemptOf(request),
        ...(maxKey === undefined ? {} : { maxKey }),
        ...(maxKey === undefined || maxTaskId === undefined ? {} : { maxTaskId }),
      });
      leases = reply.leases;
      replyBytes = size;
      // The shard's frontier after the grant, when it says (exact); else what the grant implies.
      if (reply.frontier !== undefined) board.observe(reply.frontier);
      else board.noteGrant(shardId, ask, leases.length, maxKey, seq, request.types);
    } catch (err) {
      fill.done.add(shardId);
      if (err instanceof ShardUnavailableError) board.forget(shardId);
      else fill.failure ??= err;
      logger.warn({ shardId, requestId: request.requestId, err }, "lease: shard did not grant");
      return;
    }
    // A shard restarted mid-fill may answer a new ask with grants it already gave this fill.
    leases = leases.filter((l) => !fill.taken.has(l.taskId));
    // Asked with no bound and granted less than asked: it gave all it had. Tasks that become
    // runnable there later go to the worker's next request; asking again would hold these grants
    // here for a commit per ask (under a trickle of submits, until the room was full).
    if (leases.length === 0 || (maxKey === undefined && leases.length < ask)) fill.done.add(shardId);
    // A shard answers a repeated id with its first grant, which may be larger than asked for
    // (another coordinator asked it first): never reply with more than `max`.
    const remaining = request.max - fill.granted.length;
    if (leases.length > remaining) {
      logger.warn(
        { shardId, dropped: leases.length - remaining, requestId: request.requestId },
        "lease: shard replayed more than asked for; leases left to expire",
      );
      this.ctx.onDropped?.(shardId, leases.length - remaining);
      leases = leases.slice(0, remaining);
    }
    // The shard's reply is its leases plus a few bytes, so only measure leases when the total may not fit.
    let kept = leases.length;
    if (fill.bytes + replyBytes > LEASE_REPLY_MAX_BYTES) {
      kept = 0;
      for (const lease of leases) {
        const size = encodedByteLength(lease);
        if (fill.bytes + size > LEASE_REPLY_MAX_BYTES) break;
        fill.bytes += size;
        kept++;
      }
      logger.warn(
        { shardId, dropped: leases.length - kept, requestId: request.requestId },
        "lease reply full: leases left to expire",
      );
      this.ctx.onDropped?.(shardId, leases.length - kept);
    } else {
      fill.bytes += replyBytes;
    }
    for (let j = 0; j < kept; j++) {
      fill.granted.push(leases[j]!);
      fill.grantedBy.push(shardId);
      fill.taken.add(leases[j]!.taskId);
    }
    if (kept > 0) this.ctx.onGranted?.(shardId, kept);
    if (kept < leases.length) fill.full = true;
  }
}

/**
 * Leases (`shards[i]` granted `leases[i]`), earliest deadline first, ties by
 * id: a parallel round's replies, or several parked shards', arrive in any order.
 */
function byDeadline(leases: readonly Lease[], shards: readonly string[]): Granted {
  const order = leases.map((_, i) => i);
  order.sort((a, b) => {
    const x = leases[a]!;
    const y = leases[b]!;
    return x.task.deadline - y.task.deadline || (x.taskId < y.taskId ? -1 : x.taskId > y.taskId ? 1 : 0);
  });
  return { leases: order.map((i) => leases[i]!), shards: order.map((i) => shards[i]!) };
}

/** A fill in progress: what it granted, from where, and which shards are done for this pass. */
interface Fill {
  readonly granted: Lease[];
  readonly grantedBy: string[];
  readonly taken: Set<string>;
  readonly done: Set<string>;
  bytes: number;
  /** The reply is full: a grant did not fit. */
  full: boolean;
  failure?: unknown;
}

/** One ask of a parallel round. */
export interface PlannedAsk {
  readonly shard: ShardFrontier;
  readonly max: number;
  readonly maxKey: number;
}

/**
 * One parallel round that hands out exactly the earliest tasks of the
 * cluster, from the shards' announced depths (keys at FRONTIER_DEPTH_RANKS).
 * For a bound K, a shard holds at most r − 1 tasks with keys ≤ K, where r
 * is the first announced rank whose key exceeds K (every runnable task when
 * none does). The plan takes the largest announced key K whose bounds sum to at
 * most `room`, and asks every shard with tasks ≤ K for its bound, under K:
 * each grants all of its tasks up to K, and together they are every task up
 * to K in the cluster, however the shards' keys interleave. Empty (or one
 * ask) when that is no better than asking the least shard alone: a single
 * candidate, a shard without a depth, or a bound only the first shard meets.
 */
export function parallelPlan(candidates: readonly ShardFrontier[], room: number): PlannedAsk[] {
  if (candidates.length < 2 || room < 2) return [];
  const partsOf = new Map(candidates.map((c) => [c, depthParts(c)]));
  if ([...partsOf.values()].some((parts) => parts === undefined)) return [];
  // A shard's bound at k: the sum of its parts' (one per type the request names, each as announced).
  const bound = (c: ShardFrontier, k: number): number => atMostAtOrBefore(partsOf.get(c)!, k);
  const keys = [...new Set(candidates.flatMap((c) => partsOf.get(c)!.flatMap((p) => p.depth)))].sort(
    (a, b) => a - b,
  );
  let best: { k: number; sum: number } | undefined;
  for (const k of keys) {
    let sum = 0;
    for (const c of candidates) sum += bound(c, k);
    if (sum > room) break; // bounds only grow with k
    best = { k, sum };
  }
  if (best === undefined) return [];
  const k = best.k;
  const plan: PlannedAsk[] = [];
  for (const c of candidates) {
    const max = bound(c, k);
    if (max > 0) plan.push({ shard: c, max, maxKey: k });
  }
  return plan;
}

/** A candidate's depths: its parts, or its one depth; undefined when not told. */
function depthParts(c: ShardFrontier): readonly DepthPart[] | undefined {
  if (c.parts !== undefined) return c.parts;
  if (c.depth === undefined || c.depth.length === 0) return undefined;
  return [{ depth: c.depth, runnable: c.runnable }];
}

/** The request's `types` for a shard ask: left out when the client left them out (the default type). */
function typesOf(request: LeaseRequest): { types?: readonly string[] } {
  return request.types === undefined ? {} : { types: request.types };
}

/** How many more leases fit the reply, at 1.5x the average size of those granted so far. */
function fitting(bytesSoFar: number, leasesSoFar: number): number {
  const average = bytesSoFar / leasesSoFar;
  return Math.floor((LEASE_REPLY_MAX_BYTES - bytesSoFar) / (average * 1.5));
}

/** The request's `attempt` for a shard ask: left out on a first send, as the client leaves it out. */
function attemptOf(request: LeaseRequest): { attempt?: number } {
  return request.attempt === undefined || request.attempt === 1 ? {} : { attempt: request.attempt };
}
