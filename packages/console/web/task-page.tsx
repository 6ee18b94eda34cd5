/** One task: its state, attempts, reason, times, prerequisites and dependents (links), and the actions. */
import type { TaskReply } from "@frontier/console";
import { useEffect, useState } from "preact/hooks";
import { TaskActions } from "./actions.js";
import { getJson, type Session } from "./api.js";
import { taskHref, time, workflowHref } from "./format.js";
import { StateBadge } from "./state-badge.js";

export function TaskPage({
  id,
  workflowId,
  session,
}: {
  id: string;
  workflowId?: string;
  session: Session | null;
}) {
  const [reply, setReply] = useState<TaskReply | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    setError(null);
    getJson<TaskReply>(`api/tasks/${encodeURIComponent(id)}`, { workflow: workflowId }).then(
      setReply,
      (err: unknown) => setError(String(err)),
    );
  }, [id, workflowId, version]);

  if (reply === null || reply.task.id !== id) {
    return <section>{error === null ? <p class="muted">loading…</p> : <p class="error">{error}</p>}</section>;
  }
  const { task, prerequisites, dependents, dependentsCut } = reply;
  return (
    <section class="task" data-task-id={task.id} data-state={task.state}>
      <h1>
        Task <code>{task.id}</code> <StateBadge state={task.state} />
      </h1>
      {error === null ? null : <p class="error">{error}</p>}
      <dl class="facts">
        <dt>workflow</dt>
        <dd>
          {task.workflowId === undefined ? (
            "—"
          ) : (
            <a href={workflowHref(task.workflowId)}>{task.workflowId}</a>
          )}
        </dd>
        <dt>type</dt>
        <dd id="type">{task.type ?? "default"}</dd>
        <dt>deadline</dt>
        <dd>
          {time(task.deadline)}
          {task.hardDeadline ? " (hard)" : ""}
        </dd>
        <dt>attempts</dt>
        <dd id="attempts">
          {task.attempts} of {task.maxAttempts}
        </dd>
        <dt>reason</dt>
        <dd class="reason" id="reason">
          {task.reason ?? "—"}
        </dd>
        <dt>lease</dt>
        <dd>
          {task.state === "LEASED"
            ? `held by ${task.leaseOwner ?? "?"} (token ${task.token}) until ${time(task.leaseExpiresAt)}`
            : task.token > 0
              ? `last: ${task.leaseOwner ?? "?"} (token ${task.token})`
              : "never leased"}
        </dd>
        {task.retryAt === undefined ? null : (
          <>
            <dt>next attempt</dt>
            <dd>{time(task.retryAt)}</dd>
          </>
        )}
        <dt>finished</dt>
        <dd>{time(task.finishedAt)}</dd>
        <dt>on prerequisite failure</dt>
        <dd>{task.onPrerequisiteFailure}</dd>
      </dl>
      {session?.actions ? (
        <TaskActions task={task} onDone={() => setVersion((v) => v + 1)} />
      ) : (
        <p class="muted">Actions need the admin role; this console is read-only.</p>
      )}
      <h2>Prerequisites</h2>
      <TaskLinks
        items={prerequisites}
        workflowId={task.workflowId}
        more={task.prerequisites.length > prerequisites.length}
      />
      <h2>Dependents</h2>
      <TaskLinks items={dependents} workflowId={task.workflowId} more={dependentsCut} />
    </section>
  );
}

function TaskLinks({
  items,
  workflowId,
  more,
}: {
  items: readonly { id: string; state: TaskReply["task"]["state"] | null }[];
  workflowId: string | undefined;
  more: boolean;
}) {
  if (items.length === 0) return <p class="muted">none</p>;
  return (
    <ul class="links">
      {items.map((p) => (
        <li key={p.id}>
          <a href={taskHref(p.id, workflowId)}>{p.id}</a> <StateBadge state={p.state} />
        </li>
      ))}
      {more ? <li class="muted">and perhaps more (not all read)</li> : null}
    </ul>
  );
}
