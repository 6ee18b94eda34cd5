/** Percentiles and medians of the benchmark's samples. */

/** The q-quantile (0..1) of the samples, nearest rank; NaN when there are none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export interface LatencySummary {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

export function summarize(latencies: readonly number[]): LatencySummary {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const mean = latencies.length === 0 ? Number.NaN : latencies.reduce((a, b) => a + b, 0) / latencies.length;
  return {
    samples: latencies.length,
    p50Ms: round(quantile(latencies, 0.5)),
    p90Ms: round(quantile(latencies, 0.9)),
    p99Ms: round(quantile(latencies, 0.99)),
    maxMs: round(latencies.length === 0 ? Number.NaN : Math.max(...latencies)),
    meanMs: round(mean),
  };
}
