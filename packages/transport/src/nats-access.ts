/**
 * How a Frontier process reaches NATS: the servers, and the credentials and
 * TLS settings the server asks for, as nats.js connection options.
 *
 * One shape (`NatsAccess`) for every process and command: the SDK's
 * `connect`, shard actors (threads and processes), coordinators and the CLI
 * build their NATS connection from it, so each supports the same
 * credentials:
 *
 *   - user and password, or a token (also from the URL: `nats://user:pw@host`,
 *     `nats://token@host`; the URL is passed on without them);
 *   - an nkey seed file, or a creds file (a user JWT and its seed, as `nsc`
 *     writes them);
 *   - TLS: a CA file to trust, a client certificate and key for mutual TLS,
 *     or only `tls: {}` to require TLS;
 *   - `inboxPrefix`: where replies come back (`_INBOX` by default), so
 *     permissions can give each role its own inboxes.
 *
 * Secrets are read from files where they sit in files (nkey seed, creds),
 * when the connection is made; nothing here logs or repeats them, and URLs
 * are shown only through `redactUrl`.
 */
import { readFileSync } from "node:fs";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { credsAuthenticator, nkeyAuthenticator } from "@nats-io/transport-node";

/** TLS toward NATS: files of PEM certificates and keys. `{}` alone requires TLS with the system's CAs. */
export interface NatsTls {
  /** Certificates of the CAs to trust for the server's certificate. */
  readonly caFile?: string;
  /** This process's certificate, for servers that verify clients (mutual TLS); with `keyFile`. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** What a process needs to reach NATS, besides the servers. All optional: none for an open server. */
export interface NatsAccess {
  readonly user?: string;
  /** With `user`. */
  readonly pass?: string;
  readonly token?: string;
  /** A file holding an nkey seed (`SU…`). */
  readonly nkeySeedFile?: string;
  /** A creds file: a user JWT and its nkey seed. */
  readonly credsFile?: string;
  readonly tls?: NatsTls;
  /** Prefix of reply subjects (default `_INBOX`). */
  readonly inboxPrefix?: string;
}

/** A NatsAccess that names something impossible (a password without a user, two kinds of credentials, an unreadable file). */
export class NatsAccessError extends Error {
  override readonly name = "NatsAccessError";
}

/**
 * nats.js connection options for `servers` (one URL, several joined by
 * commas, or a list) with `access`: credentials from the URLs are taken
 * out of them and used as `user`/`pass` or `token`, unless `access` sets
 * its own. Reads the nkey seed or creds file now. Throws NatsAccessError for
 * settings that contradict each other or a file it cannot read (its path
 * in the message, never its content).
 */
export function natsConnectionOptions(
  servers: string | readonly string[],
  access: NatsAccess = {},
): Pick<
  NodeConnectionOptions,
  "servers" | "user" | "pass" | "token" | "authenticator" | "tls" | "inboxPrefix"
> {
  const list = (typeof servers === "string" ? servers.split(",") : [...servers])
    .map((s) => s.trim())
    .filter((s) => s !== "");
  let fromUrl: { user?: string; pass?: string; token?: string } = {};
  const plain = list.map((server) => {
    const { url, user, pass, token } = splitCredentials(server);
    if (user !== undefined || token !== undefined) {
      const found =
        token !== undefined ? { token } : { user: user!, ...(pass === undefined ? {} : { pass }) };
      if (Object.keys(fromUrl).length > 0 && JSON.stringify(fromUrl) !== JSON.stringify(found)) {
        throw new NatsAccessError(
          "the NATS URLs carry different credentials; give one set (or none in the URLs)",
        );
      }
      fromUrl = found;
    }
    return url;
  });
  const user = access.user ?? (access.token === undefined ? fromUrl.user : undefined);
  const pass =
    access.pass ?? (access.user === undefined && access.token === undefined ? fromUrl.pass : undefined);
  const token = access.token ?? (access.user === undefined ? fromUrl.token : undefined);
  if (pass !== undefined && user === undefined) throw new NatsAccessError("a NATS password needs a user");
  const kinds = [
    user !== undefined ? "user and password" : undefined,
    token !== undefined ? "token" : undefined,
    access.nkeySeedFile !== undefined ? "nkey seed" : undefined,
    access.credsFile !== undefined ? "creds file" : undefined,
  ].filter((k) => k !== undefined);
  if (kinds.length > 1) {
    throw new NatsAccessError(`give NATS one kind of credentials, not ${kinds.join(" and ")}`);
  }
  const tls = access.tls;
  if (tls !== undefined && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new NatsAccessError("a TLS client certificate needs its key, and a key its certificate");
  }
  for (const [what, path] of [
    ["TLS CA file", tls?.caFile],
    ["TLS certificate file", tls?.certFile],
    ["TLS key file", tls?.keyFile],
  ] as const) {
    if (path !== undefined) readable(what, path);
  }
  return {
    servers: plain,
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
    ...(token === undefined ? {} : { token }),
    ...(access.nkeySeedFile === undefined
      ? {}
      : { authenticator: nkeyAuthenticator(readable("nkey seed file", access.nkeySeedFile, true)) }),
    ...(access.credsFile === undefined
      ? {}
      : { authenticator: credsAuthenticator(readable("creds file", access.credsFile)) }),
    ...(tls === undefined
      ? {}
      : {
          tls: {
            ...(tls.caFile === undefined ? {} : { caFile: tls.caFile }),
            ...(tls.certFile === undefined ? {} : { certFile: tls.certFile }),
            ...(tls.keyFile === undefined ? {} : { keyFile: tls.keyFile }),
          },
        }),
    ...(access.inboxPrefix === undefined ? {} : { inboxPrefix: access.inboxPrefix }),
  };
}

/** A server URL without its credentials, and the credentials: `user:pass@` is a user and password, a lone `name@` a token. */
function splitCredentials(server: string): { url: string; user?: string; pass?: string; token?: string } {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)?([^/@\s]*)@(.*)$/i.exec(server);
  if (match === null) return { url: server };
  const [, scheme = "", userinfo = "", rest = ""] = match;
  const url = `${scheme}${rest}`;
  const colon = userinfo.indexOf(":");
  if (colon === -1) return userinfo === "" ? { url } : { url, token: decodeURIComponent(userinfo) };
  return {
    url,
    user: decodeURIComponent(userinfo.slice(0, colon)),
    pass: decodeURIComponent(userinfo.slice(colon + 1)),
  };
}

/** The bytes of a file a setting names, or NatsAccessError naming the setting and the path (not the content). */
function readable(what: string, path: string, trim = false): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new NatsAccessError(`cannot read the ${what} ${JSON.stringify(path)} (${code})`);
  }
  return trim ? new TextEncoder().encode(bytes.toString("utf8").trim()) : bytes;
}
