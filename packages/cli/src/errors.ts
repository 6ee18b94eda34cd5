/**
 * How the CLI fails: one line on stderr and a non-zero exit, never a stack
 * trace. `describeError` is the one place that turns any error into that line.
 *
 * Exit codes: 0 success; 1 the command failed (the cluster said no, or could
 * not be reached); 2 bad usage (unknown command or option, bad value,
 * unreadable input); 3 `work` ran tasks that failed for good (their attempts
 * spent, or failed as not retryable), so a script or CI job running it sees
 * that work was lost; 130 / 143 interrupted twice (SIGINT / SIGTERM).
 */
import { ClientError, ClientErrorCode, NoRespondersError, RequestTimeoutError } from "@frontier/client";
import { FrontierError, ValidationError } from "@frontier/core";
import { ProtocolError, redactUrl } from "@frontier/protocol";

export const ExitCode = { OK: 0, FAILED: 1, USAGE: 2, TASKS_FAILED: 3 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI explains itself; `usage` errors exit 2 and point at `--help`. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.FAILED,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, ExitCode.USAGE);
}

/** Context for the message: where the command tried to reach the cluster. */
export interface ErrorContext {
  readonly natsUrl?: string;
  readonly cluster?: string;
}

/** One line (no newlines) that says what went wrong and, where it helps, what to do. */
export function describeError(err: unknown, context: ErrorContext = {}): string {
  return oneLine(describe(err, context));
}

function describe(err: unknown, { natsUrl, cluster }: ErrorContext): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof NoRespondersError) {
    return `no coordinator answers for cluster ${JSON.stringify(cluster ?? "?")} on ${natsUrl === undefined ? "NATS" : redactUrl(natsUrl)} (is \`frontier start\` running, with the same --cluster?)`;
  }
  if (err instanceof RequestTimeoutError) {
    return `the cluster did not answer in time (${err.timeoutMs} ms); the request may or may not have been applied, and is safe to repeat`;
  }
  if (err instanceof ClientError) {
    if (err.code === ClientErrorCode.CONNECT_FAILED) {
      if (/authori[sz]ation|authentication/i.test(err.message)) {
        return `${err.message} (the server wants credentials: pass --credentials DIR, the directory \`frontier start\` printed, or --nats-user/--nats-nkey/--nats-creds)`;
      }
      return `${err.message} (is \`frontier start\` running? or pass --nats URL)`;
    }
    if (err.code === ClientErrorCode.PERMISSION_DENIED) {
      return `${err.message}; connect with another role (--role admin)`;
    }
    return err.message;
  }
  if (err instanceof ValidationError) {
    const shown = err.problems.slice(0, 5).map((p) => `${p.taskId}: ${p.code} (${p.message})`);
    const more = err.problems.length > shown.length ? `; and ${err.problems.length - shown.length} more` : "";
    return `rejected, ${err.problems.length} problem(s): ${shown.join("; ")}${more}`;
  }
  if (err instanceof ProtocolError && err.code === "AMBIGUOUS_TASK") {
    return `${err.code}: ${err.message} (--workflow W)`;
  }
  if (err instanceof FrontierError || err instanceof ProtocolError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message === "" ? err.name : err.message;
  return String(err);
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
