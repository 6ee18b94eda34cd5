/**
 * How far a task id is unique (docs/cluster.md, "One id space per
 * cluster"), a property of the cluster, chosen when it is created:
 *
 *   cluster   (the default) in the whole cluster: a task's id claim is kept
 *             at the id's home (`homeSlotOf`), a second task of an id is
 *             refused wherever it would live, and a task named by id alone
 *             is found through its home. A batch whose ids are homed on
 *             other shards than their tasks costs a two-phase submit.
 *   workflow  per shard only: a submit costs no claim, but two workflows on
 *             two shards may each hold a task of one id; a task named by id
 *             alone is then looked for on every shard (AMBIGUOUS_TASK when
 *             several hold one), so name tasks with their workflow.
 *
 * Kept in the slot bucket under ID_SPACE_KEY, written once (a `create`) by
 * the first shard of the cluster; a shard started with another id space is
 * refused, and coordinators follow what the bucket says.
 */
export const ID_SPACES = ["cluster", "workflow"] as const;
export type IdSpace = (typeof ID_SPACES)[number];

export const DEFAULT_ID_SPACE: IdSpace = "cluster";

/** The slot bucket's key of the cluster's id space (not a `slot.*` key: slot watchers skip it). */
export const ID_SPACE_KEY = "cluster.id-space";

export function isIdSpace(value: unknown): value is IdSpace {
  return typeof value === "string" && (ID_SPACES as readonly string[]).includes(value);
}
