/**
 * The relay of a large workflow's completion events (docs/cluster.md,
 * "Large workflows across shards"): what this shard's outbox owes — ended
 * prerequisites' outcomes for dependents in other slots — sent to the shard
 * owning each dependent's slot now, at least once, until answered.
 *
 * The outbox is the engine's (core's remote-edges.ts), journaled with the
 * changes that fill it, so the relay holds nothing durable: it reads the
 * outbox (Shard.remoteOutbox, which waits until what it returns is on
 * disk), groups the events by the owner of the dependent's slot (in the
 * slot bucket), sends each group in `deliverEvents` requests (to itself
 * without NATS), and acknowledges what the receivers answered for
 * (`applied` or `duplicate`). An event answered `unknown` (its dependent not
 * there yet: a part not committed, a slot moving) or not answered at all
 * (timeout, no responders) waits out a backoff of its own, then goes to
 * whichever shard owns the slot then; the others go on meanwhile.
 *
 * One round at a time: a round reads, sends, acknowledges, and the next
 * starts when kicked (a change here) or when a waiting event is due, or,
 * failing both, after `pollMs` (changes a kick misses: timers, moves).
 */
import type { RemoteApplied, RemoteEvent } from "@frontier/core";
import { MAX_EVENTS_PER_DELIVERY, slotOfLargeTask, unwrapReply } from "@frontier/protocol";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { requestPeer } from "./peer-request.js";
import { messageOf, pause } from "./util.js";

/** What the relay needs of its shard actor: a narrow context, so a test can stand it up alone. */
export interface RelayContext {
  readonly shardId: string;
  readonly cluster: string;
  readonly nc: NatsConnection;
  readonly log: Logger;
  /** Shard.remoteOutbox: events owed, durable, at most `limit`, without those `skip` names. */
  outbox(limit: number, skip: (prerequisite: string, dependent: string) => boolean): Promise<RemoteEvent[]>;
  /** Shard.acknowledgeRemote. */
  acknowledge(acks: readonly RemoteEvent[]): Promise<void>;
  /** Outcomes owed now (Shard.remoteOutboxSize), O(1). */
  owing(): number;
  /** The shard owning `slot` per the bucket, or undefined. */
  ownerOf(slot: number): string | undefined;
  /** The `deliverEvents` handler of this shard, for the events whose dependent's slot it owns. */
  deliverHere(events: readonly RemoteEvent[]): Promise<RemoteApplied[]>;
  readonly signal: AbortSignal;
  readonly requestTimeoutMs: number;
  /** Told of each round's outcome, for metrics. */
  readonly onRound?: (round: { sent: number; acknowledged: number; deferred: number }) => void;
}

/** Events read per round: a bound of the memory and of one round's length. */
const ROUND_EVENTS = 20 * MAX_EVENTS_PER_DELIVERY;
/** First and longest wait of an event before it is sent again, ms. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 5_000;
/** A round when nothing kicked, ms: the outbox may have filled without a kick (a timer's change). */
const DEFAULT_POLL_MS = 250;

interface Waiting {
  /** When it may go again (Date.now() clock). */
  at: number;
  /** Its next backoff, ms. */
  delay: number;
}

export class CompletionRelay {
  /** Events answered `unknown` or not at all, by pair: sent again once due. */
  private readonly waiting = new Map<string, Waiting>();
  /** Ends the current sleep early (set while one runs). */
  private wakeUp: (() => void) | undefined;
  private kicked = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ctx: RelayContext,
    private readonly pollMs = DEFAULT_POLL_MS,
  ) {}

  /** Starts the rounds; they end when the context's signal aborts. */
  start(): void {
    if (this.running !== undefined) return;
    // One listener for the relay's life (a wait per round would add one each).
    this.ctx.signal.addEventListener("abort", () => this.wakeUp?.(), { once: true });
    this.running = this.loop();
  }

  /** Something changed here: run a round soon (a no-op when nothing is owed). */
  kick(): void {
    // Called on every change of the shard; only one that left something owed needs a round.
    if (this.ctx.owing() === 0) return;
    this.kicked = true;
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    const { signal, log } = this.ctx;
    while (!signal.aborted) {
      if (!this.kicked) await this.sleep(this.nextWaitMs());
      this.kicked = false;
      if (signal.aborted) continue;
      if (this.ctx.owing() === 0) {
        this.waiting.clear();
        continue;
      }
      try {
        const more = await this.round();
        if (more) this.kicked = true;
      } catch (error) {
        // The shard failed or closes (its outbox is on disk: a restart sends it), or NATS is away.
        if (!signal.aborted)
          log.warn({ err: messageOf(error) }, "completion relay round failed; trying again");
        await pause(RETRY_MIN_MS, signal);
      }
    }
  }

  /** Waits `ms`, or less when kicked (or aborted); its timer is cleared either way. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakeUp = done;
    });
  }

  /** How long to sleep: until the first waiting event is due, at most pollMs. */
  private nextWaitMs(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const w of this.waiting.values()) if (w.at < first) first = w.at;
    return Math.max(0, Math.min(this.pollMs, first - Date.now()));
  }

  /** One round: read, send, acknowledge. True when a full round was read (more may be owed). */
  private async round(): Promise<boolean> {
    const now = Date.now();
    const skip = (prerequisite: string, dependent: string): boolean => {
      const w = this.waiting.get(pairKey(prerequisite, dependent));
      return w !== undefined && w.at > now;
    };
    const events = await this.ctx.outbox(ROUND_EVENTS, skip);
    if (events.length === 0) return false;
    const byOwner = new Map<string, RemoteEvent[]>();
    /** Not delivered this round: no owner known for the dependent's slot, or its delivery failed. */
    const retry: RemoteEvent[] = [];
    for (const event of events) {
      const slot = slotOfLargeTask(event.dependent, event.workflowId);
      const owner = this.ctx.ownerOf(slot);
      if (owner === undefined) {
        retry.push(event);
        continue;
      }
      let group = byOwner.get(owner);
      if (group === undefined) byOwner.set(owner, (group = []));
      group.push(event);
    }
    const answered: RemoteEvent[] = [];
    const sends: Promise<void>[] = [];
    for (const [owner, group] of byOwner) {
      for (let i = 0; i < group.length; i += MAX_EVENTS_PER_DELIVERY) {
        const chunk = group.slice(i, i + MAX_EVENTS_PER_DELIVERY);
        sends.push(
          this.send(owner, chunk).then(
            (results) =>
              chunk.forEach((event, k) => {
                if (results[k] === "unknown" || results[k] === undefined) retry.push(event);
                else answered.push(event);
              }),
            (error: unknown) => {
              this.ctx.log.debug(
                { to: owner, events: chunk.length, err: messageOf(error) },
                "completion events not delivered; sending them again later",
              );
              for (const event of chunk) retry.push(event);
            },
          ),
        );
      }
    }
    await Promise.all(sends);
    if (answered.length > 0) await this.ctx.acknowledge(answered);
    for (const event of answered) this.waiting.delete(pairKey(event.prerequisite, event.dependent));
    const later = Date.now();
    for (const event of retry) {
      const key = pairKey(event.prerequisite, event.dependent);
      const w = this.waiting.get(key);
      const delay = w === undefined ? RETRY_MIN_MS : Math.min(RETRY_MAX_MS, w.delay * 2);
      this.waiting.set(key, { at: later + delay, delay });
    }
    this.ctx.onRound?.({ sent: events.length, acknowledged: answered.length, deferred: retry.length });
    return events.length >= ROUND_EVENTS && answered.length > 0;
  }

  /** One `deliverEvents` to `owner` (this shard: its handler, no NATS). */
  private async send(owner: string, events: RemoteEvent[]): Promise<readonly RemoteApplied[]> {
    if (owner === this.ctx.shardId) return this.ctx.deliverHere(events);
    const request = { op: "deliverEvents", source: this.ctx.shardId, events } as const;
    return unwrapReply(await requestPeer(this.ctx, owner, request, this.ctx.requestTimeoutMs)).results;
  }
}

/** The relay's in-memory key of an event (never on the wire): the first id's length keeps pairs apart. */
function pairKey(prerequisite: string, dependent: string): string {
  return `${prerequisite.length}:${prerequisite}${dependent}`;
}
