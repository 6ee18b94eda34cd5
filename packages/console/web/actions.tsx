/**
 * The operator's buttons on a task: retry (an ended task that did not
 * complete), cancel and change deadline (a task not yet ended). Each asks
 * for a confirmation first, then posts the action and shows what the
 * cluster answered; `onDone` reloads the page's data.
 */
import type { ActionName } from "@frontier/console";
import type { TaskView } from "@frontier/core";
import { useState } from "preact/hooks";
import { postAction } from "./api.js";
import { localInput } from "./format.js";
import { ENDED } from "./state-badge.js";

const LABELS: Readonly<Record<ActionName, string>> = {
  retry: "Retry",
  cancel: "Cancel",
  deadline: "Change deadline",
};

export function TaskActions({ task, onDone }: { task: TaskView; onDone: () => void }) {
  const [pending, setPending] = useState<ActionName | null>(null);
  const [deadline, setDeadline] = useState(() => localInput(task.deadline));
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const ended = ENDED.has(task.state);
  const offered: ActionName[] = ended
    ? task.state === "COMPLETED"
      ? []
      : ["retry"]
    : ["cancel", "deadline"];
  if (offered.length === 0) return null;

  const confirm = async () => {
    if (pending === null) return;
    setBusy(true);
    const routed = task.workflowId === undefined ? {} : { workflowId: task.workflowId };
    const body =
      pending === "deadline" ? { ...routed, deadline: new Date(deadline).getTime() } : { ...routed };
    try {
      const reply = await postAction(task.id, pending, body);
      setResult({
        ok: true,
        text: `${LABELS[pending]}: done${reply.state === undefined ? "" : ` (now ${reply.state})`}`,
      });
      setPending(null);
      onDone();
    } catch (err) {
      setResult({
        ok: false,
        text: `${LABELS[pending]} refused: ${err instanceof Error ? err.message : String(err)}`,
      });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="actions">
      {offered.map((a) => (
        <button type="button" key={a} data-action={a} disabled={busy} onClick={() => setPending(a)}>
          {LABELS[a]}
        </button>
      ))}
      {pending === null ? null : (
        <div class="confirm" role="dialog" aria-label="confirm">
          <p>
            {LABELS[pending]} task <code>{task.id}</code>
            {pending === "cancel" ? " (and the tasks that depend on it)" : ""}?
          </p>
          {pending === "deadline" ? (
            <label>
              new deadline
              <input
                type="datetime-local"
                value={deadline}
                onInput={(e) => setDeadline(e.currentTarget.value)}
              />
            </label>
          ) : null}
          <button type="button" class="danger" data-confirm={pending} disabled={busy} onClick={confirm}>
            Confirm {LABELS[pending].toLowerCase()}
          </button>
          <button type="button" disabled={busy} onClick={() => setPending(null)}>
            Keep as is
          </button>
        </div>
      )}
      {result === null ? null : <p class={result.ok ? "ok" : "error"}>{result.text}</p>}
    </div>
  );
}
