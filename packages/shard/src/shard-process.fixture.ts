/**
 * A shard in a child process (fixtures/shard-process.ts) driven over
 * stdin/stdout, for the tests that need a real process to kill.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const fixture = join(packageDir, "fixtures", "shard-process.ts");

export interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { code?: string; cause?: string; message?: string };
}

/** A shard process driven over stdin/stdout (fixtures/shard-process.ts). */
export class ShardProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  readonly exited: Promise<number | null>;
  stderr = "";

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const reply = JSON.parse(line) as Reply;
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
    child.stderr.on("data", (chunk) => {
      this.stderr += String(chunk);
    });
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  }

  /** Starts the process; with `fileSizeLimitKb`, under `ulimit -f` so that its writes hit a limit. */
  static start(fileSizeLimitKb?: number): ShardProcess {
    const node = [process.execPath, "--conditions=source", "--import", "tsx", fixture];
    const child =
      fileSizeLimitKb === undefined
        ? spawn(node[0]!, node.slice(1), { cwd: packageDir })
        : spawn("bash", ["-c", `ulimit -f ${fileSizeLimitKb} && exec "$0" "$@"`, ...node], {
            cwd: packageDir,
          });
    return new ShardProcess(child);
  }

  call(op: string, ...args: unknown[]): Promise<Reply> {
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.exited.then((code) => reject(new Error(`shard process exited (${code}): ${this.stderr}`)));
    });
    this.child.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
    return reply;
  }

  async ok(op: string, ...args: unknown[]): Promise<unknown> {
    const reply = await this.call(op, ...args);
    if (!reply.ok) throw new Error(`${op} failed: ${JSON.stringify(reply.error)}`);
    return reply.value;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
