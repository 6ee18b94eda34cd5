/**
 * The process's own registry: prom-client's default process and Node.js
 * metrics (CPU, memory, file descriptors, event loop lag, GC, heap). One per
 * process, created on first use: several parts of one process (`frontier
 * start` runs a coordinator and a shard host) share it, so each default
 * metric appears once.
 */
import { collectDefaultMetrics, Registry } from "prom-client";

let shared: Registry | undefined;

export function processRegistry(): Registry {
  if (shared === undefined) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
