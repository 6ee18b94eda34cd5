/**
 * The package boundaries of architecture.json, held to the packages: every
 * workspace package is in it; each package's @frontier dependencies are ones
 * it may use (knip, in `pnpm lint`, holds the dependencies to the imports);
 * testing packages only as devDependencies elsewhere; the allowed graph has
 * no cycle; and biome refuses deep imports into another package's src.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
interface Architecture {
  readonly packages: Record<string, { readonly mayUse: readonly string[] }>;
  readonly testing: readonly string[];
}
const architecture = JSON.parse(readFileSync(join(root, "architecture.json"), "utf8")) as Architecture;
const names = readdirSync(join(root, "packages")).filter((p) => {
  try {
    readFileSync(join(root, "packages", p, "package.json"));
    return true;
  } catch {
    return false;
  }
});
const manifest = (p: string) =>
  JSON.parse(readFileSync(join(root, "packages", p, "package.json"), "utf8")) as {
    name: string;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
const ours = (deps: Record<string, string> | undefined) =>
  Object.keys(deps ?? {})
    .filter((d) => d.startsWith("@frontier/"))
    .map((d) => d.slice("@frontier/".length));

describe("package boundaries (architecture.json)", () => {
  it("names every workspace package, and nothing else", () => {
    expect(Object.keys(architecture.packages).sort()).toEqual([...names].sort());
    for (const p of names) expect(manifest(p).name).toBe(`@frontier/${p}`);
  });

  it("lets each package depend only on what it may use (testing packages: as devDependencies)", () => {
    for (const p of names) {
      const allowed = new Set(architecture.packages[p]!.mayUse);
      for (const d of ours(manifest(p).dependencies)) expect([p, d, allowed.has(d)]).toEqual([p, d, true]);
      for (const d of ours(manifest(p).devDependencies)) {
        expect([p, d, allowed.has(d) || architecture.testing.includes(d)]).toEqual([p, d, true]);
      }
    }
  });

  it("allows no cycle", () => {
    const state = new Map<string, "visiting" | "done">();
    const visit = (p: string, path: readonly string[]): void => {
      if (state.get(p) === "done") return;
      expect(state.get(p), `cycle: ${[...path, p].join(" -> ")}`).not.toBe("visiting");
      state.set(p, "visiting");
      for (const d of architecture.packages[p]?.mayUse ?? []) visit(d, [...path, p]);
      state.set(p, "done");
    };
    for (const p of names) visit(p, []);
  });

  it("has biome refuse deep imports into another package's src", () => {
    const biome = JSON.parse(readFileSync(join(root, "biome.json"), "utf8"));
    const text = JSON.stringify(biome.overrides ?? []);
    expect(text).toContain("noRestrictedImports");
    expect(text).toContain("@frontier/*/src/**");
    expect(text).toContain("../../*/src/**");
  });
});
