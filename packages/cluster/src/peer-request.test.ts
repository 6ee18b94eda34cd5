/**
 * A shard's request to a peer (peer-request.ts), over a real nats-server:
 * the peer is a subject the test holds. The reply comes back decoded and
 * not unwrapped (an error reply is the caller's to read); NATS's own
 * failures reject as they are.
 */
import {
  decodeRequest,
  encodeReply,
  errorReply,
  ProtocolError,
  subjectsFor,
  unwrapReply,
  WireErrorCode,
} from "@frontier/protocol";
import { errors as natsErrors } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TestEnv } from "../test/support.js";
import { requestPeer } from "./peer-request.js";

const env = new TestEnv();
beforeAll(() => env.start());
afterEach(() => env.cleanup());
afterAll(() => env.stop());

describe("requestPeer", () => {
  it("sends the request on the peer's subject for its op and resolves with the decoded reply", async () => {
    const nc = await env.connect();
    const cluster = env.freshCluster();
    const seen: unknown[] = [];
    const sub = nc.subscribe(subjectsFor(cluster).shard("s1", "holds"), {
      callback: (_, msg) => {
        const request = decodeRequest(msg.data, "holds");
        seen.push(request);
        msg.respond(
          request.op === "holds" && request.taskId === "gone"
            ? encodeReply(errorReply(new ProtocolError(WireErrorCode.SLOT_MOVING, "moving")))
            : encodeReply({ ok: true, op: "holds", held: true }),
        );
      },
    });
    env.defer(async () => sub.unsubscribe());
    await nc.flush();

    const ok = await requestPeer({ nc, cluster }, "s1", { op: "holds", taskId: "t", workflowId: "w" }, 5_000);
    expect(unwrapReply(ok).held).toBe(true);
    expect(seen).toEqual([{ op: "holds", taskId: "t", workflowId: "w" }]);

    const refused = await requestPeer({ nc, cluster }, "s1", { op: "holds", taskId: "gone" }, 5_000);
    expect(refused.ok).toBe(false);
    expect(() => unwrapReply(refused)).toThrow(expect.objectContaining({ code: WireErrorCode.SLOT_MOVING }));
  });

  it("rejects with NATS's own error when no peer answers", async () => {
    const nc = await env.connect();
    const request = requestPeer(
      { nc, cluster: env.freshCluster() },
      "nobody",
      { op: "holds", taskId: "t" },
      1_000,
    );
    await expect(request).rejects.toBeInstanceOf(natsErrors.RequestError);
  });
});
