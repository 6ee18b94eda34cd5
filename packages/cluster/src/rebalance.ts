/**
 * Which slots to move so that shards hold them evenly (`frontier
 * rebalance`, `frontier shard drain`; docs/cluster.md, "Slot movement").
 * A pure plan over the slot table; the moves are made one at a time, each
 * by the slot's shard (SlotMover).
 *
 * Even: with N shards taking slots, each holds ⌊owned / N⌋ or ⌈owned / N⌉
 * slots (1024 / N ± 1 when every slot is owned). The plan moves the fewest
 * slots that reach it: only from shards above their share, only to shards
 * below it, the highest-numbered slots of a shard first. A drained shard
 * takes no slot and gives all of its own. Slots no shard owns are not
 * touched (shards claim free slots themselves).
 */

export interface SlotMovePlan {
  readonly slot: number;
  readonly from: string;
  readonly to: string;
}

export interface RebalanceOptions {
  /** Shards that give all their slots away and take none (a drain). */
  readonly draining?: readonly string[];
}

/**
 * The moves that even out `owners` (slot → shard id, for the slots owned)
 * over `shards` (the shards that may take slots: live ones). A shard that
 * owns slots but is not in `shards` and not draining keeps them (it cannot
 * be asked to move them). Deterministic: the same table gives the same plan.
 */
export function planRebalance(
  owners: ReadonlyMap<number, string>,
  shards: readonly string[],
  options: RebalanceOptions = {},
): SlotMovePlan[] {
  const draining = new Set(options.draining ?? []);
  const takers = [...new Set(shards)].filter((s) => !draining.has(s)).sort();
  if (takers.length === 0) return [];
  const held = new Map<string, number[]>();
  for (const s of takers) held.set(s, []);
  const giving: { slot: number; from: string }[] = [];
  let movable = 0;
  for (const [slot, owner] of [...owners].sort((a, b) => a[0] - b[0])) {
    if (draining.has(owner)) {
      giving.push({ slot, from: owner });
      movable++;
    } else if (held.has(owner)) {
      held.get(owner)!.push(slot);
      movable++;
    }
  }
  // Each taker's share: ⌊movable / N⌋, and one more for the first (movable mod N) by current load.
  const base = Math.floor(movable / takers.length);
  let extra = movable % takers.length;
  const byLoad = [...takers].sort((a, b) => held.get(b)!.length - held.get(a)!.length || (a < b ? -1 : 1));
  const share = new Map<string, number>();
  for (const s of byLoad) share.set(s, base + (extra-- > 0 ? 1 : 0));
  for (const s of byLoad) {
    const own = held.get(s)!;
    const over = own.length - share.get(s)!;
    for (let i = 0; i < over; i++) giving.push({ slot: own[own.length - 1 - i]!, from: s });
  }
  const plan: SlotMovePlan[] = [];
  const room = byLoad
    .map((s) => ({ shard: s, room: share.get(s)! - held.get(s)!.length }))
    .filter((r) => r.room > 0)
    .sort((a, b) => b.room - a.room || (a.shard < b.shard ? -1 : 1));
  let k = 0;
  for (const { slot, from } of giving) {
    while (k < room.length && room[k]!.room === 0) k++;
    const taker = room[k];
    if (taker === undefined) break;
    taker.room--;
    plan.push({ slot, from, to: taker.shard });
  }
  return plan;
}
