/**
 * The benchmark's outputs: a result line per system × scenario × run (JSON
 * lines), the table of medians with the Frontier/peer ratios (Markdown, so
 * it goes into docs/benchmarks.md as printed), and an SVG bar chart written
 * by hand (no plotting library).
 */
import type { SystemName } from "./config.js";
import { type LatencySummary, median } from "./stats.js";

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly platform: string;
  readonly loadavgAtStart: readonly number[];
  readonly frontierCommit: string;
  readonly servers: Readonly<Record<string, string>>;
}

export interface ResultLine {
  readonly bench: "peers";
  readonly ts: string;
  readonly run: number;
  readonly system: SystemName;
  /** enqueue-batch, enqueue-stream, drain-c<N>, light, chains, longchain */
  readonly scenario: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly tasks?: number;
  readonly concurrency?: number;
  readonly seconds?: number;
  readonly tasksPerSec?: number;
  /** Service processes' CPU (user + system) over the measurement, per task, µs. */
  readonly serviceCpuUsPerTask?: number;
  readonly serviceCpuNote?: string;
  /** The worker process's CPU over the measurement, per task, µs. */
  readonly workerCpuUsPerTask?: number;
  /** Messages the broker received over the measurement, per task (Frontier: nats-server's in_msgs). */
  readonly messagesPerTask?: number;
  readonly latency?: LatencySummary;
  readonly dependencies?: "native" | "emulated";
  readonly notes?: string;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  /** The machine's 1-minute load average when the line was written (others' work shows here). */
  readonly load1: number;
  readonly machine: Machine;
}

interface Figure {
  readonly id: string;
  readonly label: string;
  readonly scenario: string;
  readonly pick: (r: ResultLine) => number | undefined;
  readonly better: "higher" | "lower";
  readonly digits: number;
}

export function figures(drainConcurrency: readonly number[]): Figure[] {
  const rate = (r: ResultLine) => r.tasksPerSec;
  const out: Figure[] = [
    {
      id: "enqueue-batch",
      label: "enqueue, batches of 100 (tasks/s)",
      scenario: "enqueue-batch",
      pick: rate,
      better: "higher",
      digits: 0,
    },
    {
      id: "enqueue-stream",
      label: "enqueue, streaming submitter (tasks/s)",
      scenario: "enqueue-stream",
      pick: rate,
      better: "higher",
      digits: 0,
    },
  ];
  for (const c of drainConcurrency) {
    const scenario = `drain-c${c}`;
    out.push(
      {
        id: `drain-c${c}`,
        label: `drain, concurrency ${c} (tasks/s)`,
        scenario,
        pick: rate,
        better: "higher",
        digits: 0,
      },
      {
        id: `cpu-c${c}`,
        label: `↳ service CPU per task, c${c} (µs)`,
        scenario,
        pick: (r) => r.serviceCpuUsPerTask,
        better: "lower",
        digits: 0,
      },
      {
        id: `wcpu-c${c}`,
        label: `↳ worker CPU per task, c${c} (µs)`,
        scenario,
        pick: (r) => r.workerCpuUsPerTask,
        better: "lower",
        digits: 0,
      },
      {
        id: `msgs-c${c}`,
        label: `↳ broker messages per task, c${c}`,
        scenario,
        pick: (r) => r.messagesPerTask,
        better: "lower",
        digits: 2,
      },
    );
  }
  out.push(
    {
      id: "light-p50",
      label: "light load: p50 (ms)",
      scenario: "light",
      pick: (r) => r.latency?.p50Ms,
      better: "lower",
      digits: 2,
    },
    {
      id: "light-p99",
      label: "light load: p99 (ms)",
      scenario: "light",
      pick: (r) => r.latency?.p99Ms,
      better: "lower",
      digits: 2,
    },
    {
      id: "light-max",
      label: "light load: max (ms)",
      scenario: "light",
      pick: (r) => r.latency?.maxMs,
      better: "lower",
      digits: 1,
    },
    { id: "chains", label: "chains (tasks/s)", scenario: "chains", pick: rate, better: "higher", digits: 0 },
    {
      id: "step-p50",
      label: "long chain: step p50 (ms)",
      scenario: "longchain",
      pick: (r) => r.latency?.p50Ms,
      better: "lower",
      digits: 2,
    },
    {
      id: "step-p99",
      label: "long chain: step p99 (ms)",
      scenario: "longchain",
      pick: (r) => r.latency?.p99Ms,
      better: "lower",
      digits: 2,
    },
    {
      id: "steps",
      label: "long chain (steps/s)",
      scenario: "longchain",
      pick: rate,
      better: "higher",
      digits: 0,
    },
  );
  return out;
}

/** Median over runs of one figure of one system; NaN when no run has it. */
export function medianOf(results: readonly ResultLine[], system: SystemName, figure: Figure): number {
  const values: number[] = [];
  for (const r of results) {
    if (r.system !== system || r.scenario !== figure.scenario || !r.ok) continue;
    const v = figure.pick(r);
    if (v !== undefined) values.push(v);
  }
  return median(values);
}

function fmt(v: number, digits: number): string {
  if (!Number.isFinite(v)) return "–";
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtRatio(v: number): string {
  if (!Number.isFinite(v)) return "–";
  return `${v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(3)}×`;
}

/** Figures whose Frontier/peer ratio the table prints. */
const RATIOS = [
  { label: "drain c8 (tasks/s)", id: "drain-c8" },
  { label: "drain c64 (tasks/s)", id: "drain-c64" },
  { label: "light p50 (ms)", id: "light-p50" },
  { label: "light p99 (ms)", id: "light-p99" },
  { label: "chains (tasks/s)", id: "chains" },
  { label: "long-chain step p50 (ms)", id: "step-p50" },
  { label: "service CPU/task c8 (µs)", id: "cpu-c8" },
];

export function table(
  results: readonly ResultLine[],
  systems: readonly SystemName[],
  drainConcurrency: readonly number[],
  runs: number,
): string {
  const figs = figures(drainConcurrency);
  const lines: string[] = [];
  const present = systems.filter((s) => results.some((r) => r.system === s));
  const runsOf = (s: SystemName) =>
    new Set(results.filter((r) => r.system === s && r.ok).map((r) => r.run)).size;
  const uneven = present.some((s) => runsOf(s) !== runs);
  lines.push(
    uneven
      ? "Medians over each system's runs (how many: the runs row)."
      : `Medians over ${runs} run${runs === 1 ? "" : "s"}.`,
  );
  lines.push("");
  lines.push(`| figure | ${present.join(" | ")} |`);
  lines.push(`|---|${present.map(() => "---:").join("|")}|`);
  if (uneven) lines.push(`| runs | ${present.map((s) => String(runsOf(s))).join(" | ")} |`);
  for (const f of figs) {
    const cells = present.map((s) => fmt(medianOf(results, s, f), f.digits));
    if (cells.every((c) => c === "–")) continue;
    lines.push(`| ${f.label} | ${cells.join(" | ")} |`);
  }
  const emulated = present.filter((s) =>
    results.some((r) => r.system === s && r.dependencies === "emulated" && r.scenario.includes("chain")),
  );
  if (emulated.length > 0) {
    lines.push("");
    lines.push(
      `Chains on ${emulated.join(", ")} are emulated: these have no dependency feature, so each step's handler enqueues the next step before it returns.`,
    );
  }
  const frontiers = present.filter((s) => s.startsWith("frontier"));
  const peers = present.filter((s) => !s.startsWith("frontier"));
  if (frontiers.length > 0 && peers.length > 0) {
    lines.push("");
    lines.push(
      "Frontier / peer (rates: above 1× is Frontier faster; latencies and CPU: below 1× is Frontier better).",
    );
    lines.push("");
    lines.push(`| Frontier / peer | ${peers.join(" | ")} |`);
    lines.push(`|---|${peers.map(() => "---:").join("|")}|`);
    for (const fr of frontiers) {
      for (const rs of RATIOS) {
        const f = figs.find((x) => x.id === rs.id);
        if (f === undefined) continue;
        const mine = medianOf(results, fr, f);
        const cells = peers.map((p) => fmtRatio(mine / medianOf(results, p, f)));
        if (cells.every((c) => c === "–")) continue;
        lines.push(`| ${fr}: ${rs.label} | ${cells.join(" | ")} |`);
      }
    }
  }
  const failures = results.filter((r) => !r.ok);
  if (failures.length > 0) {
    lines.push("");
    lines.push("Failed measurements (left out of the medians):");
    for (const r of failures) lines.push(`- run ${r.run}, ${r.system}, ${r.scenario}: ${r.error}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// SVG

const COLORS = ["#3b6fb6", "#e08a2c", "#5a9e4b", "#b04a5a"];

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

interface Panel {
  readonly title: string;
  readonly series: readonly { readonly name: string; readonly figure: Figure }[];
  readonly log: boolean;
  readonly unit: string;
}

export function svgChart(
  results: readonly ResultLine[],
  systems: readonly SystemName[],
  drainConcurrency: readonly number[],
  subtitle: string,
): string {
  const figs = figures(drainConcurrency);
  const fig = (id: string) => figs.find((f) => f.id === id)!;
  const present = systems.filter((s) => results.some((r) => r.system === s && r.ok));
  const panels: Panel[] = [
    {
      title: "Drain: no-op tasks, one worker process (tasks/s, higher is better)",
      series: drainConcurrency.map((c) => ({
        name: `concurrency ${c}`,
        figure: fig(`drain-c${c}`),
      })),
      log: false,
      unit: "/s",
    },
    {
      title: "Chains of dependent steps, concurrency 8 (tasks/s, higher is better)",
      series: [{ name: "chains", figure: fig("chains") }],
      log: false,
      unit: "/s",
    },
    {
      title: "Light load: submit call → handler start (ms, log scale, lower is better)",
      series: [
        { name: "p50", figure: fig("light-p50") },
        { name: "p99", figure: fig("light-p99") },
      ],
      log: true,
      unit: " ms",
    },
    {
      title: "Long chain: prerequisite done → dependent's handler start (ms, log scale, lower is better)",
      series: [
        { name: "p50", figure: fig("step-p50") },
        { name: "p99", figure: fig("step-p99") },
      ],
      log: true,
      unit: " ms",
    },
    {
      title: `Service CPU per drained task, concurrency ${drainConcurrency[0] ?? 8} (µs, lower is better)`,
      series: [{ name: "service CPU", figure: fig(`cpu-c${drainConcurrency[0] ?? 8}`) }],
      log: false,
      unit: " µs",
    },
  ];
  const width = 960;
  const labelW = 150;
  const plotW = width - labelW - 130;
  const barH = 13;
  const parts: string[] = [];
  let y = 30;
  parts.push(
    `<text x="20" y="26" font-size="18" font-weight="bold">Frontier and its peers (pnpm bench:peers)</text>`,
  );
  for (const text of subtitle.split("\n")) {
    y += 15;
    parts.push(`<text x="20" y="${y}" font-size="12" fill="#555">${esc(text)}</text>`);
  }
  y += 11;
  for (const panel of panels) {
    const values = present.map((s) => panel.series.map((se) => medianOf(results, s, se.figure)));
    const finite = values.flat().filter((v) => Number.isFinite(v) && v > 0);
    if (finite.length === 0) continue;
    y += 22;
    parts.push(`<text x="20" y="${y}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
    // legend
    let lx = width - 20;
    for (let i = panel.series.length - 1; i >= 0 && panel.series.length > 1; i--) {
      const name = panel.series[i]!.name;
      lx -= name.length * 7 + 26;
      parts.push(
        `<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${lx + 16}" y="${y}" font-size="12">${esc(name)}</text>`,
      );
    }
    y += 10;
    const max = Math.max(...finite);
    const min = panel.log ? Math.min(0.1, Math.min(...finite) / 2) : 0;
    const scale = (v: number) => {
      if (!Number.isFinite(v) || v <= 0) return 0;
      if (!panel.log) return (v / max) * plotW;
      return (Math.log10(Math.max(v, min) / min) / Math.log10((max * 1.05) / min)) * plotW;
    };
    const top = y;
    const rowsH = present.length * (panel.series.length * (barH + 2) + 6);
    if (panel.log) {
      // decade gridlines, under the bars, labelled below the panel
      for (let d = 10 ** Math.ceil(Math.log10(min)); d <= max * 1.05; d *= 10) {
        const x = (labelW + scale(d)).toFixed(1);
        parts.push(
          `<line x1="${x}" y1="${top + 2}" x2="${x}" y2="${top + rowsH + 2}" stroke="#ddd"/>`,
          `<text x="${x}" y="${top + rowsH + 13}" font-size="10" fill="#777" text-anchor="middle">${d >= 1 ? d : d.toFixed(1)}${panel.unit}</text>`,
        );
      }
    }
    for (let si = 0; si < present.length; si++) {
      const rowH = panel.series.length * (barH + 2) + 6;
      const rowY = y + 4;
      parts.push(
        `<text x="${labelW - 8}" y="${rowY + (panel.series.length * (barH + 2)) / 2 + 4}" font-size="12" text-anchor="end">${esc(present[si]!)}</text>`,
      );
      panel.series.forEach((_se, k) => {
        const v = values[si]![k]!;
        const w = scale(v);
        const by = rowY + k * (barH + 2);
        parts.push(
          `<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[k % COLORS.length]}"/>`,
          `<text x="${(labelW + w + 5).toFixed(1)}" y="${by + barH - 2}" font-size="11" fill="#333">${
            Number.isFinite(v) ? esc(`${fmt(v, v < 10 ? 2 : v < 100 ? 1 : 0)}${panel.unit}`) : "–"
          }</text>`,
        );
      });
      y += rowH;
    }
    parts.push(`<line x1="${labelW}" y1="${top + 2}" x2="${labelW}" y2="${top + rowsH + 2}" stroke="#999"/>`);
    y += panel.log ? 20 : 8;
  }
  const height = y + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" role="img">`,
    `<title>${esc(`Frontier and its peers (pnpm bench:peers): ${subtitle.replaceAll("\n", " · ")}`)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
