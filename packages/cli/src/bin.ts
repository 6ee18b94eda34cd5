#!/usr/bin/env node
/**
 * The `frontier` executable. Everything is in main.ts; this only runs it and
 * exits with its code. A failure that escapes (a bug) is still one line.
 */
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    // Output that could not be written (io.ts) may have failed the command already: keep that.
    if (code !== 0 || !process.exitCode) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`frontier: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
