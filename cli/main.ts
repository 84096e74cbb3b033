/**
 * CLI entry: command registry, flag parsing, config merging, and the single catch.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ExitCode, exitCodeOf, MemsnapError, UsageError } from "../errors.ts";
import { Output } from "./_output.ts";
import type { Command, Flags, FlagSpec } from "./_spec.ts";
import { loadConfig } from "./_config.ts";
import { lazy } from "./_lazy.ts";
import { whileTrimming } from "../_malloc_trim.ts";

/** Commands and their one-line summaries; each runs from `cli/<name>.ts`. */
const COMMAND_SUMMARIES: [name: string, summary: string][] = [
  ["snapshot", "Take a snapshot of an agent's memory"],
  ["list", "List snapshots in a store"],
  ["inspect", "Show a bundle's manifest"],
  ["verify", "Verify a bundle's hashes and signature"],
  ["restore", "Restore a snapshot atomically"],
  ["recover", "Complete or roll back an interrupted restore"],
  ["diff", "Show what changed between two snapshots"],
  ["export", "Copy a bundle out of the store"],
  ["import", "Verify a bundle file and add it to the store"],
  ["delete", "Delete a snapshot"],
  ["pin", "Pin a snapshot so prune never removes it"],
  ["unpin", "Unpin a snapshot"],
  ["prune", "Remove snapshots by a retention policy"],
  ["reindex", "Rebuild the store's catalog from its bundles"],
  ["log", "Show the store's audit log of restores"],
  ["keygen", "Create signing and encryption keys"],
  ["scan", "Show what redaction would remove from live memory"],
  ["doctor", "Check config, store, keys, locks and catalog"],
];

/**
 * Commands and their modules. Only the command that runs is imported (see `_lazy.ts`: a literal
 * `import()` of every command would make Deno load the whole package's graph at start-up).
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> =
  Object.fromEntries(
    COMMAND_SUMMARIES.map(([name, summary]) => [
      name,
      { summary, load: () => lazy<{ command: Command }>(`cli/${name}.ts`) },
    ]),
  );

/** Flags every command accepts. */
export const GLOBAL_FLAGS: FlagSpec = {
  json: { type: "boolean" },
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
  quiet: { type: "boolean", short: "q" },
};

const GLOBAL_HELP: Record<string, string> = {
  json: "print results (and progress, on stderr) as JSON",
  config: "config file (default ./memsnap.json if present)",
  help: "show help",
  quiet: "no progress output",
};

function topHelp(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return [
    "memsnap: atomic, verifiable snapshots of AI agent memory",
    "",
    "Usage: memsnap <command> [flags]",
    "",
    "Commands:",
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n]!.summary}`),
    "",
    "Run `memsnap <command> --help` for a command's flags and examples.",
    "Exit codes: 0 ok, 1 internal error, 2 usage, 3 verification failed, 4 refused, 5 locked, 130 cancelled.",
  ].join("\n");
}

/** The help text of one command. */
export function commandHelp(c: Command): string {
  const lines = [`memsnap ${c.name}: ${c.summary}`, "", `Usage: memsnap ${c.usage}`, ""];
  if (c.description) lines.push(...c.description, "");
  lines.push("Flags:");
  const all = { ...c.flags, ...GLOBAL_FLAGS };
  const help = { ...c.flagHelp, ...GLOBAL_HELP };
  const rows = Object.entries(all).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : "";
    const arg = spec.type === "string" ? ` <${name === "store" ? "dir|s3://…" : "value"}>` : "";
    const rep = spec.multiple ? " (repeatable)" : "";
    return [`  ${short}--${name}${arg}`, `${help[name] ?? ""}${rep}`] as const;
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [a, b] of rows) lines.push(`${a.padEnd(w)}  ${b}`);
  lines.push("", "Examples:", ...c.examples.map((e) => `  ${e}`));
  return lines.join("\n");
}

/**
 * Runs the CLI.
 *
 * @param argv The arguments after the program name.
 * @returns The exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const jsonMode = argv.includes("--json");
  const out = new Output(jsonMode, argv.includes("--quiet") || argv.includes("-q"));
  const controller = new AbortController();
  let interrupted = 0;
  const onSigint = (): void => {
    interrupted++;
    if (interrupted > 1) Deno.exit(ExitCode.Cancelled);
    controller.abort(new DOMException("Interrupted", "AbortError"));
  };
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    // Not supported (e.g. no signal support): ignore.
  }
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const target = name === "help" ? rest[0] : undefined;
      if (target && Object.hasOwn(COMMANDS, target)) {
        out.text(commandHelp((await COMMANDS[target]!.load()).command));
      } else {
        console.log(topHelp());
      }
      return name === undefined ? ExitCode.Usage : ExitCode.Ok;
    }
    if (name === "--version" || name === "version") {
      const { MEMSNAP_VERSION } = await import("../version.ts");
      console.log(`memsnap ${MEMSNAP_VERSION}`);
      return ExitCode.Ok;
    }
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) {
      const near = Object.keys(COMMANDS).find((c) => c.startsWith(name.slice(0, 3)));
      throw new UsageError(`Cannot run "${name}": no such command`, {
        hint: near
          ? `did you mean "memsnap ${near}"? Run "memsnap --help" for the list`
          : `run "memsnap --help"`,
      });
    }
    const { command } = await entry.load();
    const options = { ...command.flags, ...GLOBAL_FLAGS };
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
    } catch (e) {
      const msg = (e as Error).message.replace(/\. To specify a positional.*$/s, "").replace(
        /^Unknown option/,
        "unknown flag",
      );
      throw new UsageError(`Cannot parse the flags of "${name}": ${msg}`, {
        hint: `run "memsnap ${name} --help"`,
      });
    }
    const values = parsed.values as Flags;
    if (values.help) {
      out.text(commandHelp(command));
      return ExitCode.Ok;
    }
    const [min, max] = command.positionals;
    if (parsed.positionals.length < min || parsed.positionals.length > max) {
      throw new UsageError(
        `Cannot run "${name}": expected ${
          min === max ? min : `${min} to ${max}`
        } argument(s), got ${parsed.positionals.length}`,
        { hint: `usage: memsnap ${command.usage}` },
      );
    }
    let flags = values;
    let configDir = Deno.cwd();
    if (command.usesConfig !== false) {
      const loaded = loadConfig(values.config as string | undefined, command.flags);
      flags = { ...loaded.flags, ...stripUndefined(values) };
      configDir = loaded.dir;
    }
    // Long commands (verify, import, export run without a snapshotter) return freed native
    // memory as they go; see _malloc_trim.ts.
    const code = await whileTrimming(() =>
      command.run({
        flags,
        args: parsed.positionals,
        out,
        configDir,
        signal: controller.signal,
      })
    );
    out.done();
    return code;
  } catch (error) {
    out.done();
    return report(out, error, argv[0]);
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch {
      // ignore
    }
  }
}

function stripUndefined(v: Flags): Flags {
  const r: Flags = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) r[k] = x;
  return r;
}

/** OS error codes of a path of the wrong kind or not permitted: the user's to fix (exit 2). */
const PATH_CODES = new Set(["EISDIR", "ENOTDIR", "EACCES", "EPERM"]);
/** OS error codes of a full, read-only or failing disk: not bugs, but not usage either. */
const DISK_CODES = new Set(["ENOSPC", "EDQUOT", "EROFS", "EIO", "EMFILE", "ENFILE"]);

/**
 * The environment's fault behind an otherwise internal error, looking through `cause`: a disk
 * that is full or failing (SQLite's "database or disk is full" too), or a path of the wrong
 * kind. Such errors print one line without a stack.
 */
function environmentFault(error: unknown): { kind: "io_error" | "bad_path" } | undefined {
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 8; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && DISK_CODES.has(code)) return { kind: "io_error" };
    if (typeof code === "string" && PATH_CODES.has(code)) return { kind: "bad_path" };
    if (/database or disk is full/.test(e.message)) return { kind: "io_error" };
  }
  return undefined;
}

/** Prints an error as one clear line (JSON in JSON mode); stack only for internal errors. */
export function report(out: Output, error: unknown, command?: string): number {
  let code: number = exitCodeOf(error);
  const fault = code === ExitCode.Internal ? environmentFault(error) : undefined;
  if (fault?.kind === "bad_path") code = ExitCode.Usage;
  // A stack only for bugs: not for the environment's faults, nor for memsnap's own errors that
  // carry a specific code (e.g. rollback_failed).
  const internal = code === ExitCode.Internal && !fault &&
    !(error instanceof MemsnapError && error.code !== "internal");
  let message = error instanceof Error ? error.message : String(error);
  if (fault && !message.startsWith("Cannot ")) {
    message = `Cannot run "${command ?? "memsnap"}": ${message.charAt(0).toLowerCase()}${
      message.slice(1)
    }`;
  }
  const hint = (error instanceof MemsnapError ? error.hint : undefined) ??
    (fault?.kind === "io_error"
      ? "free space on the disk (or fix it) and run the command again"
      : undefined);
  if (out.json) {
    const payload: Record<string, unknown> = {
      type: "error",
      code: fault
        ? fault.kind
        : error instanceof MemsnapError
        ? error.code
        : (code === ExitCode.Cancelled ? "cancelled" : "internal"),
      exit_code: code,
      message,
    };
    if (hint) payload.hint = hint;
    const failures = (error as { failures?: unknown }).failures;
    if (Array.isArray(failures) && failures.length > 0) payload.failures = failures;
    if (internal && error instanceof Error) payload.stack = error.stack;
    console.log(JSON.stringify(payload));
  } else {
    console.error(`error: ${message}`);
    const failures =
      (error as { failures?: { check: string; path?: string; detail: string }[] }).failures;
    if (Array.isArray(failures) && failures.length > 1) {
      for (const f of failures.slice(0, 20)) {
        console.error(`  - ${f.path ? f.path + ": " : ""}${f.detail}`);
      }
      if (failures.length > 20) console.error(`  … and ${failures.length - 20} more`);
    }
    if (hint) console.error(`hint: ${hint}`);
    if (internal && error instanceof Error && error.stack) console.error(error.stack);
  }
  return code;
}
