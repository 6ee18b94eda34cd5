/**
 * A small line chart drawn as SVG from the samples given: x by time, y from
 * 0 to the largest value. No axes beyond the latest and largest values,
 * written beside it; enough to see a trend.
 */
export interface Point {
  readonly at: number;
  readonly value: number;
}

const W = 320;
const H = 80;

export function LineChart({
  points,
  label,
  unit,
}: {
  points: readonly Point[];
  label: string;
  unit: string;
}) {
  const last = points[points.length - 1];
  const max = Math.max(1, ...points.map((p) => p.value));
  const t0 = points[0]?.at ?? 0;
  const span = Math.max(1, (last?.at ?? 0) - t0);
  const line = points
    .map((p) => `${(((p.at - t0) / span) * W).toFixed(1)},${(H - (p.value / max) * (H - 4) - 2).toFixed(1)}`)
    .join(" ");
  return (
    <figure class="chart" data-chart={label}>
      <figcaption>
        {label}: <strong>{last === undefined ? "—" : `${format(last.value)} ${unit}`}</strong>
        <span class="muted"> (max {format(max)})</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={label}>
        <rect x="0" y="0" width={W} height={H} class="chart-bg" />
        {points.length > 1 ? <polyline points={line} class="chart-line" /> : null}
      </svg>
    </figure>
  );
}

function format(n: number): string {
  return n >= 100 ? String(Math.round(n)) : n.toFixed(n >= 10 ? 1 : 2).replace(/\.?0+$/, "") || "0";
}
