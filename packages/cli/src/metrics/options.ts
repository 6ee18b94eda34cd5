/**
 * The metrics flags of the commands that run a process (start, shard,
 * coordinator, work), with each kind's default port in its help. Reads only
 * the ports module, so `--help` loads no metrics library.
 */
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORTS, type ProcessKind } from "@frontier/metrics/ports";
import type { OptionSpecs } from "../args.js";

export function metricsOptions(kind: ProcessKind) {
  return {
    "metrics-port": {
      type: "string",
      value: "P",
      description: `serve /metrics, /healthz and /readyz on http://HOST:P (default ${DEFAULT_METRICS_PORTS[kind]}; 0: any free port)`,
    },
    "metrics-host": {
      type: "string",
      value: "HOST",
      description: `interface of that endpoint (default ${DEFAULT_METRICS_HOST}; 0.0.0.0 in a container)`,
    },
    "no-metrics": { type: "boolean", description: "serve no metrics or health endpoint" },
  } as const satisfies OptionSpecs;
}
