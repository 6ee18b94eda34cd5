/**
 * The console's HTTP server (node:http): the front end's static files and
 * the JSON API under /api, on one port, bound to loopback unless told
 * otherwise. Routing and HTTP live here; what each route does is in api.ts
 * and actions.ts, who may call it in request-guard.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FrontierClient } from "@frontier/client";
import type { Logger } from "pino";
import { ActionRunner, actionBody, isAction } from "./actions.js";
import { ConsoleApi, NotFoundError } from "./api.js";
import { DEFAULT_CONSOLE_HOST } from "./defaults.js";
import { InputError } from "./input-error.js";
import { requiredId } from "./query-input.js";
import { CSRF_HEADER, GuardError, RequestGuard } from "./request-guard.js";
import { DEFAULT_STATIC_DIR, StaticFiles } from "./static-files.js";

/** An action's body is a few fields; anything longer is refused unread. */
const MAX_BODY_BYTES = 16 * 1024;

/**
 * The pages load only their own scripts and styles; nothing inline, no
 * frames, no other origin — so text that slipped into markup could not run.
 */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
} as const;

export interface ConsoleOptions {
  /** The SDK client the console calls the cluster with (the caller connects and closes it). */
  readonly client: FrontierClient;
  /** The role the client connects as, shown in the console; null when not known (no credentials directory). */
  readonly role: string | null;
  /** Whether retry / cancel / deadline are offered: only with the admin role. */
  readonly actions: boolean;
  readonly port: number;
  /** Default DEFAULT_CONSOLE_HOST (loopback). */
  readonly host?: string;
  /** When `port` is taken, serve on any free port instead of failing (for a default port). */
  readonly anyPortIfTaken?: boolean;
  /** Receives one audit line per action, at info. */
  readonly logger: Logger;
  /** The built front end; default the package's dist/web. */
  readonly staticDir?: string;
}

export interface ConsoleServer {
  /** `http://host:port/`. */
  readonly url: string;
  readonly port: number;
  /** The default port was taken and the console serves on another. */
  readonly movedFromTakenPort: boolean;
  /** Why the console has no pages (its front end is not built; the API still answers), or null. */
  readonly frontEndMissing: string | null;
  close(): Promise<void>;
}

export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const host = options.host ?? DEFAULT_CONSOLE_HOST;
  const files = StaticFiles.load(options.staticDir ?? DEFAULT_STATIC_DIR);
  const api = new ConsoleApi(options.client);
  const runner = new ActionRunner(options.client, options.logger);
  const guard = new RequestGuard(host);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => answerError(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    guard.checkHost(req);
    const url = new URL(req.url ?? "/", "http://console.invalid");
    const path = url.pathname;
    if (!path.startsWith("/api/")) {
      if (req.method !== "GET" && req.method !== "HEAD") return answerJson(res, 405, { error: "GET only" });
      const file = files.get(path);
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": file.type,
        "cache-control": file.immutable ? "public, max-age=31536000, immutable" : "no-cache",
      });
      res.end(req.method === "HEAD" ? undefined : file.body);
      return;
    }
    const parts = path.slice("/api/".length).split("/").map(segment);
    if (req.method === "POST") {
      const [resource, id, action] = parts;
      if (parts.length !== 3 || resource !== "tasks" || action === undefined || !isAction(action)) {
        return answerJson(res, 404, { error: "no such action" });
      }
      guard.checkAction(req);
      if (!options.actions) {
        return answerJson(res, 403, {
          error: `the console connects as ${options.role ?? "a role it was not told"}; actions need the admin role`,
        });
      }
      const body = actionBody(action, await readJson(req));
      const reply = await runner.run(requiredId("task id", id), body, {
        remote: req.socket.remoteAddress ?? "",
        userAgent: req.headers["user-agent"] ?? "",
      });
      return answerJson(res, 200, reply);
    }
    if (req.method !== "GET") return answerJson(res, 405, { error: "GET, or POST for an action" });
    const [resource, id, extra] = parts;
    if (extra !== undefined) return answerJson(res, 404, { error: "no such resource" });
    switch (resource) {
      case "session":
        if (id !== undefined) break;
        return answerJson(res, 200, {
          csrfHeader: CSRF_HEADER,
          csrfToken: guard.csrfToken,
          role: options.role,
          actions: options.actions,
          cluster: options.client.cluster,
        });
      case "stats":
        if (id !== undefined) break;
        return answerJson(res, 200, await api.stats());
      case "tasks":
        return answerJson(
          res,
          200,
          id === undefined
            ? await api.tasks(url.searchParams)
            : await api.task(requiredId("task id", id), url.searchParams),
        );
      case "workflows":
        if (id === undefined) break;
        return answerJson(res, 200, await api.workflow(requiredId("workflow id", id), url.searchParams));
    }
    return answerJson(res, 404, { error: "no such resource" });
  }

  const movedFromTakenPort = await listen(server, options.port, host, options.anyPortIfTaken ?? false);
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    movedFromTakenPort,
    frontEndMissing: files.missing,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}

/** A path segment, decoded; a malformed escape is the caller's error. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new InputError(`malformed path segment ${JSON.stringify(raw)}`);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new InputError(`the body is longer than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return text === "" ? {} : JSON.parse(text);
  } catch {
    throw new InputError("the body is not JSON");
  }
}

function answerJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
  });
  res.end(JSON.stringify(body));
}

/** HTTP status of an SDK or engine error code: the caller's mistake, a conflict, or the cluster's trouble. */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  UNKNOWN_TASK: 404,
  INVALID_STATE: 409,
  INVALID_ARGUMENT: 400,
  VALIDATION_FAILED: 400,
  BAD_MESSAGE: 400,
  PERMISSION_DENIED: 403,
};

function answerError(res: ServerResponse, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  if (err instanceof GuardError) answerJson(res, err.status, { error: message });
  else if (err instanceof InputError) answerJson(res, 400, { error: message });
  else if (err instanceof NotFoundError) answerJson(res, 404, { error: message, code: "UNKNOWN_TASK" });
  // A code from the SDK or the engine; an unknown one is the cluster's trouble (timeouts, no responders).
  else if (typeof code === "string") answerJson(res, STATUS_OF_CODE[code] ?? 503, { error: message, code });
  else answerJson(res, 500, { error: message });
}

/** Listen on `port`; when it is taken and `anyIfTaken`, on any free port. Resolves whether it moved. */
async function listen(server: Server, port: number, host: string, anyIfTaken: boolean): Promise<boolean> {
  try {
    await listenOnce(server, port, host);
    return false;
  } catch (err) {
    if (!anyIfTaken || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    await listenOnce(server, 0, host);
    return true;
  }
}

function listenOnce(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolveListen, reject) => {
    const fail = (err: Error) => {
      server.off("listening", done);
      reject(err);
    };
    const done = () => {
      server.off("error", fail);
      resolveListen();
    };
    server.once("error", fail);
    server.once("listening", done);
    server.listen(port, host);
  });
}
