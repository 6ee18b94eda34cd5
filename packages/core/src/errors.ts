/**
 * The error catalogue of the engine. Every error the engine throws is a
 * `FrontierError` with a stable `code`; callers (and the wire protocol) branch
 * on the code, never on message text. Validation problems are reported
 * together in one `ValidationError`, so a rejected batch says everything that
 * is wrong with it at once.
 */

/** Codes of the errors the engine throws. */
export const ErrorCode = {
  /** A submitted batch was rejected; see `ValidationError.problems`. */
  VALIDATION_FAILED: "VALIDATION_FAILED",
  /** The id names no task the engine knows (never submitted, or compacted). */
  UNKNOWN_TASK: "UNKNOWN_TASK",
  /** The fencing token is not the one of the task's live lease. */
  STALE_LEASE: "STALE_LEASE",
  /** The operation does not apply to the task in its current state. */
  INVALID_STATE: "INVALID_STATE",
  /** An argument of the call (not a task definition) is out of range. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes of the problems a `ValidationError` lists, one per offending task. */
export const ProblemCode = {
  /** Not a task: wrong types, missing fields, out-of-range values. */
  MALFORMED: "MALFORMED",
  /** The id is already taken, by an earlier submission or within the batch. */
  DUPLICATE_ID: "DUPLICATE_ID",
  /** The task lists itself among its prerequisites. */
  SELF_DEPENDENCY: "SELF_DEPENDENCY",
  /** A prerequisite is neither known nor in the batch (forward references off). */
  UNKNOWN_PREREQUISITE: "UNKNOWN_PREREQUISITE",
  /** The batch would close a cycle; the message spells out the cycle's path. */
  CYCLE: "CYCLE",
  /** A prerequisite lives in another workflow (cluster mode partitions by workflow). */
  CROSS_WORKFLOW: "CROSS_WORKFLOW",
} as const;
export type ProblemCode = (typeof ProblemCode)[keyof typeof ProblemCode];

export interface Problem {
  /** The offending task's id, or `"#<index>"` when the task has no usable id. */
  readonly taskId: string;
  readonly code: ProblemCode;
  readonly message: string;
}

export class FrontierError extends Error {
  override readonly name: string = "FrontierError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ValidationError extends FrontierError {
  override readonly name = "ValidationError";
  constructor(readonly problems: readonly Problem[]) {
    super(ErrorCode.VALIDATION_FAILED, ValidationError.summarize(problems));
  }

  private static summarize(problems: readonly Problem[]): string {
    const head = problems
      .slice(0, 3)
      .map((p) => `${p.taskId}: ${p.code} (${p.message})`)
      .join("; ");
    const more = problems.length > 3 ? `; and ${problems.length - 3} more` : "";
    return `batch rejected, ${problems.length} problem(s): ${head}${more}`;
  }
}

export class StaleLeaseError extends FrontierError {
  override readonly name = "StaleLeaseError";
  constructor(
    readonly taskId: string,
    message: string,
  ) {
    super(ErrorCode.STALE_LEASE, message);
  }
}

export class UnknownTaskError extends FrontierError {
  override readonly name = "UnknownTaskError";
  constructor(readonly taskId: string) {
    super(ErrorCode.UNKNOWN_TASK, `unknown task ${JSON.stringify(taskId)}`);
  }
}

export class InvalidStateError extends FrontierError {
  override readonly name = "InvalidStateError";
  constructor(
    readonly taskId: string,
    readonly state: string,
    message: string,
  ) {
    super(ErrorCode.INVALID_STATE, message);
  }
}

export class InvalidArgumentError extends FrontierError {
  override readonly name = "InvalidArgumentError";
  constructor(message: string) {
    super(ErrorCode.INVALID_ARGUMENT, message);
  }
}
