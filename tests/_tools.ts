/**
 * Test helpers shared across the suite: interop tests that drive real CLIs.
 *
 * An interop test whose tool is missing is skipped (ignored) locally, but fails when
 * `MEMSNAP_REQUIRE_INTEROP=1` (set by `.ci/run`), so CI never silently skips one.
 *
 * @module
 */

const found = new Map<string, boolean>();

/** Whether a command is on PATH. */
export function hasTool(name: string): boolean {
  let ok = found.get(name);
  if (ok === undefined) {
    try {
      const r = new Deno.Command("sh", {
        args: ["-c", `command -v ${name}`],
        stdout: "null",
        stderr: "null",
      })
        .outputSync();
      ok = r.success;
    } catch {
      ok = false;
    }
    found.set(name, ok);
  }
  return ok;
}

/** Registers a test that needs the given tools (name is prefixed with `interop:`). */
export function interopTest(
  name: string,
  tools: string[],
  fn: (t: Deno.TestContext) => Promise<void> | void,
): void {
  const missing = tools.filter((t) => !hasTool(t));
  const required = Deno.env.get("MEMSNAP_REQUIRE_INTEROP") === "1";
  if (missing.length > 0 && required) {
    Deno.test(`interop: ${name}`, () => {
      throw new Error(`Cannot run interop test: missing tools ${missing.join(", ")}`);
    });
    return;
  }
  Deno.test({ name: `interop: ${name}`, ignore: missing.length > 0, fn });
}

/** Runs a command; returns stdout, stderr, code. Throws if it cannot start. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; stdin?: Uint8Array; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: Uint8Array; stderr: string; text: string }> {
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin) {
    const w = child.stdin.getWriter();
    await w.write(options.stdin);
    await w.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
    text: new TextDecoder().decode(out.stdout),
  };
}

/** An environment for git in tests: a fixed identity, no system or global config. */
export const GIT_TEST_ENV: Record<string, string> = {
  GIT_AUTHOR_NAME: "a",
  GIT_AUTHOR_EMAIL: "a@example.com",
  GIT_COMMITTER_NAME: "a",
  GIT_COMMITTER_EMAIL: "a@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

/**
 * Creates a git repository at `dir` (branch main, {@linkcode GIT_TEST_ENV}) and returns a
 * runner of git commands in it that throws on failure and returns stdout.
 */
export async function initGitRepo(
  dir: string,
): Promise<(...args: string[]) => Promise<string>> {
  const env = GIT_TEST_ENV;
  const init = await run("git", ["init", "-q", "-b", "main", dir], { env });
  if (init.code !== 0) throw new Error(`git init: ${init.stderr}`);
  return async (...args: string[]) => {
    const r = await run("git", ["-C", dir, ...args], { env });
    if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.text;
  };
}

/** Creates a temp dir removed when the returned handle is disposed. */
export async function tempDir(
  prefix = "memsnap-test-",
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}
