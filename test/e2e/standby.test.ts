/**
 * A standby shard taking over a lost host, as an operator runs it
 * (docs/cluster.md, "Standby shards"): `frontier shard --replicate` ships
 * its journal to JetStream, `frontier shard --standby` on another directory
 * follows it; the primary's process is SIGKILLed and its data directory
 * taken away (the host is lost). The standby takes the shard over: every
 * acknowledged task is there as it was, leases held are neither lost nor
 * doubled (and complete at the new primary, their secrets intact), and new
 * fencing tokens start above every token the old primary could have handed
 * out (its reserved ceiling). The old primary, back with its disk, is
 * refused.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type FrontierClient } from "@frontier/client";
import { restoreFromStream } from "@frontier/cluster";
import { type Coordinator, startCoordinator } from "@frontier/coordinator";
import type { Lease } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import { SLOT_COUNT } from "@frontier/protocol";
import { Shard, TOKEN_RESERVATION } from "@frontier/shard";
import { connect as natsConnect } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frontier, REPO_ROOT, startFrontier, until } from "./harness.js";

let CLUSTER = "standby";
let server: NatsServer;
let coordinator: Coordinator;
let client: FrontierClient;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  dir = mkdtempSync(join(tmpdir(), "frontier-standby-"));
});

afterAll(async () => {
  await client?.close();
  await coordinator?.close();
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const on = () => [
  "--nats",
  server.url,
  "--cluster",
  CLUSTER,
  "--no-metrics",
  "--log-level",
  "info",
  "--json",
];

/** A long-running `frontier args…` process; its output so far, and a wait for a JSON event. */
function spawnFrontier(args: readonly string[]) {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "packages/cli/src/bin.ts", ...args],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => out,
    async event(name: string, timeoutMs = 60_000) {
      await until(() => out.includes(`"event":"${name}"`) || child.exitCode !== null, timeoutMs).catch(
        () => {},
      );
      if (!out.includes(`"event":"${name}"`)) throw new Error(`no ${name} event; the process said:\n${out}`);
    },
  };
}

describe("a standby shard", () => {
  it("takes over a lost primary: nothing acknowledged lost, no lease doubled, tokens above the old ceiling, the old primary refused", async () => {
    const primaryDir = join(dir, "primary");
    const standbyDir = join(dir, "standby");
    const primary = spawnFrontier([
      "shard",
      ...on(),
      "--id",
      "shard-0",
      "--data",
      primaryDir,
      "--replicate",
      "--durability",
      "committed",
    ]);
    await primary.event("listening");
    coordinator = await startCoordinator({
      natsUrl: server.url,
      cluster: CLUSTER,
      logger: pino({ level: "silent" }),
    });
    await until(() => coordinator.inspect().slotsOwned === SLOT_COUNT, 15_000);
    client = await connect({ servers: server.url, cluster: CLUSTER });
    const loader = await connect({ servers: server.url, cluster: CLUSTER });

    // Acknowledged work: DAG workflows, tasks of their own, leases held, completes.
    const tasks = [];
    for (let w = 0; w < 20; w++) {
      const workflowId = `wf-${w}`;
      tasks.push({ id: `${workflowId}-a`, deadline: 1_000 + w, workflowId });
      tasks.push({
        id: `${workflowId}-b`,
        deadline: 2_000 + w,
        workflowId,
        prerequisites: [`${workflowId}-a`],
      });
      tasks.push({ id: `solo-${w}`, deadline: 3_000 + w, payload: { w } });
    }
    await client.submit(tasks, { idempotencyKey: "load-1" });
    const held: Lease[] = [];
    while (held.length < 15) held.push(...(await client.lease({ max: 15 - held.length, leaseMs: 600_000 })));
    const completed = held.splice(0, 5);
    for (const lease of completed) expect((await client.complete(lease)).duplicate).toBe(false);
    const before = new Map<string, { state: string; token: number }>();
    for (const t of tasks) {
      const view = await client.getTask(t.id, t.workflowId === undefined ? {} : { workflowId: t.workflowId });
      before.set(t.id, { state: view!.state, token: view!.token });
    }
    const oldTokens = [...held, ...completed].map((l) => l.token);

    // The standby follows (it may start late: it reads the stream from its first message).
    const standby = spawnFrontier([
      "shard",
      ...on(),
      "--id",
      "shard-0",
      "--data",
      standbyDir,
      "--standby",
      "--failover-after",
      "2000",
    ]);
    await standby.event("standby");
    expect(standby.output()).not.toMatch(/"event":"takeover"/); // the primary announces: no takeover

    // Load while the host is lost: submits and leases of tasks of their own type, each recorded
    // the moment it is acknowledged (one that fails is sent again: idempotent by key and request).
    const acked: string[] = [];
    const ackedLeases: Lease[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading; i++) {
        const id = `load-${i}`;
        for (;;) {
          try {
            await loader.submit([{ id, deadline: 5_000 + i, type: "load" }], {
              idempotencyKey: `key-${id}`,
            });
            break;
          } catch {}
        }
        acked.push(id);
        if (i % 3 === 0) {
          try {
            ackedLeases.push(
              ...(await loader.lease({ max: 1, leaseMs: 600_000, types: ["load"], waitMs: 0 })),
            );
          } catch {}
        }
      }
    })();
    await until(() => acked.length >= 30 && ackedLeases.length >= 5, 30_000);

    // The host is lost: its process killed, its disk gone (kept aside, to bring it back later).
    primary.child.kill("SIGKILL");
    await primary.exited;
    const lostDisk = join(dir, "lost-disk");
    cpSync(primaryDir, lostDisk, { recursive: true });
    rmSync(primaryDir, { recursive: true, force: true });

    const ackedBeforeTakeover = acked.length;
    await standby.event("takeover");
    await standby.event("listening");
    await until(() => coordinator.inspect().frontiers.length === 1, 15_000);
    await until(() => acked.length >= ackedBeforeTakeover + 5, 30_000); // the load goes on, served by the standby
    loading = false;
    await load;
    await loader.close();
    // Nothing acknowledged lost, nothing doubled: every acknowledged load task is there, each
    // acknowledged lease LEASED under its token; then they run out of the way of the checks below.
    for (const id of acked) expect([id, (await client.getTask(id))?.id]).toEqual([id, id]);
    for (const lease of ackedLeases) {
      const view = await client.getTask(lease.taskId);
      expect([lease.taskId, view?.state, view?.token]).toEqual([lease.taskId, "LEASED", lease.token]);
      expect((await client.complete(lease)).duplicate).toBe(false);
    }
    for (;;) {
      const rest = await client.lease({ max: 100, leaseMs: 60_000, types: ["load"] });
      if (rest.length === 0) break;
      for (const lease of rest) expect((await client.complete(lease)).duplicate).toBe(false);
    }

    // Every acknowledged task, as it was: states and tokens (the leases held, LEASED under their tokens).
    for (const t of tasks) {
      const view = await client.getTask(t.id, t.workflowId === undefined ? {} : { workflowId: t.workflowId });
      expect([t.id, view?.state, view?.token]).toEqual([
        t.id,
        before.get(t.id)!.state,
        before.get(t.id)!.token,
      ]);
    }
    expect((await client.submit(tasks, { idempotencyKey: "load-1" })).replayed).toBe(true);
    // No lease doubled: the held tasks are not granted again while their leases live, and new
    // tokens start above every token the old primary handed out or had reserved.
    const heldIds = new Set(held.map((l) => l.taskId));
    const fresh: Lease[] = [];
    for (;;) {
      const more = await client.lease({ max: 50, leaseMs: 60_000 });
      if (more.length === 0) break;
      fresh.push(...more);
    }
    expect(fresh.some((l) => heldIds.has(l.taskId))).toBe(false);
    expect(Math.min(...fresh.map((l) => l.token))).toBeGreaterThan(Math.max(...oldTokens));
    expect(Math.min(...fresh.map((l) => l.token))).toBeGreaterThan(TOKEN_RESERVATION);
    for (const lease of fresh) expect((await client.complete(lease)).duplicate).toBe(false);
    expect((await client.stats()).counts.LEASED).toBe(held.length);
    // The leases held across the takeover complete at the new primary: their secrets hold (the
    // lease key came with the stream's base), and a retry of a complete the old primary answered
    // is a duplicate there.
    for (const lease of held) expect((await client.complete(lease)).duplicate).toBe(false);
    for (const lease of completed) expect((await client.complete(lease)).duplicate).toBe(true);
    const stats = await client.stats();
    expect(stats.counts.COMPLETED).toBe(acked.length + completed.length + fresh.length + held.length);
    expect(stats.counts.LEASED).toBe(0);

    // The old primary comes back with its disk: refused, whether it replicates or not.
    expect(existsSync(primaryDir)).toBe(false);
    cpSync(lostDisk, primaryDir, { recursive: true });
    for (const flags of [["--replicate"], []]) {
      const back = await frontier(["shard", ...on(), "--id", "shard-0", "--data", primaryDir, ...flags], {
        timeoutMs: 60_000,
      });
      expect(back.code, back.stdout).not.toBe(0);
      expect(back.stderr).toMatch(/SHARD_ID_TAKEN|held by another data directory/);
    }
    // And the new primary serves on: the held tasks' dependents, unblocked by their completes, run.
    let done = completed.length + fresh.length + held.length;
    while (done < tasks.length) {
      const leases = await client.lease({ max: 50, leaseMs: 60_000, waitMs: 2_000 });
      expect(leases.length).toBeGreaterThan(0);
      for (const lease of leases) expect((await client.complete(lease)).duplicate).toBe(false);
      done += leases.length;
    }
    expect((await client.stats()).counts.COMPLETED).toBe(tasks.length + acked.length);
  }, 240_000);

  it("fences a primary that was only paused: it stops by itself once woken", async () => {
    CLUSTER = "standby-paused";
    const primary = spawnFrontier([
      "shard",
      ...on(),
      "--id",
      "shard-0",
      "--data",
      join(dir, "p2"),
      "--replicate",
    ]);
    await primary.event("listening");
    const submitter = await connect({ servers: server.url, cluster: CLUSTER });
    const paused = await startCoordinator({
      natsUrl: server.url,
      cluster: CLUSTER,
      logger: pino({ level: "silent" }),
    });
    try {
      await until(() => paused.inspect().slotsOwned === SLOT_COUNT, 15_000);
      await submitter.submit([{ id: "x", deadline: 1 }], { idempotencyKey: "x" });
      const standby = spawnFrontier([
        "shard",
        ...on(),
        "--id",
        "shard-0",
        "--data",
        join(dir, "s2"),
        "--standby",
        "--failover-after",
        "1500",
      ]);
      await standby.event("standby");
      primary.child.kill("SIGSTOP");
      await standby.event("listening");
      primary.child.kill("SIGCONT");
      // Woken, it learns it was taken over and stops: exit code 1, for its supervisor, whose
      // restart on that directory is then refused (the first test).
      expect(await primary.exited).toBe(1);
      expect(primary.output()).toMatch(/REPLICATION_FAILED|STREAM_TAKEN_OVER|taken over/);
      const view = await submitter.getTask("x");
      expect(view?.state).toBe("RUNNABLE");
    } finally {
      await submitter.close();
      await paused.close();
    }
  }, 120_000);

  it("frontier start --replicate ships every shard's journal: each stream rebuilds what its shard acknowledged", async () => {
    CLUSTER = "standby-start";
    const started = await startFrontier([
      "--nats",
      server.url,
      "--cluster",
      CLUSTER,
      "--data",
      join(dir, "start"),
      "--shards",
      "2",
      "--replicate",
      "--no-metrics",
      "--no-console",
    ]);
    const submitter = await connect({ servers: server.url, cluster: CLUSTER });
    try {
      const tasks = Array.from({ length: 40 }, (_, i) => ({
        id: `s-${i}`,
        deadline: i,
        workflowId: `w-${i}`,
      }));
      await submitter.submit(tasks, { idempotencyKey: "start-1" });
      const nc = await natsConnect({ servers: server.url });
      let found = 0;
      try {
        for (const shardId of ["shard-0", "shard-1"]) {
          const dataDir = join(dir, `copy-${shardId}`);
          expect((await restoreFromStream({ nc, cluster: CLUSTER, shardId, dataDir })).hasCopy).toBe(true);
          const copy = await Shard.open({ dataDir });
          found += tasks.filter((t) => copy.getTask(t.id) !== undefined).length;
          await copy.close();
        }
      } finally {
        await nc.close();
      }
      expect(found).toBe(tasks.length);
    } finally {
      await submitter.close();
      await started.stop();
    }
  }, 120_000);
});
