/**
 * What a CLI command module exports.
 *
 * @module
 */
import type { ParseArgsConfig } from "node:util";
import type { Output } from "./_output.ts";

/** Flag definitions for node:util parseArgs. */
export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

/** Parsed flags, merged with the config file (flags win). */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/** A command's description and implementation. */
export interface Command {
  /** Command name. */
  name: string;
  /** One-line summary. */
  summary: string;
  /** Usage line after `memsnap`. */
  usage: string;
  /** Longer description lines. */
  description?: string[];
  /** Example invocations. */
  examples: string[];
  /** Flags (besides the global ones). */
  flags: FlagSpec;
  /** Descriptions of flags for help. */
  flagHelp: Record<string, string>;
  /** Min and max positionals. */
  positionals: [number, number];
  /** Whether the command reads the config file. @default true */
  usesConfig?: boolean;
  /** Runs the command; returns the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** What a command's `run` gets. */
export interface CommandContext {
  /** Flags merged with config. */
  flags: Flags;
  /** Positional arguments. */
  args: string[];
  /** Output helpers. */
  out: Output;
  /** The config file's directory (relative paths in it resolve from there). */
  configDir: string;
  /** Aborted on SIGINT. */
  signal: AbortSignal;
}
