/**
 * What a request must show before the console answers it.
 *
 * - Host: a console bound to loopback answers only requests addressed to a
 *   loopback name, so a page on another site cannot reach it through DNS
 *   rebinding (its name resolving to 127.0.0.1 still sends its own Host).
 * - Actions (POST): from the console's own origin — an `Origin` header equal
 *   to `http://<Host>`, and no `Sec-Fetch-Site` other than same-origin — with
 *   the session's CSRF token in the `x-frontier-csrf` header and a JSON body.
 *   The token is read from `GET /api/session`, which another origin cannot
 *   read (the console sends no CORS headers), so a forged form or fetch from
 *   elsewhere never carries it.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

export const CSRF_HEADER = "x-frontier-csrf";

const LOOPBACK_BINDS = new Set(["127.0.0.1", "::1", "localhost"]);
const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** A refused request: its HTTP status and why (shown to the caller). */
export class GuardError extends Error {
  override readonly name = "GuardError";
  constructor(
    readonly status: 403 | 415 | 421,
    message: string,
  ) {
    super(message);
  }
}

export class RequestGuard {
  /** The session's CSRF token: random per console process. */
  readonly csrfToken = randomBytes(32).toString("base64url");

  constructor(private readonly bindHost: string) {}

  /** Every request: the Host header names this console. */
  checkHost(req: IncomingMessage): void {
    if (!LOOPBACK_BINDS.has(this.bindHost)) return;
    const host = req.headers.host ?? "";
    const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
    if (!LOOPBACK_NAMES.has(name.toLowerCase())) {
      throw new GuardError(421, `this console answers only on loopback names, not ${JSON.stringify(host)}`);
    }
  }

  /** A state-changing request: same origin, the CSRF token, a JSON body. */
  checkAction(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined || origin !== `http://${req.headers.host ?? ""}`) {
      throw new GuardError(403, "actions are taken only from the console's own pages (Origin mismatch)");
    }
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin") {
      throw new GuardError(
        403,
        `actions are taken only from the console's own pages (Sec-Fetch-Site ${site})`,
      );
    }
    const token = req.headers[CSRF_HEADER];
    if (typeof token !== "string" || !sameSecret(token, this.csrfToken)) {
      throw new GuardError(403, `missing or wrong ${CSRF_HEADER} header: reload the console`);
    }
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      throw new GuardError(415, "actions take a JSON body (Content-Type: application/json)");
    }
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
