import type { TaskState } from "@frontier/core";

export const STATES: readonly TaskState[] = [
  "WAITING",
  "RUNNABLE",
  "LEASED",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "EXPIRED",
];

export const ENDED: ReadonlySet<TaskState> = new Set(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);

/** A task's state as a coloured label (the colour is in style.css, by state). */
export function StateBadge({ state }: { state: TaskState | null }) {
  return <span class={`badge state-${state ?? "UNKNOWN"}`}>{state ?? "unknown"}</span>;
}
