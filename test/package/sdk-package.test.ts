/**
 * The SDK as someone outside this repository gets it: the client and the
 * workspace packages it depends on packed with `pnpm pack` (which builds
 * them first: their `prepack`), the tarballs installed with npm into a fresh
 * project in a temporary directory, and packages/client/README.md's example
 * run there with plain `node` (no loader, no export condition) against
 * `frontier start`, then typechecked as TypeScript against the packages'
 * declarations. What the packages' `exports`, `files` and `publishConfig`
 * say is what this proves.
 *
 * npm fetches the third-party dependencies (@nats-io/*, msgpackr, @types/node)
 * from its cache when it has them (--prefer-offline) and from the registry
 * otherwise, as the repository's own `pnpm install` does.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CliResult,
  freePort,
  REPO_ROOT,
  runToEnd,
  type StartedFrontier,
  startFrontier,
} from "../e2e/harness.js";

/** The SDK and, in dependency order, the workspace packages it needs at run time. */
const PACKED = ["core", "protocol", "transport", "client"] as const;

/** `command args…` to completion, with nothing of this process's loaders or conditions. */
function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // vitest's workers may carry loader flags; a user's shell does not.
  delete env["NODE_OPTIONS"];
  return runToEnd(command, args, { cwd: options.cwd, env, timeoutMs: options.timeoutMs ?? 120_000 });
}

/** The client README's example: its only ```js block. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(REPO_ROOT, "packages/client/README.md"), "utf8");
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? "");
  expect(blocks, "packages/client/README.md has exactly one js example").toHaveLength(1);
  return blocks[0] ?? "";
}

let dir: string;
let project: string;
let started: StartedFrontier | undefined;
let natsUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "frontier-sdk-package-"));
  const tarballs = join(dir, "tarballs");
  project = join(dir, "project");
  await mkdir(project);
  for (const name of PACKED) {
    const packed = await run("pnpm", ["pack", "--pack-destination", tarballs], {
      cwd: join(REPO_ROOT, "packages", name),
    });
    expect(packed.code, `pnpm pack @frontier/${name}: ${packed.stderr}`).toBe(0);
  }
  const files = (await readdir(tarballs)).filter((f) => f.endsWith(".tgz")).sort();
  expect(files).toEqual(PACKED.map((name) => `frontier-${name}-0.1.0.tgz`).sort());
  await writeFile(
    join(project, "package.json"),
    `${JSON.stringify({ name: "uses-frontier", private: true, type: "module" }, null, 2)}\n`,
  );
  const installed = await run(
    "npm",
    [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      ...files.map((f) => join(tarballs, f)),
      "@types/node@20",
    ],
    { cwd: project, timeoutMs: 240_000 },
  );
  expect(installed.code, installed.stderr).toBe(0);

  // `frontier start` in the project's directory, as a user would: its keys land in .frontier/credentials.
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  started = await startFrontier([
    "--nats",
    natsUrl,
    "--data",
    join(project, ".frontier"),
    "--shards",
    "2",
    "--no-metrics",
  ]);
}, 300_000);

afterAll(async () => {
  await started?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("@frontier/client packed and installed outside the repository", () => {
  it("installs dist and declarations only, with no export condition that points at sources", async () => {
    for (const name of PACKED) {
      const root = join(project, "node_modules", "@frontier", name);
      const manifest = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
        exports: Record<string, Record<string, string>>;
        dependencies?: Record<string, string>;
      };
      expect(JSON.stringify(manifest.exports)).not.toContain("source");
      expect(manifest.exports["."]).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" });
      for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
        expect(range, `${name} -> ${dep}`).not.toMatch(/^workspace:/);
      }
      expect((await readdir(root)).sort()).toEqual(["LICENSE", "README.md", "dist", "package.json"]);
    }
  });

  it("runs the README example with plain node against `frontier start`", async () => {
    await writeFile(join(project, "example.mjs"), await readmeExample());
    const r = await run(process.execPath, ["example.mjs"], {
      cwd: project,
      env: { FRONTIER_NATS_URL: natsUrl },
      timeoutMs: 60_000,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    // fetch first: build depends on it, so it was not even leased before fetch completed.
    expect(lines).toEqual([
      expect.stringMatching(/^working on fetch-\w+ \(attempt 1\), payload undefined$/),
      expect.stringMatching(/^completed fetch-\w+$/),
      expect.stringMatching(/^working on build-\w+ \(attempt 1\), payload {"target":"linux-x64"}$/),
      expect.stringMatching(/^completed build-\w+$/),
    ]);
  }, 90_000);

  it("typechecks the README example as TypeScript against the packed declarations, which do catch misuse", async () => {
    const example = await readmeExample();
    await writeFile(join(project, "example.mts"), example);
    // A typed API, not `any`: a task without a deadline and an unknown option are refused.
    await writeFile(
      join(project, "misuse.mts"),
      [
        'import { connect } from "@frontier/client";',
        "const client = await connect({ cluster: 'default' });",
        'await client.submit([{ id: "no-deadline" }]);',
        "client.work(async () => {}, { concurrency: 1, leaseSeconds: 30 });",
        "",
      ].join("\n"),
    );
    // One compiler run for both (loading @types/node is most of its time): errors in misuse.mts only.
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          types: ["node"],
        },
        files: ["example.mts", "misuse.mts"],
      }),
    );
    const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
    const r = await run(process.execPath, [tsc, "-p", "tsconfig.json", "--pretty", "false"], {
      cwd: project,
    });
    expect(r.code).not.toBe(0);
    const errors = r.stdout.trim().split("\n");
    expect(errors, r.stdout).toEqual([
      expect.stringMatching(/^misuse\.mts\(3,\d+\): error TS2741: Property 'deadline' is missing/),
      expect.stringMatching(/^misuse\.mts\(4,\d+\): error TS2353: .*'leaseSeconds'/),
    ]);
  }, 90_000);
});
