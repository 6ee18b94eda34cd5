import { Packr } from "msgpackr";
import { bench, describe } from "vitest";
import { decodeRequest, encodeRequest, type SubmitRequest } from "./index.js";

// Baseline: msgpackr alone, no envelope, no checks. The difference is what
// strict validation at the boundary costs.
const packr = new Packr({ useRecords: false });

const submit: SubmitRequest = {
  op: "submit",
  idempotencyKey: "batch-1",
  tasks: Array.from({ length: 1_000 }, (_, i) => ({
    id: `task-${i}`,
    deadline: 1_700_000_000_000 + i,
    prerequisites: i > 0 ? [`task-${i - 1}`] : [],
    workflowId: `wf-${i % 10}`,
    payload: { url: `s3://bucket/object-${i}`, attempt: 0 },
  })),
};
const bytes = encodeRequest(submit);

describe("encode a 1000-task submit", () => {
  bench("baseline: msgpackr pack", () => {
    packr.pack(submit);
  });
  bench("encodeRequest (checked)", () => {
    encodeRequest(submit);
  });
});

describe("decode a 1000-task submit", () => {
  bench("baseline: msgpackr unpack", () => {
    packr.unpack(bytes);
  });
  bench("decodeRequest (checked)", () => {
    decodeRequest(bytes, "submit");
  });
});
