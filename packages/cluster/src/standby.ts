/**
 * A standby shard (docs/cluster.md, "Standby shards"): follows a replicated
 * shard's journal stream into a directory of its own (journal-follower.ts)
 * and, when the primary has gone silent, takes the shard over:
 *
 *   FOLLOWING --primary silent failoverAfterMs, stream applied to its end-->  FENCING
 *   FENCING   --takeover marker in the stream-->                              CLAIMING
 *   FENCING   --marker refused (the primary wrote meanwhile)-->              FOLLOWING (from the start)
 *   CLAIMING  --shard.<id> moved to this directory-->                         TAKEN (the caller opens the shard)
 *
 * The primary is "silent" when it has announced nothing on the frontier
 * subject (shards announce every second) for `failoverAfterMs`. Silence is
 * only the trigger; safety comes from the stream and the bucket:
 *
 * - The marker is published with `expect.lastSequence` = the last message
 *   this standby applied: it goes in only if the standby holds everything
 *   the stream holds, so every block the primary had acknowledged (a block
 *   is acknowledged only once in the stream) is in the standby's copy.
 * - Once it is in, the primary's next publish (chained to its own last
 *   message by id) is refused: a primary that was only slow, paused or cut
 *   off stops at its next write (REPLICATION_FAILED) and acknowledges
 *   nothing more; its restart is refused by the stream (STREAM_TAKEN_OVER)
 *   and before that by the bucket (SHARD_ID_TAKEN, below).
 * - `shard.<id>` then names the standby's directory (a revision-checked
 *   update, cluster-identity.ts).
 *
 * Fencing tokens stay monotonic: the copy holds the engine's token counter
 * and any reserved ceiling as the primary journaled them, and the shard
 * opened on it starts above both.
 */
import { randomUUID } from "node:crypto";
import { decodeFrontier, subjectsFor } from "@frontier/protocol";
import { type NatsAccess, natsConnectionOptions } from "@frontier/transport";
import {
  type ConsumerMessages,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
} from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { type DataIdentity, takeOverShardId } from "./cluster-identity.js";
import { JournalFollower } from "./journal-follower.js";
import {
  JournalHeader,
  JournalKind,
  journalStreamEnd,
  MARKER_BODY,
  openJournalStream,
} from "./journal-stream.js";
import { DEFAULT_KV_REPLICAS } from "./options.js";
import { openSlotBucket } from "./slot-ownership.js";

/** Default silence of the primary before a standby takes over, ms (ten announcement intervals). */
export const DEFAULT_FAILOVER_AFTER_MS = 10_000;
/** How often a standby looks at the primary's silence, ms. */
export const DEFAULT_STANDBY_CHECK_MS = 250;

export interface StandbyOptions {
  readonly nc: NatsConnection;
  /** The slot bucket (where `shard.<id>` is moved). */
  readonly kv: KV;
  readonly cluster: string;
  readonly shardId: string;
  readonly dataDir: string;
  /** Default DEFAULT_FAILOVER_AFTER_MS. */
  readonly failoverAfterMs?: number;
  /**
   * The journal stream's replicas, as the primary's (`kvReplicas`): a
   * standby that starts first creates the stream. Default DEFAULT_KV_REPLICAS.
   */
  readonly kvReplicas?: number;
  /** Default DEFAULT_STANDBY_CHECK_MS. */
  readonly checkMs?: number;
  readonly log: Logger;
  /** Stops following; runStandby then rejects. */
  readonly signal?: AbortSignal;
  /** Monotonic clock, ms; for tests. Default performance.now. */
  readonly now?: () => number;
}

export interface Takeover {
  /** The directory's identity, registered under `shard.<id>`. */
  readonly identity: DataIdentity;
  /** The stream sequence of the takeover marker. */
  readonly markerSeq: number;
}

/** Follows until the primary is silent, then takes the shard over; resolves with the directory ready for the shard to open. */
export async function runStandby(o: StandbyOptions): Promise<Takeover> {
  const now = o.now ?? (() => performance.now());
  const failoverAfterMs = o.failoverAfterMs ?? DEFAULT_FAILOVER_AFTER_MS;
  const s = subjectsFor(o.cluster);
  const jsm = await openJournalStream(o.nc, o.cluster, o.shardId, o.kvReplicas ?? DEFAULT_KV_REPLICAS);
  let heardAt = now();
  const announcements = o.nc.subscribe(s.frontier, {
    callback: (error, msg) => {
      if (error) return;
      try {
        if (decodeFrontier(msg.data).shardId === o.shardId) heardAt = now();
      } catch {
        // Not an announcement we can read: not the primary's word.
      }
    },
  });
  try {
    for (;;) {
      const follower = JournalFollower.open(o.dataDir);
      const following = follow(o, follower);
      try {
        await untilSilent(o, jsm, follower, following, () => now() - heardAt >= failoverAfterMs);
      } finally {
        await following.stop();
        await follower.close();
      }
      o.log.warn(
        { shardId: o.shardId, silentMs: Math.round(now() - heardAt), appliedSeq: follower.lastSeq },
        "the primary is silent and its stream is applied: taking the shard over",
      );
      const dataId = randomUUID();
      const markerSeq = await fence(o, follower.lastSeq, dataId);
      if (markerSeq === undefined) {
        o.log.warn("the primary wrote to its stream meanwhile: following again");
        heardAt = now();
        continue;
      }
      const identity = await takeOverShardId(o.kv, {
        cluster: o.cluster,
        shardId: o.shardId,
        dataDir: o.dataDir,
        dataId,
      });
      // Tell an old primary that may still be connected (paused, cut off) to stop answering reads.
      o.nc.publish(s.journalTaken(o.shardId), new TextEncoder().encode(dataId));
      await o.nc.flush();
      o.log.warn({ shardId: o.shardId, dataId, markerSeq }, "took the shard over");
      return { identity, markerSeq };
    }
  } finally {
    announcements.unsubscribe();
  }
}

export interface StandbyProcessOptions {
  readonly natsUrl: readonly string[];
  /** The shard's own credentials: a standby reads and fences the shard's stream, and moves its key. */
  readonly natsAccess?: NatsAccess;
  readonly cluster: string;
  readonly shardId: string;
  readonly dataDir: string;
  readonly failoverAfterMs?: number;
  readonly kvReplicas?: number;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/**
 * `frontier shard --standby`: connects as the shard (waiting for NATS),
 * follows and takes over (runStandby), and closes its connection; the
 * caller then starts the shard on `dataDir`.
 */
export async function runStandbyProcess(o: StandbyProcessOptions): Promise<Takeover> {
  const nc = await connect({
    ...natsConnectionOptions(o.natsUrl, o.natsAccess ?? {}),
    name: `frontier-${o.cluster}-${o.shardId}-standby`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
  });
  try {
    const kvReplicas = o.kvReplicas ?? DEFAULT_KV_REPLICAS;
    const kv = await openSlotBucket(nc, { cluster: o.cluster, kvReplicas, logger: o.log });
    return await runStandby({
      nc,
      kv,
      cluster: o.cluster,
      shardId: o.shardId,
      dataDir: o.dataDir,
      kvReplicas,
      log: o.log,
      ...(o.failoverAfterMs === undefined ? {} : { failoverAfterMs: o.failoverAfterMs }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  } finally {
    await nc.close().catch(() => {});
  }
}

export interface RestoreOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly shardId: string;
  /** Emptied first (journal-follower.ts); holds the copy afterwards. */
  readonly dataDir: string;
}

/**
 * Rebuilds the shard's journal, as its stream holds it now, in `dataDir`
 * (a whole base and the whole blocks after it; an unfinished base is left
 * out). Resolves with the last sequence applied and whether there was a
 * copy to make. A read: the stream is not fenced (runStandby does that),
 * nor created when there is none (nothing to copy; a stream made here
 * would have whatever replicas this call knew, not the primary's).
 */
export async function restoreFromStream(o: RestoreOptions): Promise<{ lastSeq: number; hasCopy: boolean }> {
  const end = await journalStreamEnd(o.nc, o.cluster, o.shardId);
  const follower = JournalFollower.open(o.dataDir);
  try {
    if (end > 0) await applyStream(o, follower, { through: end }).done;
    await follower.settle();
    return { lastSeq: follower.lastSeq, hasCopy: follower.hasCopy };
  } finally {
    await follower.close();
  }
}

interface Following {
  /** Ends the consumer; resolves once the last message taken is applied. */
  stop(): Promise<void>;
  /** The first failure applying a message, if any. */
  readonly failure: () => unknown;
}

/** Applies the stream to `follower` from its first message on, in the background. */
function follow(o: StandbyOptions, follower: JournalFollower): Following {
  let failure: unknown;
  const applying = applyStream(o, follower, { settleEach: true });
  const done = applying.done.catch((error: unknown) => {
    failure = error;
  });
  return {
    async stop() {
      await applying.close();
      await done;
    },
    failure: () => failure,
  };
}

interface Applying {
  /** Settles once the consumer ended and the last message it took is applied; rejects with the first failure. */
  readonly done: Promise<void>;
  /** Ends the consumer (at once when it opens, if it is not open yet). */
  close(): Promise<void>;
}

/**
 * The shard's journal stream applied to `follower` from its first message
 * on, in stream order (an ordered consumer), until the message at `through`
 * is applied (none: until `close`); each message settled before the next
 * when `settleEach`.
 */
function applyStream(
  o: { readonly nc: NatsConnection; readonly cluster: string; readonly shardId: string },
  follower: JournalFollower,
  until: { readonly through?: number; readonly settleEach?: boolean },
): Applying {
  const stream = subjectsFor(o.cluster).journalStream(o.shardId);
  let closed = false;
  let messages: ConsumerMessages | undefined;
  const done = (async () => {
    const consumer = await jetstream(o.nc).consumers.get(stream);
    messages = await consumer.consume();
    if (closed) await messages.close();
    for await (const m of messages) {
      await follower.apply({
        seq: m.seq,
        header: (name) => m.headers?.get(name) || undefined,
        data: m.data,
      });
      if (until.settleEach === true) await follower.settle();
      if (until.through !== undefined && m.seq >= until.through) break;
    }
    // A read up to `through` ends its own consumer; any other is ended by `close`.
    if (until.through !== undefined) await messages.close();
  })();
  return {
    async close() {
      closed = true;
      await messages?.close();
    },
    done,
  };
}

/** Resolves once the primary is silent and the follower holds a copy with every message the stream has. */
async function untilSilent(
  o: StandbyOptions,
  jsm: JetStreamManager,
  follower: JournalFollower,
  following: Following,
  silent: () => boolean,
): Promise<void> {
  const stream = subjectsFor(o.cluster).journalStream(o.shardId);
  const checkMs = o.checkMs ?? DEFAULT_STANDBY_CHECK_MS;
  for (;;) {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error("standby stopped");
    if (following.failure() !== undefined) throw following.failure();
    if (silent() && follower.hasCopy) {
      const info = await jsm.streams.info(stream);
      if (follower.lastSeq >= info.state.last_seq) return;
    }
    await new Promise((resolve) => setTimeout(resolve, checkMs));
  }
}

/**
 * Publishes the takeover marker right after the last message applied.
 * Resolves with its sequence, or undefined when the stream holds more than
 * that (the primary wrote meanwhile: not silent after all, or not applied yet).
 */
async function fence(o: StandbyOptions, lastSeq: number, dataId: string): Promise<number | undefined> {
  const h = headers();
  h.set(JournalHeader.KIND, JournalKind.TAKEOVER);
  h.set(JournalHeader.RUN, dataId);
  h.set(JournalHeader.ORIGIN, dataId);
  try {
    const ack = await jetstream(o.nc).publish(subjectsFor(o.cluster).journal(o.shardId), MARKER_BODY, {
      msgID: `${dataId}.takeover`,
      expect: { lastSequence: lastSeq },
      headers: h,
    });
    return ack.seq;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence)
      return undefined;
    throw error;
  }
}
