/**
 * The coordinator's check of a submitted batch: what the batch alone can
 * tell (checkBatch without an engine view): task shapes, duplicate ids in the
 * batch, self-dependencies, prerequisites in another workflow, and cycles
 * (Kahn over the batch, then a path for each cycle). What needs a shard's
 * state (ids already taken, prerequisites submitted earlier) the shard checks
 * when the part arrives. Shared by the inline path and the pool's worker.
 *
 * In a cluster a task without a workflowId is placed by its own id, so it is
 * a workflow of one: its prerequisites would live on other shards. The
 * engine alone treats "no workflow" as one workflow; here such a task with
 * prerequisites is refused (CROSS_WORKFLOW), saying what to do, rather than
 * split from its prerequisites and refused by a shard as UNKNOWN_PREREQUISITE.
 */
import { checkBatch, DEFAULT_MAX_ATTEMPTS, type Problem, ProblemCode } from "@frontier/core";

export function checkSubmitBatch(tasks: readonly unknown[]): Problem[] {
  const result = checkBatch(tasks, {
    defaults: { maxAttempts: DEFAULT_MAX_ATTEMPTS },
    sameWorkflowPrerequisites: true,
  });
  const problems = result.problems;
  for (const { spec } of result.tasks) {
    if (spec.workflowId !== undefined || spec.prerequisites.length === 0) continue;
    // Those the engine's check already refused (same "no workflow") are not reported twice.
    if (problems.some((p) => p.taskId === spec.id && p.code === ProblemCode.CROSS_WORKFLOW)) continue;
    problems.push({
      taskId: spec.id,
      code: ProblemCode.CROSS_WORKFLOW,
      message:
        "a task with prerequisites needs a workflowId, shared with its prerequisites: tasks are placed on shards by workflow (a task without one by its own id)",
    });
  }
  return problems;
}
