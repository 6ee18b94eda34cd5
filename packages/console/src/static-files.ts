/**
 * The front end's built files (`vite build`, into dist/web), served as they
 * are: a fixed set read once at start, so a request names one of them or
 * gets index.html (the pages route by the URL's hash) — no path from a
 * request ever reaches the file system.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, resolve, sep } from "node:path";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};

export interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  /** Vite's hashed assets never change under their name; index.html always may. */
  readonly immutable: boolean;
}

/** Where `vite build` puts the front end, beside the compiled server (src/ and dist/ alike are one level down). */
export const DEFAULT_STATIC_DIR = resolve(import.meta.dirname, "../dist/web");

export class StaticFiles {
  private constructor(
    private readonly files: ReadonlyMap<string, StaticFile>,
    /** Why there are no pages (the front end is not built), or null. */
    readonly missing: string | null,
  ) {}

  /**
   * Reads every file under `dir`. Without an index.html (sources never
   * built), the console still runs — its API answers — and every page says
   * how to build the front end, so `frontier start` never fails for it.
   */
  static load(dir: string): StaticFiles {
    const files = new Map<string, StaticFile>();
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const path = join(d, name);
        if (statSync(path).isDirectory()) walk(path);
        else {
          const url = `/${relative(dir, path).split(sep).join("/")}`;
          files.set(url, {
            body: readFileSync(path),
            type: TYPES[extname(name)] ?? "application/octet-stream",
            immutable: url.startsWith("/assets/"),
          });
        }
      }
    };
    try {
      walk(dir);
    } catch {
      // Reported below as a missing index.html.
    }
    if (files.has("/index.html")) return new StaticFiles(files, null);
    const missing = `the console's front end is not built (no ${join(dir, "index.html")}): run \`pnpm --filter @frontier/console build:web\``;
    const page = `<!doctype html><meta charset="utf-8"><title>Frontier console</title><p>${escapeHtml(missing)}</p>`;
    return new StaticFiles(
      new Map([["/index.html", { body: Buffer.from(page), type: TYPES[".html"]!, immutable: false }]]),
      missing,
    );
  }

  /** The file at this URL path, else index.html. */
  get(path: string): StaticFile {
    return this.files.get(path) ?? this.files.get("/index.html")!;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
