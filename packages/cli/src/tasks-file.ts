/**
 * Reading tasks for `frontier submit`: a JSON array, or JSON lines (one task
 * per line; blank lines skipped). Errors name the line (or array index).
 *
 * A deadline may be written as a number (ms since the epoch, what the wire
 * carries), an ISO-8601 date ("2030-01-01T09:00:00Z"), or relative to now
 * ("+90s", "+15m", "+2h", "+1d"); so may a delayed start, `notBefore`. The
 * file is converted before it is sent.
 * Nothing is sent unless every task is good.
 */
import { usageError } from "./errors.js";

export interface SourcedTask {
  /** The task as read, deadline and notBefore converted. Its shape is the wire's to check. */
  readonly task: Record<string, unknown>;
  /** "tasks.jsonl:3" or "tasks.json[2]": where the task came from, for errors. */
  readonly where: string;
}

const RELATIVE = /^\+(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Problems named in full in the one line `submit` fails with; the rest are counted. */
export const PROBLEMS_SHOWN = 20;

/**
 * The tasks in `text`, or a usage error naming every bad one (up to
 * PROBLEMS_SHOWN, then how many more), so one run shows what to fix.
 * `check` is the wire's verdict on a task that parsed (a message, or null):
 * its problems are reported with the others.
 */
export function parseTasks(
  text: string,
  name: string,
  now: number = Date.now(),
  check: (task: Record<string, unknown>) => string | null = () => null,
): SourcedTask[] {
  const trimmed = text.trim();
  if (trimmed === "") throw usageError(`submit: no tasks in ${name}`);
  const problems: string[] = [];
  let items: { value: unknown; where: string }[];
  if (trimmed.startsWith("[")) {
    let array: unknown;
    try {
      array = JSON.parse(trimmed);
    } catch (err) {
      throw usageError(`submit: ${name}: not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(array)) throw usageError(`submit: ${name}: expected a JSON array of tasks`);
    items = array.map((value, i) => ({ value, where: `${name}[${i}]` }));
  } else {
    items = jsonLines(text, name, problems);
  }
  if (items.length === 0 && problems.length === 0) throw usageError(`submit: no tasks in ${name}`);
  const tasks: SourcedTask[] = [];
  for (const { value, where } of items) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push(`${where}: a task must be a JSON object, got ${describe(value)}`);
      continue;
    }
    const task = { ...(value as Record<string, unknown>) };
    try {
      for (const field of TIME_FIELDS)
        if (field in task) task[field] = deadlineOf(task[field], where, now, field);
    } catch (err) {
      problems.push((err as Error).message.replace(/^submit: /, ""));
      continue;
    }
    const problem = check(task);
    if (problem !== null) problems.push(`${where}: ${problem}`);
    else tasks.push({ task, where });
  }
  if (problems.length === 1) throw usageError(`submit: ${problems[0]}`);
  if (problems.length > 1) {
    const more = problems.length - PROBLEMS_SHOWN;
    throw usageError(
      `submit: ${problems.length} bad tasks in ${name}, nothing sent: ${problems.slice(0, PROBLEMS_SHOWN).join("; ")}${more > 0 ? `; and ${more} more` : ""}`,
    );
  }
  return tasks;
}

/** The lines of `text` as JSON values; a line that is not JSON goes to `problems`. */
function jsonLines(text: string, name: string, problems: string[]): { value: unknown; where: string }[] {
  // A single object pretty-printed over several lines is one task.
  const trimmed = text.trim();
  if (trimmed.startsWith("{") && trimmed.includes("\n")) {
    try {
      return [{ value: JSON.parse(trimmed), where: name }];
    } catch {
      // Not one object: read it as JSON lines below.
    }
  }
  const items: { value: unknown; where: string }[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${name}:${i + 1}`;
    try {
      items.push({ value: JSON.parse(line), where });
    } catch (err) {
      problems.push(`${where}: not valid JSON: ${(err as Error).message}`);
    }
  });
  return items;
}

/** The fields of a task that are times, written as deadlines are. */
const TIME_FIELDS = ["deadline", "notBefore"] as const;

/** A deadline (or other time `field`) as ms since the epoch; strings that are not dates are refused. */
export function deadlineOf(value: unknown, where: string, now: number, field = "deadline"): unknown {
  if (typeof value !== "string") return value;
  const rel = RELATIVE.exec(value.trim());
  if (rel !== null) return Math.round(now + Number(rel[1]) * (UNIT_MS[rel[2] ?? "ms"] ?? 1));
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  throw usageError(
    `submit: ${where}: ${field} ${JSON.stringify(value)} is not a number, an ISO date, or +N{ms,s,m,h,d}`,
  );
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "string" ? `a string ${JSON.stringify(v.slice(0, 40))}` : `a ${typeof v}`;
}
