/**
 * The coordinator's one way to talk to a shard: a request on
 * `frontier.<cluster>.shard.<id>.<op>`, encoded and decoded with the
 * protocol codec. Whatever goes wrong arrives as a typed error:
 *
 *   - the shard's error reply → the error it stands for (`fromWireError`:
 *     the engine's classes, or ProtocolError), passed on to the client as is;
 *   - no responders / timeout / lost connection → ShardUnavailableError /
 *     ShardTimeoutError (see errors.ts);
 *   - an unreadable reply, or a request the coordinator built wrongly →
 *     INTERNAL, never BAD_MESSAGE (which would tell the client its own
 *     message was bad).
 */
import {
  type ClusterSubjects,
  decodeReply,
  encodeRequest,
  type OkReply,
  type Op,
  ProtocolError,
  type RequestOf,
  toWireError,
  unwrapReply,
  WireErrorCode,
} from "@frontier/protocol";
import type { NatsConnection } from "@nats-io/nats-core";
import { fromShardTransportError, ShardReplyError } from "./errors.js";

export interface ShardLink {
  /** The ok reply of `shardId` to `request`; rejects with the typed error otherwise. */
  request<O extends Op>(shardId: string, request: RequestOf<O>, timeoutMs?: number): Promise<OkReply<O>>;
  /** `request`, also telling the reply's encoded size (for budgeting a combined reply). */
  requestSized<O extends Op>(
    shardId: string,
    request: RequestOf<O>,
    timeoutMs?: number,
  ): Promise<{ reply: OkReply<O>; bytes: number }>;
  /**
   * Publishes `request` to `shardId` with someone else's reply subject
   * (`replyTo`, the client's): the shard answers them, not this
   * coordinator. Absent: the link cannot (nothing is forwarded).
   */
  forward?<O extends Op>(shardId: string, request: RequestOf<O>, replyTo: string): void;
}

/** Told of every shard request's outcome: "OK" or the error code, and how long it took. */
export type ShardRequestObserver = (shardId: string, op: Op, code: string, seconds: number) => void;

export class NatsShardLink implements ShardLink {
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: ClusterSubjects,
    private readonly defaultTimeoutMs: number,
    private readonly observe: ShardRequestObserver = () => {},
  ) {}

  async request<O extends Op>(
    shardId: string,
    request: RequestOf<O>,
    timeoutMs = this.defaultTimeoutMs,
  ): Promise<OkReply<O>> {
    return (await this.requestSized(shardId, request, timeoutMs)).reply;
  }

  async requestSized<O extends Op>(
    shardId: string,
    request: RequestOf<O>,
    timeoutMs = this.defaultTimeoutMs,
  ): Promise<{ reply: OkReply<O>; bytes: number }> {
    const op = request.op as O;
    const started = performance.now();
    try {
      const sized = await this.send(shardId, op, request, timeoutMs);
      this.observe(shardId, op, "OK", (performance.now() - started) / 1000);
      return sized;
    } catch (err) {
      this.observe(shardId, op, toWireError(err).code, (performance.now() - started) / 1000);
      throw err;
    }
  }

  forward<O extends Op>(shardId: string, request: RequestOf<O>, replyTo: string): void {
    this.nc.publish(this.subjects.shard(shardId, request.op as O), this.encode(request), { reply: replyTo });
  }

  private encode<O extends Op>(request: RequestOf<O>): Uint8Array {
    try {
      return encodeRequest(request);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new ProtocolError(
        WireErrorCode.INTERNAL,
        `coordinator built a bad ${String(request.op)} request: ${why}`,
        { cause },
      );
    }
  }

  private async send<O extends Op>(
    shardId: string,
    op: O,
    request: RequestOf<O>,
    timeoutMs: number,
  ): Promise<{ reply: OkReply<O>; bytes: number }> {
    const bytes = this.encode(request);
    let data: Uint8Array;
    try {
      data = (await this.nc.request(this.subjects.shard(shardId, op), bytes, { timeout: timeoutMs })).data;
    } catch (err) {
      throw fromShardTransportError(err, shardId, op, timeoutMs) ?? err;
    }
    let reply: ReturnType<typeof decodeReply<O>>;
    try {
      reply = decodeReply(data, op);
    } catch (cause) {
      throw new ShardReplyError(shardId, op, cause);
    }
    return { reply: unwrapReply(reply), bytes: data.byteLength };
  }
}
