/**
 * The metrics endpoint of a CLI process (`start`, `shard`, `coordinator`,
 * `work`): on by default, on the port of its kind (DEFAULT_METRICS_PORTS);
 * `--metrics-port P` (0: any free port) and `--metrics-host H` choose,
 * `--no-metrics` turns it off. When the default port is taken (a second
 * process of the same kind on the host), it serves on a free port and says
 * so; a port asked for that is taken is an error.
 */
import {
  DEFAULT_METRICS_HOST,
  DEFAULT_METRICS_PORTS,
  type MetricsEndpoint,
  type ProcessKind,
  type ReadinessCheck,
  startMetricsEndpoint,
} from "@frontier/metrics";
import { flag, int, str } from "../args.js";
import type { CommandContext } from "../client-commands.js";
import { CliError, ExitCode, usageError } from "../errors.js";
import { println } from "../io.js";

export interface MetricsFlags {
  readonly port: number;
  readonly host: string;
  /** Whether --metrics-port was given (then a taken port is an error). */
  readonly chosen: boolean;
}

/** The endpoint's port and host from the flags, or null with --no-metrics. */
export function metricsFlagsOf(ctx: CommandContext, kind: ProcessKind): MetricsFlags | null {
  const port = int(ctx.command, ctx.parsed, "metrics-port", { min: 0, max: 65_535 });
  const host = str(ctx.parsed, "metrics-host");
  if (flag(ctx.parsed, "no-metrics")) {
    if (port !== undefined || host !== undefined) {
      throw usageError(
        `${ctx.command}: --no-metrics turns the endpoint off; drop --metrics-port and --metrics-host`,
      );
    }
    return null;
  }
  return {
    port: port ?? DEFAULT_METRICS_PORTS[kind],
    host: host ?? DEFAULT_METRICS_HOST,
    chosen: port !== undefined,
  };
}

/** Parts of a process, as its endpoint shows them. */
export interface ProcessParts {
  readonly render: () => Promise<string>;
  readonly checks: () => Readonly<Record<string, ReadinessCheck>>;
}

/** serveMetrics, or nothing with --no-metrics. */
export function serveMetricsIfOn(
  ctx: CommandContext,
  flags: MetricsFlags | null,
  parts: ProcessParts,
): Promise<MetricsEndpoint | undefined> {
  return flags === null ? Promise.resolve(undefined) : serveMetrics(ctx, flags, parts);
}

/** Checks of one part under `<part>.<check>` names, for a process of several parts. */
export function prefixed(
  part: string,
  checks: Readonly<Record<string, ReadinessCheck>>,
): Record<string, ReadinessCheck> {
  return Object.fromEntries(Object.entries(checks).map(([name, check]) => [`${part}.${name}`, check]));
}

/** Serves /metrics, /healthz and /readyz for this process; the endpoint, to close on stop. */
export async function serveMetrics(
  ctx: CommandContext,
  flags: MetricsFlags,
  parts: ProcessParts,
): Promise<MetricsEndpoint> {
  let endpoint: MetricsEndpoint;
  try {
    endpoint = await startMetricsEndpoint({
      port: flags.port,
      host: flags.host,
      render: parts.render,
      checks: parts.checks,
      anyPortIfTaken: !flags.chosen,
      logger: {
        error: (details) =>
          println(
            ctx.io.stderr,
            `frontier ${ctx.command}: metrics: ${String((details as { err?: unknown }).err)}`,
          ),
      },
    });
  } catch (cause) {
    throw new CliError(
      `${ctx.command}: cannot serve metrics on ${flags.host}:${flags.port}: ${
        cause instanceof Error ? cause.message : String(cause)
      }; choose another --metrics-port, or --no-metrics`,
      ExitCode.FAILED,
      { cause },
    );
  }
  if (endpoint.movedFromTakenPort && !flag(ctx.parsed, "json")) {
    println(
      ctx.io.stderr,
      `frontier ${ctx.command}: metrics port ${flags.port} is taken; serving metrics on ${endpoint.url} instead`,
    );
  }
  return endpoint;
}
