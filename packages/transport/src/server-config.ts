/**
 * The NATS server side of the roles: an `authorization` block with one
 * nkey user per principal and the permissions roles.ts gives it. A server
 * started with it (`nats-server -c auth.conf`, or `include auth.conf` from
 * a larger configuration) holds every Frontier process to its role.
 *
 * Only public keys go in; the file is not a secret. Strings are written as
 * JSON strings, which the NATS configuration format reads as quoted
 * strings: `$KV…` and `$JS…` subjects stay literal, not variables.
 */
import { type Permissions, type Principal, permissionsOf, principalName } from "./roles.js";

export interface NkeyUser {
  /** The user's public nkey (`U…`). */
  readonly publicKey: string;
  readonly principal: Principal;
}

/** The `authorization { users = [...] }` block for `cluster`'s principals. */
export function authorizationConfig(cluster: string, users: readonly NkeyUser[]): string {
  if (users.length === 0) throw new Error("an authorization block needs at least one user");
  const lines = users.map((user) => {
    if (!/^U[A-Z2-7]{55}$/.test(user.publicKey)) {
      throw new Error(`not a public user nkey: ${JSON.stringify(user.publicKey.slice(0, 8))}…`);
    }
    const name = principalName(user.principal);
    return `    # ${name}\n    { nkey: ${JSON.stringify(user.publicKey)}, permissions: ${render(permissionsOf(cluster, user.principal))} }`;
  });
  return [
    `# Frontier cluster ${JSON.stringify(cluster)}: one nkey user per role (docs/security.md).`,
    "# Generated; public keys only. The seeds are the .nk files of the credentials directory.",
    "authorization {",
    "  users = [",
    lines.join(",\n"),
    "  ]",
    "}",
    "",
  ].join("\n");
}

function render(p: Permissions): string {
  const list = (subjects: readonly string[]) => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`;
  return `{ publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} }${
    p.allowResponses ? ", allow_responses: true" : ""
  } }`;
}
