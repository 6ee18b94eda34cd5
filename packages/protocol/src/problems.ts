/**
 * One finding, reported once. A rejected batch's problems come from several
 * checkers (a coordinator's check of the batch alone, each shard's check of
 * its part, the home of each id), and two of them may find the same thing
 * and word it differently. A finding is a code and a task: of its reports,
 * the first is kept.
 */
import { type Problem, ProblemCode } from "@frontier/core";

/** A problem's finding as a set key: its code and its task (never on the wire). */
function findingOf(p: Problem): string {
  return `${p.code}\u0000${p.taskId}`;
}

/**
 * The problems of `more` whose finding (code and task) no problem of
 * `reported` has: what `more` adds to `reported`. Repeats within `more`
 * stay (one task may have two unknown prerequisites). O(reported + more).
 */
export function addedProblems(reported: readonly Problem[], more: readonly Problem[]): Problem[] {
  const found = new Set(reported.map(findingOf));
  return more.filter((p) => !found.has(findingOf(p)));
}

/**
 * `problems` with each id taken (DUPLICATE_ID) reported once, the first:
 * the shard holding the id's task and the id's home may both say so, in
 * their own words. Other problems pass as they are. O(problems).
 */
export function oneTakenPerId(problems: readonly Problem[]): Problem[] {
  const taken = new Set<string>();
  return problems.filter((p) => {
    if (p.code !== ProblemCode.DUPLICATE_ID) return true;
    if (taken.has(p.taskId)) return false;
    taken.add(p.taskId);
    return true;
  });
}
