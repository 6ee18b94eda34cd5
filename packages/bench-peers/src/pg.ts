/**
 * A fresh PostgreSQL database per system and run on the machine's server,
 * dropped at the end (also on Ctrl-C, through the cleanup registry).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { onCleanup, sampleByName } from "./proc.js";

export interface FreshDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database (closing every connection to it). Idempotent. */
  drop(): Promise<void>;
}

function withDatabase(adminUrl: string, database: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createDatabase(adminUrl: string, tag: string): Promise<FreshDatabase> {
  const name = `bench_${tag}_${process.pid}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const drop = onCleanup(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  return { name, url: withDatabase(adminUrl, name), drop };
}

/** Every `postgres` process of the machine: a backend's work cannot be told from another's. */
export function samplePostgres() {
  return sampleByName("postgres");
}

export const POSTGRES_CPU_NOTE =
  "all postgres processes of the machine (backends, walwriter, checkpointer, ...), summed: the backends serving this system cannot be told apart";

export async function postgresSettings(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const s of ["server_version", "fsync", "synchronous_commit", "wal_sync_method"]) {
      const r = await c.query<Record<string, string>>(`SHOW ${s}`);
      out[s] = String(Object.values(r.rows[0] ?? {})[0]);
    }
    return out;
  } finally {
    await c.end();
  }
}
