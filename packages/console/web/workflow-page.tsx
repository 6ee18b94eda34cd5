/**
 * A workflow's DAG, laid out by dagre (left to right, prerequisites before
 * dependents), each task a box coloured by its state and linked to its
 * page, with the critical path (critical-path.ts) drawn bold. Tasks come a
 * page of MAX_PAGE_LIMIT at a time; "load more" adds the next page and lays
 * the whole graph out again.
 */
import dagre, { type Point } from "@dagrejs/dagre";
import type { WorkflowPageReply } from "@frontier/console";
import type { TaskSummary } from "@frontier/core";
import { useEffect, useMemo, useState } from "preact/hooks";
import { getJson } from "./api.js";
import { criticalPath } from "./critical-path.js";
import { taskHref, time } from "./format.js";
import { StateBadge } from "./state-badge.js";

const PAGE = "200";
const NODE_W = 180;
const NODE_H = 46;
/** Characters of an id drawn in a box; the full id is in its tooltip and on its page. */
const ID_SHOWN = 24;

export function WorkflowPage({ id }: { id: string }) {
  const [tasks, setTasks] = useState<readonly TaskSummary[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = (after: string | null, previous: readonly TaskSummary[]) =>
    getJson<WorkflowPageReply>(`api/workflows/${encodeURIComponent(id)}`, {
      limit: PAGE,
      after: after ?? undefined,
    }).then(
      (page) => {
        setTasks([...previous, ...page.tasks]);
        setNext(page.next);
        setLoaded(true);
      },
      (err: unknown) => setError(String(err)),
    );
  useEffect(() => {
    setTasks([]);
    setLoaded(false);
    setError(null);
    void load(null, []);
  }, [id]);

  return (
    <section class="workflow">
      <h1>
        Workflow <code>{id}</code>
      </h1>
      {error === null ? null : <p class="error">{error}</p>}
      {!loaded ? (
        <p class="muted">loading…</p>
      ) : tasks.length === 0 ? (
        <p class="muted">no tasks in this workflow</p>
      ) : (
        <>
          <p class="muted">
            {tasks.length} task{tasks.length === 1 ? "" : "s"}
            {next === null ? "" : " shown (more not yet read)"} · bold: the path to the latest deadline
          </p>
          {next === null ? null : (
            <button type="button" onClick={() => void load(next, tasks)}>
              load more
            </button>
          )}
          <Dag workflowId={id} tasks={tasks} />
        </>
      )}
    </section>
  );
}

function Dag({ workflowId, tasks }: { workflowId: string; tasks: readonly TaskSummary[] }) {
  const drawing = useMemo(() => {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 48, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    const known = new Set(tasks.map((t) => t.id));
    for (const t of tasks) g.setNode(t.id, { width: NODE_W, height: NODE_H });
    for (const t of tasks) for (const p of t.prerequisites ?? []) if (known.has(p)) g.setEdge(p, t.id);
    dagre.layout(g);
    const critical = criticalPath(tasks);
    const onPath = new Set(critical);
    const criticalEdges = new Set(critical.slice(1).map((to, i) => `${critical[i]}\u0000${to}`));
    const label = g.graph();
    return {
      width: Math.ceil(label.width ?? 0),
      height: Math.ceil(label.height ?? 0),
      nodes: tasks.map((t) => ({ task: t, at: g.node(t.id), critical: onPath.has(t.id) })),
      edges: g.edges().map((e) => ({
        key: `${e.v}\u0000${e.w}`,
        points: (g.edge(e).points ?? []) as readonly Point[],
        critical: criticalEdges.has(`${e.v}\u0000${e.w}`),
      })),
    };
  }, [tasks]);

  return (
    <>
      <div class="dag-scroll">
        <svg
          class="dag"
          role="img"
          aria-label={`the DAG of workflow ${workflowId}`}
          width={drawing.width}
          height={drawing.height}
          viewBox={`0 0 ${drawing.width} ${drawing.height}`}
        >
          <defs>
            <marker
              id="arrow"
              viewBox="0 0 10 10"
              refX="10"
              refY="5"
              markerWidth="6"
              markerHeight="6"
              orient="auto"
            >
              <path d="M0,0 L10,5 L0,10 z" class="arrow" />
            </marker>
          </defs>
          {drawing.edges.map((e) => (
            <polyline
              key={e.key}
              class={e.critical ? "edge critical" : "edge"}
              points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
              marker-end="url(#arrow)"
            />
          ))}
          {drawing.nodes.map(({ task, at, critical }) => (
            <a href={taskHref(task.id, workflowId)} key={task.id}>
              <g
                class={`node state-${task.state}${critical ? " critical" : ""}`}
                data-task-id={task.id}
                data-state={task.state}
                transform={`translate(${at.x - NODE_W / 2},${at.y - NODE_H / 2})`}
              >
                <title>{`${task.id} — ${task.state}, deadline ${time(task.deadline)}${task.reason === undefined ? "" : ` — ${task.reason}`}`}</title>
                <rect width={NODE_W} height={NODE_H} rx="6" />
                <text x="8" y="19" class="node-id">
                  {task.id.length > ID_SHOWN ? `${task.id.slice(0, ID_SHOWN - 1)}…` : task.id}
                </text>
                <text x="8" y="36" class="node-state">
                  {task.state} · {task.attempts}/{task.maxAttempts}
                </text>
              </g>
            </a>
          ))}
        </svg>
      </div>
      <table class="task-table">
        <thead>
          <tr>
            <th>id</th>
            <th>state</th>
            <th>deadline</th>
            <th>attempts</th>
            <th>prerequisites</th>
            <th>reason</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.id} data-task-id={t.id} data-state={t.state}>
              <td>
                <a href={taskHref(t.id, workflowId)}>{t.id}</a>
              </td>
              <td>
                <StateBadge state={t.state} />
              </td>
              <td>{time(t.deadline)}</td>
              <td>
                {t.attempts}/{t.maxAttempts}
              </td>
              <td>{(t.prerequisites ?? []).join(", ")}</td>
              <td class="reason">{t.reason ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
