/**
 * A simulated cluster for the checker's negative controls: the real engine
 * (`Scheduler` of @frontier/core) on virtual time, one shard, and workers
 * that misbehave the way real ones do (crash holding a lease, pause past
 * expiry and complete late, throw, run slow while heartbeating), with
 * replies lost on the way back and retried. It records its history in the
 * same format as a real run (history.ts), so the checker is tested on what
 * it will read.
 *
 * `bug` deliberately breaks one promise, the way a faulty build would:
 *  - "drop-acked-submit": a submit is acknowledged but never stored (lost);
 *  - "no-fencing": a paused worker's late complete is applied without its
 *    token being checked, over the new holder's lease (doubleLease);
 *  - "fast-lease-clock": the lease clock runs 1.5× fast, so leases end
 *    before the expiry they state and are granted again (doubleLease);
 *  - "strip-prerequisites": the engine is given dependents without their
 *    prerequisites, so they run early (doubleUnblock);
 *  - "revert-acked": the state read back is an older one, as after a
 *    restart that lost acknowledged writes (lost, wrongEnd);
 *  - "no-lease-replay": a retried lease request is served anew instead of
 *    with its first grant, stranding it (retry).
 * Each bug is made to fire at least once; a run without one must pass.
 */

import { type Change, FRESH_ENGINE_META, type Lease, Scheduler, type TaskInput } from "@frontier/core";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import type {
  ChaosPayload,
  Exchange,
  ExchangeReply,
  ExchangeRequest,
  FinalTask,
  History,
  HistoryEvent,
  TapChange,
  TaskSummary,
} from "./history.js";

export const SIM_BUGS = [
  "drop-acked-submit",
  "no-fencing",
  "fast-lease-clock",
  "strip-prerequisites",
  "revert-acked",
  "no-lease-replay",
] as const;
export type SimBug = (typeof SIM_BUGS)[number];

export interface SimOptions {
  readonly seed: number;
  readonly workflows?: number;
  readonly workers?: number;
  readonly bug?: SimBug;
}

const T0 = 1_700_000_000_000;
const STEP_MS = 5;
const LEASE_MS = 300;
const CONCURRENCY = 2;
/** Chance that a reply is lost on its way back. */
const DROP = 0.1;
/** Virtual time after which the run is cut short (every task should be long done). */
const LIMIT_MS = 120_000;

type Behaviour = "normal" | "slow" | "crash" | "zombie" | "throw";

interface Held {
  readonly lease: Lease;
  readonly behaviour: Behaviour;
  readonly finishAt: number;
  nextHeartbeat: number;
  /** A complete or fail whose reply was lost: sent again next step. */
  retrying: boolean;
}

interface SimWorker {
  readonly name: string;
  readonly held: Map<string, Held>;
  /** Request id of a lease request whose reply was lost. */
  pending: string | undefined;
  leases: number;
}

export function simulate(options: SimOptions): History {
  const random = seededRandom(options.seed);
  const bug = options.bug;
  const events: HistoryEvent[] = [];
  let v = 0; // virtual ms since T0
  const wall = () => T0 + v;
  const shardNow = () => (bug === "fast-lease-clock" ? T0 + 1.5 * v : T0 + v);
  let block: TapChange[] = [];
  const changes: Change[] = [];
  const engine = new Scheduler({
    now: shardNow,
    random,
    sameWorkflowPrerequisites: true,
    backoff: { baseMs: 20, maxMs: 100 },
    onChange: (c) => {
      changes.push(c);
      if (c.kind === "add") block.push(tapOf(c.spec.id, c.status, true));
      else if (c.kind === "set") block.push(tapOf(c.id, c.status, false));
    },
  });
  const flushTap = () => {
    if (block.length > 0)
      events.push({ k: "tap", shard: "sim", pid: 1, clock: shardNow(), at: wall(), changes: block });
    block = [];
  };
  const record = (src: string, req: ExchangeRequest, rep: ExchangeReply, delivered: boolean) => {
    const x: Exchange = { k: "x", src, sentAt: wall(), at: wall(), req, rep, delivered };
    events.push(x);
  };
  const call = <T>(f: () => T): { ok: true; value: T } | { ok: false; code: string } => {
    try {
      return { ok: true, value: f() };
    } catch (error) {
      return { ok: false, code: (error as { code?: string }).code ?? "INTERNAL" };
    }
  };

  // ------------------------------------------------------------ workload
  const workflows = options.workflows ?? 30;
  const batches: { key: string; tasks: TaskInput[]; summary: TaskSummary[]; at: number }[] = [];
  const ids: string[] = [];
  for (let i = 0; i < workflows; i++) {
    const wf = `w${i}`;
    const poison = i % 7 === 3;
    const task = (
      id: string,
      pre: string[],
      extra: Partial<TaskInput> = {},
      payload: ChaosPayload = { ms: 0 },
    ) => ({
      id: `${wf}-${id}`,
      deadline: T0 + 1_000 + i * 10,
      workflowId: wf,
      prerequisites: pre.map((p) => `${wf}-${p}`),
      maxAttempts: poison && id === "a" ? 2 : 6,
      payload,
      ...extra,
    });
    const tasks: TaskInput[] = [
      task("a", [], {}, { ms: 0, poison }),
      task("b", ["a"]),
      task("c", ["a"], { onPrerequisiteFailure: "continue" }),
      task("d", ["b", "c"]),
    ];
    ids.push(...tasks.map((t) => t.id));
    batches.push({ key: `key-${i}`, tasks, summary: tasks.map(summaryOf), at: i * 20 });
  }
  const accepted = new Map<string, readonly string[]>();
  const submitRetries: { key: string; at: number }[] = [];
  const submit = (batch: (typeof batches)[number], retry: boolean) => {
    const req: ExchangeRequest = { op: "submit", key: batch.key, tasks: batch.summary };
    let rep: ExchangeReply;
    const prior = accepted.get(batch.key);
    if (prior) rep = { ok: true, accepted: prior.length, replayed: true };
    else {
      const skip = bug === "drop-acked-submit" && batch.key === "key-1";
      const input =
        bug === "strip-prerequisites" ? batch.tasks.map((t) => ({ ...t, prerequisites: [] })) : batch.tasks;
      const r = skip ? { ok: true as const, value: 0 } : call(() => engine.addTasks(input));
      if (r.ok)
        accepted.set(
          batch.key,
          input.map((t) => t.id),
        );
      rep = r.ok ? { ok: true, accepted: input.length, replayed: false } : { ok: false, code: r.code };
    }
    const lost = !retry && random() < DROP * 2;
    record("submitter", req, rep, !lost);
    if (lost) submitRetries.push({ key: batch.key, at: v + 50 });
  };

  // ------------------------------------------------------------- workers
  const workers: SimWorker[] = Array.from({ length: options.workers ?? 4 }, (_, i) => ({
    name: `worker-${i}`,
    held: new Map(),
    pending: undefined,
    leases: 0,
  }));
  const replays = new Map<string, Lease[]>();
  let requestSeq = 0;
  let forcedZombie = false;
  let forcedLoss = false;

  const leaseFor = (w: SimWorker) => {
    const room = CONCURRENCY - w.held.size;
    if (room <= 0) return;
    const retry = w.pending !== undefined;
    const requestId = w.pending ?? `${w.name}-r${requestSeq++}`;
    const req: ExchangeRequest = { op: "lease", owner: w.name, requestId, leaseMs: LEASE_MS, max: room };
    const replayKey = `${w.name}/${requestId}`;
    let leases = bug === "no-lease-replay" ? undefined : replays.get(replayKey);
    if (!leases) {
      leases = engine.lease(w.name, { max: room, leaseMs: LEASE_MS });
      if (leases.length > 0) replays.set(replayKey, leases);
    }
    const rep: ExchangeReply = { ok: true, leases: leases.map(grantOf) };
    const forceLoss = !forcedLoss && !retry && leases.length > 0 && bug === "no-lease-replay";
    const lost = forceLoss || (!retry && random() < DROP);
    if (forceLoss) forcedLoss = true;
    record(w.name, req, rep, !lost);
    if (lost) {
      w.pending = requestId;
      return;
    }
    w.pending = undefined;
    for (const lease of leases) {
      const payload = lease.task.payload as ChaosPayload | undefined;
      let behaviour: Behaviour;
      if (payload?.poison) behaviour = "throw";
      else if (!forcedZombie && (bug === "no-fencing" || bug === "fast-lease-clock")) {
        behaviour = "zombie";
        forcedZombie = true;
      } else {
        const r = random();
        behaviour =
          r < 0.06 ? "crash" : r < 0.12 ? "zombie" : r < 0.17 ? "throw" : r < 0.22 ? "slow" : "normal";
      }
      const duration =
        behaviour === "slow"
          ? LEASE_MS * 3
          : behaviour === "zombie"
            ? LEASE_MS * 2 + 100
            : 20 + Math.floor(random() * 100);
      w.held.set(`${lease.taskId}/${lease.token}`, {
        lease,
        behaviour,
        finishAt: v + duration,
        nextHeartbeat: v + LEASE_MS / 3,
        retrying: false,
      });
      w.leases++;
      events.push({
        k: "exec",
        src: w.name,
        at: wall(),
        taskId: lease.taskId,
        token: lease.token,
        phase: "started",
      });
    }
  };

  const finish = (w: SimWorker, key: string, h: Held) => {
    const { taskId, token } = h.lease;
    const exec = (phase: "completed" | "failed" | "lost") =>
      events.push({ k: "exec", src: w.name, at: wall(), taskId, token, phase });
    if (h.behaviour === "throw") {
      const r = call(() => engine.fail(taskId, token, { retryable: true, reason: "handler threw" }));
      const rep: ExchangeReply = r.ok ? { ok: true, state: r.value.state } : { ok: false, code: r.code };
      const lost = !h.retrying && random() < DROP;
      record(w.name, { op: "fail", taskId, token, retryable: true }, rep, !lost);
      if (lost) {
        h.retrying = true;
        return;
      }
      w.held.delete(key);
      exec(r.ok ? "failed" : "lost");
      return;
    }
    let r: { ok: true; value: { duplicate: boolean } } | { ok: false; code: string };
    if (bug === "no-fencing" && h.behaviour === "zombie" && engine.getTask(taskId)?.state === "LEASED") {
      // The broken build: the token is not checked.
      r = call(() => {
        engine.completeTask(taskId);
        return { duplicate: false };
      });
    } else r = call(() => engine.complete(taskId, token));
    const rep: ExchangeReply = r.ok
      ? { ok: true, duplicate: r.value.duplicate }
      : { ok: false, code: r.code };
    const lost = !h.retrying && random() < DROP;
    record(w.name, { op: "complete", taskId, token }, rep, !lost);
    if (lost) {
      h.retrying = true;
      return;
    }
    w.held.delete(key);
    exec(r.ok ? "completed" : "lost");
  };

  const step = (w: SimWorker) => {
    for (const [key, h] of [...w.held]) {
      if (h.behaviour === "crash") {
        w.held.delete(key); // gone with its lease: it expires
        continue;
      }
      // A zombie wakes up at the worst moment: while another worker holds its task.
      const reLeased =
        h.behaviour === "zombie" &&
        engine.getTask(h.lease.taskId)?.state === "LEASED" &&
        engine.getTask(h.lease.taskId)?.token !== h.lease.token;
      if (v >= h.finishAt || h.retrying || reLeased) {
        finish(w, key, h);
        continue;
      }
      if ((h.behaviour === "normal" || h.behaviour === "slow") && v >= h.nextHeartbeat) {
        const { taskId, token } = h.lease;
        const r = call(() => engine.heartbeat(taskId, token, { leaseMs: LEASE_MS }));
        const rep: ExchangeReply = r.ok
          ? { ok: true, expiresAt: r.value.expiresAt }
          : { ok: false, code: r.code };
        record(w.name, { op: "heartbeat", taskId, token, leaseMs: LEASE_MS }, rep, true);
        h.nextHeartbeat = v + LEASE_MS / 3;
        if (!r.ok) {
          w.held.delete(key);
          events.push({ k: "exec", src: w.name, at: wall(), taskId, token, phase: "lost" });
        }
      }
    }
    leaseFor(w);
  };

  // ------------------------------------------------------------ the run
  let next = 0;
  const done = () => {
    const { WAITING, RUNNABLE, LEASED } = engine.stats().counts;
    return WAITING + RUNNABLE + LEASED === 0;
  };
  for (; v < LIMIT_MS; v += STEP_MS) {
    engine.tick();
    while (next < batches.length && batches[next]!.at <= v) submit(batches[next++]!, false);
    for (const r of submitRetries.filter((r) => r.at <= v)) {
      submitRetries.splice(submitRetries.indexOf(r), 1);
      submit(batches.find((b) => b.key === r.key)!, true);
    }
    for (const w of workers) step(w);
    flushTap();
    if (next === batches.length && submitRetries.length === 0 && v > 1_000 && done()) break;
  }

  // ---------------------------------------------------------- read back
  let view = engine;
  if (bug === "revert-acked") {
    const prefix = changes.slice(0, Math.floor(changes.length * 0.6));
    view = Scheduler.restore({ version: 1, meta: FRESH_ENGINE_META, tasks: [] }, prefix, { now: shardNow });
  }
  const final = new Map<string, FinalTask | null>();
  for (const id of ids) {
    const t = view.getTask(id);
    final.set(
      id,
      t
        ? { state: t.state, token: t.token, attempts: t.attempts, unmetPrerequisites: t.unmetPrerequisites }
        : null,
    );
  }
  return { events, final };
}

function summaryOf(t: TaskInput): TaskSummary {
  const payload = t.payload as ChaosPayload | undefined;
  return {
    id: t.id,
    pre: t.prerequisites ?? [],
    maxAttempts: t.maxAttempts ?? 5,
    policy: t.onPrerequisiteFailure ?? "cancel",
    ...(payload?.poison ? { poison: true } : {}),
  };
}

function grantOf(l: Lease) {
  return { taskId: l.taskId, token: l.token, owner: l.owner, expiresAt: l.expiresAt, attempt: l.attempt };
}

function tapOf(
  id: string,
  s: { state: string; token: number; attempts: number; leaseExpiresAt?: number },
  added: boolean,
): TapChange {
  return {
    id,
    state: s.state,
    token: s.token,
    attempts: s.attempts,
    ...(s.leaseExpiresAt !== undefined ? { expiresAt: s.leaseExpiresAt } : {}),
    ...(added ? { added } : {}),
  };
}

/** A seeded PRNG (pure-rand's xoroshiro128+): a failing seed replays the same run. */
export function seededRandom(seed: number): () => number {
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng);
}
