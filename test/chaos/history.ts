/**
 * The recorded history of a chaos run: what the checker (checker.ts) reads.
 *
 * Everything is plain JSON, so worker processes report it as JSON lines on
 * stdout and the harness gathers the lines of every process into one list.
 * Times are wall-clock milliseconds (`Date.now()`) of the process that
 * recorded the event, except where a field says "shard clock": all the
 * processes run on one machine, and the shard clock is the wall clock read
 * at open and advanced monotonically (packages/shard/src/clock.ts), so the
 * two agree to within a few milliseconds; the checker allows
 * `clockToleranceMs` for that.
 *
 * Sources of events:
 *  - `x` (exchange): one request/reply attempt as a client saw it on the
 *    wire (wire-tap.ts sits between the SDK and NATS). `delivered: false`
 *    marks a reply the fault injector dropped: the shard acted on it, but the
 *    client saw a timeout. Only delivered ok replies are acknowledgements.
 *  - `sent`: a complete, fail, release or cancel about to go out (before the reply,
 *    which a killed process never records).
 *  - `exec`: a handler run in a worker (the SDK's worker events).
 *  - `tap`: one durable journal block of a shard (shard-preload.ts): the
 *    status changes in it and the shard clock when it was written.
 *  - `fault` / `recovered`: what the harness injected, and when the cluster
 *    answered again.
 */

/** A task as the checker needs it: its graph and what the workload meant it to do. */
export interface TaskSummary {
  readonly id: string;
  /** Prerequisites (same workflow). */
  readonly pre: readonly string[];
  readonly maxAttempts: number;
  /** The dependent's policy when a prerequisite ends badly. */
  readonly policy: "cancel" | "continue";
  /** Poison: the handler always throws, so the task must end FAILED after maxAttempts. */
  readonly poison?: boolean;
}

export interface LeaseGrant {
  readonly taskId: string;
  readonly token: number;
  readonly owner: string;
  /** Shard clock. */
  readonly expiresAt: number;
  readonly attempt: number;
}

/** The ok part of each op's reply that the checker reads. */
export type ExchangeReply =
  | { readonly ok: false; readonly code: string }
  | { readonly ok: true; readonly accepted: number; readonly replayed: boolean }
  | { readonly ok: true; readonly leases: readonly LeaseGrant[] }
  | { readonly ok: true; readonly expiresAt: number }
  | { readonly ok: true; readonly duplicate: boolean }
  | { readonly ok: true; readonly state: string }
  | { readonly ok: true };

export type ExchangeRequest =
  | { readonly op: "submit"; readonly key: string; readonly tasks: readonly TaskSummary[] }
  | {
      readonly op: "lease";
      readonly owner: string;
      readonly requestId: string;
      readonly leaseMs: number;
      readonly max: number;
    }
  | { readonly op: "heartbeat"; readonly taskId: string; readonly token: number; readonly leaseMs: number }
  | { readonly op: "complete"; readonly taskId: string; readonly token: number }
  | { readonly op: "fail"; readonly taskId: string; readonly token: number; readonly retryable: boolean }
  /** A held lease handed back unstarted (the SDK worker stopping, or a buffered task that waited too long). */
  | { readonly op: "release"; readonly taskId: string; readonly token: number }
  | { readonly op: "cancel"; readonly taskId: string };

/** One request attempt and what came back (a reply, or an error such as a timeout). */
export interface Exchange {
  readonly k: "x";
  /** Which client: process name and client name. */
  readonly src: string;
  readonly sentAt: number;
  readonly at: number;
  readonly req: ExchangeRequest;
  /** The reply on the wire; absent when none came (timeout, no responders, connection lost). */
  readonly rep?: ExchangeReply;
  /** Transport error when no reply came (`TimeoutError`, `NoRespondersError`, ...). */
  readonly error?: string;
  /** False when the fault injector dropped the reply: the client saw a timeout instead. */
  readonly delivered: boolean;
}

/**
 * An end of a lease (complete, fail, release, cancel) about to go out,
 * written before it is sent: a process killed before the reply came still
 * shows that it asked (the cluster may have applied it).
 */
export interface Sent {
  readonly k: "sent";
  readonly src: string;
  readonly at: number;
  readonly req: Extract<ExchangeRequest, { readonly op: "complete" | "fail" | "release" | "cancel" }>;
}

/** A handler run in a worker. */
export interface Execution {
  readonly k: "exec";
  readonly src: string;
  readonly at: number;
  readonly taskId: string;
  readonly token: number;
  /** started; the handler's outcome went out (completed / failed); the SDK dropped it (lost). */
  readonly phase: "started" | "completed" | "failed" | "lost";
}

/** One status change in a durable journal block, as the shard tap reports it. */
export interface TapChange {
  readonly id: string;
  readonly state: string;
  readonly token: number;
  readonly attempts: number;
  /** Shard clock; LEASED only. */
  readonly expiresAt?: number;
  /** True for the record that added the task. */
  readonly added?: boolean;
}

/** One durable journal block of one shard process. */
export interface TapBlock {
  readonly k: "tap";
  readonly shard: string;
  readonly pid: number;
  /** Shard clock when the block was built (aligned with the wall clock when the shard opened). */
  readonly clock: number;
  /**
   * Wall clock when the line was written: once the journal reported the
   * block durable; later when the process was paused in between.
   */
  readonly at: number;
  readonly changes: readonly TapChange[];
}

export type FaultKind =
  | "shard-kill"
  | "shard-zombie"
  | "shard-stall"
  | "worker-zombie"
  | "worker-kill"
  | "coordinator-kill"
  | "nats-restart"
  | "submit-storm"
  | "slot-move"
  | "slot-move-kill";

export interface Fault {
  readonly k: "fault";
  readonly at: number;
  readonly kind: FaultKind;
  readonly target: string;
  /** For a zombie shard: pid of the paused process, fenced by its replacement. */
  readonly pid?: number;
}

/** The cluster answered again for what a fault took away; `ms` after the fault. */
export interface Recovery {
  readonly k: "recovered";
  readonly at: number;
  readonly kind: FaultKind;
  readonly target: string;
  readonly ms: number;
}

export type HistoryEvent = Exchange | Sent | Execution | TapBlock | Fault | Recovery;

/** A task as read back from the cluster at the end of a run (getTask). */
export interface FinalTask {
  readonly state: string;
  readonly token: number;
  readonly attempts: number;
  readonly unmetPrerequisites: number;
}

export interface History {
  readonly events: readonly HistoryEvent[];
  /** Every task id the checker should find, read back at the end; null: the cluster does not know it. */
  readonly final: ReadonlyMap<string, FinalTask | null>;
}

/** The task payload of the chaos workload: what the worker's handler does with it. */
export interface ChaosPayload {
  /** How long the handler works, ms. */
  readonly ms: number;
  /** Always throws. */
  readonly poison?: boolean;
  /** Chance (0..1) that one run of the handler throws. */
  readonly flaky?: number;
}

/** Parses the JSON lines a process wrote; lines that are not history events (logs) are skipped. */
export function parseEvents(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith('{"k":')) continue;
    try {
      events.push(JSON.parse(line) as HistoryEvent);
    } catch {
      // A line cut short by a SIGKILL: it was never fully reported.
    }
  }
  return events;
}
