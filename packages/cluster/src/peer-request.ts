/**
 * A request from this shard to another (`holds`, `deliverEvents`, `adopt`):
 * encoded, sent on the peer's subject for its op, answered within
 * `timeoutMs`, and the reply decoded as a reply to that op. The reply is
 * not unwrapped: what an error reply means is the caller's to say (a move's
 * driver tells the target's refusal apart from every other failure), and
 * `unwrapReply` turns it into the typed error it stands for. NATS's own
 * failures (timeout, no responders, a closed connection) and an unreadable
 * reply reject as they are.
 */
import {
  decodeReply,
  encodeRequest,
  type Op,
  type Reply,
  type RequestOf,
  subjectsFor,
} from "@frontier/protocol";
import type { NatsConnection } from "@nats-io/transport-node";

/** Where a shard's peers are: its connection and its cluster. */
export interface PeerContext {
  readonly nc: NatsConnection;
  readonly cluster: string;
}

/** `request` sent to shard `shardId`; resolves with its decoded reply. */
export async function requestPeer<O extends Op>(
  ctx: PeerContext,
  shardId: string,
  request: RequestOf<O>,
  timeoutMs: number,
): Promise<Reply<O>> {
  const op = request.op as O;
  const subject = subjectsFor(ctx.cluster).shard(shardId, op);
  const msg = await ctx.nc.request(subject, encodeRequest(request), { timeout: timeoutMs });
  return decodeReply(msg.data, op);
}
