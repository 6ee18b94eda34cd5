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

/** Write lines to a stream. */
export function println(stream: Writable, ...lines: string[]): void {
  for (const line of lines) stream.write(`${line}\n`);
}
