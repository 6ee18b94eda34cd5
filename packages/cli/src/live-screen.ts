/**
 * A live view that owns the terminal while it runs, as `top` does: the
 * alternate screen (the shell's scrollback is left as it was, and restored
 * on leave), the cursor hidden, and each frame drawn from the top-left
 * corner. Drawing from home rather than moving up over the last frame is
 * what keeps a resize clean: a narrowed terminal re-wraps lines already on
 * screen, so a count of lines drawn no longer says how far up the last
 * frame began, and stale rows were left behind.
 *
 * Escape sequences (ECMA-48 / xterm): `?1049h`/`?1049l` enter and leave the
 * alternate screen, `?25l`/`?25h` hide and show the cursor, `H` moves home,
 * `K` clears to the end of the line, `J` clears below the cursor.
 */
import type { Writable } from "node:stream";

const ESC = "\u001b[";

/** A terminal's size; absent fields are unknown. */
export interface ScreenSize {
  readonly columns?: number;
  readonly rows?: number;
}

/** The size of `out` when it is a terminal, read at each call (it may be resized); `{}` otherwise. */
export function screenSize(out: unknown): ScreenSize {
  const tty = out as { isTTY?: boolean; columns?: number; rows?: number };
  if (tty.isTTY !== true) return {};
  return {
    ...(typeof tty.columns === "number" && tty.columns > 0 ? { columns: tty.columns } : {}),
    ...(typeof tty.rows === "number" && tty.rows > 0 ? { rows: tty.rows } : {}),
  };
}

export class LiveScreen {
  private render: ((size: ScreenSize) => readonly string[]) | undefined;
  private readonly onResize = () => this.redraw();
  private entered = false;

  constructor(private readonly out: Writable) {}

  /** Takes the terminal: the alternate screen, the cursor hidden; a resize redraws the last frame. */
  enter(): void {
    if (this.entered) return;
    this.entered = true;
    this.out.write(`${ESC}?1049h${ESC}?25l`);
    this.out.on("resize", this.onResize);
  }

  /**
   * Draws a frame. `render` makes its lines for a screen size; it is kept,
   * so that a resize redraws the same data at the new size at once.
   */
  draw(render: (size: ScreenSize) => readonly string[]): void {
    this.render = render;
    this.redraw();
  }

  /** Gives the terminal back as it was before `enter`. */
  leave(): void {
    if (!this.entered) return;
    this.entered = false;
    this.out.off("resize", this.onResize);
    this.out.write(`${ESC}?25h${ESC}?1049l`);
  }

  private redraw(): void {
    if (!this.entered || this.render === undefined) return;
    const lines = this.render(screenSize(this.out));
    // One write per frame: a terminal never shows half of one.
    this.out.write(`${ESC}H${lines.map((line) => `${line}${ESC}K`).join("\n")}\n${ESC}J`);
  }
}
