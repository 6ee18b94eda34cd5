import { createServer } from "node:net";
import { startNatsServer } from "@frontier/nats-testing";
import { describe, expect, it } from "vitest";
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
    await new Promise((r) => setTimeout(r, 500));
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
