/**
 * The coordinator's check of a submitted batch: what the batch alone can
 * tell (checkBatch without an engine view): task shapes, duplicate ids in the
 * batch, self-dependencies, prerequisites in another workflow, and cycles
 * (Kahn over the batch, then a path for each cycle). What needs a shard's
 * state (ids already taken, prerequisites submitted earlier) the shard checks
 * when the part arrives. Shared by the inline path and the pool's worker.
 */
import { checkBatch, DEFAULT_MAX_ATTEMPTS, type Problem } from "@frontier/core";

export function checkSubmitBatch(tasks: readonly unknown[]): Problem[] {
  return checkBatch(tasks, {
    defaults: { maxAttempts: DEFAULT_MAX_ATTEMPTS },
    sameWorkflowPrerequisites: true,
  }).problems;
}
