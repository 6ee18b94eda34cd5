/**
 * For tests of every process's endpoint (`@frontier/metrics/testing`): the
 * text exposition read back into families, the naming conventions checked,
 * and `promtool check metrics` run when Prometheus's promtool is installed
 * (Debian: `apt-get install prometheus`).
 */
import { spawnSync } from "node:child_process";

export interface ExposedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ExposedFamily {
  readonly name: string;
  readonly type: string | undefined;
  readonly help: string | undefined;
  readonly samples: ExposedSample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const SUFFIXES = ["_bucket", "_sum", "_count"];

/** The families of a Prometheus text exposition, by name; a sample line that does not parse throws. */
export function parseExposition(text: string): Map<string, ExposedFamily> {
  const families = new Map<string, ExposedFamily>();
  const family = (name: string) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: undefined, help: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const f = family(meta[2]!);
      families.set(f.name, { ...f, [meta[1] === "HELP" ? "help" : "type"]: meta[3] });
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[3] ?? "").matchAll(LABEL)) labels[key!] = value!;
    const base = SUFFIXES.find((s) => name.endsWith(s) && families.has(name.slice(0, -s.length)));
    family(base === undefined ? name : name.slice(0, -base.length)).samples.push({
      name,
      labels,
      value: Number(m[4]),
    });
  }
  return families;
}

/**
 * The value of the sample `name` whose labels include `labels`, summed over
 * every such sample (a metric over several shards, when only some labels
 * are named); undefined when there is none.
 */
export function sampleValue(
  families: Map<string, ExposedFamily>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const base = SUFFIXES.find((s) => name.endsWith(s) && families.has(name.slice(0, -s.length)));
  const family = families.get(base === undefined ? name : name.slice(0, -base.length));
  let total: number | undefined;
  for (const s of family?.samples ?? []) {
    if (s.name !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    total = (total ?? 0) + s.value;
  }
  return total;
}

/**
 * What breaks Prometheus's naming conventions in the families named
 * `prefix*`: a TYPE and HELP for each; counters end in `_total`, nothing
 * else does; histograms measure base units (`_seconds`, `_bytes`); no
 * milliseconds anywhere. Empty when all is well.
 */
export function conventionProblems(families: Map<string, ExposedFamily>, prefix = "frontier_"): string[] {
  const problems: string[] = [];
  for (const f of families.values()) {
    if (!f.name.startsWith(prefix)) continue;
    if (f.type === undefined) problems.push(`${f.name}: no TYPE`);
    if (f.help === undefined || f.help === "") problems.push(`${f.name}: no HELP`);
    if (f.type === "counter" && !f.name.endsWith("_total"))
      problems.push(`${f.name}: counter without _total`);
    if (f.type !== "counter" && f.name.endsWith("_total")) problems.push(`${f.name}: _total on a ${f.type}`);
    if (f.type === "histogram" && !/_(seconds|bytes)$/.test(f.name))
      problems.push(`${f.name}: histogram not in seconds or bytes`);
    if (/_(ms|milliseconds|millis)(_|$)/.test(f.name)) problems.push(`${f.name}: not in base units`);
  }
  return problems;
}

/** The path of promtool, or null when it is not installed. */
export function promtoolPath(): string | null {
  const found = spawnSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" });
  const path = found.stdout.trim();
  return found.status === 0 && path !== "" ? path : null;
}

/**
 * prom-client's own default metrics that promtool's lint flags (gauges named
 * `_total`): not ours to rename; every other finding counts.
 */
export const PROM_CLIENT_LINT_EXCEPTIONS: readonly string[] = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/**
 * `promtool check metrics` on an exposition: whether it parsed, and the lint
 * findings (one per line) apart from PROM_CLIENT_LINT_EXCEPTIONS.
 */
export function promtoolCheckMetrics(text: string): { parsed: boolean; problems: string[] } {
  const { code, output } = runPromtool(["check", "metrics"], text);
  const lines = output.split("\n").filter((line) => line.trim() !== "");
  // Exit code 1: the text did not parse; 3: it parsed, with lint findings.
  if (code !== 0 && code !== 3) return { parsed: false, problems: lines };
  const problems = lines.filter((line) => !PROM_CLIENT_LINT_EXCEPTIONS.includes(line.split(" ")[0]!));
  return { parsed: true, problems };
}

/** Runs `promtool <args>` with `input` on stdin: its exit code and what it printed. */
export function runPromtool(args: readonly string[], input?: string): { code: number; output: string } {
  const path = promtoolPath();
  if (path === null) throw new Error("promtool is not installed (Debian: apt-get install prometheus)");
  const run = spawnSync(path, args, { input: input ?? "", encoding: "utf8", timeout: 30_000 });
  return { code: run.status ?? 1, output: `${run.stdout}${run.stderr}` };
}
