/**
 * The one placement rule a batch breaks by itself: a task without a
 * workflow is placed by its own id (a workflow of one), so prerequisites it
 * names would live on other shards. The engine alone treats "no workflow"
 * as one workflow; a cluster refuses such a task (CROSS_WORKFLOW), saying
 * what to do, rather than split it from its prerequisites and refuse it
 * later as UNKNOWN_PREREQUISITE. Checked where a submit enters the cluster:
 * a coordinator, and a shard that takes a submit straight from a client.
 */
import { type Problem, ProblemCode } from "@frontier/core";

/** The task's placement problem, if it has one. */
export function placementProblem(task: {
  readonly id: string;
  readonly workflowId?: string | undefined;
  readonly prerequisites?: readonly string[] | undefined;
}): Problem | undefined {
  if (task.workflowId !== undefined || (task.prerequisites?.length ?? 0) === 0) return undefined;
  return {
    taskId: task.id,
    code: ProblemCode.CROSS_WORKFLOW,
    message:
      "a task with prerequisites needs a workflowId, shared with its prerequisites: tasks are placed on shards by workflow (a task without one by its own id)",
  };
}
