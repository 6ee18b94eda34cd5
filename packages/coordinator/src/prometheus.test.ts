import { describe, expect, it } from "vitest";
import {
  Counter,
  escapeHelp,
  escapeLabelValue,
  formatLabels,
  formatPrometheus,
  formatValue,
  Histogram,
} from "./prometheus.js";

describe("formatPrometheus", () => {
  it("writes HELP, TYPE and one line per sample, ending with a newline", () => {
    const text = formatPrometheus([
      {
        name: "frontier_runnable",
        help: "Runnable tasks.",
        type: "gauge",
        samples: [
          { labels: { shard: "s1" }, value: 42 },
          { labels: { shard: "s2" }, value: 0 },
        ],
      },
      { name: "up", help: "Up.", type: "counter", samples: [{ value: 1 }] },
    ]);
    expect(text).toBe(
      [
        "# HELP frontier_runnable Runnable tasks.",
        "# TYPE frontier_runnable gauge",
        'frontier_runnable{shard="s1"} 42',
        'frontier_runnable{shard="s2"} 0',
        "# HELP up Up.",
        "# TYPE up counter",
        "up 1",
        "",
      ].join("\n"),
    );
  });

  it("writes a family with no samples as HELP and TYPE only, and nothing for no families", () => {
    expect(formatPrometheus([{ name: "x", help: "h", type: "counter", samples: [] }])).toBe(
      "# HELP x h\n# TYPE x counter\n",
    );
    expect(formatPrometheus([])).toBe("");
  });

  it("escapes label values (backslash, quote, newline) and help text (backslash, newline)", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('a\\b\nc "q"')).toBe('a\\\\b\\nc "q"');
    expect(formatLabels({ path: 'C:\\x "y"\n' })).toBe('{path="C:\\\\x \\"y\\"\\n"}');
    expect(formatLabels({})).toBe("");
    expect(formatLabels(undefined)).toBe("");
  });

  it("writes Go-style special values", () => {
    expect(formatValue(Number.NaN)).toBe("NaN");
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe("+Inf");
    expect(formatValue(Number.NEGATIVE_INFINITY)).toBe("-Inf");
    expect(formatValue(0.25)).toBe("0.25");
    expect(formatValue(1e-7)).toBe("1e-7");
    expect(formatValue(-3)).toBe("-3");
  });

  it("refuses names that would make the scrape unreadable", () => {
    const family = (name: string, labels?: Record<string, string>) => ({
      name,
      help: "h",
      type: "gauge" as const,
      samples: [{ value: 1, ...(labels ? { labels } : {}) }],
    });
    expect(() => formatPrometheus([family("bad-name")])).toThrow(/invalid metric name/);
    expect(() => formatPrometheus([family("9lives")])).toThrow(/invalid metric name/);
    expect(() => formatPrometheus([family("ok", { "bad-label": "x" })])).toThrow(/invalid label name/);
    expect(() => formatPrometheus([family("ok", { __reserved: "x" })])).toThrow(/reserved/);
    expect(() => formatPrometheus([family("dup"), family("dup")])).toThrow(/twice/);
    expect(() =>
      formatPrometheus([{ name: "a", help: "h", type: "gauge", samples: [{ name: "b", value: 1 }] }]),
    ).toThrow(/not of family/);
  });
});

describe("Counter", () => {
  it("counts per label set", () => {
    const c = new Counter("reqs_total", "Requests.");
    c.inc({ op: "submit", code: "OK" });
    c.inc({ op: "submit", code: "OK" }, 2);
    c.inc({ op: "lease", code: "TIMEOUT" });
    expect(c.get({ op: "submit", code: "OK" })).toBe(3);
    expect(c.get({ op: "stats", code: "OK" })).toBe(0);
    expect(formatPrometheus([c.family()])).toBe(
      [
        "# HELP reqs_total Requests.",
        "# TYPE reqs_total counter",
        'reqs_total{op="submit",code="OK"} 3',
        'reqs_total{op="lease",code="TIMEOUT"} 1',
        "",
      ].join("\n"),
    );
  });
});

describe("Histogram", () => {
  it("writes cumulative buckets, +Inf, sum and count per label set", () => {
    const h = new Histogram("lat_seconds", "Latency.", [0.5, 0.1]);
    h.observe(0.05, { op: "a" });
    h.observe(0.3, { op: "a" });
    h.observe(2, { op: "a" });
    expect(formatPrometheus([h.family()])).toBe(
      [
        "# HELP lat_seconds Latency.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{op="a",le="0.1"} 1',
        'lat_seconds_bucket{op="a",le="0.5"} 2',
        'lat_seconds_bucket{op="a",le="+Inf"} 3',
        'lat_seconds_sum{op="a"} 2.35',
        'lat_seconds_count{op="a"} 3',
        "",
      ].join("\n"),
    );
  });

  it("counts a value equal to a bound in that bucket", () => {
    const h = new Histogram("x", "x", [1]);
    h.observe(1);
    expect(h.family().samples[0]).toEqual({ name: "x_bucket", labels: { le: "1" }, value: 1 });
  });
});
