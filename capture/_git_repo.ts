/**
 * Private helpers locating a git repository and reading its working-tree view.
 *
 * @module
 */
import { posix } from "node:path";
import { createHash } from "node:crypto";
import { digestInto } from "../bundle/_digest.ts";

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
 * Reads an index's bytes (versions 2, 3 and 4): each path's bytes go to `visit` as they are read
 * (a view, valid during the call; no set or string of every path: 200,000 of them were ~20 MB
 * held, ~12 MB of garbage), and the signatures of its extensions are returned; `undefined` if
 * the bytes are not a valid index (signature, version, checksum, entries, extensions' framing).
 */
export function parseIndex(
  bytes: Uint8Array,
  visit: (path: Uint8Array) => void,
): { extensions: string[] } | undefined {
  if (bytes.byteLength < 32) return undefined;
  const end = bytes.byteLength - 20;
  const sum = new Uint8Array(20);
  digestInto("sha1", sum, 0, bytes.subarray(0, end));
  if (!sameBytes(sum, bytes.subarray(end))) return undefined;
  const extensions = walkIndex(
    {
      size: bytes.byteLength,
      get: (at, n) => bytes.subarray(at, at + n),
      nul: (at, limit) => {
        const i = bytes.indexOf(0, at);
        return i < 0 || i >= limit ? -1 : i;
      },
    },
    visit,
  );
  return extensions === undefined ? undefined : { extensions };
}

/**
 * {@linkcode parseIndex} of an index file, read through a window of about `windowBytes` (grown
 * for a longer entry) instead of whole: the same answer, without holding the file (19 MB for
 * 200,000 files). Throws what reading the file throws.
 */
export function parseIndexFile(
  path: string,
  visit: (path: Uint8Array) => void,
  windowBytes = 1 << 20,
): { extensions: string[] } | undefined {
  using file = Deno.openSync(path, { read: true });
  const size = file.statSync().size;
  if (size < 32) return undefined;
  let buf = new Uint8Array(Math.max(windowBytes, 64));
  /** The window holds the file's bytes [base, base + len). */
  let base = 0, len = 0;
  const readAt = (pos: number, into: Uint8Array): number => {
    file.seekSync(pos, Deno.SeekMode.Start);
    let n = 0;
    while (n < into.length) {
      const k = file.readSync(into.subarray(n));
      if (k === null || k === 0) break;
      n += k;
    }
    return n;
  };
  // The checksum first, over a pass of the file.
  const end = size - 20;
  const hash = createHash("sha1");
  for (let pos = 0; pos < end;) {
    const k = readAt(pos, buf.subarray(0, Math.min(buf.length, end - pos)));
    if (k === 0) return undefined; // shrank
    hash.update(buf.subarray(0, k));
    pos += k;
  }
  const trailer = new Uint8Array(20);
  if (readAt(end, trailer) !== 20 || !sameBytes(hash.digest(), trailer)) return undefined;
  /** The window's bytes read so far: `view` is `buf`'s first `len`. */
  let view = buf.subarray(0, 0);
  /** Makes the window cover [at, at + n) (within the file): reloads it from `at` if not. */
  const cover = (at: number, n: number): void => {
    if (at >= base && at + n <= base + len) return;
    if (n > buf.length) buf = new Uint8Array(Math.max(n, buf.length * 2));
    base = at;
    len = readAt(at, buf.subarray(0, Math.min(buf.length, size - at)));
    view = buf.subarray(0, len);
  };
  const extensions = walkIndex(
    {
      size,
      get: (at, n) => {
        cover(at, n);
        return buf.subarray(at - base, at - base + n);
      },
      nul: (at, limit) => {
        // The window must hold the whole path: from `at` to its NUL.
        cover(at, 1);
        for (;;) {
          const i = view.indexOf(0, at - base);
          if (i >= 0) return base + i < limit ? base + i : -1;
          if (base + len >= size) return -1;
          // Not in the window: reload it from `at`, twice as large if it started there.
          cover(at, base === at ? buf.length * 2 : Math.min(buf.length, size - at));
        }
      },
    },
    visit,
  );
  return extensions === undefined ? undefined : { extensions };
}

/** Positional access to an index's bytes, for {@linkcode walkIndex}. */
interface IndexBytes {
  size: number;
  /** Bytes [at, at + n), all within the file: a view valid until the next call. */
  get(at: number, n: number): Uint8Array;
  /** Where the first NUL at or after `at` and before `limit` is, or -1. */
  nul(at: number, limit: number): number;
}

/**
 * Reads an index's entries (versions 2, 3 and 4) and extension headers, its checksum already
 * checked: the extensions' signatures, or `undefined` at the first flaw.
 */
function walkIndex(src: IndexBytes, visit: (path: Uint8Array) => void): string[] | undefined {
  const end = src.size - 20;
  const head = src.get(0, 12);
  const hv = new DataView(head.buffer, head.byteOffset, 12);
  if (hv.getUint32(0) !== 0x44495243) return undefined; // "DIRC"
  const version = hv.getUint32(4);
  if (version < 2 || version > 4) return undefined;
  const count = hv.getUint32(8);
  let at = 12;
  let previous: Uint8Array = new Uint8Array(0);
  for (let n = 0; n < count; n++) {
    const start = at;
    if (at + 62 > end) return undefined;
    const fb = src.get(at + 60, 2);
    const flags = (fb[0]! << 8) | fb[1]!;
    at += 62;
    if (flags & 0x4000) {
      if (version < 3) return undefined;
      at += 2;
    }
    let path: Uint8Array;
    if (version === 4) {
      // the number of bytes to drop from the previous path (git's offset varint), then the rest
      if (at >= end) return undefined;
      let c = src.get(at++, 1)[0]!;
      let drop = c & 0x7f;
      while (c & 0x80) {
        if (at >= end) return undefined;
        c = src.get(at++, 1)[0]!;
        drop = ((drop + 1) * 128) + (c & 0x7f);
      }
      const nul = src.nul(at, end);
      if (nul < 0 || drop > previous.length) return undefined;
      const keep = previous.length - drop;
      path = new Uint8Array(keep + nul - at);
      path.set(previous.subarray(0, keep));
      path.set(src.get(at, nul - at), keep);
      at = nul + 1;
      previous = path;
    } else {
      const nul = src.nul(at, end);
      if (nul < 0) return undefined;
      path = src.get(at, nul - at);
      // entries are padded with 1-8 NULs to a multiple of 8 bytes
      at = start + Math.ceil((nul + 1 - start) / 8) * 8;
    }
    visit(path);
  }
  if (at > end) return undefined;
  // Extensions: a 4-byte signature and a 32-bit size each, up to the checksum.
  const extensions: string[] = [];
  while (at < end) {
    if (at + 8 > end) return undefined;
    const h = src.get(at, 8);
    const size = new DataView(h.buffer, h.byteOffset, 8).getUint32(4);
    if (at + 8 + size > end) return undefined;
    extensions.push(String.fromCharCode(h[0]!, h[1]!, h[2]!, h[3]!));
    at += 8 + size;
  }
  return extensions;
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

  /**
   * The paths of an index file, or `undefined` if it is not a valid index; read through a
   * window, not whole. Throws what reading it throws.
   */
  static fromIndexFile(path: string): TrackedPaths | undefined {
    let bytes = new Uint8Array(1 << 16);
    let starts = new Uint32Array(1024);
    let n = 0;
    let used = 0;
    const parsed = parseIndexFile(path, (p) => {
      if (used + p.length > bytes.length) {
        const grown = new Uint8Array(Math.max(bytes.length * 2, used + p.length));
        grown.set(bytes.subarray(0, used));
        bytes = grown;
      }
      if (n + 2 > starts.length) {
        const grown = new Uint32Array(starts.length * 2);
        grown.set(starts);
        starts = grown;
      }
      bytes.set(p, used);
      used += p.length;
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
  try {
    return TrackedPaths.fromIndexFile(posix.join(gitdir, "index")) ?? TrackedPaths.empty();
  } catch {
    return TrackedPaths.empty();
  }
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
