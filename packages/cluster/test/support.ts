/**
 * Shared by the cluster tests: a real nats-server per test file, temp data
 * directories, a fresh cluster name per test (so tests share one server
 * without seeing each other), and a tiny client that speaks the protocol
 * through the codec, as a coordinator does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BroadcastChannel } from "node:worker_threads";
import type { TaskInput } from "@frontier/core";
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import {
  decodeFrontier,
  decodeReply,
  encodeRequest,
  type FrontierAnnouncement,
  type Op,
  type Reply,
  type Request,
  SLOT_COUNT,
  slotOf,
  subjectsFor,
} from "@frontier/protocol";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type Logger, pino } from "pino";

/** Set FRONTIER_TEST_LOG=debug (or info, ...) to see the actors' logs. */
export const logLevel = (process.env["FRONTIER_TEST_LOG"] ?? "silent") as "silent";
export const silent: Logger = pino({ level: logLevel });

export class TestEnv {
  server!: NatsServer;
  private root = "";
  private dirs = 0;
  private clusters = 0;
  private readonly connections: NatsConnection[] = [];
  private readonly cleanups: (() => Promise<unknown>)[] = [];

  async start(): Promise<void> {
    this.server = await startNatsServer();
    this.root = mkdtempSync(join(tmpdir(), "frontier-cluster-"));
  }

  async stop(): Promise<void> {
    await this.cleanup();
    await Promise.all(this.connections.splice(0).map((nc) => nc.close().catch(() => {})));
    await this.server?.stop();
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }

  /** Runs the registered cleanups, last first (call in afterEach). */
  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) await fn().catch(() => {});
  }

  /** Runs `fn` at the next cleanup. */
  defer(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn);
  }

  get url(): string {
    return this.server.url;
  }

  freshDir(): string {
    return join(this.root, `d${this.dirs++}`);
  }

  freshCluster(): string {
    return `c${process.pid}x${this.clusters++}`;
  }

  async connect(): Promise<NatsConnection> {
    const nc = await connect({
      servers: this.server.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
    });
    this.connections.push(nc);
    return nc;
  }
}

/** Sends one request to a shard through the codec and decodes the reply. */
export async function ask<R extends Request>(
  nc: NatsConnection,
  cluster: string,
  shardId: string,
  request: R,
  timeout = 5_000,
): Promise<Reply<R["op"]>> {
  const msg = await nc.request(subjectsFor(cluster).shard(shardId, request.op), encodeRequest(request), {
    timeout,
  });
  return decodeReply(msg.data, request.op as R["op"]);
}

/** Sends raw bytes to a shard subject; returns the decoded reply (as the reply to `op`). */
export async function askRaw(
  nc: NatsConnection,
  subject: string,
  bytes: Uint8Array,
  op: Op = "stats",
): Promise<Reply> {
  const msg = await nc.request(subject, bytes, { timeout: 5_000 });
  return decodeReply(msg.data, op);
}

/** Collects the frontier announcements of a cluster. */
export function listenFrontier(nc: NatsConnection, cluster: string): FrontierAnnouncement[] {
  const seen: FrontierAnnouncement[] = [];
  nc.subscribe(subjectsFor(cluster).frontier, {
    callback: (_err, msg) => {
      seen.push(decodeFrontier(msg.data));
    },
  });
  return seen;
}

/** `count` workflow ids (or task ids) that hash into `slots`, `<prefix>0`, `<prefix>1`, ... skipping others. */
export function keysInSlots(prefix: string, slots: Iterable<number>, count: number): string[] {
  const wanted = new Set(slots);
  const keys: string[] = [];
  for (let i = 0; keys.length < count && i < count * SLOT_COUNT * 4; i++) {
    const key = `${prefix}${i}`;
    if (wanted.has(slotOf(key))) keys.push(key);
  }
  return keys;
}

export const task = (id: string, deadline: number, extra: Partial<TaskInput> = {}): TaskInput => ({
  id,
  deadline,
  ...extra,
});

/** Polls `check` until it returns true, or fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The worker module a ShardHost runs in tests that crash workers (see crashable-worker.ts). */
export const CRASHABLE_WORKER = new URL("./crashable-worker.ts", import.meta.url);

/**
 * Makes the worker thread of `shardId` (of a host started with
 * `workerEntry: CRASHABLE_WORKER`) die of an uncaught exception.
 */
export function crashWorker(shardId: string, reason = "simulated crash"): void {
  const channel = new BroadcastChannel("frontier-test:crash-shard-worker");
  channel.postMessage({ shardId, reason });
  channel.close();
}
