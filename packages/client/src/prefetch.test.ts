import { describe, expect, it } from "vitest";
import { Prefetch } from "./prefetch.js";

describe("Prefetch", () => {
  it("stays at what the caller fixed", () => {
    let t = 0;
    const p = new Prefetch(8, 256, 3, () => t);
    for (let i = 0; i < 1000; i++) p.finished();
    t = 1_000;
    expect(p.value).toBe(3);
  });

  it("grows while round trips hold fast handlers back, up to its ceiling", () => {
    let t = 0;
    const p = new Prefetch(8, 256, undefined, () => t);
    expect(p.value).toBe(8);
    // Round trips of 4 ms; the worker finishes everything it holds each round trip, 12 a window.
    for (let window = 0; window < 20; window++) {
      const held = 8 + p.value;
      for (let i = 0; i < held * 12; i++) p.finished();
      p.roundTrip(4);
      t += 50;
    }
    expect(p.value).toBe(256);
  });

  it("stays at its floor with slow handlers", () => {
    let t = 0;
    const p = new Prefetch(4, 256, undefined, () => t);
    // 4 slots of 1 s handlers: 4 tasks a second, round trips of 5 ms.
    for (let second = 0; second < 10; second++) {
      for (let i = 0; i < 4; i++) p.finished();
      p.roundTrip(5);
      t += 1_000;
      expect(p.value).toBe(4);
    }
  });
});
