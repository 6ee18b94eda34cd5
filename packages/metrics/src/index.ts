/**
 * @frontier/metrics — what every Frontier process shares for operators:
 * prom-client registries (the process's default metrics, one per process),
 * the HTTP endpoint serving /metrics, /healthz and /readyz, the default
 * ports by process kind, histogram buckets, and one exposition rendered out
 * of several registries and worker threads' metrics. Each process exports
 * only the metrics it owns; see docs/metrics.md. This file is the package's
 * whole public face.
 */

export { Counter, Gauge, Histogram, Registry } from "prom-client";
export { LATENCY_BUCKETS, TASK_TIME_BUCKETS } from "./buckets.js";
export { type ConnectionCheck, type WatchedConnection, watchConnection } from "./connection-check.js";
export {
  type EndpointLogger,
  type MetricsEndpoint,
  type MetricsEndpointOptions,
  type ReadinessCheck,
  startMetricsEndpoint,
} from "./endpoint.js";
export { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORTS, type ProcessKind } from "./ports.js";
export { processRegistry } from "./process-registry.js";
export { METRICS_CONTENT_TYPE, type MetricsJson, renderMetrics } from "./render.js";
