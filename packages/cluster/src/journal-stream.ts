/**
 * Journal shipping over JetStream: a shard's journal blocks copied, as they
 * commit, into the stream `frontier-<cluster>-journal-<shardId>` (subject
 * `frontier.<cluster>.journal.<shardId>`), from which a standby on another
 * host rebuilds the shard (journal-follower.ts, standby.ts; docs/cluster.md,
 * "Standby shards"). This is the replica `Shard` waits for
 * (@frontier/shard's JournalReplica): a call is answered only once its
 * block is on the local disk AND in the stream.
 *
 * What the stream holds, per run (one open of the shard's data directory):
 *
 *   base-begin  base part … base part  base-end  block  block …
 *
 * a base (the whole state at open, as journal records) then every block
 * committed since. Each message's headers name its kind, its run and the
 * data directory that wrote it (its `origin`: the directory's dataId, so
 * the cluster's `shard.<id>` key and the stream name the same owner). A
 * unit (a base part, a block) larger than a message is split over several,
 * all but the last marked `more`.
 *
 * Order and fencing. Every message but a run's first is published with
 * `expect.lastMsgID` = the message before it (ids are `<run>.<n>`; the
 * first expects the stream's last sequence as read at open). So the stream
 * holds a prefix of each run's messages, in order, whatever is lost or
 * pipelined, and once anyone else appends (a standby's takeover marker, see
 * standby.ts), this run's next publish is refused and the shard stops
 * (REPLICATION_FAILED): a replaced primary can acknowledge nothing more.
 * An open refuses a stream whose last message another directory wrote: the
 * shard was taken over (STREAM_TAKEN_OVER).
 *
 * Reads: a replaced primary finds out at its next write; to refuse reads
 * before that, it listens on `frontier.<cluster>.journal.<shardId>.taken`,
 * where a standby says so once its marker is in, and looks at the stream's
 * last message again after a reconnect (it may have missed the word):
 * `checkOwner` then throws, and the shard stops.
 *
 * Growth: once a base is in, every message before it is purged, so the
 * stream holds one base plus the blocks since. A base is shipped at every
 * open, and while the shard runs once the blocks since the last one pass
 * the shard's `replicaRebaseBytes` and twice the base (`rebase`).
 *
 * Failures: a message lost with its connection or unanswered is sent again
 * under the same id (see send: the server's duplicate check makes that
 * safe) for up to `timeoutMs`; a refusal (wrong last id: taken over; stream
 * gone) or `timeoutMs` without an answer fails the block, and the shard
 * stops as after a storage failure; its supervisor restarts it, and the
 * restart ships a new base.
 */
import { randomUUID } from "node:crypto";
import { subjectsFor } from "@frontier/protocol";
import type { JournalReplica } from "@frontier/shard";
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamInfo,
} from "@nats-io/jetstream";
import { headers, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { DEFAULT_REPLICATION_TIMEOUT_MS } from "./options.js";
import { withReplicas } from "./stream-replicas.js";

/** Headers of a journal message. */
export const JournalHeader = {
  /** `base-begin`, `base`, `base-end`, `block` or `takeover` (JournalKind). */
  KIND: "Frontier-Journal-Kind",
  /** The run (one open of a data directory) that wrote it. */
  RUN: "Frontier-Journal-Run",
  /** The data directory (its dataId) that wrote it. */
  ORIGIN: "Frontier-Journal-Origin",
  /** "1" when the unit goes on in the next message. */
  MORE: "Frontier-Journal-More",
} as const;

/**
 * The body of a marker (base-begin, base-end, takeover): one byte (msgpack
 * nil). Never empty: a JetStream consumer takes a message without a body
 * for a status message (heartbeat, flow control) and does not deliver it.
 */
export const MARKER_BODY: Uint8Array = Uint8Array.of(0xc0);

export const JournalKind = {
  BASE_BEGIN: "base-begin",
  BASE: "base",
  BASE_END: "base-end",
  /** Within a base: the shard's lease secret key, so that its leases keep their secrets at a standby. */
  LEASE_KEY: "lease-key",
  BLOCK: "block",
  /** A standby's claim: every message after it is the new owner's. */
  TAKEOVER: "takeover",
} as const;
export type JournalKind = (typeof JournalKind)[keyof typeof JournalKind];

/** A message not answered within this is sent again (same id), while `timeoutMs` lasts, ms. */
const RESEND_AFTER_MS = 2_000;
/** Pause before sending again a message lost with its connection, ms. */
const RESEND_PAUSE_MS = 100;
/** Largest message body; NATS's default max_payload is 1 MiB, and headers ride along. */
export const MAX_JOURNAL_MESSAGE_BYTES = 512 * 1024;

/** Journal shipping's refusals (this file, journal-follower.ts); each changes nothing. */
export const JournalShippingErrorCode = {
  /** The stream's last message was written by another data directory: the shard was taken over. */
  STREAM_TAKEN_OVER: "STREAM_TAKEN_OVER",
  /** A standby's directory holds more than a follower's LMDB files (a shard's data, or something else). */
  NOT_A_STANDBY_DIRECTORY: "NOT_A_STANDBY_DIRECTORY",
} as const;
export type JournalShippingErrorCode =
  (typeof JournalShippingErrorCode)[keyof typeof JournalShippingErrorCode];

export class JournalShippingError extends Error {
  override readonly name = "JournalShippingError";
  constructor(
    readonly code: JournalShippingErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface JournalStreamOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly shardId: string;
  /** The data directory's dataId (cluster-identity.ts): who writes. */
  readonly origin: string;
  /** Stream replicas (3 on a NATS cluster). Default 1. */
  readonly replicas?: number;
  /** Wait for a publish's acknowledgement, ms. Default DEFAULT_REPLICATION_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /**
   * The shard's lease secret key, shipped with each base (read when the
   * base is, after the journal opened its directory). None: a standby's
   * shard makes a key of its own, and leases granted here are refused
   * there as stale.
   */
  readonly leaseKey?: () => Uint8Array;
  readonly log?: Logger;
}

/** Creates the shard's journal stream if it does not exist yet; returns its manager. */
export async function openJournalStream(
  nc: NatsConnection,
  cluster: string,
  shardId: string,
  replicas = 1,
): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  await journalStreamInfo(jsm, cluster, shardId, replicas);
  return jsm;
}

/**
 * The info of the shard's journal stream, which is created first if it does
 * not exist yet, with `replicas` replicas. One that exists with fewer (made
 * by a standby or a restore told none, or before `kvReplicas` was raised) is
 * scaled up to `replicas` first: a journal acknowledged on fewer copies than
 * the cluster was told to keep would be lost with one NATS server. A stream
 * with more is left as it is. Rejects when the scale-up is refused (a single
 * server takes no more than one replica).
 */
export async function journalStreamInfo(
  jsm: JetStreamManager,
  cluster: string,
  shardId: string,
  replicas = 1,
): Promise<StreamInfo> {
  const s = subjectsFor(cluster);
  const name = s.journalStream(shardId);
  try {
    return await withReplicas(jsm, await jsm.streams.info(name), replicas, `journal stream ${name}`);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    return await jsm.streams.add({
      name,
      subjects: [s.journal(shardId)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      num_replicas: replicas,
      // Room for a base larger than a message: parts are messages.
      max_msg_size: -1,
    });
  }
}

/** The last sequence of the shard's journal stream: 0 when it has none or does not exist (never created here). */
export async function journalStreamEnd(
  nc: NatsConnection,
  cluster: string,
  shardId: string,
): Promise<number> {
  try {
    const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(cluster).journalStream(shardId));
    return info.state.last_seq;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return 0;
    throw error;
  }
}

/** The writer's side: Shard's replica over the stream. */
export class JournalStream implements JournalReplica {
  private readonly subject: string;
  private readonly stream: string;
  private readonly run = randomUUID();
  private readonly timeoutMs: number;
  private js: JetStreamClient | undefined;
  /** Messages published in this run; the next one's id is `<run>.<n>`. */
  private n = 0;
  /** The id of the last message published (the next one expects it), once the run's first is out. */
  private lastId: string | undefined;
  private closed = false;
  /** Settles once the last message published is stored (rejects if it was not). */
  private previous: Promise<void> = Promise.resolve();
  /** The directory that took the shard over, once this run heard of it. */
  private takenBy: string | undefined;
  private taken: Subscription | undefined;
  /** The JetStream manager `open` made. */
  private jsm: JetStreamManager | undefined;

  constructor(private readonly o: JournalStreamOptions) {
    const s = subjectsFor(o.cluster);
    this.subject = s.journal(o.shardId);
    this.stream = s.journalStream(o.shardId);
    this.timeoutMs = o.timeoutMs ?? DEFAULT_REPLICATION_TIMEOUT_MS;
  }

  /**
   * Checks that the stream is this directory's to write (empty, or last
   * written by it), then publishes the base, and purges what came before.
   */
  async open(base: Iterable<Uint8Array>): Promise<void> {
    const jsm = await jetstreamManager(this.o.nc);
    this.jsm = jsm;
    this.js = jetstream(this.o.nc);
    this.listenForTakeover(jsm);
    // Looked at once listening: a takeover is in what this reads, or is heard of.
    const info = await journalStreamInfo(jsm, this.o.cluster, this.o.shardId, this.o.replicas);
    const lastSeq = info.state.last_seq;
    if (info.state.messages > 0) {
      const origin = await this.lastOrigin(jsm, info);
      if (origin !== this.o.origin)
        throw new JournalShippingError(
          JournalShippingErrorCode.STREAM_TAKEN_OVER,
          `journal stream ${this.stream} was last written by data directory ${origin || "(unknown)"}, ` +
            `not by this one (${this.o.origin}): shard ${this.o.shardId} was taken over by a standby. ` +
            "This directory's copy is out of date; remove it, or start it as a standby of the shard",
        );
    }
    const begin = await this.shipBase(base, lastSeq);
    // One base is enough: drop everything before this one's first message. Only when there is
    // something before it: nats-server 2.9 purged the whole stream for a purge up to its first
    // sequence (measured), taking the new base with it.
    if (info.state.messages > 0 && begin > info.state.first_seq)
      await jsm.streams.purge(this.stream, { seq: begin });
    this.o.log?.info({ stream: this.stream, run: this.run, from: begin }, "journal base shipped");
  }

  /**
   * A new base while the shard runs (ReplicatedJournal's rebase): chained
   * after the blocks before it like any message, then everything before it
   * is purged. The follower builds it beside its copy and swaps.
   */
  async rebase(base: Iterable<Uint8Array>): Promise<void> {
    // open's manager: making one asks the server for the account's info, a round trip.
    const jsm = this.jsm ?? (await jetstreamManager(this.o.nc));
    const begin = await this.shipBase(base);
    await jsm.streams.purge(this.stream, { seq: begin });
    this.o.log?.info({ stream: this.stream, run: this.run, from: begin }, "journal rebased");
  }

  ship(block: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the journal stream is closed"));
    return this.publishUnit(JournalKind.BLOCK, block);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.taken?.unsubscribe();
  }

  checkOwner(): void {
    if (this.takenBy !== undefined)
      throw new JournalShippingError(
        JournalShippingErrorCode.STREAM_TAKEN_OVER,
        `shard ${this.o.shardId} was taken over by data directory ${this.takenBy}; this one no longer answers for it`,
      );
  }

  /** Notes a standby's word that it took the shard over, and looks at the stream again after a reconnect. */
  private listenForTakeover(jsm: JetStreamManager): void {
    const decoder = new TextDecoder();
    this.taken = this.o.nc.subscribe(subjectsFor(this.o.cluster).journalTaken(this.o.shardId), {
      callback: (error, msg) => {
        if (error) return;
        const origin = decoder.decode(msg.data);
        if (origin !== this.o.origin) this.takenBy ??= origin;
      },
    });
    void (async () => {
      for await (const status of this.o.nc.status()) {
        if (this.closed) return;
        if (status.type !== "reconnect") continue;
        try {
          const origin = await this.lastOrigin(jsm, await jsm.streams.info(this.stream));
          if (origin && origin !== this.o.origin) this.takenBy ??= origin;
        } catch (error) {
          this.o.log?.warn({ err: String(error) }, "could not look at the journal stream after a reconnect");
        }
      }
    })();
  }

  /** The data directory that wrote the stream's last message (undefined: none, or not said). */
  private async lastOrigin(jsm: JetStreamManager, info: StreamInfo): Promise<string | undefined> {
    if (info.state.messages === 0) return undefined;
    const last = await jsm.streams.getMessage(this.stream, { seq: info.state.last_seq });
    return last?.header.get(JournalHeader.ORIGIN) || undefined;
  }

  /** Publishes a base (begin, the lease key, its parts, end); resolves with its first message's sequence. */
  private async shipBase(base: Iterable<Uint8Array>, afterSeq?: number): Promise<number> {
    const begin = await this.publish(JournalKind.BASE_BEGIN, MARKER_BODY, afterSeq);
    const key = this.o.leaseKey?.();
    if (key !== undefined) await this.publish(JournalKind.LEASE_KEY, key);
    for (const part of base) await this.publishUnit(JournalKind.BASE, part);
    await this.publish(JournalKind.BASE_END, MARKER_BODY);
    return begin;
  }

  /** Publishes a unit in messages of at most MAX_JOURNAL_MESSAGE_BYTES; resolves once the stream holds all of them. */
  private publishUnit(kind: JournalKind, bytes: Uint8Array): Promise<void> {
    const sent: Promise<number>[] = [];
    for (let at = 0; at === 0 || at < bytes.length; at += MAX_JOURNAL_MESSAGE_BYTES) {
      const end = Math.min(bytes.length, at + MAX_JOURNAL_MESSAGE_BYTES);
      sent.push(this.publish(kind, bytes.subarray(at, end), undefined, end < bytes.length));
    }
    return Promise.all(sent).then(() => {});
  }

  /**
   * Publishes one message, chained to the one before (or, for the run's
   * first, to the stream's last sequence). Resolves with its sequence.
   */
  private publish(kind: JournalKind, data: Uint8Array, afterSeq?: number, more = false): Promise<number> {
    const h: MsgHdrs = headers();
    h.set(JournalHeader.KIND, kind);
    h.set(JournalHeader.RUN, this.run);
    h.set(JournalHeader.ORIGIN, this.o.origin);
    if (more) h.set(JournalHeader.MORE, "1");
    const id = `${this.run}.${this.n++}`;
    const expect = this.lastId === undefined ? { lastSequence: afterSeq ?? 0 } : { lastMsgID: this.lastId };
    this.lastId = id;
    const previous = this.previous;
    const sent = this.send(id, expect, h, data, previous);
    this.previous = sent.then(
      () => {},
      () => Promise.reject(new Error(`journal message ${id} was not stored`)),
    );
    this.previous.catch(() => {});
    return sent;
  }

  /**
   * Sends one message until the stream answers, for at most `timeoutMs`:
   * a message lost with a connection (a NATS restart) or unanswered is sent
   * again under the same id and expectation. That is safe because the
   * server checks an id against its duplicate window (2 minutes) before the
   * expected last id (measured on nats-server 2.9: a resend of a stored
   * message is acknowledged `duplicate` with its sequence), so a resend
   * stores nothing twice, and one that was not stored is stored only if it
   * still follows the message before it. A refusal of that expectation is
   * final only once the message before is known stored: until then, this
   * one may just have overtaken it (sent on a new connection while the
   * other waits for its resend). Resolves with the message's sequence.
   */
  private async send(
    id: string,
    expect: { lastSequence: number } | { lastMsgID: string },
    h: MsgHdrs,
    data: Uint8Array,
    previous: Promise<void>,
  ): Promise<number> {
    const deadline = performance.now() + this.timeoutMs;
    let afterPrevious = false;
    for (;;) {
      const left = deadline - performance.now();
      try {
        const ack = await this.js!.publish(this.subject, data, {
          msgID: id,
          expect,
          headers: h,
          timeout: Math.max(1, Math.min(left, RESEND_AFTER_MS)),
        });
        return ack.seq;
      } catch (error) {
        if (this.closed || deadline - performance.now() <= 0) throw error;
        if (error instanceof JetStreamApiError) {
          if (afterPrevious) throw error;
          await previous; // its failure is this one's
          afterPrevious = true;
          continue;
        }
        // Lost or unanswered (a connection going, a server restarting): send it again shortly.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(RESEND_PAUSE_MS, deadline - performance.now())),
        );
      }
    }
  }
}
