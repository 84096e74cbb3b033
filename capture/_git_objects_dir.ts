/**
 * The "objects" layout of the git plugin (private): the repository's object store captured as
 * the files git keeps, for snapshots that are not redacted.
 *
 * A git bundle means inflating every loose object and deflating it again into a pack, which
 * made the git plugin the slowest step of a snapshot (1.4 s of CPU at 165 MiB, 12 s at 1 GiB)
 * while nothing could be packed. Unredacted history needs no rewriting, so its objects are
 * packed as they are: each loose object (`objects/xx/yyyy...`, already zlib-compressed) and
 * each pack with its index, plus `HEAD` and one file per ref so that the payload's `git/`
 * directory is itself a git directory (`git --git-dir=out/git log`). Restore moves the object
 * store into the new `.git` in one rename.
 *
 * @module
 */
import { posix } from "node:path";
import { MemsnapError } from "../errors.ts";
import type { ArtifactSource } from "./types.ts";
import { isNotFound, joinFlat, linkOrCopy, oneChunk, readFileInto, smallInt } from "./_util.ts";
import { parseIndexFile } from "./_git_repo.ts";

const decoder = new TextDecoder();

/** Payload prefix of the object store. */
export const OBJECTS_PREFIX = "git/objects/";

/** A loose object's payload path: `git/objects/xx/<38 hex>`. */
export const LOOSE_PATH: RegExp = /^git\/objects\/[0-9a-f]{2}\/[0-9a-f]{38}$/;

/** A pack's or its index's payload path. */
export const PACK_PATH: RegExp = /^git\/objects\/pack\/pack-[0-9a-f]{40}\.(pack|idx)$/;

/** Object files up to this size are read with one call when packed. */
const SMALL_FILE = 1 << 20;

/** One file of the object store. */
interface ObjectFile {
  /** Path relative to `objects/`. */
  rel: string;
  /** The `objects/` dir, ending in `/` (one string shared by every file): the file is `root + rel`. */
  root: string;
  size: number;
}

/** What {@linkcode listObjectStore} found. */
export interface ObjectStore {
  files: ObjectFile[];
  /** Loose objects plus the objects the packs' indexes list. */
  objects: number;
}

function readDirNames(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)];
  } catch (e) {
    if (isNotFound(e)) return [];
    throw e;
  }
}

/** Number of objects a pack index (v2, or v1) lists: the last fan-out entry. */
function indexCount(path: string): number {
  const head = new Uint8Array(8 + 256 * 4);
  const n = readFileInto(path, head);
  const view = new DataView(head.buffer);
  const v2 = n >= 8 && view.getUint32(0) === 0xff744f63;
  const at = (v2 ? 8 : 0) + 255 * 4;
  return n >= at + 4 ? view.getUint32(at) : 0;
}

/**
 * Lists the object store of `gitdir`: loose objects and complete packs (a `.pack` with its
 * `.idx`; git's temporary files are left out). The caller refuses a store with alternates
 * (objects kept elsewhere).
 */
export function listObjectStore(gitdir: string): ObjectStore {
  const root = posix.join(gitdir, "objects");
  const prefix = `${root}/`;
  const files: ObjectFile[] = [];
  let objects = 0;
  for (const d of readDirNames(root)) {
    if (!d.isDirectory || !/^[0-9a-f]{2}$/.test(d.name)) continue;
    const dir = `${prefix}${d.name}/`;
    for (const f of readDirNames(dir)) {
      if (!f.isFile || !/^[0-9a-f]{38}$/.test(f.name)) continue;
      const abs = dir + f.name;
      let size: number;
      try {
        size = Deno.lstatSync(abs).size;
      } catch (e) {
        if (isNotFound(e)) continue; // pruned or packed since the listing: not needed
        throw e;
      }
      files.push({ rel: `${d.name}/${f.name}`, root: prefix, size });
      objects++;
    }
  }
  const packDir = posix.join(root, "pack");
  const names = new Set(readDirNames(packDir).filter((e) => e.isFile).map((e) => e.name));
  for (const name of names) {
    const m = /^(pack-[0-9a-f]{40})\.pack$/.exec(name);
    if (m === null || !names.has(`${m[1]}.idx`)) continue;
    try {
      const pack = posix.join(packDir, name);
      const idx = posix.join(packDir, `${m[1]}.idx`);
      const packSize = Deno.lstatSync(pack).size;
      const idxSize = Deno.lstatSync(idx).size;
      objects += indexCount(idx);
      files.push({ rel: `pack/${name}`, root: prefix, size: packSize });
      files.push({ rel: `pack/${m[1]}.idx`, root: prefix, size: idxSize });
    } catch (e) {
      if (isNotFound(e)) continue; // removed by a repack since the listing
      throw e;
    }
  }
  return { files, objects };
}

/**
 * The artifact of one object-store file, read when the bundle writer reaches it. A file that
 * is gone by then (a `git gc` during the snapshot) fails the snapshot with a clear error; one
 * whose size changed fails it in the writer. A class, not closures: a 1 GiB repository has
 * ~40,000 of these alive until the bundle is written.
 */
class ObjectArtifact implements ArtifactSource {
  readonly path: string;
  readonly kind = "git-object";
  readonly size: number;
  /** The `objects/` dir (shared): the file's path is made when it is read, not kept. */
  readonly #root: string;

  constructor(file: ObjectFile) {
    this.path = joinFlat(OBJECTS_PREFIX, file.rel);
    this.size = smallInt(file.size);
    this.#root = file.root;
  }

  get #abs(): string {
    return this.#root + this.path.slice(OBJECTS_PREFIX.length);
  }

  #gone(e: unknown): unknown {
    return isNotFound(e)
      ? new MemsnapError(
        `Cannot pack ${this.path}: the git object file disappeared during the snapshot ` +
          "(was the repository repacked or garbage-collected?)",
        { hint: "Take the snapshot again.", cause: e },
      )
      : e;
  }

  async open(): Promise<ReadableStream<Uint8Array>> {
    try {
      if (this.size > SMALL_FILE) return (await Deno.open(this.#abs, { read: true })).readable;
      return oneChunk(Deno.readFileSync(this.#abs));
    } catch (e) {
      throw this.#gone(e);
    }
  }

  readInto(into: Uint8Array): number {
    try {
      return readFileInto(this.#abs, into, this.size);
    } catch (e) {
      throw this.#gone(e);
    }
  }
}

/** The artifact of one object-store file; see {@linkcode ObjectArtifact}. */
export function objectArtifact(file: ObjectFile): ArtifactSource {
  return new ObjectArtifact(file);
}

/**
 * Places the captured object store (the `git/objects/...` artifacts of `payloadDir`, among the
 * plugin's artifact `paths`) at `dest` (which must not exist): one rename of the whole
 * directory when the payload may be moved and is on the same filesystem, else file by file.
 */
export function placeObjectStore(
  payloadDir: string,
  paths: readonly string[],
  dest: string,
  movable: boolean,
  signal: AbortSignal,
): void {
  if (!paths.some((p) => p.startsWith(OBJECTS_PREFIX))) return;
  const src = posix.join(payloadDir, OBJECTS_PREFIX);
  if (movable) {
    try {
      Deno.renameSync(src, dest);
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== "EXDEV") throw e;
    }
  }
  const made = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith(OBJECTS_PREFIX)) continue;
    signal.throwIfAborted();
    const to = posix.join(dest, p.slice(OBJECTS_PREFIX.length));
    const parent = posix.dirname(to);
    if (!made.has(parent)) {
      Deno.mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    linkOrCopy(posix.join(payloadDir, p), to);
  }
}

/** Payload path of the captured index (the staging area). */
export const INDEX_PATH = "git/index";

/**
 * Why an index file cannot be restored as it is (`undefined` when it can): not a valid index
 * (signature, version, checksum, entries), an extension git requires to understand (a split or
 * sparse index, whose other half is elsewhere), or a path that is not a safe relative path in
 * the working tree (empty, `.`, `..` or `.git` component, leading `/`). Read through a window,
 * not whole (19 MB at 200,000 files); throws what reading it throws.
 */
export function indexFileProblem(path: string): string | undefined {
  // The first unsafe path, looked at as the index is read (no set of every path).
  let unsafe: string | undefined;
  const parsed = parseIndexFile(path, (p) => {
    if (unsafe === undefined && unsafeIndexPath(p)) unsafe = decoder.decode(p);
  });
  if (parsed === undefined) return "it is not a valid git index";
  const required = parsed.extensions.find((e) => !/^[A-Z]/.test(e));
  if (required !== undefined) return `it uses the ${JSON.stringify(required)} extension`;
  if (unsafe !== undefined) return `it holds the unsafe path ${JSON.stringify(unsafe)}`;
  return undefined;
}

/**
 * Whether an index path (its bytes) is not a safe relative path in the working tree: empty,
 * leading `/`, or an empty, `.`, `..` or `.git` (any case) component. Read on the bytes, not
 * decoded (an index holds one path per tracked file: 200,000 strings were ~12 MB of garbage):
 * the answer is the decoded string's (`/` and `.` are never part of a multi-byte sequence or a
 * replacement character, and no non-ASCII letter lowercases to ASCII `g`, `i` or `t`).
 */
export function unsafeIndexPath(b: Uint8Array): boolean {
  const n = b.length;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && b[i] !== 0x2f) continue;
    // A component: [start, i).
    const len = i - start;
    if (len === 0) return true; // empty path, leading "/", "//" or a trailing "/"
    if (b[start] === 0x2e && len <= 4) {
      if (len === 1 || (len === 2 && b[start + 1] === 0x2e)) return true;
      if (
        len === 4 && (b[start + 1]! | 0x20) === 0x67 && (b[start + 2]! | 0x20) === 0x69 &&
        (b[start + 3]! | 0x20) === 0x74
      ) return true;
    }
    start = i + 1;
  }
  return false;
}
