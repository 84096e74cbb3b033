/**
 * Private helpers locating a git repository and reading its working-tree view.
 *
 * @module
 */
import { posix } from "node:path";
import { digestInto } from "../bundle/_digest.ts";
import { readWholeFile, release } from "../bundle/_io.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** isomorphic-git, loaded on first use (most commands never need it). */
async function isoGit(): Promise<typeof import("isomorphic-git").default> {
  return (await import("isomorphic-git")).default;
}

/**
 * The `fs` client handed to isomorphic-git, loaded with it (`node:fs` alone costs every command
 * ~10 ms at start-up).
 */
export async function gitFs(): Promise<typeof import("node:fs")> {
  return await import("node:fs");
}

/**
 * Returns the git directory of a working tree, or `undefined` if `dir` is not the top of a
 * repository. Follows a `.git` file (`gitdir: <path>`) as used by worktrees and submodules.
 */
export async function findGitdir(dir: string): Promise<string | undefined> {
  const dotGit = posix.join(dir, ".git");
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dotGit);
  } catch {
    return undefined;
  }
  if (info.isDirectory) return dotGit;
  if (info.isFile) {
    const text = (await Deno.readTextFile(dotGit)).trim();
    const m = /^gitdir:\s*(.+)$/.exec(text);
    if (m) return posix.resolve(dir, m[1]!);
  }
  return undefined;
}

/**
 * Paths recorded in an index file's bytes (versions 2, 3 and 4), or `undefined` if the bytes
 * are not a valid index (bad signature, version, checksum or entry).
 */
export function indexPaths(bytes: Uint8Array): Set<string> | undefined {
  return parseIndex(bytes)?.paths;
}

/**
 * An index file's paths and the signatures of its extensions, or `undefined` if the bytes are
 * not a valid index (as {@linkcode indexPaths}, extensions' framing checked too). With `visit`,
 * each path's bytes (a view, valid during the call) are handed to it as they are read instead
 * of collected (`paths` is then empty): a set of 200,000 paths is ~20 MB, and their strings
 * ~12 MB of garbage, for a caller that only looks at each once.
 */
export function parseIndex(
  bytes: Uint8Array,
  visit?: (path: Uint8Array) => void,
): { paths: Set<string>; extensions: string[] } | undefined {
  if (bytes.byteLength < 32) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0) !== 0x44495243) return undefined; // "DIRC"
  const version = v.getUint32(4);
  if (version < 2 || version > 4) return undefined;
  const end = bytes.byteLength - 20;
  const sum = new Uint8Array(20);
  digestInto("sha1", sum, 0, bytes.subarray(0, end));
  if (!sameBytes(sum, bytes.subarray(end))) return undefined;
  const count = v.getUint32(8);
  const out = new Set<string>();
  let at = 12;
  let previous: Uint8Array = new Uint8Array(0);
  for (let n = 0; n < count; n++) {
    const start = at;
    if (at + 62 > end) return undefined;
    const flags = v.getUint16(at + 60);
    at += 62;
    if (flags & 0x4000) {
      if (version < 3) return undefined;
      at += 2;
    }
    let path: Uint8Array;
    if (version === 4) {
      // the number of bytes to drop from the previous path (git's offset varint), then the rest
      let c = bytes[at++]!;
      let drop = c & 0x7f;
      while (c & 0x80) {
        if (at >= end) return undefined;
        c = bytes[at++]!;
        drop = ((drop + 1) * 128) + (c & 0x7f);
      }
      const nul = bytes.indexOf(0, at);
      if (nul < 0 || nul >= end || drop > previous.length) return undefined;
      const keep = previous.length - drop;
      path = new Uint8Array(keep + nul - at);
      path.set(previous.subarray(0, keep));
      path.set(bytes.subarray(at, nul), keep);
      at = nul + 1;
    } else {
      const nul = bytes.indexOf(0, at);
      if (nul < 0 || nul >= end) return undefined;
      path = bytes.subarray(at, nul);
      // entries are padded with 1-8 NULs to a multiple of 8 bytes
      at = start + Math.ceil((nul + 1 - start) / 8) * 8;
    }
    previous = path;
    if (visit) visit(path);
    else out.add(decoder.decode(path));
  }
  if (at > end) return undefined;
  // Extensions: a 4-byte signature and a 32-bit size each, up to the checksum.
  const extensions: string[] = [];
  while (at < end) {
    if (at + 8 > end) return undefined;
    const size = v.getUint32(at + 4);
    if (at + 8 + size > end) return undefined;
    extensions.push(String.fromCharCode(...bytes.subarray(at, at + 4)));
    at += 8 + size;
  }
  return { paths: out, extensions };
}

/**
 * The paths of an index (tracked files), held as their UTF-8 bytes end to end with an offset
 * each, sorted as git sorts them (bytewise): ~35 bytes a path where a set of strings took ~70
 * and left as much garbage (200,000 paths in a memory of 200,000 notes). Answers whether a
 * file is tracked, and whether a directory holds a tracked file, by binary search.
 */
export class TrackedPaths {
  readonly #bytes: Uint8Array;
  /** Path `i` is `#bytes[#starts[i], #starts[i + 1])`. */
  readonly #starts: Uint32Array;
  #scratch = new Uint8Array(256);

  private constructor(bytes: Uint8Array, starts: Uint32Array) {
    this.#bytes = bytes;
    this.#starts = starts;
  }

  /** No paths (no index, or one that cannot be read). */
  static empty(): TrackedPaths {
    return new TrackedPaths(new Uint8Array(0), new Uint32Array(1));
  }

  /** The paths of an index file's bytes, or `undefined` if they are not a valid index. */
  static fromIndex(index: Uint8Array): TrackedPaths | undefined {
    let bytes = new Uint8Array(Math.max(1024, index.length >> 1));
    let starts = new Uint32Array(1024);
    let n = 0;
    let used = 0;
    const parsed = parseIndex(index, (path) => {
      if (used + path.length > bytes.length) {
        const grown = new Uint8Array(Math.max(bytes.length * 2, used + path.length));
        grown.set(bytes.subarray(0, used));
        bytes = grown;
      }
      if (n + 2 > starts.length) {
        const grown = new Uint32Array(starts.length * 2);
        grown.set(starts);
        starts = grown;
      }
      bytes.set(path, used);
      used += path.length;
      starts[++n] = used;
    });
    if (parsed === undefined) return undefined;
    const t = new TrackedPaths(bytes.slice(0, used), starts.slice(0, n + 1));
    if (!t.#sorted()) t.#sort();
    return t;
  }

  /** How many paths (an index lists a conflicted path once per stage). */
  get size(): number {
    return this.#starts.length - 1;
  }

  /** The paths, in order. */
  *[Symbol.iterator](): Generator<string> {
    for (let i = 0; i < this.size; i++) yield decoder.decode(this.#at(i));
  }

  /** Whether `path` (relative, `/`-separated) is a tracked file. */
  has(path: string): boolean {
    const q = this.#encode(path, "");
    const i = this.#lowerBound(q);
    return i < this.size && compareBytes(this.#at(i), q) === 0;
  }

  /** Whether the directory `dir` (relative, no trailing `/`) holds a tracked file. */
  hasDir(dir: string): boolean {
    const q = this.#encode(dir, "/");
    const i = this.#lowerBound(q);
    if (i >= this.size) return false;
    const p = this.#at(i);
    return p.length > q.length && compareBytes(p.subarray(0, q.length), q) === 0;
  }

  #at(i: number): Uint8Array {
    return this.#bytes.subarray(this.#starts[i]!, this.#starts[i + 1]!);
  }

  #encode(s: string, suffix: string): Uint8Array {
    const need = (s.length + suffix.length) * 3;
    if (need > this.#scratch.length) this.#scratch = new Uint8Array(need);
    const n = encoder.encodeInto(s, this.#scratch).written;
    const m = encoder.encodeInto(suffix, this.#scratch.subarray(n)).written;
    return this.#scratch.subarray(0, n + m);
  }

  /** The first path not below `q`. */
  #lowerBound(q: Uint8Array): number {
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.#at(mid), q) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #sorted(): boolean {
    for (let i = 1; i < this.size; i++) {
      if (compareBytes(this.#at(i - 1), this.#at(i)) > 0) return false;
    }
    return true;
  }

  /** Puts the paths in order (an index git wrote is already). */
  #sort(): void {
    const order = Array.from({ length: this.size }, (_, i) => i);
    order.sort((x, y) => compareBytes(this.#at(x), this.#at(y)));
    const bytes = new Uint8Array(this.#bytes.length);
    const starts = new Uint32Array(this.#starts.length);
    let used = 0;
    order.forEach((i, k) => {
      const p = this.#at(i);
      bytes.set(p, used);
      used += p.length;
      starts[k + 1] = used;
    });
    this.#bytes.set(bytes);
    this.#starts.set(starts);
  }
}

/** Bytewise order (memcmp, then length), as git sorts index paths. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/**
 * The paths recorded in the repository's index (tracked files); none if there is no readable
 * index.
 */
export function trackedPaths(gitdir: string): TrackedPaths {
  let bytes: Uint8Array;
  try {
    bytes = readWholeFile(posix.join(gitdir, "index"));
  } catch {
    return TrackedPaths.empty();
  }
  const t = TrackedPaths.fromIndex(bytes) ?? TrackedPaths.empty();
  release(bytes.buffer);
  return t;
}

/** Whether an untracked path is ignored by `.gitignore` files and `.git/info/exclude`. */
export async function isIgnored(dir: string, gitdir: string, filepath: string): Promise<boolean> {
  return (await isoGit()).isIgnored({ fs: await gitFs(), dir, gitdir, filepath });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
