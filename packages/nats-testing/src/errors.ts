/**
 * The harness's error catalogue. A caller (a test, or the CLI starting a NATS
 * child) tells "not installed" from "crashed on start" by `code`, never by
 * message text.
 */
export const NatsHarnessErrorCode = {
  /** No nats-server binary was found (or `binary` / NATS_SERVER_BIN is not executable). */
  NOT_FOUND: "NOT_FOUND",
  /** The process exited, or could not be spawned, before it accepted connections. */
  START_FAILED: "START_FAILED",
  /** The process ran but did not accept connections within `startTimeoutMs`. */
  START_TIMEOUT: "START_TIMEOUT",
  /** An option of `startNatsServer` is out of range; the message names it. */
  INVALID_OPTION: "INVALID_OPTION",
  /** The method does not apply in the server's current state (e.g. restart after stop). */
  INVALID_STATE: "INVALID_STATE",
} as const;
export type NatsHarnessErrorCode = (typeof NatsHarnessErrorCode)[keyof typeof NatsHarnessErrorCode];

export class NatsHarnessError extends Error {
  override readonly name = "NatsHarnessError";
  constructor(
    readonly code: NatsHarnessErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
