/**
 * The cursor of a page as the browser carries it: an opaque token, base64url
 * of `{ v: 1, kind, after }` where `after` is the protocol's ListCursor. The
 * kind keeps a task-list token from being replayed as a workflow's and back.
 * Read back through the protocol's own shape check (encodeRequest), never
 * taken apart by hand, so a token the cluster would refuse is refused here,
 * with a 400, before anything is sent.
 */
import { encodeRequest, type ListCursor } from "@frontier/protocol";
import { InputError } from "./input-error.js";

export type PageKind = "tasks" | "workflow";

const VERSION = 1;
/** A ListCursor's id is ≤ 256 characters; a token far longer than one can hold is refused unread. */
const MAX_TOKEN_LENGTH = 2_048;

export function pageToken(kind: PageKind, after: ListCursor): string {
  return Buffer.from(JSON.stringify({ v: VERSION, kind, after })).toString("base64url");
}

export function cursorOfToken(kind: PageKind, token: string): ListCursor {
  const refuse = (why: string) => new InputError(`"after" is not a page token of this list: ${why}`);
  if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) throw refuse("not base64url");
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw refuse("not JSON");
  }
  if (typeof value !== "object" || value === null) throw refuse("not an object");
  const { v, kind: tokenKind, after } = value as Record<string, unknown>;
  if (v !== VERSION) throw refuse(`version ${JSON.stringify(v)}`);
  if (tokenKind !== kind) throw refuse(`a ${JSON.stringify(tokenKind)} token`);
  try {
    encodeRequest({ op: "listTasks", limit: 1, after: after as ListCursor });
  } catch (err) {
    throw refuse(err instanceof Error ? err.message : String(err));
  }
  return after as ListCursor;
}
