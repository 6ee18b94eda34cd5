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

  it("doubles while slots starve for leases the cluster has, though the pace alone would not ask for more", () => {
    let t = 0;
    const p = new Prefetch(8, 256, undefined, () => t);
    // The pipeline bounds the pace: what the worker holds lasts two round trips, so the estimate
    // alone (pace × round trip × 2) stays where it is.
    const seen: number[] = [];
    for (let window = 0; window < 6; window++) {
      const held = 8 + p.value;
      for (let i = 0; i < held * 6; i++) p.finished();
      p.roundTrip(4);
      p.starved();
      t += 50;
      seen.push(p.value);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBe(Math.min(256, seen[i - 1]! * 2));
    expect(seen[4]).toBe(256);
  });

  it("falls back by a quarter a window once no slot starves, not below the estimate", () => {
    let t = 0;
    const p = new Prefetch(8, 256, undefined, () => t);
    for (let window = 0; window < 5; window++) {
      p.starved();
      t += 50;
      void p.value;
    }
    expect(p.value).toBe(256);
    t += 50;
    expect(p.value).toBe(192);
    t += 50;
    expect(p.value).toBe(144);
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

  it("from none (a worker's default), holds nothing behind slow handlers and grows from one once a slot starves", () => {
    let t = 0;
    const p = new Prefetch(0, 256, undefined, () => t);
    expect(p.value).toBe(0);
    // Slow handlers: one finish a window, round trips of 1 ms. Nothing is held beyond the slots.
    for (let window = 0; window < 10; window++) {
      p.finished();
      p.roundTrip(1);
      t += 50;
      expect(p.value).toBe(0);
    }
    // A slot idled for want of a task the cluster had: 1, then 2, 4.
    const seen: number[] = [];
    for (let window = 0; window < 3; window++) {
      p.starved();
      t += 50;
      seen.push(p.value);
    }
    expect(seen).toEqual([1, 2, 4]);
  });
});
