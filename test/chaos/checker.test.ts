/**
 * The checker on hand-written histories: each check finds what it should
 * (its negative control at the smallest scale) and nothing a correct
 * cluster could have done.
 */
import { describe, expect, it } from "vitest";
import { checkHistory, formatReport, percentiles, zombieWrites } from "./checker.js";
import type {
  Exchange,
  ExchangeReply,
  ExchangeRequest,
  FinalTask,
  HistoryEvent,
  TaskSummary,
} from "./history.js";
import { parseEvents } from "./history.js";

const T0 = 1_700_000_000_000;
const LEASE_MS = 1_000;

/** A small builder of histories: times are ms after T0. */
class H {
  readonly events: HistoryEvent[] = [];
  readonly final = new Map<string, FinalTask | null>();
  private seq = 0;

  x(
    src: string,
    sent: number,
    req: ExchangeRequest,
    rep?: ExchangeReply,
    delivered = true,
    at = sent + 1,
  ): this {
    const e: Exchange = {
      k: "x",
      src,
      sentAt: T0 + sent,
      at: T0 + at,
      req,
      delivered,
      ...(rep ? { rep } : {}),
    };
    this.events.push(e);
    return this;
  }
  submit(tasks: (Partial<TaskSummary> & { id: string })[], at = 0, key = `k${this.seq++}`): this {
    const full = tasks.map((t) => ({ pre: [], maxAttempts: 3, policy: "cancel" as const, ...t }));
    return this.x(
      "sub",
      at,
      { op: "submit", key, tasks: full },
      { ok: true, accepted: full.length, replayed: false },
    );
  }
  lease(
    owner: string,
    taskId: string,
    token: number,
    at: number,
    opts: { delivered?: boolean; rid?: string } = {},
  ) {
    return this.x(
      owner,
      at - 1,
      { op: "lease", owner, requestId: opts.rid ?? `r${this.seq++}`, leaseMs: LEASE_MS, max: 1 },
      { ok: true, leases: [{ taskId, token, owner, expiresAt: T0 + at + LEASE_MS, attempt: token }] },
      opts.delivered ?? true,
      at,
    );
  }
  complete(
    owner: string,
    taskId: string,
    token: number,
    at: number,
    rep: ExchangeReply = { ok: true, duplicate: false },
  ) {
    return this.x(owner, at, { op: "complete", taskId, token }, rep);
  }
  fail(owner: string, taskId: string, token: number, at: number, state = "WAITING") {
    return this.x(owner, at, { op: "fail", taskId, token, retryable: true }, { ok: true, state });
  }
  heartbeat(owner: string, taskId: string, token: number, at: number) {
    return this.x(
      owner,
      at,
      { op: "heartbeat", taskId, token, leaseMs: LEASE_MS },
      { ok: true, expiresAt: T0 + at + LEASE_MS },
    );
  }
  end(id: string, state: string, token = 1, attempts = token, unmetPrerequisites = 0): this {
    this.final.set(id, { state, token, attempts, unmetPrerequisites });
    return this;
  }
  check() {
    return checkHistory({ events: this.events, final: this.final });
  }
}

/** a, then b after a: leased, completed, in order. */
function cleanPair(): H {
  return new H()
    .submit([{ id: "a" }, { id: "b", pre: ["a"] }])
    .lease("w1", "a", 1, 10)
    .complete("w1", "a", 1, 100)
    .lease("w2", "b", 2, 150)
    .complete("w2", "b", 2, 300)
    .end("a", "COMPLETED", 1)
    .end("b", "COMPLETED", 2, 1);
}

describe("checker", () => {
  it("passes a correct history and counts it", () => {
    const report = cleanPair().check();
    expect(report.ok, formatReport(report, "clean")).toBe(true);
    expect(report.stats).toMatchObject({ tasks: 2, grants: 2, executions: 2, executionsBeyondFirst: 0 });
    expect(report.stats.ends).toEqual({ COMPLETED: 2 });
  });

  describe("lost", () => {
    it("finds an acknowledged task the cluster does not know", () => {
      const h = cleanPair();
      h.final.set("b", null);
      expect(h.check().counts.lost).toBe(1);
    });

    it("does not count a submit whose reply never reached the client", () => {
      const h = cleanPair().x(
        "sub",
        5,
        { op: "submit", key: "lost-reply", tasks: [{ id: "c", pre: [], maxAttempts: 3, policy: "cancel" }] },
        { ok: true, accepted: 1, replayed: false },
        false,
      );
      h.final.set("c", null);
      expect(h.check().counts.lost).toBe(0);
    });
  });

  describe("doubleLease", () => {
    it("finds a second grant while the first lease is live", () => {
      const h = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .lease("w2", "a", 2, 500)
        .end("a", "COMPLETED", 2);
      h.complete("w2", "a", 2, 600);
      expect(h.check().counts.doubleLease).toBe(1);
    });

    it("allows a grant after expiry or after the holder released the task", () => {
      const expired = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .lease("w2", "a", 2, 10 + LEASE_MS + 5)
        .complete("w2", "a", 2, 2_000)
        .end("a", "COMPLETED", 2);
      expect(expired.check().ok).toBe(true);
      const failed = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .fail("w1", "a", 1, 50)
        .lease("w2", "a", 2, 300)
        .complete("w2", "a", 2, 400)
        .end("a", "COMPLETED", 2);
      expect(failed.check().ok).toBe(true);
    });

    it("allows a grant right after the holder sent a release, and tells a released lease from one expired early", () => {
      const h = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .x("w1", 50, { op: "release", taskId: "a", token: 1 }, { ok: true, duplicate: false })
        .lease("w2", "a", 2, 60)
        // A resend of the release after the new grant: refused, and counted as a stale call.
        .x("w1", 70, { op: "release", taskId: "a", token: 1 }, { ok: false, code: "STALE_LEASE" })
        .complete("w2", "a", 2, 100)
        .end("a", "COMPLETED", 2, 1);
      // The shard's blocks: added runnable, leased, runnable again under token 1 at attempts 0
      // (released: no second unblock), leased again.
      h.events.push(
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 1, at: T0 + 1, changes: [state("a", "RUNNABLE")] },
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 10, at: T0 + 10, changes: [lease("a", 1, 10)] },
        {
          k: "tap",
          shard: "s0",
          pid: 1,
          clock: T0 + 51,
          at: T0 + 51,
          changes: [{ id: "a", state: "RUNNABLE", token: 1, attempts: 0 }],
        },
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 60, at: T0 + 60, changes: [lease("a", 2, 60)] },
      );
      const report = h.check();
      expect(report.ok, formatReport(report, "released")).toBe(true);
      expect(report.stats.staleRefused).toBe(1);
      // Without the release sent, the same blocks show a lease expired before its time.
      const unsent = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .lease("w2", "a", 2, 60)
        .complete("w2", "a", 2, 100)
        .end("a", "COMPLETED", 2, 1);
      unsent.events.push(...h.events.filter((e) => e.k === "tap"));
      expect(unsent.check().counts.doubleLease).toBeGreaterThan(0);
    });

    it("counts heartbeats: a lease extended past a later grant overlaps it", () => {
      const h = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .heartbeat("w1", "a", 1, 600)
        .lease("w2", "a", 2, 1_200)
        .complete("w2", "a", 2, 1_300)
        .end("a", "COMPLETED", 2);
      expect(h.check().counts.doubleLease).toBe(1);
    });

    it("finds one token granted to two owners", () => {
      const h = new H()
        .submit([{ id: "a" }])
        .lease("w1", "a", 1, 10)
        .end("a", "COMPLETED");
      h.x(
        "w2",
        20,
        { op: "lease", owner: "w2", requestId: "q", leaseMs: LEASE_MS, max: 1 },
        { ok: true, leases: [{ taskId: "a", token: 1, owner: "w2", expiresAt: T0 + 1_020, attempt: 1 }] },
      );
      h.complete("w1", "a", 1, 100);
      expect(h.check().counts.doubleLease).toBeGreaterThan(0);
    });

    it("finds a stale complete that was accepted, and counts refused ones", () => {
      const base = () =>
        new H()
          .submit([{ id: "a" }])
          .lease("zombie", "a", 1, 10)
          .lease("w2", "a", 2, 1_100)
          .complete("w2", "a", 2, 1_200)
          .end("a", "COMPLETED", 2);
      const refused = base().complete("zombie", "a", 1, 1_500, { ok: false, code: "STALE_LEASE" }).check();
      expect(refused.ok).toBe(true);
      expect(refused.stats.staleRefused).toBe(1);
      expect(refused.stats.executionsBeyondFirst).toBe(1);
      const accepted = base().complete("zombie", "a", 1, 1_150).check();
      expect(accepted.counts.doubleLease).toBeGreaterThan(0);
    });

    it("finds overlapping leases in the shards' journal blocks", () => {
      const h = cleanPair();
      h.events.push(
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 10, at: T0 + 10, changes: [lease("a", 1, 10)] },
        { k: "tap", shard: "s0", pid: 2, clock: T0 + 20, at: T0 + 20, changes: [lease("a", 2, 20)] },
      );
      expect(h.check().counts.doubleLease).toBeGreaterThan(0);
    });

    it("finds a lease the shard expired early, unless its holder had sent a fail (reply lost or not)", () => {
      const expiredEarly = (withFail: boolean) => {
        const h = new H().submit([{ id: "a" }]).lease("w1", "a", 1, 10);
        // The holder's retryable fail: applied, its reply lost; the tap lost the WAITING block.
        if (withFail) h.x("w1", 50, { op: "fail", taskId: "a", token: 1, retryable: true }, undefined, false);
        h.events.push(
          { k: "tap", shard: "s0", pid: 1, clock: T0 + 10, at: T0 + 10, changes: [lease("a", 1, 10)] },
          {
            k: "tap",
            shard: "s0",
            pid: 2,
            clock: T0 + 400,
            at: T0 + 400,
            changes: [{ id: "a", state: "RUNNABLE", token: 1, attempts: 1 }],
          },
        );
        return h.lease("w2", "a", 2, 500).complete("w2", "a", 2, 600).end("a", "COMPLETED", 2).check();
      };
      expect(expiredEarly(false).counts.doubleLease).toBeGreaterThan(0);
      const released = expiredEarly(true);
      expect(released.counts.doubleLease, released.examples.doubleLease.join("\n")).toBe(0);
    });
  });

  describe("doubleUnblock", () => {
    it("finds a dependent dispatched before its prerequisite completed", () => {
      const h = new H()
        .submit([{ id: "a" }, { id: "b", pre: ["a"] }])
        .lease("w1", "a", 1, 10)
        .lease("w2", "b", 2, 20)
        .complete("w1", "a", 1, 100)
        .complete("w2", "b", 2, 110)
        .end("a", "COMPLETED", 1)
        .end("b", "COMPLETED", 2, 1);
      expect(h.check().counts.doubleUnblock).toBe(1);
    });

    it("counts a complete whose sender died before the reply (it was asked for)", () => {
      const h = new H()
        .submit([{ id: "a" }, { id: "b", pre: ["a"] }])
        .lease("w1", "a", 1, 10)
        .lease("w2", "b", 2, 150)
        .complete("w2", "b", 2, 300)
        .end("a", "COMPLETED", 1)
        .end("b", "COMPLETED", 2, 1);
      expect(h.check().counts.doubleUnblock).toBe(1);
      h.events.push({ k: "sent", src: "w1", at: T0 + 100, req: { op: "complete", taskId: "a", token: 1 } });
      expect(h.check().ok).toBe(true);
    });

    it("lets a 'continue' dependent run after its prerequisite failed", () => {
      const h = new H()
        .submit([
          { id: "a", poison: true, maxAttempts: 1 },
          { id: "b", pre: ["a"], policy: "continue" },
        ])
        .lease("w1", "a", 1, 10)
        .fail("w1", "a", 1, 50, "FAILED")
        .lease("w2", "b", 2, 80)
        .complete("w2", "b", 2, 90)
        .end("a", "FAILED", 1)
        .end("b", "COMPLETED", 2, 1);
      const report = h.check();
      expect(report.ok, formatReport(report, "continue")).toBe(true);
    });

    it("finds a task dispatched again after it completed", () => {
      const h = cleanPair().lease("w3", "b", 3, 2_000);
      expect(h.check().counts.doubleUnblock).toBe(1);
    });

    it("finds a task the shard made runnable twice", () => {
      const h = cleanPair();
      h.events.push(
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 100, at: T0, changes: [state("b", "RUNNABLE")] },
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 110, at: T0, changes: [state("b", "WAITING")] },
        { k: "tap", shard: "s0", pid: 1, clock: T0 + 120, at: T0, changes: [state("b", "RUNNABLE")] },
      );
      expect(h.check().counts.doubleUnblock).toBe(1);
    });

    it("finds a waiting task whose unmet count disagrees with its prerequisites", () => {
      const h = new H()
        .submit([{ id: "a" }, { id: "b", pre: ["a"] }])
        .end("a", "COMPLETED")
        .end("b", "WAITING", 0, 0, 1);
      expect(h.check().counts.doubleUnblock).toBe(1);
    });
  });

  describe("wrongEnd", () => {
    it("finds a task that did not finish", () => {
      expect(cleanPair().end("b", "RUNNABLE", 2).check().counts.wrongEnd).toBe(1);
    });

    it("finds an acknowledged complete that was reverted", () => {
      const h = cleanPair().end("b", "FAILED", 2, 3);
      expect(h.check().counts.wrongEnd).toBe(1);
    });

    it("holds poison tasks to FAILED after exactly maxAttempts, and their dependents to their policy", () => {
      const poison = (attempts: number, dependentEnd: string) =>
        new H()
          .submit([
            { id: "p", poison: true, maxAttempts: 2 },
            { id: "c", pre: ["p"] },
            { id: "d", pre: ["p"], policy: "continue" },
          ])
          .end("p", "FAILED", attempts, attempts)
          .end("c", dependentEnd, 0, 0)
          .end("d", "COMPLETED", 3, 1)
          .lease("w", "d", 3, 5_000)
          .fail("w", "p", 1, 10)
          .complete("w", "d", 3, 5_100);
      expect(poison(2, "CANCELLED").check().ok).toBe(true);
      expect(poison(1, "CANCELLED").check().counts.wrongEnd).toBe(1);
      expect(poison(2, "COMPLETED").check().counts.wrongEnd).toBe(1);
    });

    it("follows acknowledged cancels, and counts tasks that ran out of attempts to faults", () => {
      const h = new H()
        .submit([{ id: "a" }, { id: "b", pre: ["a"] }, { id: "c" }])
        .x("sub", 5, { op: "cancel", taskId: "a" }, { ok: true })
        .end("a", "CANCELLED", 0, 0)
        .end("b", "CANCELLED", 0, 0)
        .end("c", "FAILED", 3, 3);
      const report = h.check();
      expect(report.ok, formatReport(report, "cancel")).toBe(true);
      expect(report.stats.exhausted).toBe(1);
      expect(h.end("c", "FAILED", 1, 1).check().counts.wrongEnd).toBe(1);
    });
  });

  describe("retry", () => {
    const taskA = [{ id: "a", pre: [], maxAttempts: 3, policy: "cancel" as const }];

    it("finds a complete applied, then refused on its retry; UNKNOWN_TASK from the shard asked directly is not a refusal", () => {
      const unknown = { ok: false as const, code: "UNKNOWN_TASK" };
      // The retry reached a coordinator, which said the task is unknown: the lease looks gone.
      const viaCoordinator = cleanPair().complete("w2", "b", 2, 320, unknown);
      expect(viaCoordinator.check().counts.retry).toBe(1);
      // The retry went straight to the shard the task's slot had left: the client asks a coordinator next.
      const direct = cleanPair();
      direct.events.push({
        k: "x",
        src: "w2",
        sentAt: T0 + 320,
        at: T0 + 321,
        req: { op: "complete", taskId: "b", token: 2 },
        direct: true,
        rep: unknown,
        delivered: true,
      });
      expect(direct.check().counts.retry, direct.check().examples.retry.join("\n")).toBe(0);
    });

    it("finds a submit applied twice, and a retried submit refused as new", () => {
      const twice = cleanPair()
        .x(
          "sub",
          1,
          { op: "submit", key: "K", tasks: taskA },
          { ok: true, accepted: 1, replayed: false },
          false,
        )
        .x("sub", 2, { op: "submit", key: "K", tasks: taskA }, { ok: true, accepted: 1, replayed: false });
      expect(twice.check().counts.retry).toBe(1);
      const refused = cleanPair()
        .x(
          "sub",
          1,
          { op: "submit", key: "K", tasks: taskA },
          { ok: true, accepted: 1, replayed: false },
          false,
        )
        .x("sub", 2, { op: "submit", key: "K", tasks: taskA }, { ok: false, code: "VALIDATION_FAILED" });
      expect(refused.check().counts.retry).toBe(1);
      const replayed = cleanPair()
        .x(
          "sub",
          1,
          { op: "submit", key: "K", tasks: taskA },
          { ok: true, accepted: 1, replayed: false },
          false,
        )
        .x("sub", 2, { op: "submit", key: "K", tasks: taskA }, { ok: true, accepted: 1, replayed: true });
      expect(replayed.check().ok).toBe(true);
    });

    it("checks that a lease whose reply was lost is handed back by the retry", () => {
      const lost = () =>
        new H().submit([{ id: "a" }, { id: "b" }]).lease("w1", "a", 1, 10, { delivered: false, rid: "R" });
      const handedBack = lost().lease("w1", "a", 1, 1_020, { rid: "R" }).complete("w1", "a", 1, 30);
      handedBack
        .end("a", "COMPLETED")
        .end("b", "COMPLETED", 2)
        .lease("w1", "b", 2, 50)
        .complete("w1", "b", 2, 60);
      const report = handedBack.check();
      expect(report.ok, formatReport(report, "replay")).toBe(true);
      expect(report.stats.grantsRecovered).toBe(1);
      expect(report.stats.droppedReplies).toEqual({ lease: 1 });

      // A settle's resend to the granting shard got nothing (the task's slot had moved away); the
      // request's next send, through a coordinator, got it back: handed back, not stranded.
      const movedAway = () =>
        lost().x(
          "w1",
          20,
          { op: "lease", owner: "w1", requestId: "R", leaseMs: LEASE_MS, max: 1 },
          { ok: true, leases: [] },
        );
      const foundElsewhere = movedAway().lease("w1", "a", 1, 40, { rid: "R" }).complete("w1", "a", 1, 50);
      foundElsewhere
        .end("a", "COMPLETED")
        .end("b", "COMPLETED", 2)
        .lease("w1", "b", 2, 60)
        .complete("w1", "b", 2, 70);
      const found = foundElsewhere.check();
      expect(found.ok, formatReport(found, "moved")).toBe(true);
      expect(found.stats.grantsRecovered).toBe(1);
      const notFound = movedAway().end("a", "COMPLETED").end("b", "COMPLETED", 2);
      expect(notFound.check().counts.retry).toBe(1);

      const other = lost()
        .lease("w1", "b", 2, 20, { rid: "R" })
        .end("a", "COMPLETED")
        .end("b", "COMPLETED", 2);
      expect(other.check().counts.retry).toBe(1);
      // Moved on: another lease request, and alive well past its last send under R without resending.
      const stranded = lost()
        .lease("w1", "b", 2, 20, { rid: "S" })
        .x(
          "w1",
          15_000,
          { op: "lease", owner: "w1", requestId: "T", leaseMs: LEASE_MS, max: 1 },
          { ok: true, leases: [] },
        )
        .end("a", "COMPLETED")
        .end("b", "COMPLETED", 2);
      expect(stranded.check().counts.retry).toBe(1);
      // A worker leases on two streams (lease requests, settles' next leases): another request while
      // it still resends R, then nothing (killed), is not a client that gave R up.
      const twoStreams = lost()
        .lease("w1", "b", 2, 20, { rid: "S" })
        .end("a", "COMPLETED")
        .end("b", "COMPLETED", 2);
      expect(twoStreams.check().counts.retry, twoStreams.check().examples.retry.join("\n")).toBe(0);
      // A retry sent after the lost lease expired cannot get it back: the client's own delay stranded it.
      const late = lost()
        .lease("w1", "b", 2, 1_200, { rid: "R" })
        .end("a", "COMPLETED")
        .end("b", "COMPLETED", 2);
      expect(late.check().counts.retry, late.check().examples.retry.join("\n")).toBe(0);
      // Sent before the expiry but answered after it (the shard stalled meanwhile): the shard ran the
      // expiry first, and an expired grant cannot come back. Answered before it, the grant must.
      const retried = (answeredAt: number) =>
        lost()
          .x(
            "w1",
            900,
            { op: "lease", owner: "w1", requestId: "R", leaseMs: LEASE_MS, max: 1 },
            { ok: true, leases: [] },
            true,
            answeredAt,
          )
          .end("a", "COMPLETED")
          .end("b", "COMPLETED", 2);
      expect(retried(1_300).check().counts.retry, retried(1_300).check().examples.retry.join("\n")).toBe(0);
      expect(retried(905).check().counts.retry).toBe(1);
      // A client that died while still retrying (its retry's reply lost too) stranded it by dying.
      const died = lost()
        .x(
          "w1",
          20,
          { op: "lease", owner: "w1", requestId: "R", leaseMs: LEASE_MS, max: 1 },
          { ok: false, code: "SHARD_UNAVAILABLE" },
          false,
        )
        .end("a", "COMPLETED")
        .end("b", "RUNNABLE");
      expect(died.check().counts.retry, died.check().examples.retry.join("\n")).toBe(0);
    });

    it("finds a complete that was applied and then refused on retry", () => {
      const h = cleanPair().x(
        "w2",
        301,
        { op: "complete", taskId: "b", token: 2 },
        { ok: false, code: "STALE_LEASE" },
      );
      expect(h.check().counts.retry).toBe(1);
      const restarting = cleanPair()
        .x("w2", 301, { op: "complete", taskId: "b", token: 2 }, { ok: false, code: "SHARD_UNAVAILABLE" })
        .check();
      expect(restarting.ok).toBe(true);
      const dup = cleanPair().complete("w2", "b", 2, 301, { ok: true, duplicate: true }).check();
      expect(dup.ok).toBe(true);
      expect(dup.stats.duplicateCompletes).toBe(1);
    });
  });

  it("reports faults, recovery percentiles and a summary table", () => {
    const h = cleanPair();
    for (let i = 1; i <= 100; i++) {
      h.events.push({ k: "fault", at: T0 + i, kind: "shard-kill", target: "shard-0" });
      h.events.push({ k: "recovered", at: T0 + i, kind: "shard-kill", target: "shard-0", ms: i * 10 });
    }
    const report = h.check();
    expect(report.stats.faults).toEqual({ "shard-kill": 100 });
    expect(report.stats.recovery["shard-kill"]).toEqual({ n: 100, p50: 500, p99: 990, max: 1_000 });
    const table = formatReport(report, "summary");
    expect(table).toMatch(/faults injected\s+100 \(shard-kill 100\)/);
    expect(table).toMatch(/recovery: shard-kill\s+p50 500 ms, p99 990 ms/);
    expect(table).toMatch(/two live leases on one task\s+0/);
  });

  it("a zombie shard's writes: blocks built after it was stopped, however late their tap lines", () => {
    const tap = (pid: number, clock: number, at: number): HistoryEvent => ({
      k: "tap",
      shard: "shard-1",
      pid,
      clock: T0 + clock,
      at: T0 + at,
      changes: [state("t", "RUNNABLE")],
    });
    const zombie = { pid: 7, stoppedAt: T0 + 1_000, replacedAt: T0 + 5_000 };
    const builtBefore = tap(7, 990, 5_001); // committed before the stop, its line written after the wake-up
    const builtAfter = tap(7, 5_002, 5_010); // built after the wake-up: it must never be durable
    const otherPid = tap(8, 5_002, 5_010); // the replacement's
    expect(zombieWrites([builtBefore, otherPid], zombie)).toEqual([]);
    expect(zombieWrites([builtBefore, builtAfter, otherPid], zombie)).toEqual([builtAfter]);
    // A shard clock up to half the pause off the wall clock changes neither answer.
    expect(zombieWrites([tap(7, 2_900, 5_001)], zombie)).toEqual([]);
    expect(zombieWrites([tap(7, 3_100, 5_010)], zombie)).toHaveLength(1);
    // Woken before the takeover (it held the lock the takeover waited for): what it built until
    // then is its own; what it built once the replacement served never is.
    const wokenFirst = { ...zombie, wokenFirst: true };
    expect(zombieWrites([tap(7, 4_000, 4_010)], wokenFirst)).toEqual([]);
    expect(zombieWrites([tap(7, 5_002, 5_010)], wokenFirst)).toHaveLength(1);
  });

  it("percentiles of nothing are zero", () => {
    expect(percentiles([])).toEqual({ n: 0, p50: 0, p99: 0, max: 0 });
  });

  it("parses JSON lines and skips logs and torn lines", () => {
    const text = `{"k":"fault","at":1,"kind":"shard-kill","target":"s"}\n{"level":30}\n{"k":"fault","at":2,`;
    expect(parseEvents(text)).toEqual([{ k: "fault", at: 1, kind: "shard-kill", target: "s" }]);
  });
});

function lease(id: string, token: number, at: number) {
  return { id, state: "LEASED", token, attempts: token, expiresAt: T0 + at + LEASE_MS };
}

function state(id: string, s: string) {
  return { id, state: s, token: 0, attempts: 0 };
}
