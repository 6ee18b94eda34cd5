/**
 * A stand-in coordinator for the client's own tests: one in-memory engine
 * (`Scheduler`) answering `frontier.<cluster>.coord.*` over a real NATS, with
 * the cluster's idempotency (submit by key, lease by request id) and long
 * polls. It lets the SDK be tested alone; the end-to-end tests use the real
 * coordinator and shards.
 *
 * Hooks for tests: `seen` counts requests per op, `script` intercepts a
 * request before the engine does (drop it, reply with an error, hold it until
 * a promise of the test's settles, or reply garbage), `requests` keeps every
 * decoded request, `coverage` is the shard coverage a stats reply claims.
 */
import { createHash } from "node:crypto";
import { type Lease, Scheduler, type SchedulerOptions, StaleLeaseError } from "@frontier/core";
import {
  type BoundaryErrorCode,
  COORDINATOR_QUEUE,
  decodeRequest,
  encodeReply,
  errorReply,
  type OkReply,
  ProtocolError,
  parseSubject,
  type Reply,
  type Request,
  type SettleOutcome,
  type ShardCoverage,
  subjectsFor,
  toWireError,
} from "@frontier/protocol";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";

export type Scripted =
  | { readonly action: "drop" }
  | { readonly action: "error"; readonly code: BoundaryErrorCode }
  | { readonly action: "garbage" }
  /** Handled once `until` settles: the test decides, by an event, when the reply may go. */
  | { readonly action: "hold"; readonly until: Promise<unknown> }
  /** A settle answered, applying nothing, with this error as every complete's outcome. */
  | { readonly action: "outcomes"; readonly code: BoundaryErrorCode };

export interface EngineCoordinator {
  readonly engine: Scheduler;
  readonly seen: Map<string, number>;
  readonly requests: Request[];
  /** Called for each request before the engine; return an action to intercept it. */
  script: ((request: Request) => Scripted | undefined) | null;
  /** What a stats reply says of the shards it covers; null leaves it out (a coordinator older than it). */
  coverage: ShardCoverage | null;
  close(): Promise<void>;
}

export function startEngineCoordinator(
  nc: NatsConnection,
  cluster: string,
  options: SchedulerOptions = {},
): EngineCoordinator {
  const engine = new Scheduler({ backoff: { baseMs: 10, maxMs: 50 }, ...options });
  const submits = new Map<string, { accepted: number }>();
  const grants = new Map<string, readonly Lease[]>();
  const seen = new Map<string, number>();
  const requests: Request[] = [];
  const ticker = setInterval(() => engine.tick(), 10);
  const subjects = subjectsFor(cluster);

  const handle = async (request: Request): Promise<Reply> => {
    switch (request.op) {
      case "submit": {
        const first = submits.get(request.idempotencyKey);
        if (first !== undefined) return { ok: true, op: "submit", accepted: first.accepted, replayed: true };
        const accepted = engine.addTasks(request.tasks);
        submits.set(request.idempotencyKey, { accepted });
        return { ok: true, op: "submit", accepted, replayed: false };
      }
      case "lease": {
        const granted = grants.get(request.requestId);
        if (granted !== undefined) return { ok: true, op: "lease", leases: granted };
        const until = Date.now() + request.waitMs;
        const options = {
          max: request.max,
          leaseMs: request.leaseMs,
          ...(request.types === undefined ? {} : { types: request.types }),
        };
        let leases = engine.lease(request.owner, options);
        while (leases.length === 0 && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 10));
          leases = engine.lease(request.owner, options);
        }
        leases = leases.map((l) => ({ ...l, secret: secretOf(l.taskId, l.token) }));
        grants.set(request.requestId, leases);
        return { ok: true, op: "lease", leases };
      }
      case "heartbeat":
        requireSecret(request);
        return {
          ok: true,
          op: "heartbeat",
          expiresAt: engine.heartbeat(request.taskId, request.token, { leaseMs: request.leaseMs }).expiresAt,
        };
      case "complete":
        requireSecret(request);
        return { ok: true, op: "complete", ...engine.complete(request.taskId, request.token) };
      case "settle": {
        // A coordinator's settle: each complete on its own, no leases (only a shard grants those).
        const results = request.completes.map((c): SettleOutcome => {
          try {
            requireSecret(c);
            return engine.complete(c.taskId, c.token);
          } catch (error) {
            return { error: toWireError(error) };
          }
        });
        return { ok: true, op: "settle", results, leases: [] };
      }
      case "fail": {
        requireSecret(request);
        const view = engine.fail(request.taskId, request.token, {
          retryable: request.retryable,
          reason: request.reason,
        });
        return { ok: true, op: "fail", state: view.state };
      }
      case "release":
        requireSecret(request);
        return { ok: true, op: "release", ...engine.release(request.taskId, request.token) };
      case "cancel":
        engine.cancel(request.taskId, request.reason);
        return { ok: true, op: "cancel" };
      case "updateDeadline":
        engine.updateDeadline(request.taskId, request.deadline);
        return { ok: true, op: "updateDeadline" };
      case "getTask":
        return { ok: true, op: "getTask", task: engine.getTask(request.taskId) ?? null };
      case "stats": {
        const stats = engine.stats();
        const shards = coordinator.coverage;
        return shards === null ? { ok: true, op: "stats", stats } : { ok: true, op: "stats", stats, shards };
      }
      default:
        throw new ProtocolError("BAD_MESSAGE", `not a client op: ${request.op}`);
    }
  };

  const coordinator: EngineCoordinator = {
    engine,
    seen,
    requests,
    script: null,
    coverage: { answered: ["engine"], missing: [] },
    async close() {
      clearInterval(ticker);
      await sub.drain();
    },
  };

  const onMessage = async (msg: Msg): Promise<void> => {
    let reply: Reply;
    try {
      const op = parseSubject(msg.subject);
      const request = decodeRequest(msg.data, op?.role === "coord" ? op.op : undefined);
      requests.push(request);
      seen.set(request.op, (seen.get(request.op) ?? 0) + 1);
      const scripted = coordinator.script?.(request);
      if (scripted?.action === "drop") return;
      if (scripted?.action === "garbage") {
        msg.respond(new Uint8Array([0xc1, 0xff, 0x00]));
        return;
      }
      if (scripted?.action === "hold") await scripted.until.catch(() => undefined);
      if (scripted?.action === "error") {
        throw new ProtocolError(scripted.code, `scripted ${scripted.code}`);
      }
      if (scripted?.action === "outcomes" && request.op === "settle") {
        const error = toWireError(
          new ProtocolError(scripted.code, `scripted ${scripted.code}`, { retryable: true }),
        );
        msg.respond(
          encodeReply({
            ok: true,
            op: "settle",
            results: request.completes.map(() => ({ error })),
            leases: [],
          }),
        );
        return;
      }
      reply = (await handle(request)) as OkReply;
    } catch (err) {
      reply = errorReply(err);
    }
    msg.respond(encodeReply(reply));
  };

  const sub: Subscription = nc.subscribe(subjects.coordAll, {
    queue: COORDINATOR_QUEUE,
    callback: (_err, msg) => void onMessage(msg),
  });
  return coordinator;
}

/** The stand-in's lease secrets: derived from the task and token, as a shard's are (unkeyed here). */
function secretOf(taskId: string, token: number): string {
  return createHash("sha256").update(`${token}:${taskId}`).digest().subarray(0, 16).toString("base64url");
}

/** A shard's check: a lease call must show the secret its grant carried. */
function requireSecret(held: { taskId: string; token: number; secret: string }): void {
  if (held.secret !== secretOf(held.taskId, held.token))
    throw new StaleLeaseError(held.taskId, `task ${held.taskId}: wrong lease secret`);
}
