/**
 * `frontier work --result stdout` and what a command reads on stdin: the
 * result a command's stdout makes, the prerequisites' results on stdin, and
 * `status`/`show` lines with a result (escaped, clipped).
 */
import type { Lease } from "@frontier/core";
import { Scheduler } from "@frontier/core";
import { MAX_RESULT_BYTES } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import { taskLines } from "./format.js";
import { printable } from "./io.js";
import { resultOf, runCommand } from "./work-command.js";

const task = { id: "t", deadline: 1, prerequisites: ["a", "__proto__", "c"] };
const lease: Lease = {
  taskId: "t",
  owner: "w",
  token: 1,
  expiresAt: 0,
  attempt: 1,
  task,
  results: [
    { taskId: "a", result: { n: 1 } },
    { taskId: "__proto__", result: "p" },
  ],
  resultsOmitted: 1,
};

/** Runs `script` under sh as work would with --result stdout; its result, or its failure's message. */
const run = (script: string, withLease: Lease = lease) =>
  runCommand("sh", ["-c", script], withLease.task, withLease, new AbortController().signal, {
    env: process.env,
    stdout: "result",
    stderr: () => {},
  }).then(
    (result) => ({ result }),
    (error: Error & { retryable?: boolean }) => ({ error: error.message, retryable: error.retryable }),
  );

describe("resultOf: the result a command's stdout makes", () => {
  it("parses JSON, keeps other text (less its last line end), and makes nothing of blank output", () => {
    expect(resultOf(Buffer.from('{"rows":[1,2]}\n'))).toEqual({ rows: [1, 2] });
    expect(resultOf(Buffer.from("42"))).toBe(42);
    expect(resultOf(Buffer.from('"quoted"\n'))).toBe("quoted");
    expect(resultOf(Buffer.from("plain words\n"))).toBe("plain words");
    expect(resultOf(Buffer.from("two\nlines\n"))).toBe("two\nlines");
    expect(resultOf(Buffer.from(""))).toBeUndefined();
    expect(resultOf(Buffer.from(" \n"))).toBeUndefined();
  });

  it("refuses more than MAX_RESULT_BYTES, raw or encoded, for good", () => {
    expect(resultOf(Buffer.alloc(MAX_RESULT_BYTES - 10, "y"))).toHaveLength(MAX_RESULT_BYTES - 10);
    expect(() => resultOf(Buffer.alloc(MAX_RESULT_BYTES + 1, "y"))).toThrow(
      /printed more than MAX_RESULT_BYTES \(65536\) bytes/,
    );
    // Within the raw bound but larger once encoded: 1e300 takes 6 bytes of JSON (with its comma), 9 of msgpack.
    const numbers = `[${Array.from({ length: 10_000 }, () => "1e300").join(",")}]`;
    expect(numbers.length).toBeLessThan(MAX_RESULT_BYTES);
    let thrown: (Error & { retryable?: boolean }) | undefined;
    try {
      resultOf(Buffer.from(numbers));
    } catch (e) {
      thrown = e as Error & { retryable?: boolean };
    }
    expect(thrown?.message).toMatch(/the result is \d+ bytes encoded, more than MAX_RESULT_BYTES/);
    expect(thrown?.retryable).toBe(false);
  });
});

describe("runCommand with --result stdout", () => {
  it("gives the command its prerequisites' results on stdin, by id, with the count left out", async () => {
    const { result } = (await run("cat")) as { result: unknown };
    expect(result).toEqual({
      id: "t",
      deadline: 1,
      prerequisites: ["a", "__proto__", "c"],
      results: JSON.parse('{"a":{"n":1},"__proto__":"p"}'),
      resultsOmitted: 1,
    });
    // A task without prerequisites' results gets no results field.
    const { results: _r, resultsOmitted: _o, ...plain } = lease;
    const { result: alone } = (await run("cat", plain)) as { result: Record<string, unknown> };
    expect(alone).toEqual({ id: "t", deadline: 1, prerequisites: ["a", "__proto__", "c"] });
  });

  it("fails for good when the command prints too much, and keeps failing a non-zero exit as before", async () => {
    expect(await run(`head -c ${MAX_RESULT_BYTES + 1} /dev/zero | tr '\\0' y`)).toEqual({
      error: `--result stdout: the command printed more than MAX_RESULT_BYTES (${MAX_RESULT_BYTES}) bytes`,
      retryable: false,
    });
    expect(await run("echo '{\"half\":1}'; exit 4")).toEqual({ error: "exit code 4", retryable: true });
  });
});

describe("taskLines with a result", () => {
  it("shows a completed task's result as compact JSON, escaped and clipped", () => {
    const engine = new Scheduler();
    engine.addTasks({ id: "a", deadline: 1 });
    const [granted] = engine.lease("w");
    engine.complete("a", granted!.token, { result: { note: "red\u001b[31m", long: "z".repeat(500) } });
    const row = taskLines(engine.getTask("a")!).find((l) => l.startsWith("  result")) ?? "";
    expect(row.length).toBeLessThan(200);
    expect(row).toContain('{"note":"red\\u001b[31m"');
    // println escapes what JSON left raw; here JSON already escaped the control character.
    expect(printable(row)).toBe(row);
  });
});
