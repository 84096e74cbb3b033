/**
 * Entry path rules shared by the writer and the reader (private).
 *
 * @module
 */

const enc = new TextEncoder();

/** A broken path rule: the rule id and the state for the message. */
export interface PathProblem {
  rule: string;
  state: string;
}

/**
 * Checks an entry path: relative, `/`-separated, normalized (no empty, `.` or `..` segment),
 * no backslash, NUL or other control character, bounded length (UTF-8 bytes) and depth.
 */
export function checkPath(
  path: string,
  maxLength: number,
  maxDepth: number,
): PathProblem | undefined {
  if (path.length === 0) return { rule: "path_invalid", state: "is empty" };
  if (path.startsWith("/")) return { rule: "path_absolute", state: "is an absolute path" };
  const segments = path.split("/");
  if (segments.includes("..")) return { rule: "path_escape", state: "escapes the destination" };
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(path)) {
    return { rule: "path_invalid", state: "contains a backslash or a control character" };
  }
  if (/^[A-Za-z]:/.test(path)) return { rule: "path_absolute", state: "has a drive letter" };
  if (segments.some((s) => s === "" || s === ".")) {
    return { rule: "path_not_normalized", state: "is not a normalized path" };
  }
  if (enc.encode(path).length > maxLength) {
    return { rule: "max_path_length", state: `is longer than ${maxLength} bytes` };
  }
  if (segments.length > maxDepth) {
    return { rule: "max_path_depth", state: `is deeper than ${maxDepth} segments` };
  }
  return undefined;
}

/** Compares paths by Unicode code point (the order of their UTF-8 bytes). */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/**
 * Tracks paths seen so far and detects duplicates and file/directory conflicts (`a` as a file
 * and `a/b`).
 */
export class PathSet {
  #files = new Set<string>();
  #dirs = new Set<string>();

  /** Adds a path; returns the problem if it collides with an earlier one. */
  add(path: string): PathProblem | undefined {
    if (this.#files.has(path)) return { rule: "duplicate", state: "appears twice" };
    if (this.#dirs.has(path)) {
      return { rule: "path_conflict", state: "is both a file and a directory" };
    }
    const segs = path.split("/");
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join("/");
      if (this.#files.has(dir)) {
        return { rule: "path_conflict", state: `is inside "${dir}", which is a file` };
      }
    }
    for (let i = 1; i < segs.length; i++) this.#dirs.add(segs.slice(0, i).join("/"));
    this.#files.add(path);
    return undefined;
  }
}
