/**
 * Private helpers locating a git repository and reading its working-tree view.
 *
 * @module
 */
import { posix } from "node:path";
import { digestInto } from "../bundle/_digest.ts";

const decoder = new TextDecoder();

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
 * each path is handed to it as it is read instead of collected (`paths` is then empty): a set
 * of 200,000 paths is ~20 MB for a caller that only looks at each once.
 */
export function parseIndex(
  bytes: Uint8Array,
  visit?: (path: string) => void,
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
    if (visit) visit(decoder.decode(path));
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
 * Paths recorded in the repository's index (tracked files), or an empty set if there is no
 * readable index.
 */
export function trackedFiles(_dir: string, gitdir: string): Promise<Set<string>> {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(posix.join(gitdir, "index"));
  } catch {
    return Promise.resolve(new Set());
  }
  return Promise.resolve(indexPaths(bytes) ?? new Set());
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
