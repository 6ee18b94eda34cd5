/**
 * The home side of one id space per cluster (docs/cluster.md): this shard
 * keeps the claims of the task ids whose home slot (`homeSlotOf`) it
 * serves, and gives an id to a batch only when no other task holds it.
 *
 * Who holds id X, as this shard knows it (first match):
 *   1. a prepared part under another key that claims X, or reserves X as a
 *      task: X is being taken (refused, as a reserved id is on one shard);
 *   2. a task X in this shard's engine: it is X's claim (a task whose id is
 *      homed where it lives needs no row); the same workflow is no conflict
 *      (the engine then refuses a second X, or replays the first);
 *   3. a claim row naming X's task in another workflow (a task on another
 *      shard, or here in another slot after a move); the same workflow is no
 *      conflict (the shard of that workflow's slot decides, by its own ids).
 *
 * A row outlives its task: the task's shard drops it after its retention
 * and tells nobody. So a row in the way is checked before it refuses: the
 * shard serving the row's slot is asked whether it still holds the task,
 * or holds it prepared (`holds`); if not, the new claim takes the id over.
 *
 * Why the takeover is race-free: a task X of workflow W can be stored only
 * by a commit at the shard serving W's slot, of a part prepared there under
 * a key whose claim of X was prepared here first, then made durable here
 * (claimsOnly) before any task of the batch is committed (submit.ts). The
 * holder answered "not held": no part of that key was prepared there any
 * more (expired or aborted, or never), so that key can no longer commit X
 * there. A later submit of X in W must claim X here again: while its claim
 * is prepared, rule 1 refuses the takeover; once durable, the row is a new
 * object (ClaimTable), and the takeover, which re-reads the row in the same
 * synchronous stretch as it reserves the id, sees that it changed and refuses.
 * A task X of W that this shard holds itself is found by rule 2 in that
 * stretch. The sweep (`sweep`) drops rows of tasks gone by the same rule:
 * asked, then dropped only if still the same row and not prepared again. So between the holder's answer and the reservation here, nothing
 * can make the old row true again unnoticed. One more path: the client's
 * retry of the old batch under its key, whose part here was committed
 * before (its claims kept) and would replay; it is refused when its claims
 * name other tasks now (`requireStillClaimed`), so its holder never gets
 * to commit X after all.
 */
import { type Problem, ProblemCode, ValidationError } from "@frontier/core";
import { claimOf, type IdClaim } from "@frontier/protocol";
import type { IdClaimRow, Shard } from "@frontier/shard";
import type { PreparedParts } from "./prepared.js";

export interface IdHomeContext {
  readonly shard: Shard;
  readonly prepared: PreparedParts;
  /**
   * Throws (SLOT_MOVING, SLOT_NOT_OWNED: retryable routing errors) unless
   * this shard serves `taskId`'s home slot now.
   */
  readonly requireHome: (taskId: string) => void;
  /**
   * Whether the shard serving the slot of `claim`'s task holds it (any
   * state), or holds it in a prepared part; rejects when it cannot say.
   */
  readonly holds: (claim: IdClaimRow) => Promise<boolean>;
}

/** What a scan of claims found: definite conflicts, and rows in the way whose task may be gone. */
interface Scan {
  readonly problems: Problem[];
  readonly suspect: IdClaimRow[];
}

export class IdHome {
  /** The rest of the sweep's pass over the rows, last first (`sweep`). */
  private pass: IdClaimRow[] = [];

  constructor(private readonly ctx: IdHomeContext) {}

  /**
   * Checks that `claims` are free now, for a submit or prepare under `key`:
   * throws the ValidationError of the conflicts (a prepared claim, a task
   * held here, a row in the way of a task found still held). Returns the
   * rows in the way whose tasks may be gone (empty: the claims are free),
   * for `gone` to ask about; `goneRows`: rows found gone, taken over if they
   * are still the rows in the way; `ownOnly`: every claim is of a task stored
   * with it (the engine refuses those if taken here, so with no row and
   * nothing prepared here they need no look). Synchronous, so a caller that finds
   * nothing in the way reserves the claims (or stores them) in the same
   * stretch. O(claims).
   */
  free(
    claims: readonly IdClaim[],
    key: string,
    goneRows: ReadonlySet<IdClaimRow> = EMPTY,
    ownOnly = false,
  ): IdClaimRow[] {
    if (claims.length === 0) return [];
    const { problems, suspect } = this.scan(claims, key, goneRows, ownOnly);
    if (problems.length > 0) throw new ValidationError(problems);
    return suspect;
  }

  /**
   * `free` again, once `gone` has answered, with the rows it found gone;
   * throws as `free` does, and refuses the claims of rows still in the way:
   * they changed while they were asked about (a new task may hold them).
   */
  requireFreeAfter(
    claims: readonly IdClaim[],
    key: string,
    goneRows: ReadonlySet<IdClaimRow>,
    ownOnly = false,
  ): void {
    const still = this.free(claims, key, goneRows, ownOnly);
    if (still.length > 0) throw new ValidationError(still.map(taken));
  }

  /**
   * Which of the rows `free` returned are rows of tasks gone, asked of
   * their shards in parallel (one round trip); throws the ValidationError
   * of those whose tasks are still held, or the error of a shard that could
   * not say (retryable). The caller then calls `requireFreeAfter` with them.
   */
  async gone(rows: readonly IdClaimRow[]): Promise<ReadonlySet<IdClaimRow>> {
    const held = await Promise.all(rows.map((row) => this.ctx.holds(row)));
    const stillHeld = rows.filter((_, i) => held[i]);
    if (stillHeld.length > 0) throw new ValidationError(stillHeld.map(taken));
    return new Set(rows);
  }

  /**
   * The problems a submit of `claims` would meet now (a rejected batch's
   * check): as `free` and `gone`, reporting instead of throwing, and
   * reserving nothing. A row whose shard cannot be asked is reported as
   * taken (the batch is refused anyway; its next try asks again).
   */
  async problems(claims: readonly IdClaim[]): Promise<Problem[]> {
    const { problems, suspect } = this.scan(claims, undefined, EMPTY);
    const held = await Promise.all(suspect.map((row) => this.ctx.holds(row).catch(() => true)));
    suspect.forEach((row, i) => {
      if (held[i]) problems.push(taken(row));
    });
    return problems;
  }

  /**
   * Throws the ValidationError of the claims of a part committed here before
   * (a retried submit replaying) whose ids now name another task: taken over
   * after the part's task was lost (its shard died before its commit). O(claims).
   */
  requireStillClaimed(claims: readonly IdClaim[]): void {
    const problems: Problem[] = [];
    for (const c of claims) {
      const now = this.ctx.shard.heldTask(c.taskId) ?? this.ctx.shard.claimOf(c.taskId);
      if (now !== undefined && now.workflowId !== c.workflowId)
        problems.push(taken({ taskId: c.taskId, ...now }));
    }
    if (problems.length > 0) throw new ValidationError(problems);
  }

  /**
   * Drops rows whose tasks are gone, up to `max` rows a call: the next rows
   * of a pass over all of them (a pass starts from a copy of the rows when
   * the last one ended), each asked of its task's shard (`holds`, in
   * parallel); a row whose shard cannot say is kept for the next pass.
   * Resolves with the rows dropped. A row whose task is gone is otherwise
   * kept until a batch of its id takes it over, so without the sweep memory
   * grows with the tasks ever held elsewhere. One round trip per call.
   */
  async sweep(max: number): Promise<number> {
    if (this.pass.length === 0) {
      if (this.ctx.shard.claimCount === 0) return 0;
      this.pass = this.ctx.shard.claimRows().reverse();
    }
    const batch = this.pass
      .splice(Math.max(0, this.pass.length - max))
      .filter((row) => this.ctx.shard.claimOf(row.taskId) === row);
    const held = await Promise.all(
      batch.map((row) =>
        this.ctx.holds(row).then(
          (h) => h,
          () => true,
        ),
      ),
    );
    // Checked and dropped in one synchronous stretch: a row written again meanwhile is another
    // object (kept by dropClaims), a claim prepared again is kept here.
    const gone = batch.filter(
      (row, i) =>
        !held[i] && !this.ctx.prepared.claimed.has(row.taskId) && this.ctx.shard.claimOf(row.taskId) === row,
    );
    if (gone.length === 0) return 0;
    return this.ctx.shard.dropClaims(gone);
  }

  /** The claim of `taskId` as this shard knows it (a task held here, or a row); null: none. */
  locate(taskId: string): IdClaim | null {
    this.ctx.requireHome(taskId);
    const held = this.ctx.shard.heldTask(taskId);
    if (held !== undefined) return claimOf({ id: taskId, ...held });
    const row = this.ctx.shard.claimOf(taskId);
    return row === undefined ? null : row;
  }

  private scan(
    claims: readonly IdClaim[],
    key: string | undefined,
    gone: ReadonlySet<IdClaimRow>,
    ownOnly = false,
  ): Scan {
    const { shard, prepared } = this.ctx;
    const problems: Problem[] = [];
    const suspect: IdClaimRow[] = [];
    for (const c of claims) this.ctx.requireHome(c.taskId);
    // The common case: no row kept here, nothing prepared, and the claims are of the part's own
    // tasks, which the engine checks against the ids it holds itself.
    if (ownOnly && shard.claimCount === 0 && prepared.claimed.size === 0 && prepared.reserved.size === 0)
      return { problems, suspect };
    const now = Date.now();
    const ids = claims.map((c) => c.taskId);
    const reserved = new Set(
      key === undefined
        ? ids.filter((id) => prepared.claimed.has(id) || prepared.reserved.has(id))
        : prepared.claimedByOthers(ids, key, now),
    );
    for (const c of claims) {
      if (reserved.has(c.taskId)) {
        problems.push({
          taskId: c.taskId,
          code: ProblemCode.DUPLICATE_ID,
          message: `task id ${JSON.stringify(c.taskId)} is reserved by a submit being committed`,
        });
        continue;
      }
      const held = shard.heldTask(c.taskId);
      if (held !== undefined) {
        if (held.workflowId !== c.workflowId) problems.push(taken({ taskId: c.taskId, ...held }));
        continue;
      }
      const row = shard.claimOf(c.taskId);
      if (row === undefined || row.workflowId === c.workflowId || gone.has(row)) continue;
      suspect.push(row);
    }
    return { problems, suspect };
  }
}

const EMPTY: ReadonlySet<IdClaimRow> = new Set();

/** DUPLICATE_ID: the id is taken in the cluster by the task `row` names. */
function taken(row: { readonly taskId: string; readonly workflowId?: string | undefined }): Problem {
  const where =
    row.workflowId === undefined ? "without a workflow" : `in workflow ${JSON.stringify(row.workflowId)}`;
  return {
    taskId: row.taskId,
    code: ProblemCode.DUPLICATE_ID,
    message: `task id ${JSON.stringify(row.taskId)} is taken in the cluster by a task ${where}`,
  };
}
