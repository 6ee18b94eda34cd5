/**
 * The engine the unit tests drive: a hand-driven clock (`clock.now`, ms),
 * jitter fixed at its middle (`random` 0.5), and every change record kept in
 * `changes`, so a test can rebuild an engine from them and compare.
 */
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import type { Change } from "./types.js";

export function engine(options: SchedulerOptions = {}) {
  const clock = { now: 1_000 };
  const changes: Change[] = [];
  const s = new Scheduler({
    now: () => clock.now,
    random: () => 0.5,
    onChange: (c) => changes.push(c),
    ...options,
  });
  return { s, clock, changes };
}
