/**
 * A walk through the engine: a small release pipeline with deadlines,
 * dependencies, a flaky step that retries and a crashed worker whose lease
 * expires. Prints the dispatch order and why each task waited.
 *
 *   pnpm demo        (from the repository root)
 */
import { Scheduler, type TaskInput } from "../src/index.js";

let now = 0;
const engine = new Scheduler({ now: () => now, random: () => 0.5, backoff: { baseMs: 200 } });

const pipeline: TaskInput[] = [
  { id: "fetch-sources", deadline: 1_000 },
  { id: "fetch-assets", deadline: 5_000 },
  { id: "compile", deadline: 2_000, prerequisites: ["fetch-sources"] },
  { id: "unit-tests", deadline: 3_000, prerequisites: ["compile"], maxAttempts: 3 },
  { id: "bundle", deadline: 2_500, prerequisites: ["compile", "fetch-assets"] },
  { id: "publish", deadline: 4_000, prerequisites: ["unit-tests", "bundle"] },
  { id: "lint", deadline: 9_000 },
];
engine.addTasks(pipeline);

const rejected = (() => {
  try {
    engine.addTasks([
      { id: "loop-a", deadline: 1, prerequisites: ["loop-b"] },
      { id: "loop-b", deadline: 1, prerequisites: ["loop-a"] },
    ]);
    return "accepted?!";
  } catch (e) {
    return (e as Error).message;
  }
})();

const log = (msg: string) => console.log(`t=${String(now).padStart(5)}ms  ${msg}`);
console.log("Frontier engine demo: a release pipeline (deadline-ordered, dependency-aware)\n");
log(
  `submitted ${pipeline.length} tasks; runnable now: ${engine.stats().runnable} (the rest wait on prerequisites)`,
);
log(`a cyclic batch is rejected whole: ${rejected}`);

const order: string[] = [];
let crashed = false;
let flaky = true;
while (order.length < pipeline.length) {
  const [lease] = engine.lease("worker-1", { leaseMs: 500 });
  if (!lease) {
    const next = engine.nextTimerAt();
    if (next === null) break;
    log(`nothing runnable; waiting for the next timer at t=${next}ms`);
    now = next;
    continue;
  }
  const view = engine.getTask(lease.taskId)!;
  const why = view.prerequisites.length ? `after ${view.prerequisites.join(", ")}` : "no prerequisites";
  log(
    `lease ${lease.taskId.padEnd(13)} deadline ${lease.task.deadline}, attempt ${lease.attempt}, token ${lease.token} (${why})`,
  );
  now += 100;
  if (lease.taskId === "bundle" && !crashed) {
    crashed = true;
    log("  worker crashed while holding bundle; its lease will expire");
    now += 500;
    continue;
  }
  if (lease.taskId === "unit-tests" && flaky) {
    flaky = false;
    const v = engine.fail(lease.taskId, lease.token, { reason: "flaky test" });
    log(`  failed: ${v.reason}; retry at t=${v.retryAt}ms`);
    continue;
  }
  engine.complete(lease.taskId, lease.token);
  order.push(lease.taskId);
}

const stats = engine.stats();
console.log(`\ncompleted in order: ${order.join(" → ")}`);
console.log(
  `lease timeouts: ${stats.leaseTimeouts}, retries: ${stats.retries}, deadline misses: ${stats.deadlineMisses}, completed: ${stats.counts.COMPLETED}`,
);
