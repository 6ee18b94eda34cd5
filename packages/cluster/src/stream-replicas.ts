/**
 * The replica count of the JetStream streams a cluster keeps (the slot
 * bucket's, each shard's journal stream): `kvReplicas`, 3 on a NATS
 * cluster. Whoever opens one first creates it; a stream made with fewer
 * (by a process told no count, or before the count was raised) is scaled up
 * by the next open that asks for more, so what is acknowledged is on as many
 * servers as the operator said, whichever process happened to start first.
 */
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";

/** Refusals of a stream's replica count; each changes nothing. */
export const StreamReplicasErrorCode = {
  /** The stream has fewer replicas than asked and NATS refused to add them (a single server keeps one). */
  TOO_FEW_REPLICAS: "TOO_FEW_REPLICAS",
} as const;
export type StreamReplicasErrorCode = (typeof StreamReplicasErrorCode)[keyof typeof StreamReplicasErrorCode];

export class StreamReplicasError extends Error {
  override readonly name = "StreamReplicasError";
  constructor(
    readonly code: StreamReplicasErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `info`'s stream with at least `replicas` replicas: as it is when it has
 * that many or more, else updated to `replicas` (JetStream copies the
 * stream to the new peers). `what` names it in the error.
 */
export async function withReplicas(
  jsm: JetStreamManager,
  info: StreamInfo,
  replicas: number,
  what: string,
): Promise<StreamInfo> {
  const have = info.config.num_replicas || 1;
  if (have >= replicas) return info;
  const refused = (why: string, cause?: unknown) =>
    new StreamReplicasError(
      StreamReplicasErrorCode.TOO_FEW_REPLICAS,
      `${what} has ${have} replica${have === 1 ? "" : "s"}, ${replicas} asked (kvReplicas), and ${why}`,
      cause === undefined ? {} : { cause },
    );
  // A single server takes the update and reports the count, with one copy all the same (a
  // stream it is asked to make so is refused): refused here alike, rather than claim copies.
  if (info.cluster === undefined) throw refused("NATS is a single server, which keeps one");
  try {
    return await jsm.streams.update(info.config.name, { ...info.config, num_replicas: replicas });
  } catch (error) {
    throw refused(
      `NATS refused to add them: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
}
