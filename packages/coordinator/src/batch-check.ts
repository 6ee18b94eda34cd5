/**
 * The coordinator's check of a submitted batch: what the batch alone can
 * tell (checkBatch without an engine view): task shapes, duplicate ids in the
 * batch, self-dependencies, prerequisites in another workflow, and cycles
 * (Kahn over the batch, then a path for each cycle). What needs a shard's
 * state (ids already taken, prerequisites submitted earlier) the shard checks
 * when the part arrives. Shared by the inline path and the pool's worker.
 *
 * A task without a workflow that names prerequisites is refused as the
 * cluster's placement rule says (@frontier/protocol's placementProblem).
 */
import { checkBatch, DEFAULT_MAX_ATTEMPTS, type Problem, ProblemCode } from "@frontier/core";
import { placementProblem } from "@frontier/protocol";

export function checkSubmitBatch(tasks: readonly unknown[]): Problem[] {
  const result = checkBatch(tasks, {
    defaults: { maxAttempts: DEFAULT_MAX_ATTEMPTS },
    sameWorkflowPrerequisites: true,
  });
  const problems = result.problems;
  for (const { spec } of result.tasks) {
    const problem = placementProblem(spec);
    if (problem === undefined) continue;
    // Those the engine's check already refused (same "no workflow") are not reported twice.
    if (problems.some((p) => p.taskId === spec.id && p.code === ProblemCode.CROSS_WORKFLOW)) continue;
    problems.push(problem);
  }
  return problems;
}
