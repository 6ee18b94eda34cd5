/**
 * The recording, fault-injecting transport of the chaos clients: a
 * NatsConnection wrapper between the SDK and NATS. Every request a client
 * sends to the coordinators (submit, lease, heartbeat, complete, fail,
 * release, cancel) is decoded with the protocol's codec and recorded as an
 * `Exchange` (history.ts): what the SDK asked, what came back on the wire,
 * and whether the client got it.
 *
 *   SDK ──request──▶ tap: record the SDK's request ─[rewrite]─▶ NATS
 *   SDK ◀──reply─── tap: record the wire reply ─[drop: TIMEOUT]─◀ NATS
 *
 * Faults:
 *  - `dropReply`: a share of the replies, per op, is dropped after the
 *    cluster answered; the client waits out its timeout and sees a
 *    `RequestTimeoutError`, exactly as for a reply lost in the network. The
 *    history keeps the reply with `delivered: false` (the cluster acted on
 *    it; the client does not know).
 *  - `rewrite` (negative controls only): replace the request that goes out,
 *    or answer it without asking the cluster. The history records the
 *    SDK's original request and the reply the SDK got, so a rewrite that
 *    breaks a promise shows up as the violation it causes.
 *
 * Only the `request` method is wrapped; everything else is the connection's.
 */
import { RequestTimeoutError } from "@frontier/client";
import type { Lease, TaskInput } from "@frontier/core";
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  type Op,
  parseSubject,
  type Reply,
  type Request,
} from "@frontier/protocol";
import type {
  ChaosPayload,
  ExchangeReply,
  ExchangeRequest,
  HistoryEvent,
  LeaseGrant,
  TaskSummary,
} from "./history.js";

/** Engine default when a task does not say (the chaos shards run with the defaults). */
const DEFAULT_MAX_ATTEMPTS = 5;
const RECORDED: ReadonlySet<string> = new Set([
  "submit",
  "lease",
  "heartbeat",
  "complete",
  "fail",
  "release",
  "cancel",
  "settle",
]);
/** What a client sends straight to a shard. */
const TO_SHARD: ReadonlySet<string> = new Set(["heartbeat", "complete", "fail", "release", "settle"]);

/** What the wrapper needs of a NATS connection. */
export interface Requester {
  request(
    subject: string,
    payload?: Uint8Array,
    options?: { timeout?: number },
  ): Promise<{ data: Uint8Array }>;
}

export interface WireFaults {
  /** Chance (0..1), per op, that the reply is dropped after the cluster sent it. */
  readonly dropReply?: Partial<Record<Op, number>>;
  /**
   * Negative controls: the request to send instead (or the same), or a
   * reply to give without asking the cluster. `send` asks the cluster.
   */
  readonly rewrite?: (
    request: Request,
    send: (request: Request) => Promise<Reply>,
  ) => Promise<{ request: Request } | { reply: Reply }>;
  /** Uniform [0, 1); default Math.random. */
  readonly random?: () => number;
}

export interface TapOptions {
  /** Names the client in the history. */
  readonly src: string;
  readonly emit: (event: HistoryEvent) => void;
  readonly faults?: WireFaults;
}

/** `nc` with its `request` recorded (and faults injected). */
export function tapConnection<T extends Requester>(nc: T, options: TapOptions): T {
  const random = options.faults?.random ?? Math.random;
  const request = async (
    subject: string,
    payload?: Uint8Array,
    opts?: { timeout?: number },
  ): Promise<{ data: Uint8Array }> => {
    const parsed = parseSubject(subject);
    const recorded =
      parsed !== null &&
      parsed.role !== "frontier" &&
      RECORDED.has(parsed.op) &&
      (parsed.role === "coord" || TO_SHARD.has(parsed.op));
    if (!recorded || payload === undefined) return nc.request(subject, payload, opts);
    const op = parsed.op;
    const original = decodeRequest(payload, op);
    const sentAt = Date.now();
    const timeout = opts?.timeout ?? 5_000;
    // One request, one or more exchanges (a settle is a complete per task and maybe a lease).
    const parts = partsOf(original);
    const record = (reply: Reply | undefined, delivered: boolean, error?: string) => {
      for (const part of parts) {
        const rep = reply === undefined ? undefined : part.reply(reply);
        options.emit({
          k: "x",
          src: options.src,
          sentAt,
          at: Date.now(),
          req: part.req,
          ...(rep ? { rep } : {}),
          ...(error ? { error } : {}),
          delivered,
        });
      }
    };
    for (const { req } of parts) {
      if (req.op === "complete" || req.op === "fail" || req.op === "release" || req.op === "cancel")
        options.emit({ k: "sent", src: options.src, at: sentAt, req });
    }
    const send = async (r: Request): Promise<Reply> => {
      const msg = await nc.request(subject, r === original ? payload : encodeRequest(r), opts);
      return decodeReply(msg.data, op);
    };

    let reply: Reply;
    try {
      const rewritten = options.faults?.rewrite ? await options.faults.rewrite(original, send) : undefined;
      reply =
        rewritten === undefined
          ? await send(original)
          : "reply" in rewritten
            ? rewritten.reply
            : await send(rewritten.request);
    } catch (error) {
      record(undefined, false, (error as Error)?.name ?? String(error));
      throw error;
    }
    const drops = options.faults?.dropReply;
    // A settle carries completes: without a rate of its own, it loses replies as completes do.
    const drop = random() < (drops?.[op] ?? (op === "settle" ? drops?.complete : undefined) ?? 0);
    record(reply, !drop);
    if (drop) {
      const left = sentAt + timeout - Date.now();
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      throw new RequestTimeoutError(op, subject, timeout);
    }
    return { data: encodeReply(reply) };
  };
  return new Proxy(nc, {
    get(target, prop, receiver) {
      if (prop === "request") return request;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A task as the checker needs it. */
export function summaryOf(t: TaskInput): TaskSummary {
  const payload = t.payload as ChaosPayload | undefined;
  return {
    id: t.id,
    pre: t.prerequisites ?? [],
    maxAttempts: t.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    policy: t.onPrerequisiteFailure ?? "cancel",
    ...(payload?.poison ? { poison: true } : {}),
  };
}

/** A recorded request, and how to read its part of the reply. */
interface Part {
  readonly req: ExchangeRequest;
  reply(reply: Reply): ExchangeReply;
}

function partsOf(r: Request): Part[] {
  if (r.op !== "settle") return [{ req: summarize(r), reply: summarizeReply }];
  const parts: Part[] = r.completes.map((c, i) => ({
    req: { op: "complete", taskId: c.taskId, token: c.token },
    reply: (reply) => {
      if (!reply.ok) return { ok: false, code: reply.error.code };
      const outcome = reply.op === "settle" ? reply.results[i] : undefined;
      if (outcome === undefined) return { ok: false, code: "INTERNAL" };
      return "error" in outcome
        ? { ok: false, code: outcome.error.code }
        : { ok: true, duplicate: outcome.duplicate };
    },
  }));
  const lease = r.lease;
  if (lease !== undefined) {
    parts.push({
      req: {
        op: "lease",
        owner: lease.owner,
        requestId: lease.requestId,
        leaseMs: lease.leaseMs,
        max: lease.max,
      },
      reply: (reply) =>
        !reply.ok
          ? { ok: false, code: reply.error.code }
          : { ok: true, leases: reply.op === "settle" ? reply.leases.map(grantOf) : [] },
    });
  }
  return parts;
}

function grantOf(l: Lease): LeaseGrant {
  return { taskId: l.taskId, token: l.token, owner: l.owner, expiresAt: l.expiresAt, attempt: l.attempt };
}

function summarize(r: Request): ExchangeRequest {
  switch (r.op) {
    case "submit":
      return { op: "submit", key: r.idempotencyKey, tasks: r.tasks.map(summaryOf) };
    case "lease":
      return { op: "lease", owner: r.owner, requestId: r.requestId, leaseMs: r.leaseMs, max: r.max };
    case "heartbeat":
      return { op: "heartbeat", taskId: r.taskId, token: r.token, leaseMs: r.leaseMs };
    case "complete":
      return { op: "complete", taskId: r.taskId, token: r.token };
    case "fail":
      return { op: "fail", taskId: r.taskId, token: r.token, retryable: r.retryable };
    case "release":
      return { op: "release", taskId: r.taskId, token: r.token };
    case "cancel":
      return { op: "cancel", taskId: r.taskId };
    default:
      throw new Error(`not a recorded op: ${r.op}`);
  }
}

function summarizeReply(reply: Reply): ExchangeReply {
  if (!reply.ok) return { ok: false, code: reply.error.code };
  switch (reply.op) {
    case "submit":
      return { ok: true, accepted: reply.accepted, replayed: reply.replayed };
    case "lease":
      return { ok: true, leases: reply.leases.map(grantOf) };
    case "heartbeat":
      return { ok: true, expiresAt: reply.expiresAt };
    case "complete":
    case "release":
      return { ok: true, duplicate: reply.duplicate };
    case "fail":
      return { ok: true, state: reply.state };
    default:
      return { ok: true };
  }
}
