/**
 * What a command touches of the outside world, so `main` can run in a test
 * with captured streams. `signals` lets long-running commands (start, shard,
 * coordinator, work) wait for SIGINT / SIGTERM.
 */
import type { Readable, Writable } from "node:stream";

export interface Io {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: Readable;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Calls `listener` on each SIGINT / SIGTERM until the returned function is called. */
  onSignal(listener: (signal: NodeJS.Signals) => void): () => void;
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
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
