/**
 * The building blocks of the message schemas (valibot), and the one function
 * that turns a failed check into our error.
 *
 * Every schema here checks and rebuilds in one pass: `map` holds only its
 * known fields (an unknown field is an error: a typo such as `maxAtempts`
 * must not be silently ignored), with `undefined` optionals dropped, so
 * nothing the sender slipped in travels further. Schemas are built once, at
 * module load; `parse` runs one stopping at the first issue.
 *
 * Errors: BAD_MESSAGE for a wrong shape, the limit's own code for a limit,
 * INVALID_ARGUMENT (the engine's class) for a request argument out of range.
 * Each issue's message is made by `say(code, text)`, which records the code
 * for that issue; `errorOf` reads it back and prefixes the issue's path, e.g.
 * `tasks[3].deadline: expected a number, got string "soon"`.
 *
 * What this takes from valibot beyond its schemas (this module is the one
 * place, schema.test.ts pins it, the version is pinned exactly): a schema's
 * `~run` and `_addIssue`, which valibot exports for schemas and actions of
 * one's own (`map`, `rule`, `refuse`), and a message function called with
 * the issue it returns.
 */
import { InvalidArgumentError } from "@frontier/core";
import * as v from "valibot";
import { type BoundaryErrorCode, clip, ProtocolError, WireErrorCode } from "./errors.js";

/** A schema of ours: it takes anything and returns a `T` (or fails with one issue). */
export type Schema<T> = v.GenericSchema<unknown, T>;

type Fields = Record<string, unknown>;
type Issue = v.BaseIssue<unknown>;
type Message = (issue: Issue) => string;

// ------------------------------------------------------------------ errors

/** What a failed check raises: a code of the boundary, or INVALID_ARGUMENT (the engine's class). */
export type IssueCode = BoundaryErrorCode | "INVALID_ARGUMENT";

/** The wire code of each issue made by `say` (issues are new objects per failure). */
const CODES = new WeakMap<Issue, IssueCode>();

/** A message for valibot that raises `code`, with `text` (or the text made from the failing input). */
export function say(code: IssueCode, text: string | ((input: unknown, issue: Issue) => string)): Message {
  return (issue) => {
    CODES.set(issue, code);
    return typeof text === "string" ? text : text(issue.input, issue);
  };
}

/** `expected <what>, got <the input>` (or `, missing`): a wrong shape. */
export function expected(what: string): Message {
  return say(WireErrorCode.BAD_MESSAGE, (input) => expectedText(what, input));
}

export function expectedText(what: string, input: unknown): string {
  return `expected ${what}, ${input === undefined ? "missing" : `got ${describe(input)}`}`;
}

/**
 * The error a failed check stands for: the issue's code (BAD_MESSAGE for an
 * issue not made by `say`), its message named by the path of the field,
 * `message` for the whole body. The one place issues become errors.
 */
function errorOf(issue: Issue): Error {
  let path = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    path = typeof key === "number" ? `${path}[${key}]` : path === "" ? String(key) : `${path}.${String(key)}`;
  }
  const text = `${path === "" ? "message" : path}: ${issue.message}`;
  const code = CODES.get(issue) ?? WireErrorCode.BAD_MESSAGE;
  return code === WireErrorCode.INVALID_ARGUMENT
    ? new InvalidArgumentError(text)
    : new ProtocolError(code, text);
}

/**
 * Stop at the first issue. One object for every parse: `v.safeParse` with a
 * config would copy it into a new one per call, on the hot path.
 */
const FIRST_ISSUE_ONLY: v.Config<Issue> = {
  lang: undefined,
  message: undefined,
  abortEarly: true,
  abortPipeEarly: undefined,
};

/**
 * `input` checked and rebuilt by `schema`; throws the error of the first
 * problem found. What `v.safeParse` does, less its per-call allocations.
 */
export function parse<T>(schema: Schema<T>, input: unknown): T {
  const dataset = schema["~run"]({ value: input }, FIRST_ISSUE_ONLY);
  if (dataset.issues === undefined) return dataset.value as T;
  throw errorOf(dataset.issues[0]);
}

/** A value as an error message names it: its type, and its value when short. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "binary";
  if (v instanceof Date) return "a timestamp";
  switch (typeof v) {
    case "string":
      return `string ${JSON.stringify(clip(v, 40))}`;
    case "number":
    case "bigint":
    case "boolean":
      return `${typeof v} ${String(v)}`;
    case "object":
      return isPlainMap(v) ? "a map" : `an object (${v.constructor?.name ?? "no constructor"})`;
    default:
      return typeof v;
  }
}

/** What msgpack maps decode to: an object whose prototype is Object.prototype (or null). */
export function isPlainMap(v: unknown): v is Fields {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// -------------------------------------------------------------- primitives

/** What each base schema expects, for the message of a missing field (`expectationOf`). */
const EXPECTED = new WeakMap<object, string>();

/** A schema of the values `is` accepts, else `expected <what>`. */
export function kind<T>(what: string, is: (x: unknown) => x is T): Schema<T> {
  const schema = v.custom<T>(is, expected(what));
  EXPECTED.set(schema, what);
  return schema;
}

/**
 * A schema of the values `is` accepts, in one check; a refused value is
 * explained by `why` (the first thing wrong with it, with its own code). A
 * missing one is `expected <what>, missing`.
 */
export function checked<T>(
  what: string,
  is: (x: unknown) => x is T,
  why: (input: unknown) => Failure,
): Schema<T> {
  const schema = v.custom<T>(is, (issue) => told(why(issue.input))(issue));
  EXPECTED.set(schema, what);
  return schema;
}

/** The failure of a value that is not `what`: BAD_MESSAGE, `expected <what>, got <it>`. */
export function mistake(what: string, input: unknown): Failure {
  return { code: WireErrorCode.BAD_MESSAGE, text: expectedText(what, input) };
}

/** What `schema` expects, through pipes and wrappers (optional, nullable). */
function expectationOf(schema: unknown): string {
  const s = schema as { pipe?: readonly unknown[]; wrapped?: unknown };
  return (
    EXPECTED.get(schema as object) ??
    (s.pipe !== undefined
      ? expectationOf(s.pipe[0])
      : s.wrapped !== undefined
        ? expectationOf(s.wrapped)
        : "a value")
  );
}

export const str = kind("a string", (x): x is string => typeof x === "string");
/** Any number, NaN and the infinities included: what they mean is for the engine (or a rule) to say. */
export const num = kind("a number", (x): x is number => typeof x === "number");
export const bool = kind("a boolean", (x): x is boolean => typeof x === "boolean");

/** What an integer ≥ `min` is called in messages. */
export function integerFrom(min: number): string {
  return min === 0 ? "a non-negative integer" : `an integer ≥ ${min}`;
}

/** A safe integer ≥ `min`: counts, tokens, durations. */
export function int(min: number): Schema<number> {
  return kind(
    integerFrom(min),
    (x): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= min,
  );
}

export const count = int(0);
export const positive = int(1);

/** One of `values`. */
export function oneOf<const T extends string>(values: readonly T[]): Schema<T> {
  return kind(`one of ${values.join(", ")}`, (x): x is T => (values as readonly unknown[]).includes(x));
}

/** A string of at most `max` (`limitName`, its value), else `code`, by default BAD_MESSAGE (text the other side produced). */
export function text(
  max: number,
  limitName?: string,
  code: IssueCode = WireErrorCode.BAD_MESSAGE,
): Schema<string> {
  const limit = limitName === undefined ? `the limit of ${max}` : `${limitName} (${max})`;
  return checked(
    "a string",
    (x): x is string => typeof x === "string" && x.length <= max,
    (x) =>
      typeof x !== "string"
        ? mistake("a string", x)
        : { code, text: `${x.length} characters exceed ${limit}` },
  );
}

/** `schema`, or absent. An `undefined` value counts as absent (`map` drops it). */
export const optional = v.optional;
/** `schema`, or null. */
export const nullable = v.nullable;

// ------------------------------------------------------------------- lists

/** An array of `item`. */
export function list<T>(item: Schema<T>, what = "an array"): Schema<readonly T[]> {
  return v.array(item, expected(what));
}

/**
 * An array of at most `max` items, else `code` naming the limit. The length
 * is checked before the items: a batch too large is refused whatever it holds.
 */
export function bounded<T>(
  item: Schema<T>,
  max: number,
  limitName: string,
  code: IssueCode,
): Schema<readonly T[]> {
  const within = checked(
    "an array",
    (x): x is unknown[] => Array.isArray(x) && x.length <= max,
    (x) =>
      Array.isArray(x)
        ? { code, text: `${x.length} items exceed ${limitName} (${max})` }
        : mistake("an array", x),
  );
  return v.pipe(within, v.array(item));
}

// -------------------------------------------------------------------- maps

/** What a map's schema gives: its entries' outputs, readonly, optional ones optional. */
export type MapOf<E extends v.ObjectEntries> = Readonly<v.InferOutput<v.ObjectSchema<E, undefined>>>;

/** A check across the fields of a value: what is wrong with it, or undefined. */
export type Check<T> = (value: T) => Failure | undefined;

/**
 * A map of exactly `entries`: valibot's object schema, preceded by a check
 * of its own and followed by `rules` (checks across fields, run once every
 * field passed). The check first: a plain map (not an array, a timestamp, a
 * class instance), no field outside `entries` — before the fields, so a
 * typo is named as one rather than as the field it misses —, and a field
 * set to `undefined` dropped (an absent optional, never an `undefined`
 * one). Written as a schema of our own around `v.object` rather than a pipe
 * of three, as it runs for every map of every message.
 */
export function map<const E extends v.ObjectEntries>(
  entries: E,
  ...rules: Check<MapOf<E>>[]
): Schema<MapOf<E>> {
  const keys = new Set(Object.keys(entries));
  const names = [...keys].join(", ");
  // The only issue the object raises after our check: a required field is missing.
  const missing = say(WireErrorCode.BAD_MESSAGE, (_input, issue) => {
    const key = issue.path?.[0]?.key as string;
    return `expected ${expectationOf(entries[key])}, missing`;
  });
  const object = v.object(entries, missing);
  const notAMap = expected("a map");
  const schema = v._standardSchema<Schema<MapOf<E>>>({
    kind: "schema",
    type: "map",
    reference: map,
    expects: "Object",
    async: false,
    "~run"(dataset, config) {
      const input = dataset.value;
      if (!isPlainMap(input)) {
        v._addIssue(this, "type", dataset, config, { message: notAMap });
        return dataset as unknown as v.OutputDataset<MapOf<E>, Issue>;
      }
      let undefinedField = false;
      for (const key in input) {
        if (!keys.has(key)) {
          const unknown = `unknown field ${JSON.stringify(clip(key, 40))} (expected only ${names})`;
          v._addIssue(this, "key", dataset, config, { message: say(WireErrorCode.BAD_MESSAGE, unknown) });
          return dataset as unknown as v.OutputDataset<MapOf<E>, Issue>;
        }
        if (input[key] === undefined) undefinedField = true;
      }
      if (undefinedField) dataset.value = definedFields(input);
      const out = object["~run"](dataset, config) as v.OutputDataset<MapOf<E>, Issue>;
      if (out.issues === undefined) {
        for (const check of rules) {
          const failure = check(out.value as MapOf<E>);
          if (failure !== undefined) {
            report(this, out, config, failure);
            break;
          }
        }
      }
      return out;
    },
  });
  EXPECTED.set(schema, "a map");
  return schema;
}

/** `input` without its fields set to `undefined`. */
function definedFields(input: Fields): Fields {
  const defined: Fields = {};
  for (const key in input) if (input[key] !== undefined) defined[key] = input[key];
  return defined;
}

// ------------------------------------------------------------------- rules

/** A failure found by a check: at `at` (below the value checked), `text`, raising `code`. */
export interface Failure {
  readonly at?: readonly (string | number)[];
  readonly code: IssueCode;
  readonly text: string;
  /** The value the failure is about, when not the one at `at`. */
  readonly input?: unknown;
}

/** The message of an issue for `failure`. */
function told(failure: Failure): Message {
  return say(failure.code, failure.text);
}

/** Adds the issue for `failure` to `dataset`, at the failure's path below the value. */
function report(
  context: object,
  dataset: v.UnknownDataset | v.OutputDataset<unknown, Issue>,
  config: v.Config<Issue>,
  failure: Failure,
): void {
  let input: unknown = dataset.value;
  const path: v.IssuePathItem[] = [];
  for (const key of failure.at ?? []) {
    const value = (input as Fields)[key as string];
    path.push(
      typeof key === "number"
        ? { type: "array", origin: "value", input: input as unknown[], key, value }
        : { type: "object", origin: "value", input: input as Fields, key, value },
    );
    input = value;
  }
  // The context is the schema or action reporting (our own, typed as valibot's where built).
  v._addIssue(context as v.GenericSchema, "input", dataset, config, {
    input: "input" in failure ? failure.input : input,
    message: told(failure),
    ...(path.length === 0 ? {} : { path: path as [v.IssuePathItem, ...v.IssuePathItem[]] }),
  });
}

/**
 * A check of a list (or any value a pipe passes on): `check` returns what is
 * wrong, or undefined. It runs only on a value whose items all passed.
 */
export function rule<T>(check: Check<T>): v.GenericValidation<T> {
  return {
    kind: "validation",
    type: "rule",
    reference: rule,
    async: false,
    expects: null,
    "~run"(dataset, config) {
      if (dataset.typed) {
        const failure = check(dataset.value);
        if (failure !== undefined) report(this, dataset, config, failure);
      }
      return dataset;
    },
  };
}

/** A check of a list: each item's `keyOf` at most once, else the `failure` of the second. */
export function eachOnce<T>(
  keyOf: (item: T) => unknown,
  failure: (item: T, index: number) => Failure,
): v.GenericValidation<readonly T[]> {
  return rule<readonly T[]>((items) => {
    const seen = new Set<unknown>();
    for (let i = 0; i < items.length; i++) {
      const key = keyOf(items[i]!);
      if (seen.has(key)) return failure(items[i]!, i);
      seen.add(key);
    }
    return undefined;
  });
}

/**
 * A schema that refuses whatever it is given, with the failure `check`
 * finds in it: a probe that names what is wrong with a body no message
 * schema fits (not a map, no such op).
 */
export function refuse(check: (input: unknown) => Failure): Schema<never> {
  return v._standardSchema<Schema<never>>({
    kind: "schema",
    type: "refuse",
    reference: refuse,
    expects: "never",
    async: false,
    "~run"(dataset, config) {
      report(this, dataset, config, check(dataset.value));
      return dataset as unknown as v.OutputDataset<never, Issue>;
    },
  });
}
