/**
 * The id claims a shard keeps (docs/cluster.md, "One id space per
 * cluster"): for each task id homed on this shard and taken by a task of
 * another shard, the row naming that task (its workflow, hence its slot).
 * A task this shard holds is its own id's claim and has no row.
 *
 * Rows are objects that are never changed in place: a claim written again
 * (even with the same workflow) is a new object, so a caller that read a
 * row, went away to ask something, and reads it again knows by identity
 * whether the claim changed meanwhile (the home's takeover of a stale claim
 * relies on it). O(1) per operation; memory ~100 B per row.
 */
import type { IdClaimRow, JournalRecord } from "./journal.js";

export class ClaimTable {
  private readonly rows = new Map<string, IdClaimRow>();

  constructor(loaded: Iterable<IdClaimRow>) {
    for (const row of loaded) this.rows.set(row.taskId, row);
  }

  get size(): number {
    return this.rows.size;
  }

  get(taskId: string): IdClaimRow | undefined {
    return this.rows.get(taskId);
  }

  /** Keeps a claim (a new row object, replacing any row of the id); returns its journal record. */
  set(of: ClaimOf): JournalRecord {
    const claim = claimRow(of);
    this.rows.set(claim.taskId, claim);
    return { kind: "claim", taskId: claim.taskId, claim };
  }

  /** Drops the row of `taskId`; its journal record, or undefined when there was none. */
  drop(taskId: string): JournalRecord | undefined {
    if (!this.rows.delete(taskId)) return undefined;
    return { kind: "claim", taskId, claim: null };
  }

  values(): IterableIterator<IdClaimRow> {
    return this.rows.values();
  }
}

/** What names a claim: the task's id, its workflow, and whether it is of a large workflow. */
export interface ClaimOf {
  readonly taskId: string;
  readonly workflowId?: string | undefined;
  readonly large?: boolean | undefined;
}

/** A claim's row as the journal keeps it: a new object, with `workflowId` and `large` only when set. */
export function claimRow(of: ClaimOf): IdClaimRow {
  const { taskId, workflowId } = of;
  if (workflowId === undefined) return { taskId };
  return of.large === true ? { taskId, workflowId, large: true } : { taskId, workflowId };
}
