/**
 * The git index a restore writes when the bundle has none: HEAD's tree with the stat data of
 * the working files that match it (private).
 *
 * @module
 */
import { posix } from "node:path";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { pacer } from "../_pace.ts";
import {
  type GitObject,
  IndexBuilder,
  IndexFileWriter,
  type ObjectSource,
  parseTree,
  splitHeaders,
} from "./_git_objects.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Working files are read in blocks of this size, into one buffer. */
const BLOCK = 1 << 20;
let block: Uint8Array | undefined;

/**
 * The stat data of a working file (or symlink) for the index, if its content is the blob
 * `oid`; otherwise (or if it cannot be read) `undefined`. The file is stat'ed before it is
 * read, so stat data never describes content newer than what was hashed: a file that changes
 * afterwards no longer matches it, and git compares its content.
 */
function cleanStat(path: string, mode: number, oid: string): Deno.FileInfo | undefined {
  try {
    const stat = Deno.lstatSync(path);
    const hash = createHash("sha1");
    if (mode === 0o120000) {
      if (!stat.isSymlink) return undefined;
      const bytes = encoder.encode(Deno.readLinkSync(path));
      hash.update(`blob ${bytes.byteLength}\0`).update(bytes);
    } else {
      if (!stat.isFile) return undefined;
      const size = stat.size;
      hash.update(`blob ${size}\0`);
      // Read into one reused buffer: a fresh one per file (readFileSync) left 200,000
      // buffers for the collector, +34 MiB of RSS over the walk of a 200,000-note tree.
      using file = Deno.openSync(path, { read: true });
      const buf = block ??= new Uint8Array(BLOCK);
      let total = 0;
      for (;;) {
        const n = file.readSync(total + BLOCK > size ? buf.subarray(0, size - total + 1) : buf);
        if (n === null || n === 0) break;
        hash.update(buf.subarray(0, n));
        total += n;
        if (total > size) return undefined;
      }
      if (total !== size) return undefined;
    }
    return hash.digest("hex") === oid ? stat : undefined;
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
  const slash = encoder.encode("/");
  const pace = pacer();
  const walk = async (
    treeOid: string,
    prefix: Uint8Array,
    add: (path: Uint8Array, mode: number, oid: string, stat?: Deno.FileInfo) => boolean,
  ): Promise<boolean> => {
    for (const e of parseTree((await read(treeOid)).body)) {
      await pace();
      const path = Buffer.concat([prefix, e.name]);
      if (e.mode === "40000") {
        if (!await walk(e.oid, Buffer.concat([path, slash]), add)) return false;
        continue;
      }
      const mode = parseInt(e.mode, 8);
      const stat = mode === 0o160000
        ? undefined
        : cleanStat(posix.join(worktree, decoder.decode(path)), mode, e.oid);
      if (!add(path, mode, e.oid, stat)) return false;
    }
    return true;
  };
  const indexPath = posix.join(gitdir, "index");
  // A tree's walk gives its paths in the index's order: the index goes straight to its file.
  const file = new IndexFileWriter(indexPath);
  let written = false;
  try {
    written = await walk(treeLine.slice(5), new Uint8Array(), (p, m, o, s) => file.add(p, m, o, s));
    if (written) file.finish();
  } finally {
    if (!written) file.discard();
  }
  if (written) return file.length;
  // Out of order (a tree whose entries are not sorted): built in memory, sorted.
  const index = new IndexBuilder();
  await walk(treeLine.slice(5), new Uint8Array(), (p, m, o, s) => {
    index.add(p, m, o, s);
    return true;
  });
  Deno.writeFileSync(indexPath, index.build());
  return index.length;
}
