/**
 * What a command touches of the outside world, so `main` can run in a test
 * with captured streams. `signals` lets long-running commands (start, shard,
 * coordinator, work) wait for SIGINT / SIGTERM.
 */
import { resolve } from "node:path";
import type { Readable, Writable } from "node:stream";

/**
 * Set by the repository's `pnpm frontier` script (scripts/frontier.mjs) to
 * pnpm's INIT_CWD: pnpm runs a script in the repository root, but a path the
 * user typed is relative to the directory they typed it in.
 */
export const USER_CWD_ENV = "FRONTIER_USER_CWD";

export interface Io {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: Readable;
  readonly env: NodeJS.ProcessEnv;
  /** Where the command's own defaults live (`.frontier`, its credentials): the working directory. */
  readonly cwd: string;
  /**
   * Where paths the user gave (FILE, --data, --credentials, the --nats-* files,
   * and `work`'s command) are relative to, when not `cwd`: see USER_CWD_ENV.
   */
  readonly userCwd?: string;
  /** Calls `listener` on each SIGINT / SIGTERM until the returned function is called. */
  onSignal(listener: (signal: NodeJS.Signals) => void): () => void;
}

/** A path the user gave, made absolute: relative to where they gave it. */
export function userPath(io: Pick<Io, "cwd" | "userCwd">, path: string): string {
  return resolve(io.userCwd ?? io.cwd, path);
}

let outputErrorsHandled = false;

/**
 * A stdout or stderr that fails to write — in practice one whose reader went
 * away (`frontier status | head -1`, EPIPE) — would otherwise throw from an
 * 'error' event with a stack trace. What was to be written has nobody to read
 * it: drop it and let the command end as it would have. Another error (a full
 * disk behind a redirect) still deserves a word on stderr, if stderr works.
 * `work` also stops leasing when its stdout goes (work-command.ts).
 */
function handleOutputErrors(): void {
  if (outputErrorsHandled) return;
  outputErrorsHandled = true;
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") return;
    process.stderr.write(`frontier: cannot write the output (${error.code ?? error.message})\n`);
    process.exitCode = 1;
  });
  process.stderr.on("error", () => {});
}

export function processIo(): Io {
  handleOutputErrors();
  const userCwd = process.env[USER_CWD_ENV];
  // Read once, not passed on: the commands `work` runs, or a nested frontier, are not ours to place.
  delete process.env[USER_CWD_ENV];
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    ...(userCwd === undefined || userCwd === "" ? {} : { userCwd: resolve(userCwd) }),
    onSignal(listener) {
      process.on("SIGINT", listener);
      process.on("SIGTERM", listener);
      return () => {
        process.off("SIGINT", listener);
        process.off("SIGTERM", listener);
      };
    },
  };
}

/**
 * Characters a terminal acts on rather than shows: C0 controls but tab and
 * newline (escape sequences, carriage returns, bells), DEL, C1 controls, and
 * bidirectional overrides and isolates (text that reads differently from
 * what it is). Newlines stay: help and multi-line output are text of ours.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this pattern's job.
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every unprintable character written as a `\uXXXX` escape:
 * task ids, reasons and payloads come from other people. The escape is
 * JSON's, so a JSON line stays the same JSON.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Write lines to a stream, each made printable (it shows what it holds, and moves no cursor). */
export function println(stream: Writable, ...lines: string[]): void {
  for (const line of lines) stream.write(`${printable(line)}\n`);
}
