/**
 * The codec: messages to msgpack bytes and back, checked both ways.
 *
 * On the wire every message is one msgpack map, the envelope fields first:
 *
 *   { v: 2, kind: "request", op: "submit", tasks: [...], idempotencyKey: "..." }
 *   { v: 2, kind: "reply", ok: true, op: "submit", accepted: 3, replayed: false }
 *   { v: 2, kind: "reply", ok: false, error: { code, message, retryable, ... } }
 *   { v: 2, kind: "frontier", shardId: "s1", deadline: 17e11, taskId: "t", ... }
 *
 * Maps use string keys and no msgpackr records (`useRecords: false`), so any
 * msgpack reader can decode them. Whatever the version, a message is a map
 * with `v`, and the error reply's shape never changes: a peer can always say,
 * and be told, why a message was refused (UNSUPPORTED_VERSION).
 *
 * `encode` checks what `decode` checks, so bytes that `encode` returns are
 * always accepted by `decode` (a property test pins this), and a sender learns
 * of a bad message before the round trip. Both throw `ProtocolError` (or the
 * engine's `InvalidArgumentError` for an argument out of range); a responder
 * replies with `encodeReply(errorReply(err))`.
 */
import { Packr } from "msgpackr";
import { clip, ProtocolError, WireErrorCode } from "./errors.js";
import { MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES, MAX_RESULT_BYTES } from "./limits.js";
import {
  type FrontierAnnouncement,
  frontierBody,
  type Message,
  type MessageKind,
  type Op,
  PROTOCOL_VERSION,
  type Reply,
  type Request,
  replyBody,
  requestBody,
} from "./messages.js";
import { describe, isPlainMap, parse } from "./schema.js";

// Plain maps only: records would need the reader to share msgpackr's record
// definitions, and structured-clone extensions would let a sender build
// object graphs we never asked for.
const packr = new Packr({ useRecords: false });

const KINDS: readonly MessageKind[] = ["request", "reply", "frontier"];

/** Encode a message; throws ProtocolError if it is not one the receiver would accept. */
export function encode(message: Message): Uint8Array {
  const kind = message.kind;
  const body = parseBody(kind, messageBody(message));
  let bytes: Uint8Array;
  try {
    bytes = packr.pack({ v: PROTOCOL_VERSION, kind, ...body });
  } catch (cause) {
    // Only an opaque payload can hold what msgpack cannot carry (a function, a symbol, a cycle).
    throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `cannot encode the message: ${errText(cause)}`, {
      cause,
    });
  }
  checkSize(bytes.byteLength);
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) checkPayloads(kind, body);
  return bytes;
}

/** Decode and check a message of any kind; throws ProtocolError with a message that says what is wrong. */
export function decode(bytes: Uint8Array): Message {
  if (!(bytes instanceof Uint8Array)) {
    throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `expected bytes, got ${typeof bytes}`);
  }
  // Before unpacking: an oversized message costs nothing to refuse.
  checkSize(bytes.byteLength);
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (cause) {
    throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `not a msgpack message: ${errText(cause)}`, { cause });
  }
  if (!isPlainMap(raw)) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      `not an envelope: expected a map, got ${describe(raw)}`,
    );
  }
  const { v, kind, ...fields } = raw;
  checkVersion(v);
  if (!isKind(kind)) return notAKind(kind);
  const body = parseBody(kind, fields);
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) checkPayloads(kind, body);
  return toMessage(kind, body);
}

export function encodeRequest(request: Request): Uint8Array {
  return encode({ kind: "request", request });
}

/**
 * Decode a request; with `op`, also require that it is that op's (the op a
 * responder subscribed for, or parsed from the subject).
 */
export function decodeRequest(bytes: Uint8Array, op?: Op): Request {
  const request = expectKind(decode(bytes), "request").request;
  if (op !== undefined && request.op !== op) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      `expected a ${JSON.stringify(op)} request, got a ${JSON.stringify(request.op)} request`,
    );
  }
  return request;
}

export function encodeReply(reply: Reply): Uint8Array {
  return encode({ kind: "reply", reply });
}

/** Decode the reply to an `op` request: an ok reply must be that op's. */
export function decodeReply<O extends Op>(bytes: Uint8Array, op: O): Reply<O> {
  const reply = expectKind(decode(bytes), "reply").reply;
  if (reply.ok && reply.op !== op) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      `expected a reply to ${JSON.stringify(op)}, got a reply to ${JSON.stringify(reply.op)}`,
    );
  }
  return reply as Reply<O>;
}

export function encodeFrontier(frontier: FrontierAnnouncement): Uint8Array {
  return encode({ kind: "frontier", frontier });
}

export function decodeFrontier(bytes: Uint8Array): FrontierAnnouncement {
  return expectKind(decode(bytes), "frontier").frontier;
}

/**
 * Bytes `value` takes when msgpack-encoded. For budgeting: a shard adding
 * leases to a reply, or a client splitting a batch, keeps the running total
 * under MAX_MESSAGE_BYTES.
 */
export function encodedByteLength(value: unknown): number {
  try {
    return packr.pack(value).byteLength;
  } catch (cause) {
    throw new ProtocolError(WireErrorCode.BAD_MESSAGE, `cannot encode the value: ${errText(cause)}`, {
      cause,
    });
  }
}

// -------------------------------------------------------------- internals

function checkSize(byteLength: number): void {
  if (byteLength > MAX_MESSAGE_BYTES) {
    throw new ProtocolError(
      WireErrorCode.MESSAGE_TOO_LARGE,
      `message of ${byteLength} bytes exceeds MAX_MESSAGE_BYTES (${MAX_MESSAGE_BYTES})`,
    );
  }
}

function checkVersion(v: unknown): void {
  if (v === PROTOCOL_VERSION) return;
  if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) {
    throw new ProtocolError(
      WireErrorCode.UNSUPPORTED_VERSION,
      `protocol version ${v} is not supported; this peer speaks version ${PROTOCOL_VERSION}`,
    );
  }
  throw new ProtocolError(
    WireErrorCode.BAD_MESSAGE,
    v === undefined
      ? "not an envelope: no protocol version (v)"
      : `not an envelope: protocol version (v) must be a positive integer, got ${clip(String(v), 40)}`,
  );
}

type Body = Request | Reply | FrontierAnnouncement;

function isKind(kind: unknown): kind is MessageKind {
  return typeof kind === "string" && (KINDS as readonly string[]).includes(kind);
}

/** The checked, rebuilt body of a message of `kind`. */
function parseBody(kind: MessageKind, raw: unknown): Body {
  switch (kind) {
    case "request":
      return parse(requestBody, raw);
    case "reply":
      return parse(replyBody, raw);
    case "frontier":
      return parse(frontierBody, raw);
    default:
      return notAKind(kind);
  }
}

function messageBody(message: Message): unknown {
  switch (message.kind) {
    case "request":
      return message.request;
    case "reply":
      return message.reply;
    case "frontier":
      return message.frontier;
    default:
      return notAKind((message as { kind?: unknown }).kind);
  }
}

function toMessage(kind: MessageKind, body: Body): Message {
  switch (kind) {
    case "request":
      return { kind, request: body as Request };
    case "reply":
      return { kind, reply: body as Reply };
    case "frontier":
      return { kind, frontier: body as FrontierAnnouncement };
  }
}

function notAKind(kind: unknown): never {
  throw new ProtocolError(
    WireErrorCode.BAD_MESSAGE,
    `not an envelope: kind must be one of ${KINDS.join(", ")}, got ${
      typeof kind === "string" ? JSON.stringify(clip(kind, 40)) : kind === undefined ? "none" : typeof kind
    }`,
  );
}

function expectKind<K extends MessageKind>(message: Message, kind: K): Extract<Message, { kind: K }> {
  if (message.kind !== kind) {
    throw new ProtocolError(
      WireErrorCode.BAD_MESSAGE,
      `expected a ${kind} message, got a ${message.kind} message`,
    );
  }
  return message as Extract<Message, { kind: K }>;
}

/**
 * PAYLOAD_TOO_LARGE for the first payload above MAX_PAYLOAD_BYTES or result
 * above MAX_RESULT_BYTES. Called only when the whole message is larger than
 * MAX_PAYLOAD_BYTES (else no payload can be; MAX_RESULT_BYTES is no smaller,
 * a test pins it).
 * A payload is re-encoded to measure it exactly only when a cheap upper bound
 * says it might be too large: re-encoding every payload of a big batch of
 * small ones cost a fifth of the decode time.
 */
function checkPayloads(kind: MessageKind, body: unknown): void {
  for (const [path, payload] of payloadsOf(kind, body)) {
    if (sizeBound(payload, MAX_PAYLOAD_BYTES) <= MAX_PAYLOAD_BYTES) continue;
    const size = encodedByteLength(payload);
    if (size > MAX_PAYLOAD_BYTES) {
      throw new ProtocolError(
        WireErrorCode.PAYLOAD_TOO_LARGE,
        `${path}: payload of ${size} bytes exceeds MAX_PAYLOAD_BYTES (${MAX_PAYLOAD_BYTES})`,
      );
    }
  }
  for (const [path, result] of resultsOf(kind, body)) {
    if (sizeBound(result, MAX_RESULT_BYTES) <= MAX_RESULT_BYTES) continue;
    const size = encodedByteLength(result);
    if (size > MAX_RESULT_BYTES) {
      throw new ProtocolError(
        WireErrorCode.PAYLOAD_TOO_LARGE,
        `${path}: result of ${size} bytes exceeds MAX_RESULT_BYTES (${MAX_RESULT_BYTES})`,
      );
    }
  }
}

/** Every task result a (checked) message body carries, with its path. */
function* resultsOf(kind: MessageKind, body: unknown): Generator<[string, unknown]> {
  const b = body as Record<string, unknown>;
  if (kind === "request" && b["op"] === "complete") {
    if (b["result"] !== undefined) yield ["result", b["result"]];
  } else if (kind === "request" && b["op"] === "settle") {
    const completes = b["completes"] as readonly { result?: unknown }[];
    for (let i = 0; i < completes.length; i++) {
      if (completes[i]?.result !== undefined) yield [`completes[${i}].result`, completes[i]?.result];
    }
  } else if (kind === "reply" && b["ok"] === true && (b["op"] === "lease" || b["op"] === "settle")) {
    const leases = b["leases"] as readonly { results?: readonly { result: unknown }[] }[];
    for (let i = 0; i < leases.length; i++) {
      const results = leases[i]?.results ?? [];
      for (let j = 0; j < results.length; j++)
        yield [`leases[${i}].results[${j}].result`, results[j]?.result];
    }
  } else if (kind === "reply" && b["ok"] === true && b["op"] === "getTask") {
    const task = b["task"] as { result?: unknown } | null;
    if (task?.result !== undefined) yield ["task.result", task.result];
  } else if (kind === "request" && b["op"] === "adopt") {
    const tasks = b["tasks"] as readonly { status: { result?: unknown } }[];
    for (let i = 0; i < tasks.length; i++) {
      if (tasks[i]?.status.result !== undefined) yield [`tasks[${i}].status.result`, tasks[i]?.status.result];
    }
  }
}

/**
 * An upper bound of the bytes msgpackr encodes `value` into, or some number
 * above `limit` as soon as the bound passes it (or for a value it does not
 * model, which then gets measured exactly). Bounds: a string takes at most
 * 3 bytes per UTF-16 code unit plus a 5-byte header; a number or int64 9;
 * undefined 3 (an extension); binary its length plus 6; a timestamp 15;
 * arrays and maps a 5-byte header plus their items. O(size of value).
 */
export function sizeBound(value: unknown, limit: number): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || v === undefined || typeof v === "boolean") total += 3;
    else if (typeof v === "number") total += 9;
    else if (typeof v === "string") total += 3 * v.length + 5;
    else if (v instanceof Uint8Array) total += v.byteLength + 6;
    else if (v instanceof Date) total += 15;
    else if (Array.isArray(v)) {
      total += 5;
      for (const item of v) stack.push(item);
    } else if (isPlainMap(v)) {
      total += 5;
      for (const key of Object.keys(v)) {
        total += 3 * key.length + 5;
        stack.push(v[key]);
      }
    } else return limit + 1;
    if (total > limit) return total;
  }
  return total;
}

/** Every task payload a (checked) message body carries, with its path. */
function* payloadsOf(kind: MessageKind, body: unknown): Generator<[string, unknown]> {
  const b = body as Record<string, unknown>;
  if (kind === "request" && (b["op"] === "submit" || b["op"] === "prepare" || b["op"] === "check")) {
    const tasks = b["tasks"] as readonly { payload?: unknown }[];
    for (let i = 0; i < tasks.length; i++) {
      if (tasks[i]?.payload !== undefined) yield [`tasks[${i}].payload`, tasks[i]?.payload];
    }
  } else if (kind === "reply" && b["ok"] === true && (b["op"] === "lease" || b["op"] === "settle")) {
    const leases = b["leases"] as readonly { task: { payload?: unknown } }[];
    for (let i = 0; i < leases.length; i++) {
      if (leases[i]?.task.payload !== undefined) yield [`leases[${i}].task.payload`, leases[i]?.task.payload];
    }
  } else if (kind === "reply" && b["ok"] === true && b["op"] === "getTask") {
    const task = b["task"] as { payload?: unknown } | null;
    if (task?.payload !== undefined) yield ["task.payload", task.payload];
  } else if (kind === "request" && b["op"] === "adopt") {
    const tasks = b["tasks"] as readonly { spec: { payload?: unknown } }[];
    for (let i = 0; i < tasks.length; i++) {
      if (tasks[i]?.spec.payload !== undefined) yield [`tasks[${i}].spec.payload`, tasks[i]?.spec.payload];
    }
  }
}

function errText(err: unknown): string {
  return clip(err instanceof Error ? err.message : String(err), 120);
}
