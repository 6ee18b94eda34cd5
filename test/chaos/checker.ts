/**
 * The chaos checker: reads a recorded history (history.ts) and lists every
 * violation of Frontier's promises, in five checks:
 *
 *  - lost: an acknowledged task is missing from the cluster at the end.
 *  - doubleLease: one task under two live leases at once (by the clients'
 *    receipts and the acknowledged expiries; and by the shards' durable
 *    blocks); one token granted to two owners; a complete accepted under a
 *    token that a later grant had superseded, or a task completed twice.
 *  - doubleUnblock: a dependent dispatched before its prerequisite's
 *    completion was even asked for, dispatched again after it completed, or
 *    (shard tap) made runnable by its prerequisites twice.
 *  - wrongEnd: a task that did not end as its history says: every
 *    acknowledged task terminal; COMPLETED unless it was cancelled (CANCELLED),
 *    is poison (FAILED after exactly maxAttempts), or a prerequisite ended
 *    badly under the "cancel" policy (CANCELLED); never against an
 *    acknowledged complete, fail or cancel.
 *  - retry: a retried request that was not idempotent: a submit retried
 *    after a lost reply refused or applied twice, a lease whose lost reply
 *    was not handed back by the retry (stranded until expiry), a complete
 *    applied and then refused on retry.
 *
 * "Certainly live": a lease is surely live from the moment its grant
 * reached a client (or the shard journaled it) until the earliest of its
 * acknowledged expiry and the first end of it (complete, fail, release,
 * cancel) anyone sent for it. Two leases of one task overlap only if both are certainly
 * live at one instant, by more than the clock tolerance — so the checker
 * never reports what a correct cluster could have done.
 *
 * Cost: O(events + Σ grants² per task); grants per task are a handful.
 */
import type {
  Exchange,
  ExchangeReply,
  FaultKind,
  FinalTask,
  History,
  HistoryEvent,
  LeaseGrant,
  TapBlock,
  TaskSummary,
} from "./history.js";

/**
 * Longest a client that is still resending a request goes between two sends
 * of it: a reply timeout and the retry policy's longest backoff, with room
 * to spare. A client heard from later than this after its last send of a
 * request, which also sent other lease requests, gave that one up.
 */
const RESEND_GAP_MS = 10_000;

export const CHECKS = ["lost", "doubleLease", "doubleUnblock", "wrongEnd", "retry"] as const;
export type CheckName = (typeof CHECKS)[number];

export const CHECK_TITLES: Readonly<Record<CheckName, string>> = {
  lost: "acknowledged tasks lost",
  doubleLease: "two live leases on one task",
  doubleUnblock: "dependents unblocked more than once",
  wrongEnd: "tasks not ending as their history says",
  retry: "retries that were not idempotent",
};

/** Shard clock and wall clock differ by at most this, ms (same machine). */
export const DEFAULT_CLOCK_TOLERANCE_MS = 25;
/** Examples kept per check. */
const MAX_EXAMPLES = 25;

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);
const BAD_END = new Set(["FAILED", "CANCELLED", "EXPIRED"]);
/** Replies that say a lease is gone for good. */
const LEASE_GONE = new Set(["STALE_LEASE", "INVALID_STATE", "UNKNOWN_TASK"]);

export interface CheckOptions {
  /** See DEFAULT_CLOCK_TOLERANCE_MS. */
  readonly clockToleranceMs?: number;
}

export interface Percentiles {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface RunStats {
  /** Distinct task ids in acknowledged submits. */
  readonly tasks: number;
  /** Final states of the acknowledged tasks. */
  readonly ends: Readonly<Record<string, number>>;
  /** Handler runs (or, without worker reports, leases delivered). */
  readonly executions: number;
  /** Runs beyond the first of each task: allowed under at-least-once, counted. */
  readonly executionsBeyondFirst: number;
  /** Distinct (task, token) leases granted. */
  readonly grants: number;
  /** Completes, fails and heartbeats refused with STALE_LEASE (zombies fenced off). */
  readonly staleRefused: number;
  /** Handlers whose lease was lost (the SDK aborted them and dropped their outcome). */
  readonly leasesLost: number;
  /** Completes acknowledged as duplicates (retries of an applied complete). */
  readonly duplicateCompletes: number;
  /** Replies the fault injector dropped, by op. */
  readonly droppedReplies: Readonly<Record<string, number>>;
  /** Lease grants whose reply was lost and that a retry handed back. */
  readonly grantsRecovered: number;
  /** Non-poison tasks that ran out of attempts to faults (FAILED, justified by their history). */
  readonly exhausted: number;
  readonly faults: Readonly<Partial<Record<FaultKind, number>>>;
  /** Time from each fault to the cluster answering again, per kind, ms. */
  readonly recovery: Readonly<Partial<Record<FaultKind, Percentiles>>>;
}

export interface ChaosReport {
  /** True when every check found nothing. */
  readonly ok: boolean;
  readonly counts: Readonly<Record<CheckName, number>>;
  /** The first few violations of each check, as sentences. */
  readonly examples: Readonly<Record<CheckName, readonly string[]>>;
  readonly stats: RunStats;
}

/** One lease (task, token) as every witness saw it. */
interface LeaseInfo {
  readonly taskId: string;
  readonly token: number;
  readonly owners: Set<string>;
  /** Earliest moment it was surely granted: a client's receipt, or the shard block that journaled it. */
  from: number;
  /** Latest acknowledged expiry (grant, heartbeats), shard clock. */
  expiresAt: number;
  /** Earliest send of a complete, fail or release under this token. */
  releasedAt: number;
  delivered: boolean;
}

interface TaskInfo {
  readonly leases: Map<number, LeaseInfo>;
  /**
   * Earliest moment the task can have completed: the first complete anyone
   * sent for it, or the shard block that journaled its completion.
   */
  completedFrom: number;
  /** Earliest send of a cancel. */
  firstCancelSent: number;
  cancelled: boolean;
  /** Tokens of completes applied for the first time (ok, not duplicate). */
  readonly completions: number[];
  failedFor: boolean;
  /** Tokens of applied completes seen on the wire, including replies the client never got. */
  readonly appliedCompletes: Set<number>;
}

class Findings {
  readonly counts = Object.fromEntries(CHECKS.map((c) => [c, 0])) as Record<CheckName, number>;
  readonly examples = Object.fromEntries(CHECKS.map((c) => [c, [] as string[]])) as Record<
    CheckName,
    string[]
  >;
  add(check: CheckName, text: string): void {
    this.counts[check]++;
    if (this.examples[check].length < MAX_EXAMPLES) this.examples[check].push(text);
  }
}

export function checkHistory(history: History, options: CheckOptions = {}): ChaosReport {
  const tol = options.clockToleranceMs ?? DEFAULT_CLOCK_TOLERANCE_MS;
  const findings = new Findings();
  const specs = new Map<string, TaskSummary>();
  const acked = new Map<string, string>(); // task id -> submit key
  const tasks = new Map<string, TaskInfo>();
  const exchanges: Exchange[] = [];
  const taps: TapBlock[] = [];
  const droppedReplies: Record<string, number> = {};
  const faults: Partial<Record<FaultKind, number>> = {};
  const recoveries: Partial<Record<FaultKind, number[]>> = {};
  let executions = 0;
  const executed = new Set<string>();
  let leasesLost = 0;
  let sawExec = false;

  const task = (id: string): TaskInfo => {
    let info = tasks.get(id);
    if (!info) {
      info = {
        leases: new Map(),
        completedFrom: Number.POSITIVE_INFINITY,
        firstCancelSent: Number.POSITIVE_INFINITY,
        cancelled: false,
        completions: [],
        failedFor: false,
        appliedCompletes: new Set(),
      };
      tasks.set(id, info);
    }
    return info;
  };
  const lease = (taskId: string, token: number): LeaseInfo => {
    const leases = task(taskId).leases;
    let info = leases.get(token);
    if (!info) {
      info = {
        taskId,
        token,
        owners: new Set(),
        from: Number.POSITIVE_INFINITY,
        expiresAt: Number.NEGATIVE_INFINITY,
        releasedAt: Number.POSITIVE_INFINITY,
        delivered: false,
      };
      leases.set(token, info);
    }
    return info;
  };

  for (const event of history.events) {
    switch (event.k) {
      case "x":
        exchanges.push(event);
        if (!event.delivered) droppedReplies[event.req.op] = (droppedReplies[event.req.op] ?? 0) + 1;
        break;
      case "sent": {
        // Asked for, maybe applied: a lease may have ended from here on.
        const t = task(event.req.taskId);
        if (event.req.op === "cancel") t.firstCancelSent = Math.min(t.firstCancelSent, event.at);
        else {
          const info = lease(event.req.taskId, event.req.token);
          info.releasedAt = Math.min(info.releasedAt, event.at);
          if (event.req.op === "complete") t.completedFrom = Math.min(t.completedFrom, event.at);
        }
        break;
      }
      case "exec":
        sawExec = true;
        if (event.phase === "started") {
          executions++;
          executed.add(event.taskId);
        } else if (event.phase === "lost") leasesLost++;
        break;
      case "tap":
        taps.push(event);
        break;
      case "fault":
        faults[event.kind] = (faults[event.kind] ?? 0) + 1;
        break;
      case "recovered":
        (recoveries[event.kind] ??= []).push(event.ms);
        break;
    }
  }

  // ------------------------------------------------------------ the wire
  let staleRefused = 0;
  let duplicateCompletes = 0;
  for (const x of exchanges) {
    const { req, rep } = x;
    switch (req.op) {
      case "submit":
        for (const t of req.tasks) if (!specs.has(t.id)) specs.set(t.id, t);
        if (x.delivered && rep?.ok) for (const t of req.tasks) if (!acked.has(t.id)) acked.set(t.id, req.key);
        break;
      case "lease": {
        if (!rep?.ok || !("leases" in rep)) break;
        for (const g of rep.leases) {
          const info = lease(g.taskId, g.token);
          info.owners.add(g.owner);
          info.from = Math.min(info.from, x.at);
          info.expiresAt = Math.max(info.expiresAt, g.expiresAt);
          if (x.delivered) info.delivered = true;
        }
        break;
      }
      case "heartbeat":
        if (rep?.ok && "expiresAt" in rep) {
          const info = lease(req.taskId, req.token);
          info.expiresAt = Math.max(info.expiresAt, rep.expiresAt);
        } else if (isStale(rep)) staleRefused++;
        break;
      case "complete": {
        const t = task(req.taskId);
        t.completedFrom = Math.min(t.completedFrom, x.sentAt);
        const info = lease(req.taskId, req.token);
        info.releasedAt = Math.min(info.releasedAt, x.sentAt);
        if (rep?.ok && "duplicate" in rep) {
          if (!rep.duplicate) {
            t.completions.push(req.token);
            t.appliedCompletes.add(req.token);
          } else if (x.delivered) duplicateCompletes++;
        } else if (isStale(rep)) staleRefused++;
        break;
      }
      case "fail": {
        const info = lease(req.taskId, req.token);
        info.releasedAt = Math.min(info.releasedAt, x.sentAt);
        if (rep?.ok && "state" in rep && rep.state === "FAILED") task(req.taskId).failedFor = true;
        else if (isStale(rep)) staleRefused++;
        break;
      }
      case "release": {
        // The holder let the lease go: from its send on, another grant may follow at once.
        const info = lease(req.taskId, req.token);
        info.releasedAt = Math.min(info.releasedAt, x.sentAt);
        if (isStale(rep)) staleRefused++;
        break;
      }
      case "cancel": {
        const t = task(req.taskId);
        t.firstCancelSent = Math.min(t.firstCancelSent, x.sentAt);
        if (rep?.ok) t.cancelled = true;
        break;
      }
    }
  }

  // ----------------------------------------------------------- the shard tap
  // Blocks in shard-clock order; one task lives on one shard.
  taps.sort((a, b) => a.clock - b.clock);
  const tapState = new Map<string, { state: string; token: number; expiresAt: number }>();
  const unblocks = new Map<string, number>();
  for (const block of taps) {
    for (const c of block.changes) {
      const before = tapState.get(c.id);
      if (c.state === "LEASED") {
        const info = lease(c.id, c.token);
        info.from = Math.min(info.from, block.clock);
        if (c.expiresAt !== undefined) info.expiresAt = Math.max(info.expiresAt, c.expiresAt);
        if (before?.state === "LEASED" && before.token !== c.token && block.clock + tol < before.expiresAt) {
          findings.add(
            "doubleLease",
            `${c.id}: shard ${block.shard} (pid ${block.pid}) journaled lease ${c.token} at ${fmt(block.clock)} ` +
              `while lease ${before.token} was live until ${fmt(before.expiresAt)}`,
          );
        }
      }
      // Back to RUNNABLE under the same token: the lease expired, not before its acknowledged
      // expiry — unless its holder had let it go: a release it sent ends the lease at once, and a
      // retryable fail (acknowledged or not) too, whose backoff's end looks the same here when the
      // tap lost the WAITING block (the shard was killed between a commit and its tap record).
      if (c.state === "RUNNABLE" && before?.state === "LEASED" && before.token === c.token) {
        const info = lease(c.id, c.token);
        const promised = info.expiresAt;
        if (block.clock + tol < promised && !(info.releasedAt <= block.clock + tol))
          findings.add(
            "doubleLease",
            `${c.id}: lease ${c.token} expired at ${fmt(block.clock)} on shard ${block.shard}, ` +
              `before its acknowledged expiry ${fmt(promised)}`,
          );
      }
      if (c.state === "COMPLETED") {
        const t = task(c.id);
        t.completedFrom = Math.min(t.completedFrom, block.clock);
      }
      // Runnable before any lease (token 0): a released first attempt is back at attempts 0 too.
      if (c.state === "RUNNABLE" && c.attempts === 0 && c.token === 0 && before?.state !== "RUNNABLE") {
        const n = (unblocks.get(c.id) ?? 0) + 1;
        unblocks.set(c.id, n);
        if (n === 2) {
          findings.add(
            "doubleUnblock",
            `${c.id}: shard ${block.shard} made it runnable a second time (at ${fmt(block.clock)}) before any lease`,
          );
        }
      }
      const expiresAt =
        c.state === "LEASED"
          ? Math.max(c.expiresAt ?? 0, before?.token === c.token ? before.expiresAt : 0)
          : Number.NEGATIVE_INFINITY;
      tapState.set(c.id, { state: c.state, token: c.token, expiresAt });
    }
  }

  // ------------------------------------------------------------- lost
  for (const [id, key] of acked) {
    if (!history.final.get(id)) findings.add("lost", `${id} (acknowledged in submit ${key}) is gone`);
  }

  // ------------------------------------------------------- double lease
  for (const [id, t] of tasks) {
    const leases = [...t.leases.values()].filter((l) => Number.isFinite(l.from));
    for (const l of leases) {
      if (l.owners.size > 1)
        findings.add("doubleLease", `${id}: lease ${l.token} granted to ${[...l.owners].join(" and ")}`);
    }
    const end = (l: LeaseInfo) => Math.min(l.expiresAt, l.releasedAt, t.firstCancelSent);
    for (let i = 0; i < leases.length; i++) {
      for (let j = i + 1; j < leases.length; j++) {
        const a = leases[i]!;
        const b = leases[j]!;
        const start = Math.max(a.from, b.from);
        const stop = Math.min(end(a), end(b));
        if (start + tol < stop) {
          findings.add(
            "doubleLease",
            `${id}: leases ${a.token} (${ownerOf(a)}) and ${b.token} (${ownerOf(b)}) both live ` +
              `for ${Math.round(stop - start)} ms from ${fmt(start)}`,
          );
        }
      }
    }
    const maxToken = Math.max(0, ...t.leases.keys());
    for (const token of t.appliedCompletes) {
      if (token < maxToken) {
        findings.add(
          "doubleLease",
          `${id}: a complete under token ${token} was accepted although token ${maxToken} was granted`,
        );
      }
    }
    if (t.appliedCompletes.size > 1 || t.completions.length > 1) {
      findings.add("doubleLease", `${id}: completed ${t.completions.length} times (tokens ${t.completions})`);
    }
  }

  // ---------------------------------------------------- double unblock
  for (const [id, spec] of specs) {
    const t = tasks.get(id);
    if (!t) continue;
    const grants = [...t.leases.values()].filter((l) => Number.isFinite(l.from));
    for (const g of grants) {
      for (const p of spec.pre) {
        const pFinal = history.final.get(p);
        if (spec.policy !== "cancel" && pFinal?.state !== "COMPLETED") continue;
        const asked = tasks.get(p)?.completedFrom ?? Number.POSITIVE_INFINITY;
        if (g.from + tol < asked) {
          findings.add(
            "doubleUnblock",
            `${id}: dispatched (lease ${g.token} at ${fmt(g.from)}) before its prerequisite ${p} ` +
              (Number.isFinite(asked) ? `was completed (not before ${fmt(asked)})` : "ever completed"),
          );
        }
      }
    }
    const done = history.final.get(id);
    const completedToken = done?.state === "COMPLETED" ? done.token : Math.min(...t.appliedCompletes);
    for (const g of grants) {
      if (g.token > completedToken)
        findings.add("doubleUnblock", `${id}: dispatched again (lease ${g.token}) after it completed`);
    }
  }
  for (const [id, f] of history.final) {
    const spec = specs.get(id);
    if (!f || !spec || f.state !== "WAITING") continue;
    const unmet = spec.pre.filter((p) => history.final.get(p)?.state !== "COMPLETED").length;
    if (f.unmetPrerequisites !== unmet)
      findings.add(
        "doubleUnblock",
        `${id} counts ${f.unmetPrerequisites} unmet prerequisites, but ${unmet} are not completed`,
      );
  }

  // ---------------------------------------------------------- wrong end
  const ends: Record<string, number> = {};
  let exhausted = 0;
  for (const id of acked.keys()) {
    const f = history.final.get(id);
    const spec = specs.get(id);
    if (!f || !spec) continue;
    ends[f.state] = (ends[f.state] ?? 0) + 1;
    const t = tasks.get(id);
    if (!TERMINAL.has(f.state)) {
      findings.add("wrongEnd", `${id} did not finish: ${f.state} (attempts ${f.attempts})`);
      continue;
    }
    const expected = expectedEnd(spec, t, history.final);
    const reverted = (t?.completions ?? []).find((token) => f.state !== "COMPLETED" || token !== f.token);
    if (reverted !== undefined) {
      findings.add(
        "wrongEnd",
        `${id}: complete under token ${reverted} was acknowledged, but it ended ${f.state} (token ${f.token})`,
      );
      continue;
    }
    if (t?.failedFor && f.state !== "FAILED") {
      findings.add("wrongEnd", `${id}: a fail ending it FAILED was acknowledged, but it ended ${f.state}`);
      continue;
    }
    if (f.state === expected) {
      if (spec.poison && f.attempts !== spec.maxAttempts)
        findings.add(
          "wrongEnd",
          `${id}: poison task FAILED after ${f.attempts} of ${spec.maxAttempts} attempts`,
        );
      continue;
    }
    if (expected === "COMPLETED" && f.state === "FAILED" && f.attempts >= spec.maxAttempts) {
      exhausted++; // every attempt was spent on faults (killed workers, zombies, throws)
      continue;
    }
    findings.add("wrongEnd", `${id} ended ${f.state}, but its history says ${expected}`);
  }

  // -------------------------------------------------------------- retry
  let grantsRecovered = 0;
  const stranded = new Set<string>();
  const byKey = new Map<string, Exchange[]>();
  const byRequest = new Map<string, Exchange[]>();
  const byComplete = new Map<string, Exchange[]>();
  /** Per client, its lease requests' send times and ids: did it move on to another request? */
  const leasesSent = new Map<string, { sentAt: number; requestId: string }[]>();
  /** Per client, when it last sent anything: a client that went quiet may have died. */
  const lastSeen = new Map<string, number>();
  for (const x of exchanges) lastSeen.set(x.src, Math.max(lastSeen.get(x.src) ?? 0, x.sentAt));
  for (const x of exchanges) {
    const { req } = x;
    if (req.op === "submit") push(byKey, req.key, x);
    else if (req.op === "lease") {
      push(byRequest, `${x.src}\u0000${req.requestId}`, x);
      push(leasesSent, x.src, { sentAt: x.sentAt, requestId: req.requestId });
    } else if (req.op === "complete") push(byComplete, `${req.taskId}\u0000${req.token}`, x);
  }
  for (const [key, attempts] of byKey) {
    const created = attempts.filter((x) => x.rep?.ok && "replayed" in x.rep && !x.rep.replayed).length;
    if (created > 1) findings.add("retry", `submit ${key} was applied ${created} times`);
    if (attempts.length < 2) continue;
    for (const x of attempts.slice(1)) {
      if (x.rep && !x.rep.ok && x.rep.code === "VALIDATION_FAILED")
        findings.add("retry", `submit ${key} retried after a lost reply was refused as a new batch`);
    }
  }
  for (const [request, attempts] of byRequest) {
    attempts.sort((a, b) => a.sentAt - b.sentAt);
    for (const x of attempts) {
      const n = grantsOf(x.rep).length;
      if (x.req.op === "lease" && n > x.req.max)
        findings.add(
          "retry",
          `lease reply to ${x.src} held ${n} leases for max ${x.req.max} (request ${x.req.requestId})`,
        );
    }
    const src = request.split("\u0000")[0]!;
    for (let i = 0; i < attempts.length; i++) {
      const x = attempts[i]!;
      const granted = grantsOf(x.rep);
      if (x.delivered || granted.length === 0) continue;
      const later = attempts.slice(i + 1).filter((y) => y.delivered && y.rep?.ok);
      if (later.length === 0) {
        // The client moved on to another request without getting this one's reply: the grant sits
        // until it expires. (A client that died while still retrying stranded it by dying.)
        // A worker leases on two streams at once (its lease requests, and its settles' next leases),
        // so another request alone does not show that it gave this one up: it must also have lived
        // on past the last attempt under this id by more than a resend takes, without resending.
        const requestId = x.req.op === "lease" ? x.req.requestId : "";
        const lastTry = Math.max(...attempts.map((y) => y.at));
        const aliveAfter = (lastSeen.get(src) ?? 0) > lastTry + RESEND_GAP_MS;
        const movedOn =
          aliveAfter &&
          (leasesSent.get(src) ?? []).some((l) => l.sentAt > x.sentAt && l.requestId !== requestId);
        if (movedOn) {
          for (const g of granted) stranded.add(`${g.taskId}/${g.token}`);
          findings.add(
            "retry",
            `lease reply to ${src} lost and not asked for again: ${tokens(granted)} stranded`,
          );
        }
        continue;
      }
      // The retries may bring more (from shards that had nothing before), but every lost grant
      // still live when the first retry was answered must come back in one of them: a settle's
      // resend to the granting shard hands back what is still there, and the same request id's
      // next send, through a coordinator, what moved away with its slot meanwhile (the reply's
      // `grantsMoved`). One that expired first cannot: stranded by the client's delay when the
      // retry went out late, or by the shard's when it answered late (a stalled shard runs the
      // expiry that came due during the stall before it reads the retry that waited).
      const retry = later[0]!;
      const again = later.flatMap((y) => grantsOf(y.rep));
      const missing = granted.filter(
        (g) =>
          g.expiresAt > retry.at + tol &&
          !again.some((a) => a.taskId === g.taskId && a.token === g.token) &&
          !stranded.has(`${g.taskId}/${g.token}`),
      );
      for (const g of missing) stranded.add(`${g.taskId}/${g.token}`);
      if (missing.length > 0)
        findings.add(
          "retry",
          `lease retry of ${src} got ${tokens(again) || "nothing"}, not the lost ${tokens(missing)}: stranded until expiry`,
        );
      else grantsRecovered += granted.length;
    }
  }
  for (const [complete, attempts] of byComplete) {
    attempts.sort((a, b) => a.sentAt - b.sentAt);
    const applied = attempts.findIndex((x) => x.rep?.ok);
    if (applied < 0) continue;
    for (const x of attempts.slice(applied + 1)) {
      // A retryable answer (the shard restarting) is not a refusal: the client asks again; nor is
      // UNKNOWN_TASK from a shard asked directly (the task's slot moved): it asks a coordinator.
      if (x.direct && x.rep && !x.rep.ok && x.rep.code === "UNKNOWN_TASK") continue;
      if (x.rep && !x.rep.ok && LEASE_GONE.has(x.rep.code))
        findings.add(
          "retry",
          `complete ${complete.replace("\u0000", "/")} applied, then refused on retry (${x.rep.code})`,
        );
    }
  }

  // -------------------------------------------------------------- stats
  const grants = [...tasks.values()].reduce((n, t) => n + t.leases.size, 0);
  const delivered = [...tasks.entries()].filter(([, t]) => [...t.leases.values()].some((l) => l.delivered));
  const runs = sawExec
    ? executions
    : [...tasks.values()].reduce((n, t) => n + [...t.leases.values()].filter((l) => l.delivered).length, 0);
  const distinct = sawExec ? executed.size : delivered.length;
  const recovery: Partial<Record<FaultKind, Percentiles>> = {};
  for (const [kind, samples] of Object.entries(recoveries) as [FaultKind, number[]][])
    recovery[kind] = percentiles(samples);
  const counts = findings.counts;
  return {
    ok: CHECKS.every((c) => counts[c] === 0),
    counts,
    examples: findings.examples,
    stats: {
      tasks: acked.size,
      ends,
      executions: runs,
      executionsBeyondFirst: runs - distinct,
      grants,
      staleRefused,
      leasesLost,
      duplicateCompletes,
      droppedReplies,
      grantsRecovered,
      exhausted,
      faults,
      recovery,
    },
  };
}

/** What the history says a task must end as (see the file comment). */
function expectedEnd(
  spec: TaskSummary,
  info: TaskInfo | undefined,
  final: ReadonlyMap<string, FinalTask | null>,
): string {
  if (info?.cancelled) return "CANCELLED";
  // A task cancelled by its prerequisite never runs, poison or not.
  if (spec.policy === "cancel" && spec.pre.some((p) => BAD_END.has(final.get(p)?.state ?? "")))
    return "CANCELLED";
  return spec.poison ? "FAILED" : "COMPLETED";
}

/**
 * The blocks a zombie shard (SIGSTOPped, replaced, woken with SIGCONT)
 * made durable after it was woken: must be none, its journal is fenced.
 *
 * Told apart by when the block was built (its shard clock), not by when its
 * tap line was written: a block built and committed before the stop may be
 * reported, and its line written, after the wake-up (a pause between commit
 * and report; the journal then refuses to answer for it, but a pause after
 * the report and before the line cannot be told apart). Nothing is built
 * while the process is stopped, so the stop splits the blocks in two, with
 * a gap of the whole pause; the cut is in its middle, so a shard clock a
 * little off the wall clock changes nothing.
 *
 * A zombie woken before its replacement served (`wokenFirst`: stopped
 * holding the write lock the takeover waits for) writes as the owner it
 * still is until the takeover. The takeover comes before the replacement
 * serves (its recovery and its slot claims lie between), so the cut is
 * when it served: nothing the zombie built after that can be durable.
 */
export function zombieWrites(
  events: readonly HistoryEvent[],
  zombie: {
    readonly pid: number;
    readonly stoppedAt: number;
    readonly replacedAt: number;
    readonly wokenFirst?: boolean;
  },
): TapBlock[] {
  const cut = zombie.wokenFirst ? zombie.replacedAt : (zombie.stoppedAt + zombie.replacedAt) / 2;
  return events.filter((e): e is TapBlock => e.k === "tap" && e.pid === zombie.pid && e.clock > cut);
}

export function percentiles(samples: readonly number[]): Percentiles {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? 0 };
}

function isStale(rep: ExchangeReply | undefined): boolean {
  return rep !== undefined && !rep.ok && rep.code === "STALE_LEASE";
}

function grantsOf(rep: ExchangeReply | undefined): readonly LeaseGrant[] {
  return rep?.ok && "leases" in rep ? rep.leases : [];
}

function tokens(grants: readonly LeaseGrant[]): string {
  return grants
    .map((g) => `${g.taskId}/${g.token}`)
    .sort()
    .join(",");
}

function ownerOf(l: LeaseInfo): string {
  return l.owners.size === 0 ? "shard tap" : [...l.owners].join("+");
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function fmt(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/** The summary table a run prints. */
export function formatReport(report: ChaosReport, title: string): string {
  const s = report.stats;
  const rows: [string, string][] = [];
  const faults = Object.entries(s.faults)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  const faultTotal = Object.values(s.faults).reduce((a, b) => a + (b ?? 0), 0);
  rows.push(["faults injected", `${faultTotal}${faults ? ` (${faults})` : ""}`]);
  const ends = Object.entries(s.ends)
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  rows.push(["tasks acknowledged", `${s.tasks}${ends ? ` (${ends})` : ""}`]);
  rows.push(["executions", `${s.executions} (${s.executionsBeyondFirst} beyond the first)`]);
  rows.push(["leases granted", `${s.grants}; ${s.leasesLost} lost by their holders`]);
  rows.push(["stale calls refused", `${s.staleRefused} (fencing tokens)`]);
  const dropped = Object.entries(s.droppedReplies)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  rows.push([
    "replies dropped",
    `${dropped || "0"}; ${s.grantsRecovered} lost grants handed back by retries, ${s.duplicateCompletes} duplicate completes`,
  ]);
  if (s.exhausted > 0) rows.push(["out of attempts", `${s.exhausted} tasks spent every attempt on faults`]);
  for (const [kind, p] of Object.entries(s.recovery)) {
    if (p)
      rows.push([`recovery: ${kind}`, `p50 ${ms(p.p50)}, p99 ${ms(p.p99)}, max ${ms(p.max)} (n=${p.n})`]);
  }
  for (const c of CHECKS) rows.push([CHECK_TITLES[c], String(report.counts[c])]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [title, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  for (const c of CHECKS) for (const e of report.examples[c]) lines.push(`  ! ${c}: ${e}`);
  return lines.join("\n");
}

function ms(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`;
}
