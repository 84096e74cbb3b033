/**
 * Runs the real CLI (`cli.ts`) in a subprocess, for end-to-end tests.
 *
 * @module
 */

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** The outcome of one CLI run. */
export interface CliRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** The last stdout line parsed as JSON (with `--json`), else `undefined`. */
  json: unknown;
}

/** Runs `memsnap <args>` with `NO_COLOR=1` and the given extra environment. */
export async function memsnap(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  let json: unknown = undefined;
  try {
    json = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    // not JSON
  }
  return { code: out.code, stdout, stderr: new TextDecoder().decode(out.stderr), json };
}
