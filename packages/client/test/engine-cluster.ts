/**
 * The shared harness of the client's tests: one real nats-server for the test
 * file, and per test a fresh cluster name with a stand-in coordinator (the
 * real engine behind the real codec, see engine-coordinator.ts) and a client.
 */
import { type NatsServer, startNatsServer } from "@frontier/nats-testing";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import { connect, type FrontierClient } from "../src/index.js";
import { type EngineCoordinator, startEngineCoordinator } from "./engine-coordinator.js";

export interface EngineCluster {
  readonly server: NatsServer;
  /** A raw connection, for stand-ins and raw requests. */
  readonly nc: NatsConnection;
  /** A cluster name no other test of the file uses. */
  freshCluster(): string;
  /** A fresh cluster with a stand-in coordinator, and a client of it (fast retries unless overridden). */
  setup(
    options?: Parameters<typeof connect>[0],
  ): Promise<{ coord: EngineCoordinator; client: FrontierClient; cluster: string }>;
}

/** Registers beforeAll/afterAll in the calling test file. */
export function useEngineCluster(prefix: string): EngineCluster {
  let server: NatsServer | undefined;
  let nc: NatsConnection | undefined;
  let clusters = 0;
  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    nc = await natsConnect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });
  const harness: EngineCluster = {
    get server() {
      return server!;
    },
    get nc() {
      return nc!;
    },
    freshCluster: () => `${prefix}-${++clusters}`,
    async setup(options = {}) {
      const cluster = harness.freshCluster();
      const coord = startEngineCoordinator(harness.nc, cluster);
      await harness.nc.flush();
      const client = await connect({
        servers: harness.server.url,
        cluster,
        retry: { baseMs: 5, maxMs: 20 },
        ...options,
      });
      return { coord, client, cluster };
    },
  };
  return harness;
}
