/**
 * Helpers of the reliability tests (fuzz, crash, faults, races, bad input): running the CLI as
 * a child process, the flags of a sample memory, run counts from the environment.
 *
 * @module
 */
import { join } from "node:path";
import { generateSampleMemory, type SampleMemory } from "../examples/sample_memory.ts";
import { assert } from "./_assert.ts";

/** Path of the CLI entry. */
export const CLI: string = new URL("../cli.ts", import.meta.url).pathname;

/** The outcome of one CLI run. */
export interface CliRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** The last stdout line parsed as JSON, if it is JSON. */
  json: unknown;
}

/** Starts `memsnap <args>` as a child process. */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
    ...(cwd ? { cwd } : {}),
  }).spawn();
}

/** Waits for a child started by {@linkcode spawnCli} and collects its output. */
export async function finish(child: Deno.ChildProcess): Promise<CliRun> {
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  let json: unknown = undefined;
  try {
    json = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    // not JSON
  }
  return { code: out.code, stdout, stderr: new TextDecoder().decode(out.stderr), json };
}

/** Runs `memsnap <args>` to completion. */
export function memsnap(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<CliRun> {
  return finish(spawnCli(args, env, cwd));
}

/** The `--memdir/--sqlite/--state` flags of a sample memory. */
export function sourceFlags(mem: SampleMemory): string[] {
  return [
    "--memdir",
    mem.memdir,
    ...Object.entries(mem.sqlite).flatMap(([k, v]) => ["--sqlite", `${k}=${v}`]),
    ...Object.entries(mem.state).flatMap(([k, v]) => ["--state", `${k}=${v}`]),
  ];
}

/** A temp root with a sample memory and a store path inside it. */
export interface Fixture extends AsyncDisposable {
  /** The temp root. */
  root: string;
  /** The sample memory. */
  mem: SampleMemory;
  /** The store directory. */
  store: string;
  /** `--store STORE --agent a1`. */
  base: string[];
}

/** Creates a sample memory (and store path) in a fresh temp root, removed on dispose. */
export async function fixture(
  options: { notes?: number; facts?: number; prefix?: string } = {},
): Promise<Fixture> {
  const root = await Deno.makeTempDir({ prefix: options.prefix ?? "memsnap-rel-" });
  const mem = await generateSampleMemory(join(root, "agent"), {
    notes: options.notes ?? 8,
    facts: options.facts ?? 40,
  });
  const store = join(root, "store");
  return {
    root,
    mem,
    store,
    base: ["--store", store, "--agent", "a1"],
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/** A whole number from an environment variable, or the default. */
export function envCount(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`Cannot use ${name}="${v}"`);
  return n;
}

/** A seeded PRNG (mulberry32), so a failing run can be replayed with its seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The seed of this run: `MEMSNAP_SEED` or a random one (printed so a failure can be replayed). */
export function runSeed(what: string): number {
  const v = Deno.env.get("MEMSNAP_SEED");
  const seed = v ? Number(v) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${what}: MEMSNAP_SEED=${seed}`);
  return seed;
}

/** Asserts a CLI run failed with one clear error line, the exit code, and no stack. */
export function assertCleanError(r: CliRun, code: number, re: RegExp, what: string): void {
  const ctx = `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`;
  assert(r.code === code, `expected exit ${code}; ${ctx}`);
  assert(/^error: Cannot /m.test(r.stderr), `no "error: Cannot" line; ${ctx}`);
  assert(re.test(r.stderr), `message does not match ${re}; ${ctx}`);
  assert(!/\n\s+at /.test(r.stderr) && !/^\s+at /m.test(r.stderr), `stack printed; ${ctx}`);
  const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert(errorLines.length === 1, `expected one error line; ${ctx}`);
}

/** Asserts a `--json` CLI run failed with an error object of the exit code. */
export function assertJsonError(r: CliRun, code: number, what: string): { code: string } {
  const ctx = `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`;
  assert(r.code === code, `expected exit ${code}; ${ctx}`);
  const e = r.json as
    | { type?: string; code?: string; exit_code?: number; message?: string; stack?: string }
    | undefined;
  assert(e && e.type === "error", `no JSON error object; ${ctx}`);
  assert(e.exit_code === code, `exit_code ${e.exit_code}; ${ctx}`);
  assert(typeof e.code === "string" && e.code.length > 0, `no code; ${ctx}`);
  assert(typeof e.message === "string" && e.message.startsWith("Cannot "), `message; ${ctx}`);
  assert(e.stack === undefined, `stack in JSON; ${ctx}`);
  return e as { code: string };
}

/** Every path under `dir`, relative, sorted (directories too). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory) await walk(join(d, e.name), r);
    }
  };
  await walk(dir, "");
  return out.sort();
}
