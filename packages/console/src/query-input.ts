/**
 * The API's inputs, read from query strings and JSON bodies into the SDK's
 * types. Every check happens here, before the cluster is asked: a bad value
 * is an InputError that names the parameter, and nothing is sent.
 */
import type { TaskListQuery } from "@frontier/client";
import { isTaskType, TaskState, type TaskState as TaskStateName } from "@frontier/core";
import { MAX_DEADLINE, MAX_LEASE_TYPES } from "@frontier/protocol";
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from "./defaults.js";
import { InputError } from "./input-error.js";
import { cursorOfToken } from "./page-token.js";

const STATES = Object.values(TaskState) as readonly string[];
/** Task and workflow ids are 1..256 characters (the engine's rule). */
const MAX_ID_LENGTH = 256;

export function idParam(name: string, value: string | null | undefined): string | undefined {
  if (value === null || value === undefined || value === "") return undefined;
  if (value.length > MAX_ID_LENGTH) throw new InputError(`${name} must be 1..${MAX_ID_LENGTH} characters`);
  return value;
}

export function requiredId(name: string, value: string | undefined): string {
  const id = idParam(name, value);
  if (id === undefined) throw new InputError(`${name} is required`);
  return id;
}

/** `1..MAX_PAGE_LIMIT`, DEFAULT_PAGE_LIMIT when absent. */
export function limitParam(value: string | null): number {
  if (value === null || value === "") return DEFAULT_PAGE_LIMIT;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_PAGE_LIMIT) {
    throw new InputError(`limit must be an integer in 1..${MAX_PAGE_LIMIT}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * A deadline: milliseconds since the epoch, or an ISO 8601 date
 * (`2030-01-01T00:00:00Z`) as a person types one. Bounded by the protocol's
 * MAX_DEADLINE so the cluster never refuses what passed here.
 */
export function deadlineValue(name: string, value: unknown): number {
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && /^-?\d+$/.test(value.trim())) n = Number(value);
  else if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value.trim())) n = Date.parse(value);
  else throw new InputError(`${name} must be milliseconds since the epoch or an ISO 8601 date`);
  if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_DEADLINE) {
    throw new InputError(`${name} must be a whole number of milliseconds within ±${MAX_DEADLINE}`);
  }
  return n;
}

function statesParam(value: string | null): TaskStateName[] | undefined {
  if (value === null || value === "") return undefined;
  const names = value.split(",").map((s) => s.trim().toUpperCase());
  for (const name of names) {
    if (!STATES.includes(name)) {
      throw new InputError(`unknown state ${JSON.stringify(name)} (one of ${STATES.join(", ")})`);
    }
  }
  if (new Set(names).size !== names.length) throw new InputError("a state appears twice in state");
  return names as TaskStateName[];
}

/** Task types, comma-separated (MAX_LEASE_TYPES at most, each TASK_TYPE_PATTERN). */
function typesParam(value: string | null): string[] | undefined {
  if (value === null || value === "") return undefined;
  const names = value.split(",").map((s) => s.trim());
  for (const name of names) {
    if (!isTaskType(name))
      throw new InputError(`type ${JSON.stringify(name)}: 1..64 characters of A-Z a-z 0-9 _ . -`);
  }
  if (new Set(names).size !== names.length) throw new InputError("a type appears twice in type");
  if (names.length > MAX_LEASE_TYPES) throw new InputError(`at most ${MAX_LEASE_TYPES} types`);
  return names;
}

/** `/api/tasks?state=&type=&workflow=&deadlineFrom=&deadlineTo=&after=&limit=` as the SDK's query. */
export function taskListQuery(params: URLSearchParams): TaskListQuery {
  const states = statesParam(params.get("state"));
  const types = typesParam(params.get("type"));
  const workflowId = idParam("workflow", params.get("workflow"));
  const from = params.get("deadlineFrom");
  const to = params.get("deadlineTo");
  const deadlineFrom = from === null || from === "" ? undefined : deadlineValue("deadlineFrom", from);
  const deadlineTo = to === null || to === "" ? undefined : deadlineValue("deadlineTo", to);
  if (deadlineFrom !== undefined && deadlineTo !== undefined && deadlineFrom >= deadlineTo) {
    throw new InputError("deadlineFrom must be before deadlineTo");
  }
  const token = params.get("after");
  return {
    limit: limitParam(params.get("limit")),
    ...(states === undefined ? {} : { states }),
    ...(types === undefined ? {} : { types }),
    ...(workflowId === undefined ? {} : { workflowId }),
    ...(deadlineFrom === undefined ? {} : { deadlineFrom }),
    ...(deadlineTo === undefined ? {} : { deadlineTo }),
    ...(token === null || token === "" ? {} : { after: cursorOfToken("tasks", token) }),
  };
}
