/**
 * The crash harness's checker: given every event the children reported (in
 * order, across rounds) and the state recovered from the directory, lists
 * every violation of the shard's promises:
 *  - no acknowledged submit, lease, completion, failure or cancellation is
 *    lost or reverted;
 *  - no task is under two live leases (pairwise over acknowledged leases);
 *  - dependents are unblocked exactly once: never leased before every
 *    prerequisite's completion was asked for, and in the recovered state
 *    every unmet-prerequisite count matches its prerequisites.
 *
 * `view` must show the state exactly as recovered (read right after open,
 * before any timer ran). `now` is a clock reading taken after the kill.
 */
import type { Event } from "./protocol.js";

export interface RecoveredTask {
  readonly state: string;
  readonly token: number;
  readonly leaseOwner?: string;
  readonly leaseExpiresAt?: number;
  readonly unmetPrerequisites: number;
  readonly prerequisites: readonly string[];
}

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"]);

export function checkRecovery(
  events: readonly Event[],
  view: (id: string) => RecoveredTask | undefined,
  now: number,
): string[] {
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 50) problems.push(text);
  };

  /** Index of the first "req" line per (op, id, token); a release was asked for before index i iff requested < i. */
  const requested = new Map<string, number>();
  const requestKey = (op: string, id: string, token?: number) => `${op}:${id}:${token ?? ""}`;
  const prerequisites = new Map<string, readonly string[]>();
  const leases = new Map<string, { token: number; expiresAt: number; leaseMs: number; index: number }[]>();
  /** Latest expiry acknowledged per (id, token), from the lease and its heartbeats. */
  const expiry = new Map<string, number>();
  const byKey = new Map<string, readonly string[]>();

  events.forEach((event, index) => {
    switch (event.t) {
      case "req": {
        const key = requestKey(event.op, event.id, event.op === "cancel" ? undefined : event.token);
        if (!requested.has(key)) requested.set(key, index);
        if (event.op === "complete" && !requested.has(`complete:${event.id}`))
          requested.set(`complete:${event.id}`, index);
        break;
      }
      case "submit":
        for (const task of event.tasks) if (!event.duplicate) prerequisites.set(task.id, task.prerequisites);
        if (event.key !== undefined && !event.duplicate) byKey.set(event.key, event.taskIds);
        for (const id of event.taskIds) if (!view(id)) problem(`acknowledged submit of ${id} was lost`);
        break;
      case "resubmit": {
        if (!event.duplicate) problem(`resubmit with accepted key ${event.key} added tasks again`);
        const original = byKey.get(event.key);
        if (original && JSON.stringify(original) !== JSON.stringify(event.taskIds))
          problem(`resubmit with key ${event.key} returned ${event.taskIds}, not the original ${original}`);
        for (const id of event.taskIds)
          if (!view(id)) problem(`task ${id} of idempotent submit ${event.key} was lost`);
        break;
      }
      case "lease": {
        const list = leases.get(event.id) ?? [];
        const previous = list[list.length - 1];
        if (previous) {
          // Two live leases? The earlier one must have expired before this grant, or been released first.
          const grantedAt = event.expiresAt - event.leaseMs;
          const earlierEnd = expiry.get(`${event.id}:${previous.token}`) ?? previous.expiresAt;
          const released =
            (requested.get(requestKey("fail", event.id, previous.token)) ?? Number.POSITIVE_INFINITY) <
              index || (requested.get(requestKey("cancel", event.id)) ?? Number.POSITIVE_INFINITY) < index;
          if (earlierEnd > grantedAt && !released)
            problem(`${event.id} leased with token ${event.token} while token ${previous.token} was live`);
          if (event.token <= previous.token)
            problem(`${event.id}: token ${event.token} after ${previous.token}`);
        }
        list.push({ token: event.token, expiresAt: event.expiresAt, leaseMs: event.leaseMs, index });
        leases.set(event.id, list);
        expiry.set(`${event.id}:${event.token}`, event.expiresAt);
        // Unblocked no earlier than every prerequisite's completion was asked for.
        for (const p of prerequisites.get(event.id) ?? []) {
          if ((requested.get(`complete:${p}`) ?? Number.POSITIVE_INFINITY) > index)
            problem(`${event.id} leased before its prerequisite ${p} was completed`);
        }
        break;
      }
      case "heartbeat": {
        const key = `${event.id}:${event.token}`;
        expiry.set(key, Math.max(expiry.get(key) ?? 0, event.expiresAt));
        break;
      }
      case "complete": {
        const task = view(event.id);
        if (task?.state !== "COMPLETED" || task.token !== event.token)
          problem(
            `acknowledged complete of ${event.id}/${event.token} reverted: ${task?.state}/${task?.token}`,
          );
        break;
      }
      case "fail": {
        const task = view(event.id);
        if (!task) problem(`task ${event.id} vanished after an acknowledged fail`);
        else if (TERMINAL.has(event.state) && task.state !== event.state)
          problem(`acknowledged fail of ${event.id} (${event.state}) reverted to ${task.state}`);
        else if (task.token < event.token || (task.state === "LEASED" && task.token === event.token))
          problem(`acknowledged fail of ${event.id}/${event.token} reverted: ${task.state}/${task.token}`);
        break;
      }
      case "cancel":
        if (view(event.id)?.state !== "CANCELLED")
          problem(`acknowledged cancel of ${event.id} reverted: ${view(event.id)?.state}`);
        break;
      case "fatal":
        problem(`child failed: ${event.message}`);
        break;
      case "ready":
        break;
    }
  });

  // Every acknowledged lease is still there, or was ended by something that
  // could have ended it: its holder's (maybe unacknowledged) release, or expiry.
  for (const [id, list] of leases) {
    const task = view(id);
    const last = list[list.length - 1]!;
    if (!task) {
      problem(`leased task ${id} vanished`);
      continue;
    }
    if (task.token < last.token) {
      problem(`acknowledged lease ${id}/${last.token} lost: recovered token ${task.token}`);
      continue;
    }
    if (task.token > last.token) continue;
    const expired = (expiry.get(`${id}:${last.token}`) ?? last.expiresAt) <= now;
    const asked = (op: string) => requested.has(requestKey(op, id, op === "cancel" ? undefined : last.token));
    const allowed: Record<string, boolean> = {
      LEASED: true,
      RUNNABLE: expired || asked("fail"),
      WAITING: asked("fail"),
      COMPLETED: asked("complete"),
      FAILED: expired || asked("fail"),
      CANCELLED: asked("cancel"),
      EXPIRED: false,
    };
    if (!allowed[task.state]) problem(`acknowledged lease ${id}/${last.token} reverted to ${task.state}`);
    if (task.state === "LEASED" && (task.leaseExpiresAt ?? 0) < (expiry.get(`${id}:${last.token}`) ?? 0))
      problem(`lease ${id}/${last.token} came back shorter: ${task.leaseExpiresAt}`);
  }

  // Unmet-prerequisite counts agree with the prerequisites' states: a
  // dependent unblocked twice (or never) shows up here.
  for (const [id, prereqs] of prerequisites) {
    const task = view(id);
    if (!task || TERMINAL.has(task.state)) continue;
    const unmet = prereqs.filter((p) => view(p)?.state !== "COMPLETED").length;
    if (task.unmetPrerequisites !== unmet)
      problem(
        `${id} (${task.state}) counts ${task.unmetPrerequisites} unmet prerequisites, but ${unmet} are not completed`,
      );
    if (unmet > 0 && task.state !== "WAITING")
      problem(`${id} is ${task.state} with ${unmet} prerequisites not completed`);
  }
  return problems;
}
