// The front end: web/ built into dist/web as static files the server ships
// (no CDN at run time). Preact's JSX runtime; relative asset URLs so the
// console works behind any path prefix.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  root: resolve(import.meta.dirname, "web"),
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: resolve(import.meta.dirname, "dist/web"),
    emptyOutDir: true,
    // One small bundle: no inline scripts or styles (the server's CSP allows none).
    assetsInlineLimit: 0,
  },
});
