import { describe, expect, it } from "vitest";
import { redactUrl } from "./urls.js";

describe("redactUrl", () => {
  it("hides passwords and tokens, keeps user names, hosts and ports", () => {
    expect(redactUrl("nats://app:s3cr3t@nats.internal:4222")).toBe("nats://app:***@nats.internal:4222");
    expect(redactUrl("nats://tok3n@10.0.0.1:4222")).toBe("nats://***@10.0.0.1:4222");
    expect(redactUrl("tls://a:b@h1:4222,nats://c@h2:4222,h3:4222")).toBe(
      "tls://a:***@h1:4222,nats://***@h2:4222,h3:4222",
    );
    expect(redactUrl("app:pw@localhost:4222")).toBe("app:***@localhost:4222");
  });

  it("leaves a URL without credentials as it is", () => {
    for (const url of ["nats://127.0.0.1:4222", "127.0.0.1:4222", "nats://[::1]:4222,nats://h:1"])
      expect(redactUrl(url)).toBe(url);
  });
});
