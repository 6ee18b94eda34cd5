import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsCluster, startNatsCluster } from "./cluster.js";

describe("startNatsCluster", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await startNatsCluster({ size: 3 });
  }, 30_000);
  afterAll(() => cluster?.stop());

  it("routes three JetStream nodes together: a stream takes three replicas", async () => {
    const nc = await connect({ servers: [...cluster.urls] });
    try {
      // JetStream answers at once: the meta leader was elected before the cluster was handed over.
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.add({ name: "three", subjects: ["three.>"], num_replicas: 3 });
      expect(info.config.num_replicas).toBe(3);
      expect(info.cluster?.replicas).toHaveLength(2);
    } finally {
      await nc.close();
    }
  }, 30_000);

  it("refuses a size that is not a cluster", async () => {
    await expect(startNatsCluster({ size: 1 })).rejects.toMatchObject({ code: "INVALID_OPTION" });
  });
});
