/**
 * The workflow page's critical path: the chain of tasks that leads to the
 * workflow's latest deadline. Definition (docs/console.md): start at the
 * task with the latest deadline (ties: the smaller id); step to its
 * prerequisite with the latest deadline among the tasks known (ties: the
 * smaller id); stop at a task with no known prerequisite. Returned from the
 * first task of the chain to the last. O(tasks + edges); a cycle (never
 * produced by the engine) ends the walk instead of looping.
 */
export interface DagTask {
  readonly id: string;
  readonly deadline: number;
  readonly prerequisites?: readonly string[];
}

function later(a: DagTask, b: DagTask): boolean {
  return a.deadline > b.deadline || (a.deadline === b.deadline && a.id < b.id);
}

export function criticalPath(tasks: readonly DagTask[]): string[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  let sink: DagTask | undefined;
  for (const t of tasks) if (sink === undefined || later(t, sink)) sink = t;
  const path: string[] = [];
  const seen = new Set<string>();
  for (let at = sink; at !== undefined && !seen.has(at.id); ) {
    seen.add(at.id);
    path.push(at.id);
    let next: DagTask | undefined;
    for (const p of at.prerequisites ?? []) {
      const t = byId.get(p);
      if (t !== undefined && (next === undefined || later(t, next))) next = t;
    }
    at = next;
  }
  return path.reverse();
}
