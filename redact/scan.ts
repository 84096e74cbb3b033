/**
 * Scanning without rewriting: {@linkcode scanText}, {@linkcode scanFile} and
 * {@linkcode scanPaths} report where secrets are, with masked previews, for `memsnap scan`.
 *
 * @module
 */
import { join } from "node:path";
import type { RulePack } from "./types.ts";
import { Engine } from "./_engine.ts";

/** One secret found by a scan. Never contains the secret: only a masked preview. */
export interface Finding {
  /** The file, for {@linkcode scanFile} and {@linkcode scanPaths}. */
  path?: string;
  /** The rule that found it. */
  rule: string;
  /** 1-based line of the secret's first character. */
  line: number;
  /** 1-based column (UTF-16 code units) of the secret's first character. */
  column: number;
  /** Length of the secret in UTF-16 code units. */
  length: number;
  /** Masked preview: up to 4 first characters, "…", and the length, e.g. `ghp_…(40)`. */
  preview: string;
}

/** Options of {@linkcode scanFile} and {@linkcode scanPaths}. */
export interface ScanOptions {
  /**
   * Block size in bytes for reading files.
   *
   * @default {1048576}
   */
  chunkSize?: number;
  /** Called for each file skipped because it looks binary, or cannot be read. */
  onSkip?: (path: string, reason: "binary" | "unreadable") => void;
}

/** Options of {@linkcode scanPaths}. */
export interface ScanPathsOptions extends ScanOptions {
  /**
   * Directory names not descended into.
   *
   * @default {[".git", "node_modules"]}
   */
  skipDirs?: string[];
}

const engines = new WeakMap<readonly RulePack[], Engine>();
function engineFor(packs: readonly RulePack[]): Engine {
  let e = engines.get(packs);
  if (e === undefined) {
    e = new Engine(packs);
    engines.set(packs, e);
  }
  return e;
}

/** Masks a secret: up to 4 first characters (fewer for short ones), "…", the length. */
export function maskSecret(secret: string): string {
  const n = secret.length;
  const show = n >= 16 ? 4 : n >= 10 ? 2 : 0;
  return `${secret.slice(0, show)}…(${n})`;
}

/**
 * Finds secrets in a text.
 *
 * @param text The text.
 * @param packs The packs.
 * @returns The findings, in text order.
 *
 * @example Scanning a note
 * ```ts
 * import { scanText, secretsPack } from "@memsnap/core/redact";
 * const findings = scanText("line one\nkey: AKIAZ7ZQWUXYVDCBA234\n", [secretsPack]);
 * console.log(findings);
 * // [{ rule: "aws-access-key-id", line: 2, column: 6, length: 20, preview: "AKIA…(20)" }]
 * ```
 */
export function scanText(text: string, packs: readonly RulePack[]): Finding[] {
  const out: Finding[] = [];
  collect(engineFor(packs), text, text.length, { line: 1, column: 1, pos: 0 }, out, undefined);
  return out;
}

interface Cursor {
  line: number;
  column: number;
  pos: number;
}

/** Finds secrets starting before `limit` in `text`, advancing `cur` to `limit`. */
function collect(
  engine: Engine,
  text: string,
  limit: number,
  cur: Cursor,
  out: Finding[],
  path: string | undefined,
): number {
  const { spans } = engine.find(text);
  let end = limit;
  for (const s of spans) {
    if (s.start >= limit) break;
    advance(text, s.start, cur);
    const secret = text.slice(s.start, s.end);
    out.push({
      ...(path === undefined ? {} : { path }),
      rule: s.rule,
      line: cur.line,
      column: cur.column,
      length: secret.length,
      preview: maskSecret(secret),
    });
    if (s.end > end) end = s.end;
  }
  advance(text, end, cur);
  return end;
}

function advance(text: string, to: number, cur: Cursor): void {
  let i = text.indexOf("\n", cur.pos);
  while (i >= 0 && i < to) {
    cur.line++;
    cur.column = 1;
    cur.pos = i + 1;
    i = text.indexOf("\n", cur.pos);
  }
  cur.column += to - cur.pos;
  cur.pos = to;
}

/**
 * Finds secrets in a text file, reading it in blocks (a secret across a block boundary is
 * still found). A binary file (NUL byte or invalid UTF-8) gives no findings and is reported
 * through `onSkip`.
 *
 * @param path The file.
 * @param packs The packs.
 * @param options Block size and the skip callback.
 * @returns The findings, in file order.
 *
 * @example Scanning a file
 * ```ts
 * import { scanFile, secretsPack } from "@memsnap/core/redact";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "token: ghp_" + "Zq7Xw3Vb9Nm1Kp5Lr8Ts2Uy4Wa6Cd0Ef2Gh4J" + "\n");
 * console.log(await scanFile(path, [secretsPack]));
 * await Deno.remove(path);
 * ```
 */
export async function scanFile(
  path: string,
  packs: readonly RulePack[],
  options: ScanOptions = {},
): Promise<Finding[]> {
  const engine = engineFor(packs);
  const chunkSize = options.chunkSize ?? 1 << 20;
  const overlap = 1 << 16;
  const out: Finding[] = [];
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch {
    options.onSkip?.(path, "unreadable");
    return out;
  }
  const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // A block the file's size (one byte more, to see the end in one read) when it is smaller
  // than a chunk: a fresh 1 MiB block per note made scanning 200,000 notes take 92 s.
  let size = chunkSize;
  try {
    size = file.statSync().size + 1;
  } catch {
    // read it in chunks
  }
  const block = new Uint8Array(Math.min(chunkSize, size));
  // A file that fits in one block is read with synchronous calls (two: its bytes, then the
  // end): per small file, async reads cost more than the scanning.
  const whole = size <= chunkSize;
  let buf = "";
  const cur: Cursor = { line: 1, column: 1, pos: 0 };
  let first = true;
  try {
    for (;;) {
      let n = 0;
      while (n < block.length) {
        const r = whole ? file.readSync(block.subarray(n)) : await file.read(block.subarray(n));
        if (r === null || r === 0) break;
        n += r;
      }
      const eof = n < block.length;
      const got = block.subarray(0, n);
      if (first && got.subarray(0, 8192).indexOf(0) >= 0) {
        options.onSkip?.(path, "binary");
        return [];
      }
      first = false;
      try {
        buf += dec.decode(got, { stream: !eof });
      } catch {
        options.onSkip?.(path, "binary");
        return [];
      }
      if (eof) {
        collect(engine, buf, buf.length, cur, out, path);
        return out;
      }
      if (buf.length >= chunkSize + overlap) {
        const lim = buf.length - overlap;
        let cut = buf.lastIndexOf("\n", lim - 1) + 1;
        if (cut <= 0) {
          if (buf.length < 4 * (chunkSize + overlap)) continue;
          const ws = buf.slice(0, lim).search(/\s\S*$/);
          cut = ws > 0 ? ws + 1 : lim;
        }
        const end = collect(engine, buf, cut, cur, out, path);
        buf = buf.slice(end);
        cur.pos = 0;
      }
    }
  } finally {
    file.close();
  }
}

/**
 * Scans files and directories (recursively; symlinks are not followed), yielding findings as
 * they are found. Directories are walked in sorted order, so output is deterministic.
 *
 * @param paths Files or directories.
 * @param packs The packs.
 * @param options Block size, skipped directories, and the skip callback.
 * @returns The findings, file by file.
 *
 * @example Scanning a directory
 * ```ts
 * import { piiPack, scanPaths } from "@memsnap/core/redact";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.md`, "mail jane.doe@acme.io\n");
 * for await (const f of scanPaths([dir], [piiPack])) console.log(f.path, f.rule, f.line);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function* scanPaths(
  paths: string[],
  packs: readonly RulePack[],
  options: ScanPathsOptions = {},
): AsyncIterable<Finding> {
  const skip = new Set(options.skipDirs ?? [".git", "node_modules"]);
  // Synchronous listing: an async lstat and directory read per file cost more than
  // scanning a small note.
  async function* walk(p: string): AsyncIterable<Finding> {
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(p);
    } catch {
      options.onSkip?.(p, "unreadable");
      return;
    }
    if (info.isDirectory) {
      const names: string[] = [];
      for (const e of Deno.readDirSync(p)) {
        if (!(e.isDirectory && skip.has(e.name))) names.push(e.name);
      }
      names.sort();
      for (const name of names) yield* walk(join(p, name));
    } else if (info.isFile) {
      yield* await scanFile(p, packs, options);
    }
  }
  for (const p of paths) yield* walk(p);
}
