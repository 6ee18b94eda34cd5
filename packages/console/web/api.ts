/**
 * The browser's side of the JSON API: typed GETs, and actions that carry the
 * session's CSRF token (read once from /api/session). An error reply becomes
 * an ApiError with the server's message, shown to the operator as text.
 */
import type { ActionName, ActionReply } from "@frontier/console";

export interface Session {
  readonly csrfHeader: string;
  readonly csrfToken: string;
  readonly role: string | null;
  readonly actions: boolean;
  readonly cluster: string;
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `HTTP ${res.status}`);
  return body as T;
}

export async function getJson<T>(path: string, params: Record<string, string | undefined> = {}): Promise<T> {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") query.set(k, v);
  const qs = query.toString();
  return answer<T>(
    await fetch(`${path}${qs === "" ? "" : `?${qs}`}`, { headers: { accept: "application/json" } }),
  );
}

let session: Promise<Session> | undefined;

export function getSession(): Promise<Session> {
  session ??= getJson<Session>("api/session").catch((err: unknown) => {
    session = undefined;
    throw err;
  });
  return session;
}

export async function postAction(
  taskId: string,
  action: ActionName,
  body: Record<string, unknown>,
): Promise<ActionReply> {
  const s = await getSession();
  const res = await fetch(`api/tasks/${encodeURIComponent(taskId)}/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json", [s.csrfHeader]: s.csrfToken },
    body: JSON.stringify(body),
  });
  return answer<ActionReply>(res);
}
