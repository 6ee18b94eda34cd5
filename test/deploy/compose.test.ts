/**
 * docker-compose.yml and its Dockerfile, checked without Docker: the file
 * parses, runs NATS with JetStream, shard processes and a coordinator as
 * separate services, and every Frontier service's command is a real
 * `frontier` subcommand whose options the CLI accepts.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { COMMANDS, isCommand, parseCommandLine as parseArgs } from "@frontier/cli";
import { SLOT_COUNT } from "@frontier/protocol";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const root = resolve(import.meta.dirname, "../..");

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown> | string[];
  volumes?: string[];
  profiles?: string[];
}

const compose = parseYaml(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");

/** Services that run the frontier image: their command is a frontier subcommand line. */
const frontierServices = Object.entries(services).filter(([, s]) => s.build !== undefined);

function argv(s: Service): string[] {
  expect(Array.isArray(s.command), "commands are exec-form lists").toBe(true);
  return s.command as string[];
}

describe("docker-compose.yml", () => {
  it("runs NATS with JetStream, storing on a volume", () => {
    const nats = services["nats"];
    expect(nats?.image).toMatch(/^nats:/);
    const command = argv(nats!);
    expect(command.some((a) => a === "--jetstream" || a === "-js")).toBe(true);
    const store = command[command.findIndex((a) => a === "--store_dir" || a === "-sd") + 1];
    expect(nats?.volumes?.some((v) => v.endsWith(`:${store}`))).toBe(true);
  });

  it("runs at least two shard processes and a coordinator, as separate services", () => {
    const roles = frontierServices.filter(([, s]) => s.profiles === undefined).map(([, s]) => argv(s)[0]);
    expect(roles.filter((r) => r === "shard").length).toBeGreaterThanOrEqual(2);
    expect(roles.filter((r) => r === "coordinator")).toHaveLength(1);
  });

  it("names a real frontier subcommand, with options the CLI accepts, in every Frontier service", () => {
    for (const [name, s] of frontierServices) {
      const [command, ...rest] = argv(s);
      if (command === "--help") continue;
      expect(isCommand(command ?? ""), `${name}: ${command}`).toBe(true);
      const def = COMMANDS[command as keyof typeof COMMANDS];
      expect(() => parseArgs(command!, rest, def.options), name).not.toThrow();
    }
  });

  it("gives each shard its own id, volume and share of the slots, covering every slot once", () => {
    const shards = frontierServices.filter(([, s]) => argv(s)[0] === "shard");
    const ids = new Set<string>();
    const volumes = new Set<string>();
    const owner = new Map<number, string>();
    for (const [name, s] of shards) {
      const args = argv(s);
      const option = (o: string) => args[args.indexOf(o) + 1];
      ids.add(option("--id")!);
      // Its data volume: the read-only mounts (the credentials) are shared.
      for (const v of s.volumes ?? []) if (!v.endsWith(":ro")) volumes.add(v.split(":")[0]!);
      const [index, of] = (option("--slots") ?? "").split("/").map(Number);
      expect(of, `${name} --slots I/N`).toBe(shards.length);
      for (let n = index!; n < SLOT_COUNT; n += of!) {
        expect(owner.has(n), `slot ${n} twice`).toBe(false);
        owner.set(n, name);
      }
    }
    expect(ids.size).toBe(shards.length);
    expect(volumes.size).toBe(shards.length);
    expect(owner.size).toBe(SLOT_COUNT);
  });

  it("points every Frontier service at the NATS service, and starts it after NATS", () => {
    for (const [name, s] of frontierServices) {
      if (argv(s)[0] === "credentials") continue; // it runs before NATS, which needs what it makes
      expect(s.environment?.["FRONTIER_NATS_URL"], name).toBe("nats://nats:4222");
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      expect(deps, name).toContain("nats");
    }
  });

  it("admits each role with its own key: credentials made first, NATS started with them, every service connecting as its role", () => {
    const maker = frontierServices.find(([, s]) => argv(s)[0] === "credentials");
    expect(maker, "a credentials service").toBeDefined();
    const made = argv(maker![1]);
    const option = (args: string[], o: string) => args[args.indexOf(o) + 1];
    const dir = option(made, "--dir")!;
    const volume = maker![1].volumes?.find((v) => v.split(":")[1] === dir)?.split(":")[0];
    expect(volume, "the credentials directory is a volume").toBeDefined();
    // NATS reads the auth.conf made there, after it is made.
    const nats = services["nats"]!;
    const config = option(argv(nats), "--config") ?? option(argv(nats), "-c");
    expect(config).toBe(`${dir}/auth.conf`);
    expect(nats.volumes).toContain(`${volume}:${dir}:ro`);
    expect((nats.depends_on as Record<string, { condition: string }>)[maker![0]]?.condition).toBe(
      "service_completed_successfully",
    );
    // Every shard service's id has a key; every other Frontier service finds the directory.
    const keyed = new Set(option(made, "--shards")!.split(","));
    for (const [name, s] of frontierServices) {
      const args = argv(s);
      if (args[0] === "credentials") continue;
      expect(s.environment?.["FRONTIER_CREDENTIALS"], name).toBe(dir);
      expect(s.volumes, name).toContain(`${volume}:${dir}:ro`);
      if (args[0] === "shard") expect(keyed.has(option(args, "--id")!), name).toBe(true);
    }
    expect(dockerfile).toMatch(new RegExp(`mkdir -p[^\n]*${dir}[^\n]*chown node:node[^\n]*${dir}`));
  });

  it("declares the named volumes it mounts", () => {
    for (const [, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) expect(Object.keys(compose.volumes ?? {})).toContain(v.split(":")[0]);
    }
  });
});

describe("Dockerfile", () => {
  it("builds the monorepo and runs the built CLI, which the cli package declares as its bin", () => {
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile/);
    expect(dockerfile).toMatch(/pnpm build/);
    const entry = /ENTRYPOINT \["node", "\/app\/(packages\/cli\/dist\/bin\.js)"\]/.exec(dockerfile);
    expect(entry).not.toBeNull();
    const pkg = JSON.parse(readFileSync(join(root, "packages/cli/package.json"), "utf8"));
    expect(`packages/cli/${pkg.bin.frontier.replace(/^\.\//, "")}`).toBe(entry![1]);
    expect(existsSync(join(root, "packages/cli/src/bin.ts"))).toBe(true);
    // Every workspace package's manifest is copied before the install.
    const packages = readdirSync(join(root, "packages")).filter((p) =>
      existsSync(join(root, "packages", p, "package.json")),
    );
    expect(packages.length).toBeGreaterThanOrEqual(8);
    for (const p of packages) {
      expect(dockerfile).toContain(`COPY packages/${p}/package.json packages/${p}/`);
    }
  });
});
