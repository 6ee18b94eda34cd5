/** How the pages write times and durations: local time to the second, short durations. */
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toLocaleString(undefined, { hour12: false });
}

export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** A task's link: its workflow routes the lookup to its shard. */
export function taskHref(id: string, workflowId?: string): string {
  return `#/task/${encodeURIComponent(id)}${workflowId === undefined ? "" : `?workflow=${encodeURIComponent(workflowId)}`}`;
}

export function workflowHref(id: string): string {
  return `#/workflow/${encodeURIComponent(id)}`;
}

/** `datetime-local` input value ↔ ms since the epoch. */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}
