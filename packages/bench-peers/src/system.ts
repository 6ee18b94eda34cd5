/**
 * What every system of the benchmark provides: a server side (started and
 * stopped by the orchestrator, which enqueues and checks through it) and a
 * worker side (run in the worker process). One module per system implements
 * both; the worker process imports only its own system's module.
 */
import type { Config, Connection, Payload, SystemName, WorkerSpec } from "./config.js";
import type { CpuSample } from "./proc.js";

export interface SystemHandle {
  readonly name: SystemName;
  readonly connection: Connection;
  /** "native": the system's own dependency feature; "emulated": the handler enqueues the next step. */
  readonly dependencies: "native" | "emulated";
  /** What "service CPU" sums, in a few words. */
  readonly cpuNote: string;
  /** Settings worth recording with every result (durability, versions). */
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  /** CPU ticks of the service's processes (for the service CPU per task). */
  sampleCpu(): CpuSample;
  /** Messages the service's broker has received so far (Frontier: nats-server's `in_msgs`), when it can say. */
  sampleMessages?(): Promise<number>;
  /** `n` independent tasks in sequential batches of `batch` (one batch in flight). */
  enqueueBatches(queue: string, prefix: string, n: number, batch: number): Promise<void>;
  /** `n` independent tasks through a streaming submitter (Frontier only). */
  enqueueStream?(queue: string, prefix: string, n: number): Promise<void>;
  /** One task, alone. */
  submitOne(queue: string, id: string, payload: Payload): Promise<unknown>;
  /**
   * `chains` chains of `length` steps, step k depending on step k−1. Native:
   * every step, up front. Emulated: the first step of each chain (the worker
   * enqueues the rest).
   */
  enqueueChains(queue: string, prefix: string, chains: number, length: number): Promise<void>;
  /** Tasks of `queue` not completed yet (Frontier: of the whole cluster), as the server sees it. */
  outstanding(queue: string): Promise<number>;
  stop(): Promise<void>;
}

export type StartSystem = (name: SystemName, config: Config, run: number) => Promise<SystemHandle>;

/** What the worker process gives a system's worker. */
export interface WorkerHooks {
  /**
   * The handler's body. `enqueueNext` is how an emulated chain adds its next
   * step; systems with dependencies pass nothing.
   */
  run(payload: Payload, enqueueNext?: (next: Payload) => Promise<unknown>): Promise<void>;
  /** One task completed, as acknowledged by the system (or as its worker reports it). */
  completed(): void;
}

export interface PreparedWorker {
  /** Begin taking tasks (connections are already open). */
  start(): Promise<void>;
  /** Stop taking tasks, let running handlers finish, close. */
  stop(): Promise<void>;
}

export type PrepareWorker = (spec: WorkerSpec, hooks: WorkerHooks) => Promise<PreparedWorker>;

/** Deadline of every Frontier task (EDF order = submission order): far enough never to be missed. */
export function deadlineBase(): number {
  return Date.now() + 3_600_000;
}
