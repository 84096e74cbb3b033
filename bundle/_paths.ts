/**
 * Entry path rules shared by the writer and the reader (private).
 *
 * @module
 */

/** A broken path rule: the rule id and the state for the message. */
export interface PathProblem {
  rule: string;
  state: string;
}

/**
 * Checks an entry path: relative, `/`-separated, normalized (no empty, `.` or `..` segment),
 * no backslash, NUL or other control character, bounded length (UTF-8 bytes) and depth.
 * One pass over the UTF-16 code units; when several rules break, the first in the order
 * above wins (absolute, escape, invalid character, drive letter, not normalized, length,
 * depth).
 */
export function checkPath(
  path: string,
  maxLength: number,
  maxDepth: number,
): PathProblem | undefined {
  const n = path.length;
  if (n === 0) return { rule: "path_invalid", state: "is empty" };
  if (path.charCodeAt(0) === 0x2f) return { rule: "path_absolute", state: "is an absolute path" };
  let escape = false;
  let invalid = false;
  let notNormalized = false;
  let bytes = 0;
  let segments = 1;
  let segStart = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const len = i - segStart;
      if (len === 0) notNormalized = true;
      else if (path.charCodeAt(segStart) === 0x2e) {
        if (len === 1) notNormalized = true;
        else if (len === 2 && path.charCodeAt(segStart + 1) === 0x2e) escape = true;
      }
      if (i < n) {
        segments++;
        bytes++;
      }
      segStart = i + 1;
    } else if (c < 0x80) {
      if (c < 0x20 || c === 0x7f || c === 0x5c) invalid = true;
      bytes++;
    } else if (c < 0x800) {
      bytes += 2;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = path.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3; // a lone surrogate encodes as U+FFFD
      }
    } else {
      bytes += 3;
    }
  }
  if (escape) return { rule: "path_escape", state: "escapes the destination" };
  if (invalid) {
    return { rule: "path_invalid", state: "contains a backslash or a control character" };
  }
  if (n >= 2 && path.charCodeAt(1) === 0x3a) {
    const c = path.charCodeAt(0) | 0x20;
    if (c >= 0x61 && c <= 0x7a) return { rule: "path_absolute", state: "has a drive letter" };
  }
  if (notNormalized) return { rule: "path_not_normalized", state: "is not a normalized path" };
  if (bytes > maxLength) {
    return { rule: "max_path_length", state: `is longer than ${maxLength} bytes` };
  }
  if (segments > maxDepth) {
    return { rule: "max_path_depth", state: `is deeper than ${maxDepth} segments` };
  }
  return undefined;
}

/**
 * In a list sorted by path ({@linkcode comparePaths}), the index of the first item whose path
 * does not sort before `path` (where `path` is, or would be inserted).
 */
export function lowerBoundPath(list: readonly { path: string }[], path: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (comparePaths(list[mid]!.path, path) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
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

  /**
   * Adds a path; returns the problem if it collides with an earlier one. Walks the parent
   * dirs from the deepest up and stops at one already known (its own parents were checked and
   * added with it), so sorted input costs about one lookup per path.
   */
  add(path: string): PathProblem | undefined {
    if (this.#files.has(path)) return { rule: "duplicate", state: "appears twice" };
    if (this.#dirs.has(path)) {
      return { rule: "path_conflict", state: "is both a file and a directory" };
    }
    const fresh: string[] = [];
    let conflict: string | undefined;
    for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
      const dir = path.slice(0, i);
      if (this.#dirs.has(dir)) break;
      // At most one parent can be a file: a file's own parents are dirs.
      if (this.#files.has(dir)) conflict = dir;
      fresh.push(dir);
    }
    if (conflict !== undefined) {
      return { rule: "path_conflict", state: `is inside "${conflict}", which is a file` };
    }
    for (const dir of fresh) this.#dirs.add(dir);
    this.#files.add(path);
    return undefined;
  }
}

/**
 * The checks of {@linkcode PathSet} for paths given in {@linkcode comparePaths} order, without
 * keeping every path: in that order a duplicate comes right after itself, and a file comes
 * before anything that would be inside it (`a` < `a/b`), so only the files that later paths
 * could still be inside are kept. They nest like names such as `a`, `a.b`, `a.b-c` (`.` and
 * `-` sort before `/`), so the stack stays a few entries deep however many paths there are.
 */
export class SortedPaths {
  #last: string | undefined;
  /** Files later paths could be inside, each with `/` appended, innermost last. */
  readonly #open: string[] = [];

  /** How many files are kept (what later paths are checked against). */
  get depth(): number {
    return this.#open.length;
  }

  /**
   * Adds the next path; returns the problem if it collides with an earlier one.
   * @throws {RangeError} If `path` sorts before the previous path.
   */
  add(path: string): PathProblem | undefined {
    const last = this.#last;
    if (last !== undefined) {
      if (path === last) return { rule: "duplicate", state: "appears twice" };
      if (comparePaths(path, last) < 0) {
        throw new RangeError(`SortedPaths: ${JSON.stringify(path)} comes before ${last}`);
      }
    }
    const open = this.#open;
    while (open.length > 0) {
      const dir = open[open.length - 1]!;
      if (path.startsWith(dir)) {
        return { rule: "path_conflict", state: `is inside "${dir.slice(0, -1)}", which is a file` };
      }
      // Past everything inside it: no later path can be.
      if (comparePaths(path, dir) > 0) open.pop();
      else break;
    }
    open.push(`${path}/`);
    this.#last = path;
    return undefined;
  }
}
