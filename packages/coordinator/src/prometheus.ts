/**
 * The Prometheus text exposition format (version 0.0.4), written out by hand:
 * a family is `# HELP`, `# TYPE`, then one line per sample,
 *
 *   # HELP frontier_runnable Runnable tasks.
 *   # TYPE frontier_runnable gauge
 *   frontier_runnable{shard="s1"} 42
 *
 * Label values escape `\`, `"` and newline; HELP text escapes `\` and newline.
 * Values are Go-style floats: `NaN`, `+Inf`, `-Inf`, else JavaScript's number
 * text (which Go's ParseFloat reads, exponents included). Names are checked,
 * as a bad name makes the whole scrape unreadable: a bad one is a bug here,
 * so it throws.
 */

export type MetricType = "counter" | "gauge" | "histogram";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** The sample's name when it is not the family's: `<family>_bucket`, `_sum`, `_count` of a histogram. */
  readonly name?: string;
  readonly labels?: Labels;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly Sample[];
}

/** The Content-Type of this format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The families as one exposition, each sample on its own line, ending with a newline. */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const family of families) {
    checkName(family.name, METRIC_NAME, "metric");
    if (seen.has(family.name)) throw new Error(`metric family ${family.name} appears twice`);
    seen.add(family.name);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const name = sample.name ?? family.name;
      if (name !== family.name) {
        checkName(name, METRIC_NAME, "metric");
        if (!name.startsWith(family.name)) throw new Error(`sample ${name} is not of family ${family.name}`);
      }
      lines.push(`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

export function formatLabels(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  const parts = keys.map((key) => {
    checkName(key, LABEL_NAME, "label");
    if (key.startsWith("__")) throw new Error(`label name ${key} is reserved`);
    return `${key}="${escapeLabelValue(labels[key] ?? "")}"`;
  });
  return `{${parts.join(",")}}`;
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function checkName(name: string, pattern: RegExp, kind: string): void {
  if (!pattern.test(name)) throw new Error(`invalid ${kind} name ${JSON.stringify(name)}`);
}

// ----------------------------------------------------------------- instruments

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

/** A counter per label set. Increments only; a label set appears once it is first incremented. */
export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    const entry = this.values.get(key);
    if (entry === undefined) this.values.set(key, { labels, value: by });
    else entry.value += by;
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels))?.value ?? 0;
  }

  family(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: "counter",
      samples: [...this.values.values()].map(({ labels, value }) => ({ labels, value })),
    };
  }
}

/**
 * A histogram per label set with fixed upper bounds. Cost of `observe`:
 * O(buckets) (a handful), no allocation after a label set's first sample.
 */
export class Histogram {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();
  readonly bounds: readonly number[];
  constructor(
    readonly name: string,
    readonly help: string,
    bounds: readonly number[],
  ) {
    this.bounds = [...bounds].sort((a, b) => a - b);
  }

  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels, counts: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  family(): MetricFamily {
    const samples: Sample[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      this.bounds.forEach((bound, i) => {
        samples.push({
          name: `${this.name}_bucket`,
          labels: { ...labels, le: formatValue(bound) },
          value: counts[i]!,
        });
      });
      samples.push({ name: `${this.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: count });
      samples.push({ name: `${this.name}_sum`, labels, value: sum });
      samples.push({ name: `${this.name}_count`, labels, value: count });
    }
    return { name: this.name, help: this.help, type: "histogram", samples };
  }
}
