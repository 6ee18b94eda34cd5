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
import type { ShardActorOptions } from "../src/options.js";
import { ShardActor } from "../src/shard-actor.js";

/** Set FRONTIER_TEST_LOG=debug (or info, ...) to see the actors' logs. */
export const logLevel = (process.env["FRONTIER_TEST_LOG"] ?? "silent") as "silent";
export const silent: Logger = pino({ level: logLevel });

/** The slots a test actor owns unless told otherwise: a few, so that it starts fast. */
export const TEST_SLOTS: readonly number[] = [0, 1, 2, 3];

/** ShardActor's options as a test gives them: every one optional. */
export type TestActorOptions = Partial<ShardActorOptions>;

/** A shard actor started by `TestEnv.startActor`, with what a test needs to talk to it. */
export interface TestActor {
  readonly actor: ShardActor;
  /** A connection of the test's own, as a coordinator's. */
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly shardId: string;
  readonly dataDir: string;
  /** A workflow id in the actor's slots: tasks with it route to the actor. */
  readonly wf: string;
  /** Sends one request to the actor through the codec. */
  q<R extends Request>(request: R, timeout?: number): Promise<Reply<R["op"]>>;
}

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

  /**
   * A shard actor on this server, closed at the next cleanup: shard "s0" of
   * a fresh cluster with a fresh data directory, owning TEST_SLOTS, silent,
   * unless `options` says otherwise (a restart passes the same `cluster`,
   * `shardId` and `dataDir`).
   */
  async startActor(options: TestActorOptions = {}): Promise<TestActor> {
    const nc = await this.connect();
    const cluster = options.cluster ?? this.freshCluster();
    const shardId = options.shardId ?? "s0";
    const dataDir = options.dataDir ?? this.freshDir();
    // `slots: undefined` given on purpose means the actor's default ("auto").
    const slots = "slots" in options ? options.slots : TEST_SLOTS;
    const actor = await ShardActor.start({
      natsUrl: this.url,
      logger: silent,
      ...options,
      cluster,
      shardId,
      dataDir,
      slots,
    });
    this.defer(() => actor.close());
    const q = <R extends Request>(request: R, timeout?: number) =>
      ask(nc, cluster, shardId, request, timeout);
    // A spec other than a list ("auto" on a restart) keeps the slots the data directory owned.
    const listed =
      typeof slots === "object" && Array.isArray(slots) ? (slots as readonly number[]) : TEST_SLOTS;
    return { actor, nc, cluster, shardId, dataDir, wf: keysInSlots("wf", listed, 1)[0]!, q };
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

/** The reply, when it is a success; else the test fails with the error it carries. */
export function ok<R extends Reply>(reply: R): Extract<R, { ok: true }> {
  if (!reply.ok) throw new Error(`expected an ok reply, got ${JSON.stringify(reply.error)}`);
  return reply as Extract<R, { ok: true }>;
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
