/**
 * A process's HTTP endpoint for operators, on one port:
 *
 *   GET /metrics  the Prometheus text exposition (`render()`); 500 when it fails (logged)
 *   GET /healthz  200 while the process can answer at all (liveness)
 *   GET /readyz   200 when every readiness check passes, else 503; the body
 *                 lists each check as `ok <name>` or `not ready <name>: <why>`
 *
 * HEAD is answered like GET without a body; another method is 405, another
 * path 404. A check is a function returning null when ready, else why not:
 * cheap (a connection's status, a state machine's mode; at most a round trip
 * to a worker thread), as a probe may ask every second. A check that throws
 * or rejects counts as not ready.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { METRICS_CONTENT_TYPE } from "./render.js";

/** Null when the part is ready, else why it is not. */
export type ReadinessCheck = () => string | null | Promise<string | null>;

/** Where the endpoint reports a failed render; pino's `error(obj, msg)` fits. */
export interface EndpointLogger {
  error(details: object, message: string): void;
}

export interface MetricsEndpointOptions {
  readonly port: number;
  readonly host: string;
  /** The exposition for one scrape. */
  readonly render: () => Promise<string>;
  /** Readiness checks by name; none: ready as soon as it listens. */
  readonly checks?: () => Readonly<Record<string, ReadinessCheck>>;
  /**
   * When `port` is taken, listen on any free port instead of failing (the
   * caller did not choose the port: a default one, and a second process of
   * the same kind on the host). Default false.
   */
  readonly anyPortIfTaken?: boolean;
  readonly logger?: EndpointLogger;
}

export interface MetricsEndpoint {
  /** `http://<host>:<port>/metrics`. */
  readonly url: string;
  readonly port: number;
  /** True when `port` was taken and another one was picked (anyPortIfTaken). */
  readonly movedFromTakenPort: boolean;
  close(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";

/** Starts listening; rejects when it cannot (the port taken, an address not of this host). */
export async function startMetricsEndpoint(options: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const server = createServer((req, res) => answer(req, res, options));
  let moved = false;
  try {
    await listen(server, options.port, options.host);
  } catch (error) {
    const taken = (error as NodeJS.ErrnoException).code === "EADDRINUSE";
    if (!(taken && options.anyPortIfTaken === true && options.port !== 0)) throw error;
    await listen(server, 0, options.host);
    moved = true;
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}/metrics`,
    port: address.port,
    movedFromTakenPort: moved,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => {
      server.off("listening", done);
      reject(error);
    };
    const done = () => {
      server.off("error", fail);
      resolve();
    };
    server.once("error", fail);
    server.once("listening", done);
    server.listen(port, host);
  });
}

function answer(req: IncomingMessage, res: ServerResponse, options: MetricsEndpointOptions): void {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== "/metrics" && path !== "/healthz" && path !== "/readyz") {
    res.writeHead(404, { "content-type": TEXT }).end("not found: try /metrics, /healthz or /readyz\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": TEXT }).end();
    return;
  }
  const send = (status: number, type: string, body: string) => {
    res.writeHead(status, { "content-type": type });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  if (path === "/healthz") {
    send(200, TEXT, "ok\n");
    return;
  }
  if (path === "/readyz") {
    void readiness(options).then(({ ready, body }) => send(ready ? 200 : 503, TEXT, body));
    return;
  }
  options.render().then(
    (text) => send(200, METRICS_CONTENT_TYPE, text),
    (err: unknown) => {
      options.logger?.error({ err }, "metrics: render failed");
      send(500, TEXT, "metrics unavailable\n");
    },
  );
}

async function readiness(options: MetricsEndpointOptions): Promise<{ ready: boolean; body: string }> {
  let checks: [string, ReadinessCheck][];
  try {
    checks = Object.entries(options.checks?.() ?? {});
  } catch (error) {
    checks = [["checks", () => Promise.reject(error)]];
  }
  const answers = await Promise.all(
    checks.map(async ([name, check]) => {
      try {
        return [name, await check()] as const;
      } catch (error) {
        return [name, `check failed: ${error instanceof Error ? error.message : String(error)}`] as const;
      }
    }),
  );
  const lines: string[] = [];
  let ready = true;
  for (const [name, why] of answers) {
    if (why === null) lines.push(`ok ${name}`);
    else {
      ready = false;
      lines.push(`not ready ${name}: ${why}`);
    }
  }
  return { ready, body: `${ready ? "ready" : "not ready"}\n${lines.join("\n")}${lines.length ? "\n" : ""}` };
}
