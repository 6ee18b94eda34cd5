/**
 * Forward references: ids named as prerequisites before any task with that
 * id was submitted (allowForwardReferences), each with the handles of the
 * live tasks that name it, in the order they named it. When the task
 * arrives, `take` hands its waiters over, to be linked as its dependents; a
 * waiter dropped first leaves with `remove`.
 *
 * Costs: `add` and `take` O(1); `remove` O(waiters of that id).
 */
const NONE: readonly number[] = Object.freeze([]);

export class ForwardReferences {
  private readonly waiters = new Map<string, number[]>();

  /** The handles waiting for `id` (none when it is submitted or never named). */
  waitingFor(id: string): readonly number[] {
    return this.waiters.get(id) ?? NONE;
  }

  /** Task `h` waits for `id`, not submitted yet. */
  add(id: string, h: number): void {
    const list = this.waiters.get(id);
    if (list) list.push(h);
    else this.waiters.set(id, [h]);
  }

  /** The handles that waited for `id`, submitted now, and forgotten here; undefined when none. */
  take(id: string): readonly number[] | undefined {
    if (this.waiters.size === 0) return undefined;
    const list = this.waiters.get(id);
    if (list) this.waiters.delete(id);
    return list;
  }

  /** Task `h` no longer waits for `id` (it is being dropped). */
  remove(id: string, h: number): void {
    const list = this.waiters.get(id);
    if (!list) return;
    const i = list.indexOf(h);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.waiters.delete(id);
  }
}
