import { Packr } from "msgpackr";
import { bench, describe } from "vitest";
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  type LeaseRequest,
  type Reply,
  type SubmitRequest,
} from "./index.js";

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

// The messages of every worker's loop: a lease request and its reply.
const lease: LeaseRequest = {
  op: "lease",
  owner: "w-1",
  max: 10,
  leaseMs: 30_000,
  waitMs: 5_000,
  requestId: "r-1",
};
const leaseBytes = encodeRequest(lease);
const granted: Reply = {
  ok: true,
  op: "lease",
  leases: Array.from({ length: 10 }, (_, i) => ({
    taskId: `task-${i}`,
    owner: "w-1",
    token: 100 + i,
    secret: "AAAAAAAAAAAAAAAAAAAAAA",
    expiresAt: 1_700_000_030_000,
    attempt: 1,
    task: { id: `task-${i}`, deadline: 1_700_000_000_000 + i, prerequisites: [], payload: { n: i } },
  })),
};
const grantedBytes = encodeReply(granted);

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

describe("decode a lease request", () => {
  bench("baseline: msgpackr unpack", () => {
    packr.unpack(leaseBytes);
  });
  bench("decodeRequest (checked)", () => {
    decodeRequest(leaseBytes, "lease");
  });
});

describe("decode a lease reply of 10 leases", () => {
  bench("baseline: msgpackr unpack", () => {
    packr.unpack(grantedBytes);
  });
  bench("decodeReply (checked)", () => {
    decodeReply(grantedBytes, "lease");
  });
});
