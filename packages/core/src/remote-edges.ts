/**
 * The cross-partition edges of large workflows, as one engine holds them
 * (docs/cluster.md, "Large workflows across shards").
 *
 * A task of a large workflow is placed by (workflowId, id), so its
 * prerequisite may live in another partition (a slot, in a cluster). Such
 * an edge is never linked in the task table. Each side keeps its half:
 *
 * - the dependent counts the remote prerequisite in its unmet count until a
 *   completion event for it is applied (`applyRemote`); the prerequisites
 *   applied so far are `met`, journaled in the dependent's status
 *   (TaskStatus.remoteMet), so a redelivered event is a duplicate, across
 *   restarts and slot moves (the list moves with the task's record);
 * - the prerequisite keeps its remote `dependents` (registered by
 *   RemoteLink, journaled in its status as TaskStatus.remoteDependents);
 *   once it ends, those not yet acknowledged are `undelivered`: the outbox.
 *   It is not dropped after retention while any is, and the last
 *   acknowledgement journals TaskStatus.remoteDelivered.
 *
 * Invariants: every key is a live handle of the owning engine; a handle is
 * in `undelivered` only when its task is terminal and it has `dependents`;
 * `undelivered` sets are never empty.
 *
 * Costs: sparse maps, so tasks of ordinary workflows pay nothing. A
 * status carries its whole lists, so registering d dependents on one
 * prerequisite over b batches writes O(b·d) ids, and a dependent with k
 * remote prerequisites writes O(k) per applied event: fine for the fan-in
 * and fan-out of layered DAGs, costly for one task with 10^5 remote edges.
 */
export class RemoteEdges {
  /** Dependent side: the remote prerequisites applied, in arrival order. */
  readonly met = new Map<number, string[]>();
  /** Prerequisite side: the remote dependents registered. */
  readonly dependents = new Map<number, string[]>();
  /** Prerequisite side, terminal tasks only: dependents not yet acknowledged. */
  readonly undelivered = new Map<number, Set<string>>();
  /** Outcomes owed: the sum of the `undelivered` sets' sizes. */
  owing = 0;

  /** Whether `h` applied the event of `prerequisite`. O(k) for k applied. */
  hasMet(h: number, prerequisite: string): boolean {
    return this.met.get(h)?.includes(prerequisite) ?? false;
  }

  /** Records that `h` applied the event of `prerequisite`. */
  addMet(h: number, prerequisite: string): void {
    const list = this.met.get(h);
    if (list === undefined) this.met.set(h, [prerequisite]);
    else list.push(prerequisite);
  }

  /** Registers remote dependents of `h`; `ended`: `h` is terminal, so they are due at once. */
  addDependents(h: number, ids: readonly string[], ended: boolean): void {
    let list = this.dependents.get(h);
    if (list === undefined) this.dependents.set(h, (list = []));
    for (const id of ids) list.push(id);
    if (!ended) return;
    let due = this.undelivered.get(h);
    if (due === undefined) this.undelivered.set(h, (due = new Set()));
    for (const id of ids) {
      if (due.has(id)) continue;
      due.add(id);
      this.owing++;
    }
  }

  /** `h` ended: each of its remote dependents is due. */
  ended(h: number): void {
    const list = this.dependents.get(h);
    if (list === undefined || list.length === 0) return;
    const due = new Set(list);
    this.undelivered.set(h, due);
    this.owing += due.size;
  }

  /**
   * `dependent` acknowledged `h`'s outcome. True when that was the last one
   * due (the prerequisite's status changes: remoteDelivered).
   */
  acknowledge(h: number, dependent: string): boolean {
    const due = this.undelivered.get(h);
    if (due === undefined || !due.delete(dependent)) return false;
    this.owing--;
    if (due.size > 0) return false;
    this.undelivered.delete(h);
    return true;
  }

  /** Whether `h` ended with every remote dependent told (TaskStatus.remoteDelivered). */
  delivered(h: number): boolean {
    return this.dependents.has(h) && !this.undelivered.has(h);
  }

  /** Restore and adopt: `h`'s half from its record. */
  load(
    h: number,
    status: {
      readonly remoteMet?: readonly string[];
      readonly remoteDependents?: readonly string[];
      readonly remoteDelivered?: true;
    },
    ended: boolean,
  ): void {
    if (status.remoteMet !== undefined && status.remoteMet.length > 0)
      this.met.set(h, status.remoteMet.slice());
    const dependents = status.remoteDependents;
    if (dependents === undefined || dependents.length === 0) return;
    this.dependents.set(h, dependents.slice());
    if (ended && status.remoteDelivered !== true) {
      const due = new Set(dependents);
      this.undelivered.set(h, due);
      this.owing += due.size;
    }
  }

  /** `h` leaves the engine (dropped or exported). */
  forget(h: number): void {
    this.owing -= this.undelivered.get(h)?.size ?? 0;
    this.met.delete(h);
    this.dependents.delete(h);
    this.undelivered.delete(h);
  }
}
