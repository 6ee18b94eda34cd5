/**
 * The validation pool's worker (piscina): one batch in, its problems out.
 * Runs from dist as plain JavaScript; from src (tests) under tsx, with the
 * "source" export condition so sibling packages resolve to their src/.
 */
import type { Problem } from "@frontier/core";
import { checkSubmitBatch } from "./batch-check.js";

export default function validateBatch(tasks: readonly unknown[]): Problem[] {
  return checkSubmitBatch(tasks);
}
