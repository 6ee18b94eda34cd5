/**
 * Test fixture: the real validation worker behind a gate. While the file
 * named by FRONTIER_TEST_VALIDATION_GATE does not exist, the thread waits
 * (blocking, as a long check would), so a test can hold a batch in the pool
 * and watch the coordinator answer other requests meanwhile.
 */
import { existsSync } from "node:fs";
import type { Problem } from "@frontier/core";
import validateBatch from "./validate-worker.js";

const pause = new Int32Array(new SharedArrayBuffer(4));

export default function gatedValidateBatch(tasks: readonly unknown[]): Problem[] {
  const gate = process.env["FRONTIER_TEST_VALIDATION_GATE"];
  const giveUp = Date.now() + 30_000;
  while (gate !== undefined && !existsSync(gate) && Date.now() < giveUp) Atomics.wait(pause, 0, 0, 5);
  return validateBatch(tasks);
}
