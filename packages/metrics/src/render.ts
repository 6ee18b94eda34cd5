/**
 * One exposition out of several sources: registries of this thread, and the
 * metrics of other threads as `Registry.getMetricsAsJSON()` gave them (plain
 * data, sent over a worker's message port).
 *
 * The JSON sources are combined by prom-client's `AggregatorRegistry.aggregate`:
 * series with the same name and labels are summed, so each source must label
 * its series apart (a shard's carry `shard`). Local registries are merged as
 * they are (`Registry.merge`), not aggregated: aggregation would drop the
 * default metrics whose aggregator is "omit" (process_start_time_seconds).
 * A name present in two local registries, or in a local registry and a JSON
 * source, is a bug: `Registry.merge` throws, and the scrape answers 500.
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, Registry } from "prom-client";

/** A registry's metrics as plain data (`Registry.getMetricsAsJSON()`). */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export async function renderMetrics(
  registries: readonly Registry[],
  json: readonly MetricsJson[] = [],
): Promise<string> {
  const parts = [...registries];
  const remote = json.filter((metrics) => metrics.length > 0);
  if (remote.length > 0) parts.push(AggregatorRegistry.aggregate(remote as MetricsJson[]));
  if (parts.length === 0) return "";
  return Registry.merge(parts).metrics();
}

/** The Content-Type of what renderMetrics writes (the Prometheus text format, 0.0.4). */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
