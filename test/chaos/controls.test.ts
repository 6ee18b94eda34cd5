/**
 * Negative controls on a real cluster (NATS, shard and coordinator
 * processes): the same recorder and checker as the chaos run, with a client
 * whose transport deliberately breaks one promise (wire-tap.ts `rewrite`).
 * Each control must trip the check that guards that promise — so the
 * recorder sees what it must, and a green chaos run means something. (The
 * engine-level controls, one per check, are in simulation.test.ts.)
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { FrontierClient } from "@frontier/client";
import type { Lease, TaskInput } from "@frontier/core";
import type { Request } from "@frontier/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CheckName, checkHistory, formatReport } from "./checker.js";
import { ChaosCluster, START_BUDGET_MS } from "./cluster.js";
import type { ChaosPayload, FinalTask, HistoryEvent } from "./history.js";
import { seededRandom } from "./simulation.js";
import type { WireFaults } from "./wire-tap.js";
import { WORKLOAD_TYPES, workflow } from "./workload.js";

const LEASE_MS = 1_500;

describe.sequential("negative controls on a real cluster", () => {
  let c: ChaosCluster;
  let probe: FrontierClient;

  beforeAll(async () => {
    c = await ChaosCluster.start({ shards: 2, coordinators: 1, workers: 0 });
    probe = await c.client("probe");
  }, START_BUDGET_MS);

  afterAll(async () => {
    await c?.stop();
  }, 60_000);

  interface Control {
    readonly submitter?: WireFaults;
    readonly worker?: WireFaults;
    /** Handler time of every task, ms (default: the workload's). */
    readonly ms?: number;
    /** Runs before the worker starts (a worker prefetches: it may lease every task at once). */
    readonly before?: () => Promise<void>;
    /** Runs alongside the worker, e.g. a zombie. */
    readonly alongside?: (tasks: readonly TaskInput[]) => Promise<void>;
  }

  /** Submits a few workflows, works them with the faulty client, drains, and checks this control's history. */
  async function run(name: string, control: Control) {
    const from = Date.now();
    const random = seededRandom(name.length);
    const submitter = await c.client(`${name}-submitter`, control.submitter ?? {});
    const tasks: TaskInput[] = [];
    for (let i = 0; i < 12; i++) {
      const wf = workflow(name, i, random, { poison: 0, flaky: 0 });
      const batch =
        control.ms === undefined ? wf.tasks : wf.tasks.map((t) => ({ ...t, payload: { ms: control.ms } }));
      tasks.push(...batch);
      await c.submitUntilAcked(submitter, batch, `${name}-${i}`, Date.now() + 20_000);
    }
    await control.before?.();
    const client = await c.client(`${name}-worker`, control.worker ?? {}, 500);
    const worker = client.work(
      async (task, ctx) => sleep((task.payload as ChaosPayload).ms, undefined, { signal: ctx.signal }),
      { types: WORKLOAD_TYPES, concurrency: 6, leaseMs: LEASE_MS, waitMs: 200 },
    );
    worker.on((e) => {
      if (e.type === "task:started")
        c.events.push({
          k: "exec",
          src: worker.owner,
          at: Date.now(),
          taskId: e.lease.taskId,
          token: e.lease.token,
          phase: "started",
        });
    });
    await control.alongside?.(tasks);
    await c.drain(probe, 60_000);
    await worker.stop();
    const final = new Map<string, FinalTask | null>();
    for (const t of tasks) {
      const v = await probe.getTask(t.id, t.workflowId === undefined ? {} : { workflowId: t.workflowId });
      final.set(
        t.id,
        v && {
          state: v.state,
          token: v.token,
          attempts: v.attempts,
          unmetPrerequisites: v.unmetPrerequisites,
        },
      );
    }
    const to = Date.now();
    const inWindow = (e: HistoryEvent) => {
      const at = e.k === "x" ? e.sentAt : e.at;
      return at >= from && at <= to;
    };
    return checkHistory({ events: c.history(new Map()).events.filter(inWindow), final });
  }

  function expectCaught(report: ReturnType<typeof checkHistory>, check: CheckName, name: string): void {
    expect(report.counts[check], formatReport(report, name)).toBeGreaterThan(0);
  }

  it("a correct client passes (the control of the controls)", async () => {
    const report = await run("ok", {
      submitter: { dropReply: { submit: 0.2 } },
      worker: { dropReply: { complete: 0.2 } },
    });
    expect(report.ok, formatReport(report, "ok")).toBe(true);
  }, 90_000);

  it("lost: a submit acknowledged without being stored", async () => {
    let dropped = false;
    const report = await run("lost", {
      submitter: {
        rewrite: async (request) => {
          if (request.op !== "submit" || dropped) return { request };
          dropped = true;
          return { reply: { ok: true, op: "submit", accepted: request.tasks.length, replayed: false } };
        },
      },
    });
    expectCaught(report, "lost", "lost");
  }, 90_000);

  it("doubleLease: a paused worker's late complete applied without its fencing token", async () => {
    let zombie: FrontierClient | undefined;
    let held: readonly Lease[] = [];
    const report = await run("fencing", {
      ms: 1_200,
      // The zombie takes two tasks before the worker starts, so they are there to take.
      before: async () => {
        // Its transport swaps the live token, with that lease's secret (forged with the shard's
        // key), into its late completes: a cluster whose fencing did not hold.
        zombie = await c.client("fencing-zombie", {
          rewrite: async (request) => {
            if (request.op !== "complete") return { request };
            const live = await probe.getTask(request.taskId, workflowOf(request));
            const token = live?.token ?? request.token;
            const secret = c.forgeSecret(request.taskId, workflowOf(request).workflowId, token);
            return { request: { ...request, token, secret } };
          },
        });
        held = await zombie.lease({ max: 2, leaseMs: 300, waitMs: 2_000, owner: "fencing-zombie" });
        for (const l of held)
          c.events.push({
            k: "exec",
            src: "fencing-zombie",
            at: Date.now(),
            taskId: l.taskId,
            token: l.token,
            phase: "started",
          });
      },
      // It sleeps past their leases while the worker takes them over, then completes them.
      alongside: async () => {
        for (const l of held) {
          await until(async () => {
            const t = await probe.getTask(l.taskId, workflowOf({ workflowId: l.task.workflowId }));
            return t?.state === "LEASED" && t.token !== l.token;
          });
          await zombie!.complete(l).catch(() => {});
        }
      },
    });
    expect(held).toHaveLength(2);
    expectCaught(report, "doubleLease", "fencing");
  }, 90_000);

  it("doubleUnblock: a submit path that loses prerequisites", async () => {
    const report = await run("unblock", {
      submitter: {
        rewrite: async (request) =>
          request.op === "submit"
            ? { request: { ...request, tasks: request.tasks.map((t) => ({ ...t, prerequisites: [] })) } }
            : { request },
      },
    });
    expectCaught(report, "doubleUnblock", "unblock");
  }, 90_000);

  it("wrongEnd: completes acknowledged but never applied", async () => {
    let faked = 0;
    const report = await run("wrongend", {
      worker: {
        // A worker completes in settles: the first three are answered as applied, and never sent.
        rewrite: async (request) =>
          request.op === "settle" && faked++ < 3
            ? {
                reply: {
                  ok: true,
                  op: "settle",
                  results: request.completes.map(() => ({ duplicate: false })),
                  leases: [],
                },
              }
            : { request },
      },
    });
    expectCaught(report, "wrongEnd", "wrongend");
  }, 90_000);

  it("retry: a client that sends a lease retry under a new request id", async () => {
    const seen = new Set<string>();
    let n = 0;
    const report = await run("retry", {
      worker: {
        // Leases come from lease requests and, mostly, with a settle's reply: break the retries of both.
        dropReply: { lease: 0.5, settle: 0.5 },
        rewrite: async (request) => {
          if (request.op === "lease") {
            const retry = seen.has(request.requestId);
            seen.add(request.requestId);
            return {
              request: retry ? { ...request, requestId: `${request.requestId}-again-${n++}` } : request,
            };
          }
          if (request.op === "settle" && request.lease !== undefined) {
            const id = request.lease.requestId;
            const retry = seen.has(id);
            seen.add(id);
            return {
              request: retry
                ? { ...request, lease: { ...request.lease, requestId: `${id}-again-${n++}` } }
                : request,
            };
          }
          return { request };
        },
      },
    });
    expectCaught(report, "retry", "retry");
  }, 90_000);
});

function workflowOf(ref: { workflowId?: string | undefined } | Request): { workflowId?: string } {
  const wf = (ref as { workflowId?: string }).workflowId;
  return wf === undefined ? {} : { workflowId: wf };
}

async function until(cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}
