/**
 * Tasks by state, workflow and deadline range, a page at a time from the
 * server (its cursor token in the URL, so a page can be linked and
 * reloaded). Search by id opens the task's page; search by workflow filters.
 * Failed tasks show their reason and attempts in the table itself.
 */
import type { TaskPageReply } from "@frontier/console";
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api.js";
import { taskHref, time, workflowHref } from "./format.js";
import { go } from "./router.js";
import { STATES, StateBadge } from "./state-badge.js";

const LIMITS = ["50", "100", "200"];

function listHash(params: URLSearchParams, change: Record<string, string | undefined>): string {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined || v === "") next.delete(k);
    else next.set(k, v);
  }
  return `#/tasks?${next.toString()}`;
}

/** `datetime-local` text to ms, for the API's deadline range. */
function msOf(local: string): string | undefined {
  if (local === "") return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? undefined : String(ms);
}

export function TaskList({ params }: { params: URLSearchParams }) {
  const [page, setPage] = useState<TaskPageReply | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [idSearch, setIdSearch] = useState("");
  const key = params.toString();
  useEffect(() => {
    setPage(null);
    setError(null);
    getJson<TaskPageReply>("api/tasks", {
      state: params.get("state") ?? undefined,
      type: params.get("type") ?? undefined,
      workflow: params.get("workflow") ?? undefined,
      deadlineFrom: params.get("deadlineFrom") ?? undefined,
      deadlineTo: params.get("deadlineTo") ?? undefined,
      after: params.get("after") ?? undefined,
      limit: params.get("limit") ?? "50",
    }).then(setPage, (err: unknown) => setError(String(err)));
  }, [key]);
  // The tokens of the pages before this one, so "previous" walks back.
  const back = params.getAll("back");

  return (
    <section class="tasks">
      <h1>Tasks</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          go(
            listHash(new URLSearchParams(), {
              state: String(form.get("state") ?? ""),
              type: String(form.get("type") ?? "").trim(),
              workflow: String(form.get("workflow") ?? "").trim(),
              deadlineFrom: msOf(String(form.get("deadlineFrom") ?? "")),
              deadlineTo: msOf(String(form.get("deadlineTo") ?? "")),
              limit: String(form.get("limit") ?? "50"),
            }),
          );
        }}
      >
        <label>
          state
          <select name="state" value={params.get("state") ?? ""}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option value={s} key={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          type
          <input name="type" value={params.get("type") ?? ""} placeholder="any" size={10} />
        </label>
        <label>
          workflow
          <input name="workflow" value={params.get("workflow") ?? ""} placeholder="workflow id" />
        </label>
        <label>
          deadline from
          <input name="deadlineFrom" type="datetime-local" />
        </label>
        <label>
          to
          <input name="deadlineTo" type="datetime-local" />
        </label>
        <label>
          per page
          <select name="limit" value={params.get("limit") ?? "50"}>
            {LIMITS.map((l) => (
              <option value={l} key={l}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const id = idSearch.trim();
          if (id !== "") go(taskHref(id, params.get("workflow") || undefined));
        }}
      >
        <label>
          task id
          <input
            name="id"
            value={idSearch}
            onInput={(e) => setIdSearch(e.currentTarget.value)}
            placeholder="open a task by id"
          />
        </label>
        <button type="submit">Open</button>
      </form>
      {error === null ? null : <p class="error">{error}</p>}
      {page === null ? (
        error === null ? (
          <p class="muted">loading…</p>
        ) : null
      ) : (
        <>
          {page.shards.missing.map((m) => (
            <p class="error" key={m.shardId}>
              partial: shard {m.shardId} did not answer ({m.code}
              {m.detail === undefined ? "" : `: ${m.detail}`}); its tasks are not listed
            </p>
          ))}
          <table class="task-table">
            <thead>
              <tr>
                <th>id</th>
                <th>state</th>
                <th>type</th>
                <th>deadline</th>
                <th>attempts</th>
                <th>workflow</th>
                <th>reason</th>
                <th>finished</th>
              </tr>
            </thead>
            <tbody>
              {page.tasks.length === 0 ? (
                <tr>
                  <td colSpan={8} class="muted">
                    no tasks
                  </td>
                </tr>
              ) : null}
              {page.tasks.map((t) => (
                <tr key={`${t.workflowId ?? ""}/${t.id}`} data-task-id={t.id} data-state={t.state}>
                  <td>
                    <a href={taskHref(t.id, t.workflowId)}>{t.id}</a>
                  </td>
                  <td>
                    <StateBadge state={t.state} />
                  </td>
                  <td class={t.type === undefined ? "muted" : undefined}>{t.type ?? "default"}</td>
                  <td>{time(t.deadline)}</td>
                  <td>
                    {t.attempts}/{t.maxAttempts}
                  </td>
                  <td>
                    {t.workflowId === undefined ? (
                      "—"
                    ) : (
                      <a href={workflowHref(t.workflowId)}>{t.workflowId}</a>
                    )}
                  </td>
                  <td class="reason">{t.reason ?? ""}</td>
                  <td>{t.finishedAt === undefined ? "" : time(t.finishedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="pager">
            <button
              type="button"
              disabled={params.get("after") === null}
              onClick={() => {
                const prev = new URLSearchParams(params);
                prev.delete("back");
                for (const b of back.slice(0, -1)) prev.append("back", b);
                const before = back[back.length - 1];
                if (before === undefined || before === "") prev.delete("after");
                else prev.set("after", before);
                go(`#/tasks?${prev.toString()}`);
              }}
            >
              ← previous
            </button>
            <button
              type="button"
              disabled={page.next === null}
              onClick={() => {
                const next = new URLSearchParams(params);
                next.append("back", params.get("after") ?? "");
                next.set("after", page.next!);
                go(`#/tasks?${next.toString()}`);
              }}
            >
              next →
            </button>
          </div>
        </>
      )}
    </section>
  );
}
