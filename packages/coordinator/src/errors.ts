/**
 * Errors of the coordinator. What a client is told travels as the protocol's
 * wire errors (`ProtocolError` with a catalogued code, or the engine's
 * classes passed through from a shard); the classes here add the typed
 * fields the coordinator itself branches on (which shard, which op).
 *
 * Transport failures of a coordinator → shard request are turned into typed
 * errors in exactly one function, `fromShardTransportError`, by the NATS
 * client's error classes, never by message text:
 *
 *   nats-core RequestError caused by NoRespondersError → ShardUnavailableError (SHARD_UNAVAILABLE)
 *   nats-core TimeoutError                             → ShardTimeoutError     (TIMEOUT)
 *   nats-core RequestError (connection lost), closed   → ShardUnavailableError (SHARD_UNAVAILABLE)
 *
 * Both are retryable: "no responders" means the request was not applied; a
 * timeout means it may have been, which is safe because every request is
 * idempotent on retry (see packages/protocol/README.md).
 */
import { type Op, ProtocolError, WireErrorCode } from "@frontier/protocol";
import {
  ClosedConnectionError,
  DrainingConnectionError,
  NoRespondersError as NatsNoRespondersError,
  RequestError as NatsRequestError,
  TimeoutError as NatsTimeoutError,
} from "@nats-io/nats-core";

/** The shard owning a slot is down (no responders), or this coordinator lost its connection. Not applied. */
export class ShardUnavailableError extends ProtocolError {
  constructor(
    readonly shardId: string,
    readonly op: Op,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(WireErrorCode.SHARD_UNAVAILABLE, message, options);
    named(this, "ShardUnavailableError");
  }
}

/** A shard did not answer in time. The request may or may not have been applied. */
export class ShardTimeoutError extends ProtocolError {
  constructor(
    readonly shardId: string,
    readonly op: Op,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      WireErrorCode.TIMEOUT,
      `shard ${shardId} did not answer ${op} within ${timeoutMs} ms; it may have been applied, retry unchanged`,
      options,
    );
    named(this, "ShardTimeoutError");
  }
}

/**
 * This coordinator does not know every shard yet (it is starting and its slot
 * table is still loading), and the request must ask all of them: nothing was
 * sent. Retryable; another coordinator may serve it at once.
 */
export class ShardsUnknownError extends ProtocolError {
  constructor(waitedMs: number) {
    super(
      WireErrorCode.SHARD_UNAVAILABLE,
      `this coordinator has not loaded the slot table within ${waitedMs} ms, so it does not know every shard yet; retry`,
    );
    named(this, "ShardsUnknownError");
  }
}

/** No shard owns the slot (shards still starting, or one left): nothing was sent. Retryable. */
export class SlotUnownedError extends ProtocolError {
  constructor(
    readonly slot: number,
    message: string,
  ) {
    super(WireErrorCode.SHARD_UNAVAILABLE, message);
    named(this, "SlotUnownedError");
  }
}

/** A shard answered with bytes that are not a valid reply: a bug or a version mismatch on its side. */
export class ShardReplyError extends ProtocolError {
  constructor(
    readonly shardId: string,
    readonly op: Op,
    cause: unknown,
  ) {
    super(
      WireErrorCode.INTERNAL,
      `shard ${shardId} sent an unreadable reply to ${op}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    named(this, "ShardReplyError");
  }
}

/**
 * Gives a ProtocolError subclass its own `name` (for logs and stacks);
 * ProtocolError types its name as the literal "ProtocolError", so a subclass
 * cannot redeclare the field.
 */
function named(err: ProtocolError, name: string): void {
  Object.defineProperty(err, "name", { value: name, enumerable: false, configurable: true, writable: true });
}

/** Codes of failures of the coordinator process itself (starting it, its options). */
export const CoordinatorErrorCode = {
  /** An option is missing or out of range; the message names it. */
  INVALID_OPTION: "INVALID_OPTION",
  /** Could not connect to NATS at `natsUrl`. */
  CONNECT_FAILED: "CONNECT_FAILED",
  /** The metrics HTTP server could not listen on `metricsPort`. */
  METRICS_LISTEN_FAILED: "METRICS_LISTEN_FAILED",
} as const;
export type CoordinatorErrorCode = (typeof CoordinatorErrorCode)[keyof typeof CoordinatorErrorCode];

export class CoordinatorError extends Error {
  override readonly name = "CoordinatorError";
  constructor(
    readonly code: CoordinatorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * A transport failure of a request to `shardId` as a typed error, or null
 * when `err` is not one (the caller rethrows it as it is).
 */
export function fromShardTransportError(
  err: unknown,
  shardId: string,
  op: Op,
  timeoutMs: number,
): ProtocolError | null {
  if (err instanceof NatsTimeoutError) return new ShardTimeoutError(shardId, op, timeoutMs, { cause: err });
  if ((err instanceof NatsRequestError && err.isNoResponders()) || err instanceof NatsNoRespondersError) {
    return new ShardUnavailableError(
      shardId,
      op,
      `shard ${shardId} does not answer (no responders: down or restarting); retry after a pause`,
      { cause: err },
    );
  }
  if (
    err instanceof ClosedConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof NatsRequestError
  ) {
    return new ShardUnavailableError(
      shardId,
      op,
      `shard ${shardId} unreachable: the coordinator's NATS connection is ${
        err instanceof NatsRequestError ? "interrupted" : "closing"
      }; retry`,
      { cause: err },
    );
  }
  return null;
}

/** Whether `err` says the shard may come back (retry the same request later). */
export function isShardTransient(err: unknown): boolean {
  return err instanceof ShardUnavailableError || err instanceof ShardTimeoutError;
}
