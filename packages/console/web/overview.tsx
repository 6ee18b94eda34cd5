/**
 * The cluster at a glance: counts by state, throughput and backlog drawn
 * from stats polled every POLL_MS (rates are differences of successive
 * readings, as `frontier top` does), each shard's slots, backlog,
 * frontier, lease timeouts and deadline misses (or why it did not answer). Stats cost O(1) per shard, whatever the
 * number of tasks.
 */
import type { StatsReply } from "@frontier/console";
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api.js";
import { LineChart, type Point } from "./chart.js";
import { duration, time } from "./format.js";
import { STATES, StateBadge } from "./state-badge.js";

const POLL_MS = 2_000;
/** Samples kept for the charts: two minutes at POLL_MS. */
const KEPT = 60;

interface Sample {
  readonly at: number;
  readonly completed: number;
  readonly backlog: number;
}

export function Overview() {
  const [stats, setStats] = useState<StatsReply | null>(null);
  const [samples, setSamples] = useState<readonly Sample[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const s = await getJson<StatsReply>("api/stats");
        if (stopped) return;
        setStats(s);
        setError(null);
        const sample = {
          at: s.at,
          completed: s.counts.COMPLETED,
          backlog: s.counts.WAITING + s.counts.RUNNABLE + s.counts.LEASED,
        };
        setSamples((old) => [...old, sample].slice(-KEPT));
      } catch (err) {
        if (!stopped) setError(String(err));
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  // Completed tasks per second between successive readings; never below 0 (finished tasks are compacted away).
  const throughput: Point[] = samples.slice(1).map((s, i) => {
    const prev = samples[i]!;
    return {
      at: s.at,
      value: Math.max(0, ((s.completed - prev.completed) * 1000) / Math.max(1, s.at - prev.at)),
    };
  });
  const backlog: Point[] = samples.map((s) => ({ at: s.at, value: s.backlog }));

  return (
    <section class="overview">
      <h1>Cluster</h1>
      {error === null ? null : <p class="error">stats: {error}</p>}
      {stats === null ? (
        <p class="muted">reading stats…</p>
      ) : (
        <>
          <div class="cards" id="counts">
            {STATES.map((state) => (
              <a class="card" href={`#/tasks?state=${state}`} data-state={state} key={state}>
                <StateBadge state={state} />
                <span class="count">{stats.counts[state].toLocaleString()}</span>
              </a>
            ))}
          </div>
          <div class="charts">
            <LineChart points={throughput} label="completed per second" unit="/s" />
            <LineChart points={backlog} label="backlog (waiting + runnable + leased)" unit="tasks" />
          </div>
          <dl class="facts">
            <dt>leases live</dt>
            <dd>{stats.leased}</dd>
            <dt>lease timeouts</dt>
            <dd id="lease-timeouts">{stats.leaseTimeouts}</dd>
            <dt>deadline misses</dt>
            <dd id="deadline-misses">{stats.deadlineMisses}</dd>
            <dt>retries</dt>
            <dd>{stats.retries}</dd>
            <dt>earliest runnable deadline</dt>
            <dd>{time(stats.frontierDeadline)}</dd>
            <dt>oldest runnable wait</dt>
            <dd>{duration(stats.oldestRunnableAgeMs)}</dd>
          </dl>
          <h2>Shards</h2>
          <table class="shards">
            <thead>
              <tr>
                <th>shard</th>
                <th>answered</th>
                <th class="num">slots</th>
                <th class="num">waiting</th>
                <th class="num">runnable</th>
                <th class="num">leased</th>
                <th>earliest deadline</th>
                <th>oldest wait</th>
                <th class="num">lease timeouts</th>
                <th class="num">deadline misses</th>
              </tr>
            </thead>
            <tbody>
              {stats.shards.answered.map((id) => {
                // Each shard's own figures (a coordinator too old to send them leaves the row bare).
                const entry = stats.byShard.find((e) => e.shardId === id);
                const s = entry?.stats;
                return (
                  <tr key={id} data-shard={id}>
                    <td>{id}</td>
                    <td class="ok">yes</td>
                    <td class="num">{entry?.slots ?? ""}</td>
                    <td class="num">{s?.counts.WAITING ?? ""}</td>
                    <td class="num">{s?.counts.RUNNABLE ?? ""}</td>
                    <td class="num">{s?.leased ?? ""}</td>
                    <td>{s === undefined ? "" : time(s.frontierDeadline)}</td>
                    <td>{s === undefined ? "" : duration(s.oldestRunnableAgeMs)}</td>
                    <td class="num">{s?.leaseTimeouts ?? ""}</td>
                    <td class="num">{s?.deadlineMisses ?? ""}</td>
                  </tr>
                );
              })}
              {stats.shards.missing.map((m) => (
                <tr key={m.shardId} class="missing" data-shard={m.shardId}>
                  <td>{m.shardId}</td>
                  <td class="bad" colSpan={9}>
                    no: {m.code}
                    {m.detail === undefined ? "" : ` (${m.detail})`}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {stats.shards.missing.length > 0 ? (
            <p class="error">Partial: the counts above lack the shards that did not answer.</p>
          ) : null}
        </>
      )}
    </section>
  );
}
