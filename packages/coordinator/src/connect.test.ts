import { createServer } from "node:net";
import { startNatsServer } from "@frontier/nats-testing";
import { describe, expect, it, vi } from "vitest";
import { startCoordinator } from "./index.js";

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("connecting to NATS", () => {
  it("fails at once without waitForNats when nothing answers", async () => {
    const port = await freePort();
    await expect(
      startCoordinator({ natsUrl: `nats://127.0.0.1:${port}`, cluster: "c" }),
    ).rejects.toMatchObject({
      code: "CONNECT_FAILED",
    });
  });

  it("with waitForNats, starts once a server comes up", async () => {
    const port = await freePort();
    // Until NATS comes up, its port answers with a socket that closes at once: each connect the
    // coordinator tries is seen, and fails as against a server that is down.
    let connects = 0;
    const down = createServer((socket) => {
      connects++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => down.listen(port, "127.0.0.1", resolve));
    const starting = startCoordinator({
      natsUrl: `nats://127.0.0.1:${port}`,
      cluster: "c",
      waitForNats: true,
    });
    let settled = false;
    void starting.then(
      () => (settled = true),
      () => (settled = true),
    );
    try {
      // Two failed connects: it waited after the first instead of giving up.
      await vi.waitUntil(() => connects >= 2 || settled, { timeout: 10_000, interval: 10 });
    } finally {
      await new Promise((resolve) => down.close(resolve));
    }
    expect(settled).toBe(false);
    const server = await startNatsServer({ port });
    try {
      const coordinator = await starting;
      await coordinator.close();
    } finally {
      await server.stop();
    }
  });
});
