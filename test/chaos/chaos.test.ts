/**
 * The chaos run: a real cluster of separate OS processes (cluster.ts) under
 * a steady workload, through a schedule of faults, checked at the end by
 * the history checker (checker.ts).
 *
 *  1. Mixed chaos for FRONTIER_CHAOS_DURATION_MS (`pnpm test`, and so CI:
 *     60 s; `pnpm chaos` runs 10 minutes): every 1.5–3.5 s a fault, mostly a SIGKILLed
 *     shard (restarted on its data by the supervisor), else a slot moved
 *     between shards (mostly with its source or target SIGKILLed mid-move),
 *     a crashed worker, a frozen SDK worker, a stalled shard event loop, a
 *     NATS restart, a killed coordinator.
 *  2. Targeted faults, each with its own assertion: a zombie worker, a slow
 *     worker, a zombie shard, an event-loop stall, NATS killed, one of two
 *     coordinators killed, a submit storm, slot moves with their source or
 *     target SIGKILLed mid-move.
 *  3. Drain, read every task back, check, print the summary table.
 *
 * Throughout: replies to a share of the workers' lease / complete /
 * heartbeat / fail requests and of the submitter's submits are dropped
 * (wire-tap.ts); 5 % of workflows are poison, 5 % of tasks flaky.
 *
 * FRONTIER_CHAOS_SEED replays the workload and the fault schedule (the
 * interleaving still varies). The run directory (histories, shard data) is
 * kept for a post-mortem when a check failed or the checks did not run, and
 * its path printed; FRONTIER_CHAOS_KEEP=1 keeps it always, =0 never.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { FrontierClient } from "@frontier/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CHECK_TITLES,
  CHECKS,
  type ChaosReport,
  checkHistory,
  formatReport,
  zombieWrites,
} from "./checker.js";
import { ChaosCluster, START_BUDGET_MS } from "./cluster.js";
import type { Exchange, HistoryEvent } from "./history.js";
import { seededRandom } from "./simulation.js";
import { slowTask, stormTasks, workflow } from "./workload.js";

const DURATION_MS = Number(process.env["FRONTIER_CHAOS_DURATION_MS"] ?? 60_000);
const SEED = Number(process.env["FRONTIER_CHAOS_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
/** "1" keeps the run directory always, "0" never; unset, it is kept when the checks failed or did not run. */
const KEEP = process.env["FRONTIER_CHAOS_KEEP"];
const LEASE_MS = 3_000;
/** Shorter than a lease: heartbeats queued during the stall keep every lease alive. */
const STALL_MS = 2_500;
/** Workflows submitted per second in the background. */
const LOAD_RATE = 6;
const LONG = DURATION_MS > 60_000;
const STORM_TASKS = LONG ? 10_000 : 1_000;
/** How long the end may wait for everything submitted to finish, ms. */
const DRAIN_MS = LONG ? 600_000 : 180_000;
const STORM_MAX_PENDING = 200;
const RUN = `r${SEED.toString(36)}`;
/**
 * The shards' order window, by seed: exact order, a window, or each shard's
 * own order. A window decides only which runnable task a settle may take,
 * so every check must hold under each.
 */
const ORDER_WINDOW = ["0", "64", "shard"][SEED % 3]!;
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

describe.sequential(`chaos (seed ${SEED})`, () => {
  // One stream for the workload, one for the fault schedule, so a seed replays both.
  const random = seededRandom(SEED);
  const faults = seededRandom(SEED ^ 0x5eed);
  let c: ChaosCluster;
  let submitter: FrontierClient;
  let probe: FrontierClient;
  let loadStopped = false;
  /** The history's check, once the drain ran it. */
  let report: ChaosReport | undefined;
  let load: Promise<void> = Promise.resolve();
  const started = Date.now();

  beforeAll(async () => {
    c = await ChaosCluster.start({
      leaseMs: LEASE_MS,
      stallMs: STALL_MS,
      orderWindow: ORDER_WINDOW,
      workerDrops: { lease: 0.05, complete: 0.05, heartbeat: 0.05, fail: 0.05 },
    });
    submitter = await c.client("submitter", { dropReply: { submit: 0.1 } });
    probe = await c.client("probe");
    load = backgroundLoad();
  }, START_BUDGET_MS);

  afterAll(async () => {
    loadStopped = true;
    await load.catch(() => {});
    // A failed run's history is what explains it: kept unless told not to (a rerun of the seed
    // varies in its interleaving, and may not fail again).
    const keep = KEEP === "1" || (KEEP !== "0" && report?.ok !== true);
    await c?.stop(keep);
    if (keep && c !== undefined) process.stderr.write(`chaos run directory kept: ${c.runDir}\n`);
  }, 60_000);

  /** Submits workflows at LOAD_RATE until stopped; each is retried under its key until acknowledged. */
  async function backgroundLoad(): Promise<void> {
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; !loadStopped; i++) {
      const wf = workflow(RUN, i, random);
      if (inFlight.size < 40) {
        const p = c.submitUntilAcked(submitter, wf.tasks, `${RUN}-submit-${i}`, Date.now() + 60_000);
        inFlight.add(p);
        void p.catch(() => {}).finally(() => inFlight.delete(p));
      }
      await sleep(1_000 / LOAD_RATE);
    }
    await Promise.allSettled([...inFlight]);
  }

  it(
    "mixed chaos: shards SIGKILLed every few seconds come back on their data; workers, NATS, coordinators fail too",
    async () => {
      const end = Date.now() + DURATION_MS;
      let kills = 0;
      const moves: Promise<string>[] = [];
      while (Date.now() < end) {
        await sleep(1_500 + faults() * 2_000);
        const r = faults();
        const pick = <T>(xs: readonly T[]) => xs[Math.floor(faults() * xs.length)]!;
        // Faults hit members that serve (a process still starting is left alone).
        const serving = (ms: typeof c.shards) => ms.filter((m) => m.serving);
        if (r < 0.5) {
          const up = serving(c.shards);
          if (up.length > 0) {
            c.kill(pick(up), "shard-kill");
            kills++;
          }
        } else if (r < 0.6) {
          // A slot moves under load; two times in three its source or target dies mid-move.
          const k = faults();
          const kill = k < 1 / 3 ? undefined : k < 2 / 3 ? "source" : "target";
          moves.push(c.moveSlot(probe, faults, kill, Math.floor(faults() * 40)));
        } else if (r < 0.72) {
          const up = serving(c.workers);
          if (up.length > 0) c.kill(pick(up), "worker-kill");
        } else if (r < 0.8) {
          const up = serving(c.workers);
          if (up.length > 0) await c.pause(pick(up), "worker-zombie", LEASE_MS + 1_000);
        } else if (r < 0.88) {
          const up = serving(c.shards);
          // A shard killed meanwhile never reports its stall: that is fine here.
          if (up.length > 0) await c.stall(pick(up)).catch(() => 0);
        } else if (r < 0.94) await c.restartNats(probe, 1_000);
        else if (serving(c.coordinators).length === c.coordinators.length)
          await c.killCoordinator(pick(c.coordinators), probe);
      }
      await Promise.allSettled(moves);
      // Every killed shard came back (the supervisor's restart, timed to its "listening").
      await until(() => recovered("shard-kill") === kills, 60_000);
      expect(c.shards.every((s) => s.proc !== undefined)).toBe(true);
    },
    DURATION_MS + 120_000,
  );

  it("a zombie worker's late completes are refused by their fencing tokens, and its tasks are leased again", async () => {
    const { taskIds, outcomes } = await c.zombieWorker(LEASE_MS + 2_000);
    expect(outcomes).toEqual(taskIds.map(() => "STALE_LEASE"));
    await until(async () => (await views(taskIds)).every((t) => t !== null && TERMINAL.has(t.state)), 60_000);
    const grants = grantsOf(c.history(new Map()).events);
    for (const t of await views(taskIds)) {
      // The zombie held a task from the load: one on its last attempt (a poison task) ends
      // FAILED when the zombie's lease expires; any other is leased again.
      if (t!.state === "FAILED" && t!.attempts >= t!.maxAttempts) continue;
      expect(t!.state, t!.id).toBe("COMPLETED");
      expect(grants.get(t!.id)?.size, t!.id).toBeGreaterThan(1);
    }
  }, 120_000);

  it("a slow worker that keeps heartbeating is never re-dispatched", async () => {
    const tasks = [0, 1, 2].map((i) => slowTask(RUN, i, Math.round(LEASE_MS * 2.5)));
    await c.submitUntilAcked(submitter, tasks, `${RUN}-slow`, Date.now() + 30_000);
    await until(async () => (await states(tasks.map((t) => t.id))).every((s) => s === "COMPLETED"), 60_000);
    const grants = grantsOf(c.history(new Map()).events);
    for (const t of tasks) expect(grants.get(t.id)?.size, t.id).toBe(1);
  }, 120_000);

  it("a zombie shard is fenced by its replacement: woken, it writes nothing more and stops by itself", async () => {
    const shard = c.shards[1]!;
    const outcome = await c.zombieShard(shard, LEASE_MS + 1_000);
    // Woken, it found itself fenced at its first write and stopped by itself, failing.
    expect(outcome.exitedByItself).toBe(true);
    expect(outcome.exitCode).not.toBe(0);
    expect(zombieWrites(c.history(new Map()).events, outcome)).toEqual([]);
  }, 120_000);

  it("an event-loop stall inside a shard expires no lease early and grants none twice", async () => {
    const shard = c.shards[2]!;
    const pid = shard.pid;
    expect(await c.stall(shard)).toBeGreaterThanOrEqual(STALL_MS);
    await sleep(LEASE_MS);
    // It lived through it (a stall is not a crash). Whether a lease expired early or was granted
    // twice meanwhile is for the checks at the end, which see every lease of the run.
    expect(shard.pid).toBe(pid);
  }, 60_000);

  it("NATS killed and restarted: shards, coordinators and clients reconnect", async () => {
    await c.restartNats(probe, 1_500);
    expect(recovered("nats-restart")).toBeGreaterThan(0);
  }, 60_000);

  it("one of two coordinators SIGKILLed: the other keeps serving", async () => {
    const ms = await c.killCoordinator(c.coordinators[0]!, probe);
    // Requests in flight to the dead one time out and are retried; the survivor answers at once.
    expect(ms).toBeLessThan(5_000);
    await until(() => c.coordinators.every((m) => m.proc !== undefined), 60_000);
  }, 90_000);

  it("a submit storm far above the drain rate meets backpressure: bounded memory, no dropped acknowledgement", async () => {
    const storm = await c.storm(submitter, stormTasks(RUN, STORM_TASKS), STORM_MAX_PENDING);
    expect({ accepted: storm.accepted, rejected: storm.rejected }).toEqual({
      accepted: STORM_TASKS,
      rejected: 0,
    });
    expect(storm.highestPending).toBeLessThanOrEqual(STORM_MAX_PENDING);
    expect(storm.heapGrowthBytes).toBeLessThan(200 * 1024 * 1024);
    expect(storm.coordinatorRssBytes).toBeLessThan(600 * 1024 * 1024);
    process.stdout.write(
      `storm: ${storm.accepted} tasks in ${storm.ms} ms, at most ${storm.highestPending} held, ` +
        `heap +${mb(storm.heapGrowthBytes)}, coordinator RSS ≤ ${mb(storm.coordinatorRssBytes)}\n`,
    );
  }, 180_000);

  it("slots moved under load, their source or target SIGKILLed mid-move: every shard comes back, every slot has its owner", async () => {
    const outcomes: string[] = [];
    const plan = [undefined, "source", "target", "source", "target", undefined] as const;
    for (const [i, kill] of plan.entries()) {
      outcomes.push(await c.moveSlot(probe, faults, kill, kill === undefined ? 0 : [2, 5, 9, 14, 3, 7][i]!));
      // The killed shard is back (and a killed source has finished its move from its outbox).
      await until(() => c.shards.every((m) => m.serving), 60_000);
    }
    process.stdout.write(`slot moves: ${outcomes.join("; ")}\n`);
    expect(outcomes.filter((o) => o.startsWith("skipped"))).toEqual([]);
    const stats = await probe.stats();
    expect(stats.shards.missing).toEqual([]);
    // Whether each move ended or was cut short before its fence, the checks at the end find
    // every task once and every lease alone.
  }, 600_000);

  it(
    "drains, reads every task back and checks the history",
    async () => {
      loadStopped = true;
      await load;
      const t0 = Date.now();
      await c.drain(probe, DRAIN_MS);
      const t1 = Date.now();
      await c.stopWorkers();
      const final = await c.readFinal(probe);
      report = checkHistory(c.history(final));
      const t2 = Date.now();
      const seconds = Math.round((t2 - started) / 1000);
      const title = `chaos summary (seed ${SEED}, order window ${ORDER_WINDOW}, ${seconds} s; drained in ${s(t1 - t0)}, read back and checked in ${s(t2 - t1)})`;
      process.stdout.write(`\n${formatReport(report, title)}\n\n`);
      // The faults really happened, and every acknowledged task was read back.
      expect(report.stats.faults["shard-kill"] ?? 0).toBeGreaterThan(0);
      expect(report.stats.tasks).toBeGreaterThan(STORM_TASKS);
      expect(report.stats.ends["FAILED"] ?? 0).toBeGreaterThan(0);
    },
    DRAIN_MS + 180_000,
  );

  for (const check of CHECKS) {
    it(`${CHECK_TITLES[check]} = 0`, () => {
      expect(report, "the history was not checked").toBeDefined();
      expect(report!.counts[check], report!.examples[check].join("\n")).toBe(0);
    });
  }

  // --------------------------------------------------------------- helpers

  function recovered(kind: string): number {
    return c.events.filter((e) => e.k === "recovered" && e.kind === kind).length;
  }

  async function views(ids: readonly string[]) {
    return Promise.all(
      ids.map(async (id) => {
        const wf = c.submitted.get(id);
        return (
          (await probe.getTask(id, wf === undefined ? {} : { workflowId: wf }).catch(() => null)) ?? null
        );
      }),
    );
  }

  async function states(ids: readonly string[]): Promise<string[]> {
    return (await views(ids)).map((t) => t?.state ?? "UNKNOWN");
  }
});

/** Distinct lease tokens per task, from the clients' exchanges and the shard taps. */
function grantsOf(events: readonly HistoryEvent[]): Map<string, Set<number>> {
  const grants = new Map<string, Set<number>>();
  const add = (id: string, token: number) => {
    let set = grants.get(id);
    if (!set) grants.set(id, (set = new Set()));
    set.add(token);
  };
  for (const e of events) {
    if (e.k === "x") {
      const rep = (e as Exchange).rep;
      if (rep?.ok && "leases" in rep) for (const l of rep.leases) add(l.taskId, l.token);
    } else if (e.k === "tap") {
      for (const ch of e.changes) if (ch.state === "LEASED") add(ch.id, ch.token);
    }
  }
  return grants;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function s(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
