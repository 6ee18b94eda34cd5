import {
  ErrorCode,
  FrontierError,
  InvalidArgumentError,
  InvalidStateError,
  type Problem,
  StaleLeaseError,
  UnknownTaskError,
  ValidationError,
} from "@frontier/core";
import { describe, expect, it } from "vitest";
import {
  decodeReply,
  encodeReply,
  errorReply,
  fromWireError,
  isRetryable,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_ID_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_PROBLEMS,
  MAX_REASON_LENGTH,
  ProtocolError,
  toWireError,
  unwrapReply,
  WIRE_ERRORS,
  type WireError,
  WireErrorCode,
} from "./index.js";

/** Errors named like the ones nats.js v3 rejects a request with (see transportCode in errors.ts). */
function natsTimeout(): Error {
  const e = new Error("timeout");
  e.name = "TimeoutError";
  return e;
}
function natsNoResponders(): Error {
  const cause = new Error("no responders: 'frontier.c.coord.submit'");
  cause.name = "NoResponders";
  const e = new Error(cause.message, { cause });
  e.name = "RequestError";
  return e;
}

/** What a client gets for `err` thrown in a responder: through the wire and back. */
function overTheWire(err: unknown): unknown {
  const reply = decodeReply(encodeReply(errorReply(err)), "complete");
  try {
    unwrapReply(reply);
  } catch (e) {
    return e;
  }
  throw new Error("unwrapReply did not throw");
}

describe("the catalogue", () => {
  it("holds every engine code, as an engine code", () => {
    for (const code of Object.values(ErrorCode)) {
      expect(WIRE_ERRORS[code].source).toBe("engine");
      expect(WireErrorCode[code]).toBe(code);
    }
  });

  it("names each code by itself and documents it", () => {
    for (const [key, code] of Object.entries(WireErrorCode)) {
      expect(code).toBe(key);
      expect(WIRE_ERRORS[code].description.length).toBeGreaterThan(10);
    }
    expect(Object.keys(WIRE_ERRORS).sort()).toEqual(Object.keys(WireErrorCode).sort());
  });

  it("marks exactly the transient conditions retryable", () => {
    const retryable = Object.entries(WIRE_ERRORS)
      .filter(([, info]) => info.retryable)
      .map(([code]) => code)
      .sort();
    expect(retryable).toEqual([
      "NO_RESPONDERS",
      "OVERLOADED",
      "SHARD_UNAVAILABLE",
      "SLOT_MOVING",
      "SLOT_NOT_OWNED",
      "TIMEOUT",
    ]);
  });
});

describe("toWireError", () => {
  it("keeps a ValidationError's problems", () => {
    const problems: Problem[] = [
      { taskId: "a", code: "CYCLE", message: "a -> b -> a" },
      { taskId: "#3", code: "MALFORMED", message: "deadline must be a finite number" },
    ];
    const err = new ValidationError(problems);
    expect(toWireError(err)).toEqual({
      code: "VALIDATION_FAILED",
      message: err.message,
      retryable: false,
      problems,
    });
  });

  it("keeps the typed fields of the engine's errors", () => {
    expect(toWireError(new UnknownTaskError("t1"))).toEqual({
      code: "UNKNOWN_TASK",
      message: 'unknown task "t1"',
      retryable: false,
      taskId: "t1",
    });
    expect(toWireError(new StaleLeaseError("t1", "token 3 is stale"))).toMatchObject({
      code: "STALE_LEASE",
      taskId: "t1",
    });
    expect(toWireError(new InvalidStateError("t1", "COMPLETED", "already done"))).toEqual({
      code: "INVALID_STATE",
      message: "already done",
      retryable: false,
      taskId: "t1",
      state: "COMPLETED",
    });
    expect(toWireError(new InvalidArgumentError("max must be ≥ 1"))).toEqual({
      code: "INVALID_ARGUMENT",
      message: "max must be ≥ 1",
      retryable: false,
    });
  });

  it("keeps a ProtocolError's code and retryability", () => {
    expect(toWireError(new ProtocolError("SLOT_NOT_OWNED", "slot 7 moved"))).toEqual({
      code: "SLOT_NOT_OWNED",
      message: "slot 7 moved",
      retryable: true,
    });
    expect(toWireError(new ProtocolError("INTERNAL", "flaky disk", { retryable: true })).retryable).toBe(
      true,
    );
  });

  it("turns NATS timeouts and no-responders into TIMEOUT and NO_RESPONDERS", () => {
    expect(toWireError(natsTimeout())).toMatchObject({ code: "TIMEOUT", retryable: true });
    expect(toWireError(natsNoResponders())).toMatchObject({ code: "NO_RESPONDERS", retryable: true });
  });

  it("turns anything else into INTERNAL, naming what was thrown", () => {
    expect(toWireError(new TypeError("x is undefined"))).toEqual({
      code: "INTERNAL",
      message: "TypeError: x is undefined",
      retryable: false,
    });
    expect(toWireError("a string")).toMatchObject({
      code: "INTERNAL",
      message: "non-error thrown: a string",
    });
    expect(toWireError(undefined)).toMatchObject({ code: "INTERNAL" });
    // Values String() cannot convert must not make the error reply itself throw.
    expect(toWireError(Object.create(null))).toMatchObject({
      code: "INTERNAL",
      message: "non-error thrown: [object Object]",
    });
    expect(toWireError({ toString: 1, valueOf: 2 })).toMatchObject({
      code: "INTERNAL",
      message: "non-error thrown: [object Object]",
    });
    const unknownCode = new FrontierError("NEW_ENGINE_CODE" as ErrorCode, "from a newer engine");
    expect(toWireError(unknownCode)).toMatchObject({ code: "INTERNAL", message: "from a newer engine" });
  });

  it("clips what could make the reply too large", () => {
    const long = toWireError(new Error("x".repeat(10 * MAX_ERROR_MESSAGE_LENGTH)));
    expect(long.message.length).toBe(MAX_ERROR_MESSAGE_LENGTH);
    expect(long.message.endsWith("…")).toBe(true);

    const many = Array.from({ length: MAX_PROBLEMS + 50 }, (_, i) => ({
      taskId: `t${i}`.padEnd(MAX_ID_LENGTH + 10, "x"),
      code: "MALFORMED" as const,
      message: "m".repeat(MAX_REASON_LENGTH + 10),
    }));
    const wire = toWireError(new ValidationError(many));
    expect(wire.problems).toHaveLength(MAX_PROBLEMS);
    expect(wire.problems?.every((p) => p.taskId.length <= MAX_ID_LENGTH)).toBe(true);
    expect(wire.problems?.every((p) => p.message.length <= MAX_REASON_LENGTH)).toBe(true);
    // The message still counts every problem, not only those sent.
    expect(wire.message).toContain(`${MAX_PROBLEMS + 50} problem(s)`);
  });

  it("always yields a reply that encodes, even at every limit with 3-byte characters", () => {
    const wide = "\u0800"; // Three bytes in UTF-8, the most per UTF-16 code unit.
    const problems = Array.from({ length: MAX_PROBLEMS }, () => ({
      taskId: wide.repeat(MAX_ID_LENGTH),
      code: "CYCLE" as const,
      message: wide.repeat(MAX_REASON_LENGTH),
    }));
    const err = new ValidationError(problems);
    err.message = wide.repeat(MAX_ERROR_MESSAGE_LENGTH * 2);
    const bytes = encodeReply(errorReply(err));
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });
});

describe("fromWireError, through the wire", () => {
  it("rebuilds the engine's classes with their fields and the sender's message", () => {
    const validation = overTheWire(new ValidationError([{ taskId: "a", code: "CYCLE", message: "a -> a" }]));
    expect(validation).toBeInstanceOf(ValidationError);
    expect((validation as ValidationError).problems).toEqual([
      { taskId: "a", code: "CYCLE", message: "a -> a" },
    ]);

    const unknown = overTheWire(new UnknownTaskError("t9"));
    expect(unknown).toBeInstanceOf(UnknownTaskError);
    expect(unknown).toMatchObject({ code: "UNKNOWN_TASK", taskId: "t9", message: 'unknown task "t9"' });

    const stale = overTheWire(new StaleLeaseError("t2", "token 4 superseded by 5"));
    expect(stale).toBeInstanceOf(StaleLeaseError);
    expect(stale).toMatchObject({ taskId: "t2", message: "token 4 superseded by 5" });

    const state = overTheWire(new InvalidStateError("t3", "FAILED", "cannot complete a FAILED task"));
    expect(state).toBeInstanceOf(InvalidStateError);
    expect(state).toMatchObject({ taskId: "t3", state: "FAILED", message: "cannot complete a FAILED task" });

    const arg = overTheWire(new InvalidArgumentError("leaseMs must be positive"));
    expect(arg).toBeInstanceOf(InvalidArgumentError);
    expect(arg).toMatchObject({ code: "INVALID_ARGUMENT", message: "leaseMs must be positive" });
  });

  it("keeps a long ValidationError summary verbatim rather than re-deriving it from the sent problems", () => {
    const many = Array.from({ length: MAX_PROBLEMS + 1 }, (_, i) => ({
      taskId: `t${i}`,
      code: "MALFORMED" as const,
      message: "bad",
    }));
    const back = overTheWire(new ValidationError(many)) as ValidationError;
    expect(back.problems).toHaveLength(MAX_PROBLEMS);
    expect(back.message).toContain(`${MAX_PROBLEMS + 1} problem(s)`);
  });

  it("falls back to a plain FrontierError when the typed fields are missing", () => {
    for (const code of ["UNKNOWN_TASK", "STALE_LEASE", "INVALID_STATE"] as const) {
      const err = fromWireError({ code, message: "m", retryable: false });
      expect(err).toBeInstanceOf(FrontierError);
      expect(err.constructor).toBe(FrontierError);
      expect(err.code).toBe(code);
    }
    expect(
      fromWireError({ code: "INVALID_STATE", message: "m", retryable: false, taskId: "t" }).constructor,
    ).toBe(FrontierError);
  });

  it("rebuilds every boundary code as a ProtocolError with the sender's retryability", () => {
    const boundary = Object.entries(WIRE_ERRORS).filter(([, info]) => info.source === "boundary");
    expect(boundary.length).toBeGreaterThan(10);
    for (const [code, info] of boundary) {
      const wire = { code, message: `about ${code}`, retryable: info.retryable } as WireError;
      const err = fromWireError(wire);
      expect(err).toBeInstanceOf(ProtocolError);
      expect(err).toMatchObject({ code, message: `about ${code}`, retryable: info.retryable });
      expect(toWireError(err)).toEqual(wire);
    }
  });

  it("carries a NATS timeout to the client as a retryable ProtocolError", () => {
    const err = overTheWire(natsTimeout());
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: "TIMEOUT", retryable: true });
  });
});

describe("isRetryable", () => {
  it("answers from the catalogue, the error, or the transport", () => {
    expect(isRetryable(new ProtocolError("SHARD_UNAVAILABLE", "recovering"))).toBe(true);
    expect(isRetryable(new ProtocolError("BAD_MESSAGE", "garbage"))).toBe(false);
    expect(isRetryable(new ProtocolError("INTERNAL", "flaky", { retryable: true }))).toBe(true);
    expect(isRetryable(new StaleLeaseError("t", "stale"))).toBe(false);
    expect(isRetryable(natsTimeout())).toBe(true);
    expect(isRetryable(natsNoResponders())).toBe(true);
    expect(isRetryable(new Error("boom"))).toBe(false);
    expect(isRetryable("boom")).toBe(false);
  });
});

describe("ProtocolError", () => {
  it("is a named Error with a code, a cause, and the catalogue's retryability by default", () => {
    const cause = new Error("root");
    const err = new ProtocolError("SHARD_UNAVAILABLE", "shard s1 is recovering", { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ProtocolError");
    expect(err.code).toBe("SHARD_UNAVAILABLE");
    expect(err.retryable).toBe(true);
    expect(err.cause).toBe(cause);
    expect(String(err)).toBe("ProtocolError: shard s1 is recovering");
  });
});
