/** The console's shell: header, navigation, and the page the URL's hash names. */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getSession, type Session } from "./api.js";
import { Overview } from "./overview.js";
import { useRoute } from "./router.js";
import { TaskList } from "./task-list.js";
import { TaskPage } from "./task-page.js";
import { WorkflowPage } from "./workflow-page.js";

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    getSession().then(setSession, (err: unknown) => setError(String(err)));
  }, []);
  const [page, id] = route.parts;
  let body = <Overview />;
  if (page === "tasks") body = <TaskList params={route.params} />;
  else if (page === "task" && id !== undefined)
    body = <TaskPage id={id} workflowId={route.params.get("workflow") ?? undefined} session={session} />;
  else if (page === "workflow" && id !== undefined) body = <WorkflowPage id={id} />;
  return (
    <>
      <header>
        <a class="brand" href="#/">
          Frontier
        </a>
        <nav>
          <a href="#/" class={page === undefined ? "active" : ""}>
            Overview
          </a>
          <a href="#/tasks?state=FAILED" class={page === "tasks" ? "active" : ""}>
            Tasks
          </a>
        </nav>
        <span class="who">
          {session === null
            ? (error ?? "")
            : `cluster ${session.cluster} · ${session.role ?? "role not known"}${session.actions ? "" : " · read-only"}`}
        </span>
      </header>
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
