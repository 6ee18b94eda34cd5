/**
 * The chaos workload: workflows of a few tasks, each submitted as one batch
 * (a workflow lives in one slot, so on one shard). Shapes:
 *
 *   single     a
 *   chain      a → b → c
 *   diamond    a → b, a → c, (b, c) → d
 *   poison     a (always throws, maxAttempts 3) → b ("cancel": CANCELLED)
 *                                                → c ("continue": COMPLETED)
 *              (b, c) → d ("cancel": CANCELLED, as b is)
 *
 * Handlers take `ms` (history.ts `ChaosPayload`); a few tasks are flaky
 * (their handler throws now and then, and they are retried).
 */
import type { TaskInput } from "@frontier/core";
import type { ChaosPayload } from "./history.js";

/** Attempts of ordinary tasks: enough that faults rarely exhaust them. */
export const TASK_MAX_ATTEMPTS = 8;

/**
 * The task types of the workload: a workflow's tasks are of one of them, by
 * the workflow's index (no draw of `random`, so a seed's schedule is what it
 * was): untyped (the default type), "img" or "mail". The workers (work())
 * name them all, so everything drains and leases take the multi-type path;
 * zombie and slow holders lease untyped tasks only.
 */
export const WORKLOAD_TYPES: readonly string[] = Object.freeze(["default", "img", "mail"]);
/** Attempts of poison tasks: they must end FAILED after exactly this many. */
export const POISON_MAX_ATTEMPTS = 3;

export interface Workflow {
  readonly id: string;
  readonly tasks: readonly TaskInput[];
}

export interface WorkloadOptions {
  /** Handler time, ms: uniform in [min, max]. */
  readonly minMs?: number;
  readonly maxMs?: number;
  /** Share of workflows that are poison. */
  readonly poison?: number;
  /** Share of tasks that are flaky. */
  readonly flaky?: number;
}

/** The i-th workflow of a run (`random` decides its shape and timings). */
export function workflow(
  run: string,
  i: number,
  random: () => number,
  options: WorkloadOptions = {},
): Workflow {
  const { minMs = 20, maxMs = 150, poison = 0.05, flaky = 0.05 } = options;
  const wf = `${run}-wf${i}`;
  const ms = () => Math.round(minMs + random() * (maxMs - minMs));
  const payload = (extra: Partial<ChaosPayload> = {}): ChaosPayload => ({
    ms: ms(),
    ...(random() < flaky ? { flaky: 0.4 } : {}),
    ...extra,
  });
  const now = Date.now();
  const type = i % 3 === 0 ? undefined : WORKLOAD_TYPES[i % 3];
  const task = (name: string, pre: string[], extra: Partial<TaskInput> = {}): TaskInput => ({
    id: `${wf}-${name}`,
    workflowId: wf,
    ...(type === undefined ? {} : { type }),
    deadline: now + Math.round(random() * 10_000),
    prerequisites: pre.map((p) => `${wf}-${p}`),
    maxAttempts: TASK_MAX_ATTEMPTS,
    payload: payload(),
    ...extra,
  });
  const r = random();
  let tasks: TaskInput[];
  if (r < poison) {
    tasks = [
      task("a", [], { maxAttempts: POISON_MAX_ATTEMPTS, payload: { ms: ms(), poison: true } }),
      task("b", ["a"]),
      task("c", ["a"], { onPrerequisiteFailure: "continue" }),
      task("d", ["b", "c"]),
    ];
  } else if (r < 0.35) tasks = [task("a", [])];
  else if (r < 0.6) tasks = [task("a", []), task("b", ["a"]), task("c", ["b"])];
  else tasks = [task("a", []), task("b", ["a"]), task("c", ["a"]), task("d", ["b", "c"])];
  return { id: wf, tasks };
}

/** A task that runs longer than its lease: its worker must keep it alive with heartbeats. */
export function slowTask(run: string, i: number, ms: number): TaskInput {
  return { id: `${run}-slow${i}`, deadline: Date.now(), maxAttempts: TASK_MAX_ATTEMPTS, payload: { ms } };
}

/** The tasks of a submit storm: independent, short. */
export function* stormTasks(run: string, count: number): Generator<TaskInput> {
  const now = Date.now();
  for (let i = 0; i < count; i++)
    yield { id: `${run}-storm${i}`, deadline: now + i, maxAttempts: TASK_MAX_ATTEMPTS, payload: { ms: 2 } };
}
