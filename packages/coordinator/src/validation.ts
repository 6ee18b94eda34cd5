/**
 * Batch validation, inline or in a piscina thread pool.
 *
 * A batch's work is its tasks plus its prerequisite edges: what checkBatch's
 * O(V + E) walks. Up to `inlineMaxWork` it is checked on the event loop (the
 * hop to a worker would cost more than the check); above, in the pool, so the
 * coordinator keeps answering other requests meanwhile. The pool is started
 * on the first large batch and keeps one warm thread after that.
 *
 * Payloads are opaque to the check (only their presence counts), so they are
 * replaced by `null` before the batch is copied to a worker.
 */
import type { Problem, TaskInput } from "@frontier/core";
import type { Logger } from "pino";
import { Piscina } from "piscina";
import { checkSubmitBatch } from "./batch-check.js";

/** The work checkBatch does on `tasks`: tasks plus prerequisite edges. O(tasks). */
export function batchWork(tasks: readonly TaskInput[]): number {
  let work = tasks.length;
  for (const t of tasks) work += t.prerequisites?.length ?? 0;
  return work;
}

/**
 * The worker beside this module: TypeScript when running from src (vitest,
 * tsx), plain JavaScript from dist.
 */
function defaultWorkerUrl(): URL {
  return new URL(
    import.meta.url.endsWith(".ts") ? "./validate-worker.ts" : "./validate-worker.js",
    import.meta.url,
  );
}

/**
 * A TypeScript worker needs tsx in its thread, and the "source" export
 * condition so sibling packages resolve to their src/ as they do in tests.
 */
function execArgvFor(worker: URL): string[] {
  return worker.pathname.endsWith(".ts") ? ["--conditions=source", "--import", "tsx"] : [];
}

export interface ValidatorOptions {
  readonly poolSize: number;
  readonly inlineMaxWork: number;
  readonly workerUrl: URL | undefined;
  readonly logger: Logger;
}

export interface ValidationPoolStats {
  /** Batches waiting for a thread. */
  readonly queued: number;
  /** Batches being checked or waiting. */
  readonly pending: number;
  readonly threads: number;
  /** Share of time the threads were busy, 0..1, since the pool started. */
  readonly utilization: number;
}

export class BatchValidator {
  private pool: Piscina<readonly unknown[], Problem[]> | undefined;
  private pendingRuns = 0;
  private closed = false;

  constructor(private readonly options: ValidatorOptions) {}

  /** Where `tasks` would be checked. */
  modeFor(tasks: readonly TaskInput[]): "inline" | "pool" {
    return tasks.length === 0 || batchWork(tasks) <= this.options.inlineMaxWork ? "inline" : "pool";
  }

  /** Every problem of the batch (empty: it may be forwarded). */
  async check(tasks: readonly TaskInput[]): Promise<readonly Problem[]> {
    if (this.modeFor(tasks) === "inline") return checkSubmitBatch(tasks);
    const stripped = tasks.map((t) => (t.payload === undefined ? t : { ...t, payload: null }));
    this.pendingRuns++;
    try {
      return await this.startPool().run(stripped);
    } finally {
      this.pendingRuns--;
    }
  }

  stats(): ValidationPoolStats {
    const pool = this.pool;
    return {
      queued: pool?.queueSize ?? 0,
      pending: this.pendingRuns,
      threads: pool?.threads.length ?? 0,
      utilization: pool?.utilization ?? 0,
    };
  }

  /** Stops the threads. Call once nothing is being checked. */
  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }

  private startPool(): Piscina<readonly unknown[], Problem[]> {
    if (this.closed) throw new Error("validation pool is closed");
    if (this.pool !== undefined) return this.pool;
    const url = this.options.workerUrl ?? defaultWorkerUrl();
    this.pool = new Piscina({
      filename: url.href,
      name: "default",
      minThreads: 1,
      maxThreads: this.options.poolSize,
      idleTimeout: 60_000,
      execArgv: execArgvFor(url),
    });
    this.options.logger.debug(
      { threads: this.options.poolSize, worker: url.href },
      "validation pool started",
    );
    return this.pool;
  }
}
