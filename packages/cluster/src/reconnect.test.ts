/**
 * NATS going away and coming back: an actor (in this process, and as its
 * own OS process) reconnects, resubscribes, keeps its slots and its data,
 * and serves again. This file restarts its nats-server, so it has its own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ask,
  eventually,
  keysInSlots,
  listenFrontier,
  logLevel,
  silent,
  TestEnv,
  task,
} from "../test/support.js";
import { ShardActor } from "./shard-actor.js";
import { watchSlotMap } from "./slot-ownership.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

const SLOTS = [0, 1, 2, 3];

/** True once the shard answers `stats` (each try waits at most 500 ms). */
async function serves(nc: NatsConnection, cluster: string, shardId: string): Promise<boolean> {
  try {
    return (await ask(nc, cluster, shardId, { op: "stats" }, 500)).ok;
  } catch {
    return false;
  }
}

describe("after a nats-server restart", () => {
  it("an actor reconnects, keeps its slots and data, announces and serves again", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const seen = listenFrontier(nc, cluster);
    const actor = await ShardActor.start({
      natsUrl: env.url,
      cluster,
      shardId: "s0",
      dataDir: env.freshDir(),
      slots: SLOTS,
      logger: silent,
      announceIntervalMs: 200,
    });
    env.defer(() => actor.close());
    const [wf] = keysInSlots("wf", SLOTS, 1) as [string];
    expect(
      await ask(nc, cluster, "s0", {
        op: "submit",
        tasks: [task("kept", 1, { workflowId: wf })],
        idempotencyKey: "k",
      }),
    ).toMatchObject({ ok: true, accepted: 1 });

    await env.server.restart({ mode: "kill", downtimeMs: 200 });
    await eventually(() => serves(nc, cluster, "s0"), 20_000, "the actor serving again");

    expect(await ask(nc, cluster, "s0", { op: "getTask", taskId: "kept", workflowId: wf })).toMatchObject({
      ok: true,
      task: { id: "kept", state: "RUNNABLE" },
    });
    const before = seen.length;
    await eventually(() => seen.length > before, 5_000, "an announcement after the restart");
    expect(seen.at(-1)).toMatchObject({ shardId: "s0", taskId: "kept", runnable: 1 });
    expect(actor.ownedSlots()).toEqual(SLOTS);
    // The bucket still says so too (JetStream kept its store).
    const map = await watchSlotMap(nc, { cluster, logger: silent });
    env.defer(() => map.close());
    expect(map.slotsOf("s0")).toEqual(SLOTS);
    const leased = await ask(nc, cluster, "s0", {
      op: "lease",
      owner: "w",
      max: 1,
      leaseMs: 60_000,
      waitMs: 0,
      requestId: "r",
    });
    expect(leased).toMatchObject({ ok: true, leases: [{ taskId: "kept" }] });
  });
});

describe("runShardProcess", () => {
  const packageDir = fileURLToPath(new URL("..", import.meta.url));
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  });

  it("waits for NATS, serves, and stops cleanly on SIGTERM", async () => {
    const cluster = env.freshCluster();
    const nc = await env.connect();
    const seen = listenFrontier(nc, cluster);
    await env.server.kill();
    // While NATS is down, its port answers with a socket that closes at once: each connect the
    // shard process tries is seen, and fails as against a server that is down.
    let connects = 0;
    const downPort = createServer((socket) => {
      connects++;
      socket.destroy();
    });
    await new Promise<void>((resolve) =>
      downPort.listen(Number(new URL(env.url).port), "127.0.0.1", resolve),
    );
    const child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "fixtures/shard-process.ts"],
      {
        cwd: packageDir,
        env: {
          ...process.env,
          FRONTIER_NATS_URL: env.url,
          FRONTIER_CLUSTER: cluster,
          FRONTIER_SHARD_ID: "p0",
          FRONTIER_DATA_DIR: env.freshDir(),
          FRONTIER_SLOTS: "0-3",
          FRONTIER_LOG_LEVEL: logLevel === "silent" ? "warn" : logLevel,
        },
        stdio: ["ignore", "inherit", "pipe"],
      },
    );
    children.push(child);
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // NATS comes up after the shard process has tried to reach it and failed, twice: it waits
    // (tries again), then serves.
    try {
      await eventually(() => connects >= 2 || child.exitCode !== null, 30_000, "two connects to a NATS down");
    } finally {
      await new Promise((resolve) => downPort.close(resolve));
    }
    expect(child.exitCode).toBeNull();
    await env.server.restart();
    await eventually(
      () => serves(nc, cluster, "p0"),
      30_000,
      `the shard process serving (stderr: ${stderr})`,
    );
    const [wf] = keysInSlots("wf", SLOTS, 1) as [string];
    expect(
      await ask(nc, cluster, "p0", {
        op: "submit",
        tasks: [task("t", 1, { workflowId: wf })],
        idempotencyKey: "k",
      }),
    ).toMatchObject({ ok: true, accepted: 1 });

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    await eventually(() => seen.at(-1)?.runnable === 0, 5_000, "the final announcement");
    expect(seen.at(-1)).toMatchObject({ shardId: "p0", taskId: null });
    expect(await serves(nc, cluster, "p0")).toBe(false);
  });
});
