/**
 * Errors of the client. What a reply carries arrives as the protocol's typed
 * errors (`fromWireError`: the engine's classes, or `ProtocolError`); what
 * goes wrong on the way there is decided here, in one function
 * (`fromTransportError`), by the NATS client's error classes — never by
 * message text:
 *
 *   nats-core TimeoutError                         → RequestTimeoutError  (TIMEOUT, retryable)
 *   nats-core RequestError caused by NoResponders  → NoRespondersError    (NO_RESPONDERS, retryable)
 *   nats-core RequestError caused by a permissions
 *     violation (the role may not publish there)   → ClientError PERMISSION_DENIED
 *   nats-core RequestError (connection lost, …)    → ClientError DISCONNECTED (retryable)
 *   nats-core ClosedConnectionError / draining     → ClientError CLOSED
 *
 * `RequestTimeoutError` and `NoRespondersError` are `ProtocolError`s with the
 * catalogue's codes, so `isRetryable` and `code` work on them as on any reply
 * error; their classes let a caller tell "nobody is listening, nothing
 * happened" from "no answer in time, it may have happened".
 */

import { type Op, ProtocolError, WireErrorCode } from "@frontier/protocol";
import {
  ClosedConnectionError,
  DrainingConnectionError,
  NoRespondersError as NatsNoRespondersError,
  RequestError as NatsRequestError,
  TimeoutError as NatsTimeoutError,
  PermissionViolationError,
} from "@nats-io/nats-core";

/** Codes of failures that belong to the client itself rather than to a reply. */
export const ClientErrorCode = {
  /** Could not reach NATS when connecting. */
  CONNECT_FAILED: "CONNECT_FAILED",
  /** The client (or the worker / submitter) was closed; the operation was not sent. */
  CLOSED: "CLOSED",
  /** The connection dropped while a request was open; it may or may not have been applied. */
  DISCONNECTED: "DISCONNECTED",
  /** The caller's AbortSignal fired before a reply arrived. */
  ABORTED: "ABORTED",
  /** NATS refused the request: this connection's role may not send it (docs/security.md). Nothing was sent. */
  PERMISSION_DENIED: "PERMISSION_DENIED",
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export class ClientError extends Error {
  override readonly name = "ClientError";
  /** Whether sending the same request again can succeed. */
  readonly retryable: boolean;
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = code === ClientErrorCode.DISCONNECTED;
  }
}

/** No reply within the request's timeout. The request may have been applied: retrying it unchanged is safe. */
export class RequestTimeoutError extends ProtocolError {
  constructor(
    readonly op: Op,
    readonly subject: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(WireErrorCode.TIMEOUT, `${op}: no reply on ${subject} within ${timeoutMs} ms`, options);
    renamed(this, "RequestTimeoutError");
  }
}

/** Nobody listens on the subject (no coordinator running for the cluster). The request was not applied. */
export class NoRespondersError extends ProtocolError {
  constructor(
    readonly op: Op,
    readonly subject: string,
    options?: { cause?: unknown },
  ) {
    super(
      WireErrorCode.NO_RESPONDERS,
      `${op}: no coordinator answers on ${subject} (is the cluster running, and is its name right?)`,
      options,
    );
    renamed(this, "NoRespondersError");
  }
}

/** The lease of a running task was lost (expired, moved on, or the task was cancelled); the handler's AbortSignal carries it. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
  constructor(
    readonly taskId: string,
    readonly token: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * Thrown by a task handler to choose how the task fails: `retryable: false`
 * fails it for good whatever attempts it has left. Any other error a handler
 * throws fails the task retryably.
 */
export class TaskError extends Error {
  override readonly name: string = "TaskError";
  readonly retryable: boolean;
  constructor(message: string, options?: { retryable?: boolean; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options?.retryable ?? true;
  }
}

/**
 * What a handler's signal aborts with, and the failure reported, when an
 * attempt runs past its run time limit (the task's `timeoutMs`, else the
 * worker's): a retryable failure, as the shard counts it.
 */
export class AttemptTimeoutError extends TaskError {
  override readonly name: string = "AttemptTimeoutError";
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`, { retryable: true });
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A transport failure of a request as the client's typed error, or null when
 * `err` is not one (it is then rethrown as it is). `site` is an error created
 * when the request was made: its stack replaces the timer's, so a timeout
 * shows the caller's stack.
 */
export function fromTransportError(
  err: unknown,
  op: Op,
  subject: string,
  timeoutMs: number,
  site: Error,
): Error | null {
  let mapped: Error | null = null;
  if (err instanceof NatsTimeoutError) {
    mapped = new RequestTimeoutError(op, subject, timeoutMs, { cause: err });
  } else if (err instanceof NatsRequestError && err.isNoResponders()) {
    mapped = new NoRespondersError(op, subject, { cause: err });
  } else if (err instanceof NatsNoRespondersError) {
    mapped = new NoRespondersError(op, subject, { cause: err });
  } else if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) {
    mapped = new ClientError(ClientErrorCode.CLOSED, `${op}: the NATS connection is closed`, { cause: err });
  } else if (err instanceof NatsRequestError && err.cause instanceof PermissionViolationError) {
    mapped = new ClientError(
      ClientErrorCode.PERMISSION_DENIED,
      `${op}: NATS does not let this connection publish to ${subject} (its credentials are for another role; see docs/security.md)`,
      { cause: err },
    );
  } else if (err instanceof NatsRequestError) {
    mapped = new ClientError(ClientErrorCode.DISCONNECTED, `${op}: ${err.message || "request failed"}`, {
      cause: err,
    });
  }
  if (mapped !== null) mapped.stack = `${mapped.name}: ${mapped.message}\n${stackFrames(site)}`;
  return mapped;
}

/**
 * ProtocolError types its `name` as the literal "ProtocolError", so a subclass
 * cannot override the field; it sets its own name on the instance instead.
 */
function renamed(err: Error, name: string): void {
  Object.defineProperty(err, "name", { value: name, enumerable: false, configurable: true, writable: false });
}

function stackFrames(site: Error): string {
  const stack = site.stack ?? "";
  const firstFrame = stack.indexOf("\n    at ");
  return firstFrame === -1 ? "" : stack.slice(firstFrame + 1);
}
