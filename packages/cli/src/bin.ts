#!/usr/bin/env node
/**
 * The `frontier` executable. Everything is in main.ts; this only runs it and
 * exits with its code. A failure that escapes (a bug) is still one line.
 */
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`frontier: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
