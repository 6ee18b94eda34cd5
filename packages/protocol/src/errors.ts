/**
 * The wire's error catalogue: every error a reply can carry, with a stable
 * code and whether retrying the same request can succeed. There is one
 * decoder at each boundary: `toWireError` turns anything thrown into a
 * `WireError` on the way out, `fromWireError` turns it back into a typed error
 * on the way in: the engine's own classes for engine codes, `ProtocolError`
 * for the rest. Callers branch on `code` (or the class), never on text.
 */
import {
  ErrorCode,
  FrontierError,
  InvalidArgumentError,
  InvalidStateError,
  type Problem,
  StaleLeaseError,
  UnknownTaskError,
  ValidationError,
} from "@frontier/core";
import type { WireError } from "./data.js";
import {
  MAX_AMBIGUOUS_WORKFLOWS,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_ID_LENGTH,
  MAX_PROBLEMS,
  MAX_REASON_LENGTH,
} from "./limits.js";

/** An error as an error reply carries it (its schema, with the fields' docs, is data.ts's `wireError`). */
export type { WireError } from "./data.js";

/**
 * Every code an error reply can carry: the engine's codes (spread from core,
 * so a new engine code must be catalogued below before this compiles) plus
 * the codes of the boundary itself.
 */
export const WireErrorCode = {
  ...ErrorCode,
  /** Not msgpack, not an envelope, or a field of the wrong type, missing or unknown. */
  BAD_MESSAGE: "BAD_MESSAGE",
  /** The envelope's protocol version is not the one this peer speaks. */
  UNSUPPORTED_VERSION: "UNSUPPORTED_VERSION",
  /** The encoded message exceeds MAX_MESSAGE_BYTES. */
  MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
  /** More tasks than MAX_TASKS_PER_BATCH, or a lease `max` above MAX_LEASES_PER_REQUEST. */
  BATCH_TOO_LARGE: "BATCH_TOO_LARGE",
  /** An id longer than MAX_ID_LENGTH. */
  ID_TOO_LONG: "ID_TOO_LONG",
  /** A task payload larger than MAX_PAYLOAD_BYTES, or a result larger than MAX_RESULT_BYTES, once encoded. */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  /** A task with more than MAX_PREREQUISITES prerequisites. */
  TOO_MANY_PREREQUISITES: "TOO_MANY_PREREQUISITES",
  /** The shard asked does not own the task's slot (ownership moved); refresh routing and retry. */
  SLOT_NOT_OWNED: "SLOT_NOT_OWNED",
  /**
   * The task's slot is moving to another shard (docs/cluster.md, "Slot
   * movement"): nothing was applied; retry, and the request reaches the
   * slot's new owner once the move is done.
   */
  SLOT_MOVING: "SLOT_MOVING",
  /** The shard owning the slot is down or still recovering; retry after a pause. */
  SHARD_UNAVAILABLE: "SHARD_UNAVAILABLE",
  /**
   * A task named by id alone, and more than one workflow holds a task of that
   * id (ids are unique per shard, not per cluster); `workflows` lists them.
   * Nothing was changed: name the workflow.
   */
  AMBIGUOUS_TASK: "AMBIGUOUS_TASK",
  /**
   * The process holds as much as its limits allow (waiting long-polls,
   * prepared parts, a shard's live tasks, payload bytes or idempotency keys;
   * the message names the limit). Not applied.
   */
  OVERLOADED: "OVERLOADED",
  /** No reply within the request's timeout. The request may or may not have been applied. */
  TIMEOUT: "TIMEOUT",
  /** Nobody listens on the subject (no coordinator, or the shard is gone). Not applied. */
  NO_RESPONDERS: "NO_RESPONDERS",
  /** A bug or unexpected failure on the other side. */
  INTERNAL: "INTERNAL",
} as const;
export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];

/** Codes raised by the protocol or the cluster rather than by the engine; carried by `ProtocolError`. */
export type BoundaryErrorCode = Exclude<WireErrorCode, ErrorCode>;

/**
 * Why a shard is unavailable, carried with SHARD_UNAVAILABLE as the typed
 * field `detail` (never only in the text): the shard's own failure codes
 * (@frontier/shard's ShardErrorCode, held to this list by a test in
 * @frontier/cluster) and the actor's states in which it answers nothing.
 */
export const SHARD_UNAVAILABLE_DETAILS = [
  // The journal failed and the shard stopped serving (the cause below, when known).
  "SHARD_FAILED",
  // The journal's causes.
  "SHARD_FENCED",
  "STORAGE_FULL",
  "STORAGE_FAILED",
  "REPLICATION_FAILED",
  // Its data cannot be opened.
  "SHARD_LOCKED",
  "CORRUPT_DATA",
  "FOREIGN_DATA",
  "INCOMPATIBLE_FORMAT",
  "SHARD_CLOSED",
  // The actor: failed and being restarted by its supervisor, or closing.
  "RESTARTING",
  "CLOSING",
] as const;
export type ShardUnavailableDetail = (typeof SHARD_UNAVAILABLE_DETAILS)[number];

export function isShardUnavailableDetail(value: unknown): value is ShardUnavailableDetail {
  return typeof value === "string" && (SHARD_UNAVAILABLE_DETAILS as readonly string[]).includes(value);
}

export interface WireErrorInfo {
  /** Whether the same request, sent again later, can succeed. */
  readonly retryable: boolean;
  /** "engine": thrown by @frontier/core, decoded as its classes. "boundary": decoded as ProtocolError. */
  readonly source: "engine" | "boundary";
  readonly description: string;
}

/**
 * The catalogue. Retrying a TIMEOUT is only safe because every mutating
 * request is idempotent on retry: submit (and prepare/commit/abort) by
 * idempotencyKey, lease by requestId, complete/fail/heartbeat by fencing token.
 */
export const WIRE_ERRORS: { readonly [C in WireErrorCode]: WireErrorInfo } = {
  VALIDATION_FAILED: {
    retryable: false,
    source: "engine",
    description: "The batch was rejected; `problems` lists every offending task.",
  },
  UNKNOWN_TASK: {
    retryable: false,
    source: "engine",
    description: "No such task (never submitted, or compacted).",
  },
  STALE_LEASE: {
    retryable: false,
    source: "engine",
    description: "The fencing token is not the task's live lease: the lease expired or moved on.",
  },
  INVALID_STATE: {
    retryable: false,
    source: "engine",
    description: "The operation does not apply to the task in its current state.",
  },
  INVALID_ARGUMENT: {
    retryable: false,
    source: "engine",
    description: "An argument of the request (not a task definition) is out of range.",
  },
  BAD_MESSAGE: {
    retryable: false,
    source: "boundary",
    description:
      "Garbage bytes, not msgpack, not an envelope, or a field of the wrong type, missing or unknown.",
  },
  UNSUPPORTED_VERSION: {
    retryable: false,
    source: "boundary",
    description: "The message's protocol version is not the one the receiver speaks.",
  },
  MESSAGE_TOO_LARGE: {
    retryable: false,
    source: "boundary",
    description: "The encoded message exceeds MAX_MESSAGE_BYTES; split the batch.",
  },
  BATCH_TOO_LARGE: {
    retryable: false,
    source: "boundary",
    description: "Too many tasks in a submit, or too many leases asked for at once.",
  },
  ID_TOO_LONG: { retryable: false, source: "boundary", description: "An id is longer than MAX_ID_LENGTH." },
  PAYLOAD_TOO_LARGE: {
    retryable: false,
    source: "boundary",
    description: "A task payload exceeds MAX_PAYLOAD_BYTES, or a result MAX_RESULT_BYTES, once encoded.",
  },
  TOO_MANY_PREREQUISITES: {
    retryable: false,
    source: "boundary",
    description: "A task lists more than MAX_PREREQUISITES prerequisites.",
  },
  SLOT_NOT_OWNED: {
    retryable: true,
    source: "boundary",
    description: "The shard does not own the task's slot (ownership moved); refresh routing and retry.",
  },
  SLOT_MOVING: {
    retryable: true,
    source: "boundary",
    description: "The task's slot is moving to another shard; nothing was applied; retry.",
  },
  SHARD_UNAVAILABLE: {
    retryable: true,
    source: "boundary",
    description: "The shard owning the slot is down or recovering; retry after a pause.",
  },
  AMBIGUOUS_TASK: {
    retryable: false,
    source: "boundary",
    description:
      "A task named by id alone that more than one workflow holds; `workflows` lists them; nothing changed: name the workflow.",
  },
  OVERLOADED: {
    retryable: true,
    source: "boundary",
    description:
      "The process is at a limit of what it holds (long-polls, prepared parts, a shard's live tasks, payload bytes, idempotency keys); not applied; retry after a pause.",
  },
  TIMEOUT: {
    retryable: true,
    source: "boundary",
    description: "No reply in time; the request may have been applied, so retry it unchanged.",
  },
  NO_RESPONDERS: {
    retryable: true,
    source: "boundary",
    description: "Nobody listens on the subject (no coordinator or shard running); not applied.",
  },
  INTERNAL: { retryable: false, source: "boundary", description: "An unexpected failure on the other side." },
};

/** An error raised at the boundary (codec, routing, transport) rather than by the engine. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  readonly retryable: boolean;
  /** SHARD_UNAVAILABLE: why (see SHARD_UNAVAILABLE_DETAILS). */
  readonly detail: ShardUnavailableDetail | undefined;
  /** AMBIGUOUS_TASK: the workflows holding a task of the id (null: none). */
  readonly workflows: readonly (string | null)[] | undefined;
  constructor(
    readonly code: BoundaryErrorCode,
    message: string,
    options?: {
      cause?: unknown;
      retryable?: boolean;
      detail?: ShardUnavailableDetail;
      workflows?: readonly (string | null)[];
    },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options?.retryable ?? WIRE_ERRORS[code].retryable;
    this.detail = code === "SHARD_UNAVAILABLE" ? options?.detail : undefined;
    this.workflows =
      code === "AMBIGUOUS_TASK" && options?.workflows !== undefined
        ? options.workflows.slice(0, MAX_AMBIGUOUS_WORKFLOWS)
        : undefined;
  }
}

export function isWireErrorCode(code: unknown): code is WireErrorCode {
  return typeof code === "string" && Object.hasOwn(WIRE_ERRORS, code);
}

/**
 * Any thrown value as a `WireError`, for an error reply. Engine errors keep
 * their code and typed fields; NATS timeouts and no-responders become TIMEOUT
 * and NO_RESPONDERS; anything else is INTERNAL. Messages are clipped to
 * MAX_ERROR_MESSAGE_LENGTH and problems to MAX_PROBLEMS, so the reply always fits.
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof ProtocolError) {
    const base = wire(err.code, err.message, err.retryable);
    if (err.workflows !== undefined)
      return { ...base, workflows: err.workflows.map((w) => (w === null ? null : clip(w, MAX_ID_LENGTH))) };
    return err.detail === undefined ? base : { ...base, detail: err.detail };
  }
  if (err instanceof FrontierError) {
    const code = isWireErrorCode(err.code) ? err.code : WireErrorCode.INTERNAL;
    const base = wire(code, err.message, WIRE_ERRORS[code].retryable);
    if (err instanceof ValidationError) {
      return { ...base, problems: wireProblems(err.problems) };
    }
    if (err instanceof UnknownTaskError || err instanceof StaleLeaseError) {
      return { ...base, taskId: clip(err.taskId, MAX_ID_LENGTH) };
    }
    if (err instanceof InvalidStateError) {
      return { ...base, taskId: clip(err.taskId, MAX_ID_LENGTH), state: clip(err.state, MAX_ID_LENGTH) };
    }
    return base;
  }
  const transport = transportCode(err);
  if (transport !== null) return wire(transport, messageOf(err), true);
  return wire(WireErrorCode.INTERNAL, messageOf(err), false);
}

/**
 * A `WireError` as the typed error it stands for: `ValidationError`,
 * `UnknownTaskError`, `StaleLeaseError`, `InvalidStateError`,
 * `InvalidArgumentError` (or a plain `FrontierError` when the typed fields are
 * missing) for engine codes; `ProtocolError` for boundary codes. The message
 * is the sender's, verbatim.
 */
export function fromWireError(error: WireError): FrontierError | ProtocolError {
  const { code, message } = error;
  switch (code) {
    case WireErrorCode.VALIDATION_FAILED:
      return withMessage(new ValidationError(error.problems ?? []), message);
    case WireErrorCode.UNKNOWN_TASK:
      return error.taskId === undefined
        ? new FrontierError(code, message)
        : withMessage(new UnknownTaskError(error.taskId), message);
    case WireErrorCode.STALE_LEASE:
      return error.taskId === undefined
        ? new FrontierError(code, message)
        : new StaleLeaseError(error.taskId, message);
    case WireErrorCode.INVALID_STATE:
      return error.taskId === undefined || error.state === undefined
        ? new FrontierError(code, message)
        : new InvalidStateError(error.taskId, error.state, message);
    case WireErrorCode.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    default:
      return new ProtocolError(code, message, {
        retryable: error.retryable,
        ...(error.detail === undefined ? {} : { detail: error.detail }),
        ...(error.workflows === undefined ? {} : { workflows: error.workflows }),
      });
  }
}

/**
 * Whether the failed request may succeed if sent again unchanged: the
 * catalogue's answer for typed errors, true for NATS timeouts and
 * no-responders, false for anything unknown.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ProtocolError) return err.retryable;
  if (err instanceof FrontierError) return isWireErrorCode(err.code) && WIRE_ERRORS[err.code].retryable;
  return transportCode(err) !== null;
}

/**
 * TIMEOUT or NO_RESPONDERS for the errors nats.js (v3) rejects a request
 * with, else null. Matched by `name` (`TimeoutError`, `NoResponders`, also
 * as the `cause` of a `RequestError`) because this package does not depend
 * on the NATS client; the client package pins these names against real errors.
 */
function transportCode(err: unknown): "TIMEOUT" | "NO_RESPONDERS" | null {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++, e = e.cause) {
    if (e.name === "TimeoutError") return WireErrorCode.TIMEOUT;
    if (e.name === "NoResponders" || e.name === "NoRespondersError") return WireErrorCode.NO_RESPONDERS;
  }
  return null;
}

function wire(code: WireErrorCode, message: string, retryable: boolean): WireError {
  return { code, message: clip(message, MAX_ERROR_MESSAGE_LENGTH), retryable };
}

/** Problems as a reply carries them: the first MAX_PROBLEMS, each field clipped to its limit. */
export function wireProblems(problems: readonly Problem[]): Problem[] {
  return problems.slice(0, MAX_PROBLEMS).map(clipProblem);
}

function clipProblem(p: Problem): Problem {
  return { taskId: clip(p.taskId, MAX_ID_LENGTH), code: p.code, message: clip(p.message, MAX_REASON_LENGTH) };
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message === "" ? err.name : `${err.name}: ${err.message}`;
  let text: string;
  try {
    text = String(err);
  } catch {
    // No usable toString (a null-prototype object, or `toString` not a function).
    text = Object.prototype.toString.call(err);
  }
  return `non-error thrown: ${text}`;
}

/** `s`, cut to at most `max` code units with an ellipsis when cut. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** Errors rebuilt from the wire keep the sender's message, not one re-derived from their fields. */
function withMessage<E extends Error>(err: E, message: string): E {
  err.message = message;
  return err;
}
