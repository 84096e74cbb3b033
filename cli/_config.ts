/**
 * The config file, `memsnap.json`: the same names as the flags, in snake_case. Flags win.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import type { Flags, FlagSpec } from "./_spec.ts";

/** Every key a config file may hold, and its JSON type. */
const KEYS: Record<string, "string" | "boolean" | "number" | "map" | "list" | "redact" | "object"> =
  {
    store: "string",
    agent: "string",
    tenant: "string",
    label: "string",
    memdir: "string",
    include_ignored: "boolean",
    sqlite: "map",
    state: "map",
    max_user_version: "map",
    redact: "redact",
    recipients: "list",
    recipients_file: "string",
    identity: "list",
    sign: "string",
    pubkey: "string",
    require_signature: "boolean",
    skip_unchanged: "boolean",
    lock_timeout: "number",
    retention: "object",
  };

/** Keys whose values are file paths, resolved relative to the config file. */
const PATH_KEYS = new Set(["memdir", "recipients_file", "identity", "sign"]);

/** A loaded config, as flag values. */
export interface LoadedConfig {
  /** Flag-shaped values (maps become `name=path` lists). */
  flags: Flags;
  /** Directory of the config file (or cwd). */
  dir: string;
  /** The file read, if any. */
  path: string | undefined;
  /** The raw retention object, if any. */
  retention?: Record<string, unknown>;
}

function resolvePath(dir: string, p: string): string {
  if (p.startsWith("s3://") || isAbsolute(p)) return p;
  return resolve(dir, p);
}

/**
 * Loads the config file: `path` if given (must exist), else `./memsnap.json` if present.
 * Only keys the command has flags for are returned; unknown keys are an error.
 *
 * @param path The `--config` value.
 * @param commandFlags The command's flags.
 * @returns The config as flags.
 */
export function loadConfig(
  path: string | undefined,
  commandFlags: FlagSpec,
): LoadedConfig {
  const file = path ? resolve(path) : resolve("memsnap.json");
  let text: string;
  try {
    // Synchronous: nothing else runs yet, and an async read costs a hop to a blocking thread
    // (1-20 ms of wall on a loaded machine, for a file that is usually absent).
    text = Deno.readTextFileSync(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !path) {
      return { flags: {}, dir: Deno.cwd(), path: undefined };
    }
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`Cannot read the config file ${file}: it does not exist`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`Cannot read the config file ${file}: permission denied`);
    }
    throw new UsageError(`Cannot read the config file ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`Cannot parse the config file ${file}: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new UsageError(`Cannot use the config file ${file}: it must hold a JSON object`);
  }
  const dir = dirname(file);
  const flags: Flags = {};
  const result: LoadedConfig = { flags, dir, path: file };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const type = KEYS[key];
    if (!type) {
      throw new UsageError(`Cannot use the config file ${file}: unknown key "${key}"`, {
        hint: `known keys: ${Object.keys(KEYS).join(", ")}`,
      });
    }
    const bad = (want: string): never => {
      throw new UsageError(`Cannot use the config file ${file}: "${key}" must be ${want}`);
    };
    const flag = key.replaceAll("_", "-");
    let v: string | boolean | string[];
    switch (type) {
      case "string":
        if (typeof value !== "string" || value === "") bad("a non-empty string");
        v = PATH_KEYS.has(key) || key === "store"
          ? resolvePath(dir, value as string)
          : value as string;
        break;
      case "boolean":
        if (typeof value !== "boolean") bad("true or false");
        v = value as boolean;
        break;
      case "number":
        if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
          bad("a non-negative number");
        }
        v = String(value);
        break;
      case "list":
        if (typeof value === "string") v = [PATH_KEYS.has(key) ? resolvePath(dir, value) : value];
        else if (Array.isArray(value) && value.every((x) => typeof x === "string")) {
          v = (value as string[]).map((x) => PATH_KEYS.has(key) ? resolvePath(dir, x) : x);
        } else v = bad("a string or a list of strings");
        break;
      case "map": {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          bad('an object like {"name": "path"}');
        }
        const entries = Object.entries(value as Record<string, unknown>);
        v = entries.map(([n, p]) => {
          if (key === "max_user_version") {
            if (typeof p !== "number" || !Number.isInteger(p)) bad("an object of whole numbers");
            return `${n}=${p}`;
          }
          if (typeof p !== "string" || p === "") bad("an object of non-empty path strings");
          return `${n}=${resolvePath(dir, p as string)}`;
        });
        break;
      }
      case "redact":
        if (value === false) {
          flags["no-redact"] = true;
          continue;
        }
        if (value === true) {
          v = "default";
          break;
        }
        if (typeof value === "string") v = value;
        else if (Array.isArray(value) && value.every((x) => typeof x === "string")) {
          v = (value as string[]).join(",");
        } else v = bad("true, false, a pack list string, or a list of packs");
        break;
      case "object":
        if (typeof value !== "object" || value === null || Array.isArray(value)) bad("an object");
        result.retention = value as Record<string, unknown>;
        for (const [rk, rv] of Object.entries(value as Record<string, unknown>)) {
          const rf = rk.replaceAll("_", "-");
          if (rf in commandFlags) flags[rf] = Array.isArray(rv) ? rv.map(String) : String(rv);
        }
        continue;
    }
    if (flag in commandFlags) flags[flag] = v!;
  }
  return result;
}

/** Parses repeated `name=value` flags into a map, with a clear error. */
export function parseMapFlag(flag: string, values: string[] | undefined): Record<string, string> {
  const map: Record<string, string> = {};
  for (const item of values ?? []) {
    const i = item.indexOf("=");
    if (i <= 0 || i === item.length - 1) {
      throw new UsageError(
        `Cannot parse --${flag} "${item}": expected NAME=VALUE, e.g. --${flag} long_term=./db.sqlite`,
      );
    }
    const name = item.slice(0, i);
    if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(name)) {
      throw new UsageError(
        `Cannot use --${flag} name "${name}": use lowercase letters, digits, "_", "." or "-"`,
      );
    }
    map[name] = item.slice(i + 1);
  }
  return map;
}
