import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LiveScreen, screenSize } from "./live-screen.js";

const ESC = "\u001b[";

/** A terminal stand-in: what was written, and a size that can change. */
function terminal(columns: number, rows: number) {
  const writes: string[] = [];
  const out = Object.assign(
    new Writable({
      write(chunk, _enc, done) {
        writes.push(String(chunk));
        done();
      },
    }),
    { isTTY: true, columns, rows },
  );
  return { out, writes };
}

describe("LiveScreen", () => {
  it("takes the alternate screen, draws each frame from home, and gives the terminal back", () => {
    const { out, writes } = terminal(40, 10);
    const screen = new LiveScreen(out);
    screen.enter();
    screen.draw(() => ["one", "two"]);
    screen.draw(() => ["three"]);
    screen.leave();
    expect(writes).toEqual([
      `${ESC}?1049h${ESC}?25l`,
      `${ESC}Hone${ESC}K\ntwo${ESC}K\n${ESC}J`,
      // A shorter frame clears what the longer one left below it.
      `${ESC}Hthree${ESC}K\n${ESC}J`,
      `${ESC}?25h${ESC}?1049l`,
    ]);
    expect(out.listenerCount("resize")).toBe(0);
  });

  it("redraws the last frame at the new size when the terminal is resized", () => {
    const { out, writes } = terminal(40, 10);
    const screen = new LiveScreen(out);
    const sizes: unknown[] = [];
    screen.enter();
    screen.draw((size) => {
      sizes.push(size);
      return [`${size.columns} columns`];
    });
    out.columns = 20;
    out.rows = 5;
    out.emit("resize");
    expect(sizes).toEqual([
      { columns: 40, rows: 10 },
      { columns: 20, rows: 5 },
    ]);
    expect(writes.at(-1)).toBe(`${ESC}H20 columns${ESC}K\n${ESC}J`);
    screen.leave();
    // After leaving, a resize draws nothing.
    const written = writes.length;
    out.emit("resize");
    expect(writes.length).toBe(written);
  });

  it("writes nothing before enter, and leave without enter is a no-op", () => {
    const { out, writes } = terminal(40, 10);
    const screen = new LiveScreen(out);
    screen.draw(() => ["early"]);
    screen.leave();
    expect(writes).toEqual([]);
  });
});

describe("screenSize", () => {
  it("reads a terminal's columns and rows, and nothing of a pipe", () => {
    expect(screenSize({ isTTY: true, columns: 80, rows: 24 })).toEqual({ columns: 80, rows: 24 });
    expect(screenSize({ isTTY: true, columns: 0 })).toEqual({});
    expect(screenSize({ columns: 80, rows: 24 })).toEqual({});
  });
});
