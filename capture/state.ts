/**
 * The state plugin: JSON state files and runtime values, `state/<name>.json`.
 *
 * @module
 */
import { posix } from "node:path";
import { NotFoundError, UsageError } from "../errors.ts";
import type { JsonValue } from "../bundle/types.ts";
import type {
  CaptureContext,
  CapturePlugin,
  CaptureResult,
  RestoreContext,
  RestorePlanEntry,
} from "./types.ts";
import { jsonErrorPosition } from "./_json_position.ts";
import { canonicalJson } from "../bundle/canonical_json.ts";
import { bytesArtifact, isNotFound, validateName } from "./_util.ts";

/** Options of {@linkcode statePlugin}. */
export interface StatePluginOptions {
  /**
   * JSON files: name (`^[a-z0-9][a-z0-9_.-]{0,63}$`) to file path. Restored as files.
   *
   * @default {{}}
   */
  files?: Record<string, string>;
  /**
   * Values produced by the runtime at capture time: name to a function returning JSON.
   *
   * @default {{}}
   */
  values?: Record<string, () => JsonValue | Promise<JsonValue>>;
  /**
   * Receives each captured value back on restore. It is called from the plugin's `restore()`,
   * before the engine swaps the staged file targets in. Without it, values are reported as not
   * restorable (a warning).
   */
  restore?: (name: string, value: JsonValue) => Promise<void>;
  /**
   * The largest state file (and canonical JSON of a value) captured, in bytes. State is parsed
   * whole to be canonicalized and redacted, which takes several times its size in memory: a
   * larger one is refused, since data that size belongs in the memory dir or a database.
   *
   * @default {8 * 1024 * 1024}
   */
  maxBytes?: number;
}

/** The defaults of {@linkcode StatePluginOptions}. */
const defaults = {
  files: {} as Record<string, string>,
  values: {} as Record<string, () => JsonValue | Promise<JsonValue>>,
  maxBytes: 8 * 1024 * 1024,
} satisfies Partial<StatePluginOptions>;

/** A byte count in MiB, for messages. */
const mib = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/** The refusal of a state over `maxBytes`. */
function tooLarge(what: string, size: number, max: number): UsageError {
  return new UsageError(
    `Cannot capture ${what}: it is ${mib(size)}, over the state plugin's limit of ${mib(max)}`,
    {
      hint: "State is for small JSON (cursors, last runs); keep larger data in the memory dir " +
        "or a SQLite database, or raise the state plugin's maxBytes.",
    },
  );
}

/** Payload prefix of the state plugin. */
const PREFIX = "state/";
const SUFFIX = ".json";

/** Parses JSON text, turning a syntax error into a {@linkcode UsageError} with a position. */
function parseJson(text: string, path: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const pos = jsonErrorPosition(text);
    let where = "";
    if (pos >= 0) {
      const before = text.slice(0, pos).split("\n");
      where = pos >= text.length
        ? ` at the end (position ${pos})`
        : ` at line ${before.length}, column ${before.at(-1)!.length + 1} (position ${pos})`;
    }
    throw new UsageError(`Cannot parse state file ${path}: invalid JSON${where}: ${msg}`, {
      cause: e,
    });
  }
}

/**
 * Creates the state plugin. Each JSON file and each runtime value is stored as canonical JSON
 * (sorted keys, no whitespace) at `state/<name>.json`, redacted with `redactJson` when a
 * redactor is given. Restore stages every file target with the captured canonical JSON (the
 * original whitespace is not kept); values are handed to the `restore` callback.
 *
 * @param options The files and values to capture.
 * @returns The plugin, named `"state"`.
 * @throws {UsageError} If a name is invalid or used twice, or `maxBytes` is not a positive
 * integer; on capture, if a file is not valid JSON (the message names the file and the
 * position), or a file or value is over `maxBytes`.
 * @throws {NotFoundError} On capture, if a configured file does not exist.
 *
 * @example Capturing a JSON file and a value
 * ```ts
 * import { statePlugin } from "./state.ts";
 * import { noopProgress } from "../progress.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/session.json`, '{"b": 1, "a": [true, null]}');
 * const plugin = statePlugin({
 *   files: { session: `${dir}/session.json` },
 *   values: { counters: () => ({ dreams: 3 }) },
 * });
 * const result = await plugin.capture({
 *   staging: dir, redactor: undefined, signal: new AbortController().signal, progress: noopProgress,
 * });
 * const text = await new Response(await result.artifacts[1]!.open()).text();
 * console.log(text); // {"a":[true,null],"b":1}
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function statePlugin(options: StatePluginOptions = {}): CapturePlugin {
  const files = new Map(
    Object.entries(options.files ?? defaults.files).map(([n, p]) => [n, posix.resolve(p)]),
  );
  const values = new Map(Object.entries(options.values ?? defaults.values));
  for (const n of files.keys()) validateName(n, "state file");
  for (const n of values.keys()) {
    validateName(n, "state value");
    if (files.has(n)) {
      throw new UsageError(
        `Cannot configure state "${n}": it is both a file and a value`,
      );
    }
  }
  const names = [...files.keys(), ...values.keys()].sort();
  const maxBytes = options.maxBytes ?? defaults.maxBytes;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new UsageError(`Cannot configure the state plugin: maxBytes ${maxBytes} is invalid`);
  }

  return {
    name: "state",
    version: "1",
    owns: (path: string): boolean => path.startsWith(PREFIX),

    async capture(ctx: CaptureContext): Promise<CaptureResult> {
      const artifacts = [];
      const meta: Record<string, JsonValue> = {};
      for (const n of names) {
        ctx.signal.throwIfAborted();
        const path = `${PREFIX}${n}${SUFFIX}`;
        const file = files.get(n);
        let value: JsonValue;
        if (file !== undefined) {
          // A runtime that rewrites the file in place can be caught mid-write: re-read a few
          // times (50, 100, 200 ms) before calling the JSON invalid.
          for (let attempt = 0;; attempt++) {
            let text: string;
            try {
              // The size first: a file too large is refused before it is read.
              const size = (await Deno.stat(file)).size;
              if (size > maxBytes) throw tooLarge(`state ${n} (${file})`, size, maxBytes);
              text = await Deno.readTextFile(file);
            } catch (e) {
              if (!isNotFound(e)) throw e;
              throw new NotFoundError(`Cannot capture state ${n}: ${file} does not exist`);
            }
            // (a file that grew since: its text has at least as many bytes as characters)
            if (text.length > maxBytes) {
              throw tooLarge(`state ${n} (${file})`, text.length, maxBytes);
            }
            try {
              value = parseJson(text, file);
              break;
            } catch (e) {
              if (attempt >= 3) throw e;
              await new Promise((r) => setTimeout(r, 50 << attempt));
            }
          }
        } else {
          value = await values.get(n)!();
        }
        if (ctx.redactor !== undefined) value = ctx.redactor.redactJson(value, path);
        const bytes = new TextEncoder().encode(canonicalJson(value));
        if (bytes.byteLength > maxBytes) {
          throw tooLarge(`state ${n}`, bytes.byteLength, maxBytes);
        }
        artifacts.push(bytesArtifact(path, bytes, "state"));
        meta[n] = { source: file === undefined ? "value" : "file", bytes: bytes.byteLength };
      }
      return { artifacts, meta };
    },

    async restore(ctx: RestoreContext): Promise<void> {
      for (const a of ctx.artifacts) {
        ctx.signal.throwIfAborted();
        if (!a.path.startsWith(PREFIX) || !a.path.endsWith(SUFFIX)) continue;
        const n = a.path.slice(PREFIX.length, -SUFFIX.length);
        const src = posix.join(ctx.payloadDir, a.path);
        const file = files.get(n);
        if (file !== undefined) {
          const staged = await ctx.stage({ path: file, type: "file" });
          await Deno.copyFile(src, staged);
          await Deno.chmod(staged, 0o644);
        } else if (values.has(n) && options.restore !== undefined) {
          await options.restore(n, parseJson(await Deno.readTextFile(src), a.path));
        } else if (values.has(n)) {
          ctx.progress.warn(`Cannot restore state value ${n}: no restore callback; skipped`);
        } else {
          ctx.progress.warn(`Cannot restore state ${n}: it is not configured; skipped`);
        }
      }
    },

    plan(ctx): Promise<RestorePlanEntry[]> {
      return Promise.resolve(ctx.artifacts.map((a) => {
        const n = a.path.slice(PREFIX.length, -SUFFIX.length);
        const file = files.get(n);
        if (file !== undefined) return { target: file, action: "replace state file" };
        if (values.has(n) && options.restore !== undefined) {
          return { target: a.path, action: "restore value" };
        }
        return { target: a.path, action: "skip (not restorable)" };
      }));
    },
  };
}
