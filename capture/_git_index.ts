/**
 * The git index a restore writes when the bundle has none: HEAD's tree with the stat data of
 * the working files that match it (private).
 *
 * @module
 */
import { posix } from "node:path";
import { createHash } from "node:crypto";
import { pacer } from "../_pace.ts";
import { digestInto } from "../bundle/_digest.ts";
import {
  type GitObject,
  hexAt,
  IndexBuilder,
  IndexFileWriter,
  type ObjectSource,
  splitHeaders,
} from "./_git_objects.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where cleanStat's one-shot digests go. */
const DIGEST = new Uint8Array(32);

/** Whether the first 20 bytes of `a` and `b` are the same. */
function sameOid(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 20; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Working files are read in blocks of this size, into one buffer. */
const BLOCK = 1 << 20;
let block: Uint8Array | undefined;

/**
 * The stat data of a working file (or symlink) for the index, if its content is the blob
 * `oid`; otherwise (or if it cannot be read) `undefined`. The file is stat'ed before it is
 * read, so stat data never describes content newer than what was hashed: a file that changes
 * afterwards no longer matches it, and git compares its content.
 */
function cleanStat(path: string, mode: number, oid: Uint8Array): Deno.FileInfo | undefined {
  try {
    const stat = Deno.lstatSync(path);
    if (mode === 0o120000) {
      if (!stat.isSymlink) return undefined;
      const bytes = encoder.encode(Deno.readLinkSync(path));
      return sameOid(digestInto("sha1", DIGEST, 0, `blob ${bytes.byteLength}\0`, bytes), oid)
        ? stat
        : undefined;
    }
    if (!stat.isFile) return undefined;
    const size = stat.size;
    // Read into one reused buffer: a fresh one per file (readFileSync) left 200,000
    // buffers for the collector, +34 MiB of RSS over the walk of a 200,000-note tree.
    using file = Deno.openSync(path, { read: true });
    const buf = block ??= new Uint8Array(BLOCK);
    if (size < BLOCK) {
      // One read and a one-shot digest (libcrypto once loaded): a `node:crypto` hash per
      // file left its native state to the collector, ~+20 MiB at 200,000 notes.
      let n = 0;
      for (;;) {
        const k = file.readSync(buf.subarray(n, size + 1));
        if (k === null || k === 0) break;
        n += k;
        if (n > size) return undefined;
      }
      if (n !== size) return undefined;
      return sameOid(digestInto("sha1", DIGEST, 0, `blob ${size}\0`, buf.subarray(0, n)), oid)
        ? stat
        : undefined;
    }
    const hash = createHash("sha1").update(`blob ${size}\0`);
    let total = 0;
    for (;;) {
      const n = file.readSync(total + BLOCK > size ? buf.subarray(0, size - total + 1) : buf);
      if (n === null || n === 0) break;
      hash.update(buf.subarray(0, n));
      total += n;
      if (total > size) return undefined;
    }
    if (total !== size) return undefined;
    return sameOid(hash.digest(), oid) ? stat : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Builds `.git/index` from a commit's tree. A working file whose content matches its blob gets
 * its real stat data (so git sees it clean at once); others get zeroed stat data, which git
 * resolves by comparing content.
 */
export async function writeIndexFromTree(
  worktree: string,
  gitdir: string,
  source: ObjectSource,
  commitOid: string,
): Promise<number> {
  const read = async (oid: string): Promise<GitObject> =>
    source.readSync?.(oid) ?? await source.read(oid);
  const commit = await read(commitOid);
  const treeLine = splitHeaders(commit.body).headers.find((h) => h.startsWith("tree "));
  if (treeLine === undefined) return 0;
  const pace = pacer();
  // (a working file's path is the worktree's and the tree path concatenated, not normalized:
  // a normalizing join cost several strings per file; a tree path git would refuse, such as
  // one with "..", only decides which file's stat data is checked against the blob)
  const base = worktree.endsWith("/") ? worktree : `${worktree}/`;
  // Paths are built in one buffer, the walk writing each name after its directory's prefix:
  // not a buffer per path (200,000 of them waited for the collector as native memory).
  let pathBuf = new Uint8Array(1024);
  const walk = async (
    treeOid: string,
    prefixLength: number,
    add: (path: Uint8Array, mode: number, oid: Uint8Array, stat?: Deno.FileInfo) => boolean,
  ): Promise<boolean> => {
    // The tree is read in place, entry by entry: no entry objects nor hex ids for its files
    // (a parsed tree's entries outlived young-generation collections and were promoted:
    // ~50 MB of garbage in the old generation over a 200,000-note tree).
    const body = (await read(treeOid)).body;
    for (let i = 0; i < body.length;) {
      await pace();
      const space = body.indexOf(0x20, i);
      const nul = body.indexOf(0, i);
      if (space < 0 || nul < 0 || space > nul || nul + 21 > body.length) {
        throw new Error(`Cannot parse tree ${treeOid}: truncated`);
      }
      let mode = space > i ? 0 : NaN;
      for (let k = i; k < space; k++) {
        const d = body[k]! - 48;
        mode = d >= 0 && d < 8 ? mode * 8 + d : NaN;
      }
      const length = prefixLength + nul - space - 1;
      if (length + 1 > pathBuf.length) {
        const grown = new Uint8Array(2 * (length + 1));
        grown.set(pathBuf.subarray(0, prefixLength));
        pathBuf = grown;
      }
      pathBuf.set(body.subarray(space + 1, nul), prefixLength);
      const oid = body.subarray(nul + 1, nul + 21);
      i = nul + 21;
      if (mode === 0o40000) {
        pathBuf[length] = 0x2f; // "/"
        if (!await walk(hexAt(oid, 0), length + 1, add)) return false;
        continue;
      }
      // A view of the shared buffer: `add` copies it, and cleanStat's path is made from it now.
      const path = pathBuf.subarray(0, length);
      const stat = mode === 0o160000
        ? undefined
        : cleanStat(base + decoder.decode(path), mode, oid);
      if (!add(path, mode, oid, stat)) return false;
    }
    return true;
  };
  const indexPath = posix.join(gitdir, "index");
  // A tree's walk gives its paths in the index's order: the index goes straight to its file.
  const file = new IndexFileWriter(indexPath);
  let written = false;
  try {
    written = await walk(treeLine.slice(5), 0, (p, m, o, s) => file.add(p, m, o, s));
    if (written) file.finish();
  } finally {
    if (!written) file.discard();
  }
  if (written) return file.length;
  // Out of order (a tree whose entries are not sorted): built in memory, sorted.
  const index = new IndexBuilder();
  await walk(treeLine.slice(5), 0, (p, m, o, s) => {
    index.add(p, m, o, s);
    return true;
  });
  Deno.writeFileSync(indexPath, index.build());
  return index.length;
}
