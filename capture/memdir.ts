/**
 * The memory-directory plugin: every file of the agent's memory dir, as `memdir/<rel>`.
 *
 * @module
 */
import { posix } from "node:path";
import { NotFoundError, UnsafeBundleError } from "../errors.ts";
import type { JsonValue } from "../bundle/types.ts";
import type {
  ArtifactSource,
  CaptureContext,
  CapturePlugin,
  CaptureResult,
  RestoreContext,
  RestorePlanEntry,
} from "./types.ts";
import {
  assertSafeRelative,
  bytesArtifact,
  existsSync,
  globToRegExp,
  joinFlat,
  linkOrCopy,
  oneChunk,
  readFileInto,
  sha256Bytes,
  sha256FileSync,
  smallInt,
  symlinkStaysInside,
} from "./_util.ts";
import { findGitdir, isIgnored, type TrackedPaths, trackedPaths } from "./_git_repo.ts";
import { pacer } from "../_pace.ts";
import { digestInto } from "../bundle/_digest.ts";
import { MemsnapError } from "../errors.ts";
import { timingSafeEqual } from "node:crypto";
import { SpilledArtifact, SpillFile } from "./_spill.ts";

/** Options of {@linkcode memdirPlugin}. */
export interface MemdirPluginOptions {
  /** The memory directory. Made absolute against the current directory. */
  dir: string;
  /**
   * When `dir` is a git repository, also capture untracked files its `.gitignore` ignores.
   *
   * @default {false}
   */
  includeIgnored?: boolean;
  /**
   * Globs of paths to leave out, relative to `dir` (`*`, `**`, `?`). A glob without `/` matches
   * a file or directory name at any depth; an excluded directory is skipped whole.
   *
   * @default {[]}
   */
  exclude?: string[];
}

/** The defaults of {@linkcode MemdirPluginOptions}. */
const defaults = {
  includeIgnored: false,
  exclude: [] as string[],
} satisfies Partial<MemdirPluginOptions>;

/** Payload prefix of the memdir plugin. */
const PREFIX = "memdir/";

/** The top-level entry of the memory dir a `memdir/` payload path is in (or is). */
function topName(path: string): string {
  const slash = path.indexOf("/", PREFIX.length);
  return path.slice(PREFIX.length, slash === -1 ? undefined : slash);
}

/** One entry found in the memory dir. */
interface Entry {
  /** Path under the memory dir (its absolute path is the listing's `base` + `rel`). */
  rel: string;
  kind: "file" | "symlink";
  size: number;
  executable: boolean;
  /** Last modification (ms since the epoch), for files; 0 when unknown. */
  mtime?: number;
  /** Link target text, for symlinks. */
  target?: string;
}

/** `"<verb> <kind>"`, one string per pair (not one per plan entry: 200,000 of them). */
function action(verb: "add" | "replace", kind: string): string {
  const key = `${verb}\0${kind}`;
  let a = ACTIONS.get(key);
  if (a === undefined) {
    a = `${verb} ${kind}`;
    if (ACTIONS.size < 64) ACTIONS.set(key, a);
  }
  return a;
}
const ACTIONS = new Map<string, string>();

/** A symlink left out of the capture. */
interface SkippedLink {
  path: string;
  target: string;
  reason: string;
}

/** Files up to this size are read with one `readFile` when packed (3x faster than a stream). */
const SMALL_FILE = 1 << 20;

/**
 * A file packed as it is (no redaction): read with one synchronous call when the writer
 * reaches it if small, streamed otherwise. A class, not closures: a 1 GiB memory dir has
 * ~36,000 of these alive until the bundle is written.
 */
class PlainFile implements ArtifactSource {
  readonly kind = "file";
  readonly mode?: number;
  /** The memory dir, ending in `/` (one string shared by every file). */
  readonly #base: string;

  constructor(readonly path: string, readonly size: number, base: string, mode?: number) {
    this.#base = base;
    if (mode !== undefined) this.mode = mode;
  }

  /** The live file: made when it is read, not kept (~75 bytes per file otherwise). */
  get src(): string {
    return this.#base + this.path.slice(PREFIX.length);
  }

  open(): Promise<ReadableStream<Uint8Array>> {
    return this.size <= SMALL_FILE ? wholeFile(this.src).open() : streamFile(this.src).open();
  }

  readInto(into: Uint8Array): number {
    return readFileInto(this.src, into, this.size);
  }
}

/** How the writer gets an artifact's bytes: `open()`, or `readInto()` when there is one. */
type Reader = Pick<ArtifactSource, "open" | "readInto">;

/**
 * A small file, read with one synchronous call when the writer reaches it (straight into its
 * tar buffer): with the file in the page cache, an async `readFile` per note cost 0.5-1 s more
 * CPU over the 5,208 notes of the 165 MiB fixture, on this thread.
 */
function wholeFile(src: string): Reader {
  return {
    readInto: (into) => readFileInto(src, into),
    open: () => {
      try {
        return Promise.resolve(oneChunk(Deno.readFileSync(src)));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}

/**
 * Redacted bytes kept in memory for packing, at most this many in all; a small redacted file
 * past it is appended to one spill file in staging and packed from there (a staged file per
 * note cost ~1 ms of system time each, and ~300 bytes of heap until packed). Each held byte
 * stays in memory until packed (the fixture's 939 redacted notes are 13 MB), against the
 * peak-RSS target.
 */
const HELD_BYTES = 8 << 20;

/**
 * A file that redaction left unchanged is read again when packed (and packed only if it is
 * still the same) unless it was modified within this many milliseconds before the capture: a
 * file the agent is writing to (a journal it appends to every tick) is kept as checked instead,
 * so that a snapshot taken while the agent works does not fail.
 */
const RECENT_MS = 60_000;

/** SHA-256 digest of bytes (raw, for comparison). */
function digest(bytes: Uint8Array): Uint8Array {
  return digestInto("sha256", DIGEST, 0, bytes);
}

/** Where {@linkcode digest} writes (read at once by its callers). */
const DIGEST = new Uint8Array(32);

/** SHA-256 digests kept side by side in one buffer (one small buffer each cost ~0.5 KB). */
class DigestSlab {
  #buf = new Uint8Array(32 * 1024);
  #n = 0;

  /** Stores a digest; returns its index. */
  add(d: Uint8Array): number {
    if ((this.#n + 1) * 32 > this.#buf.length) {
      const grown = new Uint8Array(this.#buf.length * 2);
      grown.set(this.#buf);
      this.#buf = grown;
    }
    this.#buf.set(d.subarray(0, 32), this.#n * 32);
    return this.#n++;
  }

  /** The digest at `i`. */
  at(i: number): Uint8Array {
    return this.#buf.subarray(i * 32, i * 32 + 32);
  }
}

/**
 * A small file that redaction left unchanged: the live file is read again and packed only if
 * its bytes are exactly those that were checked (same SHA-256), so nothing unredacted that was
 * written in between is ever packed. A class with its digest in a shared slab, not closures and
 * a buffer per note: a 1 GiB memory dir has ~30,000 of these alive until the bundle is written
 * (~20 MB as closures).
 */
class CheckedFile implements ArtifactSource {
  readonly kind = "file";
  readonly mode?: number;
  /** The memory dir, ending in `/` (one string shared by every file). */
  readonly #base: string;

  constructor(
    readonly path: string,
    readonly size: number,
    base: string,
    readonly digests: DigestSlab,
    readonly index: number,
    mode?: number,
  ) {
    this.#base = base;
    if (mode !== undefined) this.mode = mode;
  }

  /** The live file (made when it is read, as for {@linkcode PlainFile}). */
  get src(): string {
    return this.#base + this.path.slice(PREFIX.length);
  }

  #check(bytes: Uint8Array): void {
    if (!timingSafeEqual(digest(bytes), this.digests.at(this.index))) {
      throw new MemsnapError(
        `Cannot pack artifact ${
          JSON.stringify(this.path)
        }: the file changed after it was redacted (during the capture)`,
        { hint: "Take the snapshot again." },
      );
    }
  }

  readInto(into: Uint8Array): number {
    const n = readFileInto(this.src, into);
    this.#check(into.subarray(0, n));
    return n;
  }

  open(): Promise<ReadableStream<Uint8Array>> {
    try {
      const bytes = Deno.readFileSync(this.src);
      this.#check(bytes);
      return Promise.resolve(oneChunk(bytes));
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

/** Bytes held in memory (released once packed). */
function heldBytes(bytes: Uint8Array): Reader {
  let held: Uint8Array | undefined = bytes;
  const take = (): Uint8Array => {
    const b = held ?? new Uint8Array(0);
    held = undefined;
    return b;
  };
  return {
    readInto: (into) => {
      const b = take();
      const n = Math.min(b.length, into.length);
      into.set(b.subarray(0, n));
      return n;
    },
    open: () => Promise.resolve(oneChunk(take())),
  };
}

/** Opens a file as a stream. */
function streamFile(src: string): Reader {
  return { open: async () => (await Deno.open(src, { read: true })).readable };
}

/** Renames `root/name` to `staged/name`; false when they are on different filesystems. */
function moved(root: string, staged: string, name: string): boolean {
  try {
    Deno.renameSync(posix.join(root, name), posix.join(staged, name));
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "EXDEV") return false;
    throw e;
  }
}

/**
 * Whether a `.git/info/exclude` file may hold a pattern: a line that is neither blank nor a
 * comment (as git's own template has only comments). Erring towards yes only costs the check.
 */
function excludeHasRules(gitdir: string): boolean {
  let text: string;
  try {
    text = Deno.readTextFileSync(posix.join(gitdir, "info", "exclude"));
  } catch {
    return false; // absent or unreadable: isomorphic-git reads no rules from it either
  }
  return text.split("\n").some((line) => line.trim() !== "" && !line.startsWith("#"));
}

/**
 * Lists the memory dir, sorted by path. Each directory is read by an async call: the thread
 * runs the other plugins' work meanwhile. (Read synchronously, the 100 MiB snapshot's captures
 * took 13 ms less, but the redacted 1 GiB snapshot peaked 15-25 MiB higher, its memory dir's
 * redaction overlapping more of the git history's rewrite.)
 */
async function listDir(
  root: string,
  includeIgnored: boolean,
  exclude: RegExp[],
  signal?: AbortSignal,
): Promise<{ entries: Entry[]; skipped: SkippedLink[]; ignored: number; base: string }> {
  const gitdir = includeIgnored ? undefined : await findGitdir(root);
  // What git ignores is decided by .git/info/exclude and the .gitignore files of a path's
  // directory and those above it. Where there are none, nothing is ignored, and the index's
  // tracked paths are not needed: it is read only when a walk meets such a file.
  const excludeRules = gitdir !== undefined && excludeHasRules(gitdir);
  let trackedSet: TrackedPaths | undefined;
  const tracked = (): TrackedPaths => trackedSet ??= trackedPaths(gitdir!);
  const entries: Entry[] = [];
  const skipped: SkippedLink[] = [];
  let ignored = 0;
  const excluded = (rel: string): boolean => {
    const base = posix.basename(rel);
    return exclude.some((re) => re.test(rel) || (!re.source.includes("/") && re.test(base)));
  };
  /** Whether `rel` is ignored, where ignore rules apply to it. */
  const ignoredPath = async (rel: string, isDir: boolean): Promise<boolean> => {
    if (isDir ? tracked().hasDir(rel) : tracked().has(rel)) return false;
    return await isIgnored(root, gitdir!, isDir ? `${rel}/` : rel);
  };
  // Entry names hold no "/", ".", "..": plain concatenation is the join (and much cheaper
  // than normalizing 5,000 paths).
  const base = root.endsWith("/") ? root : `${root}/`;
  const walk = async (relDir: string, rulesAbove: boolean): Promise<void> => {
    signal?.throwIfAborted();
    const absDir = relDir === "" ? root : base + relDir;
    const names: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(absDir)) names.push(e);
    const rules = gitdir !== undefined &&
      (rulesAbove || names.some((e) => e.name === ".gitignore"));
    for (const e of names) {
      if (e.name === ".git") continue;
      const rel = relDir === "" ? e.name : `${relDir}/${e.name}`;
      const abs = base + rel;
      if (excluded(rel)) continue;
      if (e.isDirectory) {
        if (rules && await ignoredPath(rel, true)) {
          ignored++;
          continue;
        }
        await walk(rel, rules);
        continue;
      }
      if (rules && await ignoredPath(rel, false)) {
        ignored++;
        continue;
      }
      if (e.isSymlink) {
        const target = Deno.readLinkSync(abs);
        if (symlinkStaysInside(rel, target)) {
          const size = new TextEncoder().encode(target).byteLength;
          entries.push({ rel, kind: "symlink", size, executable: false, target });
        } else {
          skipped.push({
            path: rel,
            target,
            reason: target.startsWith("/") ? "absolute target" : "target outside the memory dir",
          });
        }
        continue;
      }
      if (!e.isFile) continue; // fifos, sockets, devices: not memory
      const info = Deno.lstatSync(abs);
      entries.push({
        rel,
        kind: "file",
        size: smallInt(info.size),
        executable: ((info.mode ?? 0) & 0o111) !== 0,
        mtime: info.mtime?.getTime() ?? 0,
      });
    }
  };
  await walk("", excludeRules);
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, skipped, ignored, base };
}

/**
 * Creates the memory-directory plugin. It captures every regular file under `dir` as
 * `memdir/<rel>` (kind `"file"`, mode `0o755` when executable) and every symlink whose target
 * stays inside `dir` as kind `"symlink"` (content: the link target). `.git` is left to
 * the git plugin; when `dir` is a git repository, untracked files its `.gitignore`
 * ignores are skipped unless `includeIgnored`. Symlinks pointing outside are skipped with a
 * warning.
 *
 * With a redactor, a text file under 1 MiB is redacted from the bytes read during the capture:
 * when nothing was found and it was last modified over a minute before, it is read again when
 * packed and packed only if its bytes are still those checked (SHA-256; else a
 * {@linkcode MemsnapError}: the file changed after it was redacted); otherwise the bytes
 * checked (redacted or not) are held in memory (up to 8 MiB in all) or written to the
 * capture's staging directory. Larger text files are redacted into
 * staging and packed from there; binary files are packed as they are. Restore writes every artifact into the staged
 * memory dir. Files the capture skipped (ignored, excluded) do not survive a restore: the
 * memory dir is replaced as a whole.
 *
 * @param options The memory dir and what to leave out.
 * @returns The plugin, named `"memdir"`.
 * @throws {NotFoundError} On capture, if `dir` is not a directory.
 * @throws {UnsafeBundleError} On restore, for a path or symlink escaping the memory dir, or an
 * artifact inside `.git`.
 *
 * @example Capturing a memory dir
 * ```ts
 * import { memdirPlugin } from "./memdir.ts";
 * import { noopProgress } from "../progress.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/notes.md`, "remember the milk\n");
 * const staging = await Deno.makeTempDir();
 * const plugin = memdirPlugin({ dir });
 * const result = await plugin.capture({
 *   staging, redactor: undefined, signal: new AbortController().signal, progress: noopProgress,
 * });
 * console.log(result.artifacts.map((a) => a.path)); // ["memdir/notes.md"]
 * await Deno.remove(dir, { recursive: true });
 * await Deno.remove(staging, { recursive: true });
 * ```
 */
export function memdirPlugin(options: MemdirPluginOptions): CapturePlugin {
  const dir = posix.resolve(options.dir);
  const includeIgnored = options.includeIgnored ?? defaults.includeIgnored;
  const exclude = (options.exclude ?? defaults.exclude).map((g) =>
    globToRegExp(g.replace(/^\/+|\/+$/g, ""))
  );

  return {
    name: "memdir",
    version: "1",
    owns: (path: string): boolean => path.startsWith(PREFIX),
    restoresInto: dir,

    async capture(ctx: CaptureContext): Promise<CaptureResult> {
      const info = await Deno.stat(dir).catch(() => undefined);
      if (info === undefined || !info.isDirectory) {
        throw new NotFoundError(`Cannot capture memory dir: ${dir} is not a directory`);
      }
      const { entries, skipped, ignored, base } = await listDir(
        dir,
        includeIgnored,
        exclude,
        ctx.signal,
      );
      for (const s of skipped) {
        ctx.progress.warn(
          `Cannot capture symlink memdir/${s.path}: ${s.reason} (${s.target}); skipped`,
        );
      }
      const artifacts: ArtifactSource[] = [];
      let bytes = 0;
      let done = 0;
      let vanished = 0;
      const made = new Set<string>();
      const staged = (rel: string): string => {
        const dest = posix.join(ctx.staging, "memdir", rel);
        const parent = posix.dirname(dest);
        if (!made.has(parent)) {
          Deno.mkdirSync(parent, { recursive: true });
          made.add(parent);
        }
        return dest;
      };
      let held = 0;
      const digests = new DigestSlab();
      // Files written to lately are likely written to again before they are packed.
      const settled = Date.now() - RECENT_MS;
      // Small redacted (or recently written) files past HELD_BYTES: appended to one file.
      const spill = new SpillFile(posix.join(ctx.staging, "memdir.spill"));
      const keep = (path: string, out: Uint8Array, mode?: number): ArtifactSource => {
        if (held + out.length <= HELD_BYTES) {
          held += out.length;
          return {
            path,
            kind: "file",
            size: out.length,
            ...(mode === undefined ? {} : { mode }),
            ...heldBytes(out),
          };
        }
        return new SpilledArtifact(path, out.length, spill, spill.append(out), mode);
      };
      // Redacting small files is synchronous: let the other plugins' I/O run every 16 ms.
      const pace = pacer();
      const total = entries.reduce((n, e) => n + e.size, 0);
      const files = entries.filter((e) => e.kind === "file").length;
      const symlinks = entries.length - files;
      // Taken from the end of the reversed listing, each entry is let go of once it is an
      // artifact (~80 bytes each, 6 MB for a 72,000-file memory dir, alive with the artifacts).
      entries.reverse();
      try {
        for (let e = entries.pop(); e !== undefined; e = entries.pop()) {
          ctx.signal.throwIfAborted();
          const path = joinFlat(PREFIX, e.rel);
          let artifact: ArtifactSource;
          if (e.kind === "symlink") {
            artifact = bytesArtifact(path, new TextEncoder().encode(e.target!), "symlink");
          } else {
            const mode = e.executable ? 0o755 : undefined;
            const file = (size: number, reader: Reader): ArtifactSource => ({
              path,
              kind: "file",
              size,
              ...(mode === undefined ? {} : { mode }),
              ...reader,
            });
            try {
              const redactor = ctx.redactor;
              if (redactor === undefined) {
                artifact = new PlainFile(path, e.size, base, mode);
              } else {
                await pace();
                // A file under one redaction block (most notes) is redacted from the bytes read
                // here, with no copy unless it changed and too much is held already; copies
                // go into one spill file (a staged file per note: ~5,000 of them cost ~3 s of
                // this thread on ext4).
                const abs = base + e.rel;
                const bytes = e.size < SMALL_FILE ? Deno.readFileSync(abs) : undefined;
                if (bytes !== undefined && bytes.length < SMALL_FILE) {
                  const out = redactor.redactBytes(bytes, path);
                  if (out === undefined) {
                    // Binary: packed as it is, as the listing saw it.
                    artifact = file(e.size, wholeFile(abs));
                  } else if (out === bytes && (e.mtime ?? 0) < settled) {
                    const at = digests.add(digest(bytes));
                    artifact = new CheckedFile(path, bytes.length, base, digests, at, mode);
                  } else {
                    // Redacted, or written to lately: the bytes checked, held or spilled.
                    artifact = keep(path, out, mode);
                  }
                } else {
                  // Large (or grown since the listing): streamed through a staged copy.
                  const dest = staged(e.rel);
                  const src = await redactor.redactFile(abs, dest, path) ? dest : abs;
                  // The size from the listing, unless redaction wrote a new file.
                  const size = src === abs ? e.size : Deno.statSync(src).size;
                  artifact = file(size, size <= SMALL_FILE ? wholeFile(src) : streamFile(src));
                }
              }
            } catch (err) {
              if (!(err instanceof Deno.errors.NotFound)) throw err;
              vanished++;
              ctx.progress.warn(
                `Cannot capture ${path}: it was removed during the capture; skipped`,
              );
              continue;
            }
          }
          artifacts.push(artifact);
          bytes += artifact.size;
          done += e.size;
          ctx.progress.progress({ phase: "capture", done, total, item: path });
        }
      } catch (e) {
        spill.close();
        throw e;
      }
      const meta: JsonValue = {
        files: files - vanished,
        symlinks,
        bytes,
        ignored_skipped: ignored,
        vanished,
        skipped_symlinks: skipped.map((s) => ({ ...s })),
      };
      // The spill file itself goes with the staging dir.
      return { artifacts, meta, release: () => spill.close() };
    },

    async restore(ctx: RestoreContext): Promise<void> {
      const mine = ctx.artifacts.filter((a) => a.path.startsWith(PREFIX));
      /** Symlink artifacts: rel -> target. */
      const links = new Map<string, string>();
      // Check everything before writing anything.
      for (const a of mine) {
        const rel = a.path.slice(PREFIX.length);
        assertSafeRelative(rel, a.path);
        if (rel.includes(".git") && rel.split("/").includes(".git")) {
          throw new UnsafeBundleError(
            "git_dir",
            a.path,
            `Cannot restore "${a.path}": memdir artifacts may not write inside .git`,
          );
        }
        if (a.kind === "symlink") {
          const target = await Deno.readTextFile(posix.join(ctx.payloadDir, a.path));
          if (!symlinkStaysInside(rel, target)) {
            throw new UnsafeBundleError(
              "symlink_escape",
              a.path,
              `Cannot restore symlink "${a.path}": its target "${target}" escapes the memory dir`,
            );
          }
          links.set(rel, target);
        } else if (a.kind !== "file") {
          throw new UnsafeBundleError(
            "artifact_kind",
            a.path,
            `Cannot restore "${a.path}": unknown memdir artifact kind "${a.kind}"`,
          );
        }
      }
      const staged = await ctx.stage({ path: dir, type: "dir" });
      const files = mine.filter((a) => a.kind === "file");
      let left = files;
      if (ctx.payloadMovable) {
        // Move whole top-level entries of the extracted tree into staging (one rename each);
        // symlink artifacts move as regular files and are replaced below.
        const root = posix.join(ctx.payloadDir, PREFIX);
        // Sorted paths: an entry's artifacts are adjacent (one name per entry, not per file).
        const tops = new Set<string>();
        let last = "";
        for (const a of mine) {
          if (last !== "" && a.path.startsWith(last)) continue;
          const name = topName(a.path);
          tops.add(name);
          last = `${PREFIX}${name}/`;
        }
        const kept = new Set<string>();
        for (const name of tops) {
          ctx.signal.throwIfAborted();
          if (existsSync(posix.join(staged, name)) || !moved(root, staged, name)) kept.add(name);
        }
        left = kept.size === 0 ? [] : files.filter((a) => kept.has(topName(a.path)));
        for (const a of mine) {
          if (a.kind === "symlink" && !kept.has(topName(a.path))) {
            Deno.removeSync(posix.join(staged, a.path.slice(PREFIX.length)));
          }
        }
      }
      // Whatever was not moved: a hard link, or a copy across filesystems.
      const made = new Set<string>();
      for (const a of left) {
        ctx.signal.throwIfAborted();
        const rel = a.path.slice(PREFIX.length);
        const dest = posix.join(staged, rel);
        const parent = posix.dirname(dest);
        if (!made.has(parent)) {
          Deno.mkdirSync(parent, { recursive: true });
          made.add(parent);
        }
        linkOrCopy(posix.join(ctx.payloadDir, a.path), dest);
        Deno.chmodSync(dest, a.mode ?? 0o644);
      }
      ctx.progress.progress({
        phase: "restore",
        done: files.length,
        total: files.length,
        item: PREFIX,
      });
      // Links last, so no file is ever written through one.
      for (const [rel, target] of links) {
        const dest = posix.join(staged, rel);
        Deno.mkdirSync(posix.dirname(dest), { recursive: true });
        Deno.symlinkSync(target, dest);
      }
    },

    async plan(ctx): Promise<RestorePlanEntry[]> {
      // The artifacts and the live listing, both in the listing's order (UTF-16, as the plan
      // is sorted), merged: no map or set of every path (~30 MiB at 200,000 notes).
      const mine = ctx.artifacts.filter((a) => a.path.startsWith(PREFIX));
      mine.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
      // (paths are relative and normalized: concatenation is the join, and much cheaper than
      // normalizing 36,000 of them; listDir's entries are under the same base)
      const base = dir.endsWith("/") ? dir : `${dir}/`;
      let live: Entry[] = [];
      try {
        live = (await listDir(dir, true, [], ctx.signal)).entries;
      } catch {
        live = [];
      }
      const plan: RestorePlanEntry[] = [];
      let buf: Uint8Array | undefined;
      let i = 0;
      let j = 0;
      while (i < live.length || j < mine.length) {
        const e = live[i];
        const a = mine[j];
        const rel = a?.path.slice(PREFIX.length);
        if (a === undefined || (e !== undefined && e.rel < rel!)) {
          plan.push({ target: base + e!.rel, action: "remove file" });
          i++;
          continue;
        }
        if (e === undefined || rel! < e.rel) {
          plan.push({ target: base + rel, action: action("add", a.kind) });
          j++;
          continue;
        }
        i++;
        j++;
        const target = base + e.rel;
        // Another kind or size is another content: no need to read it. Files are hashed with
        // synchronous reads into one buffer: planning over the 1 GiB fixture's 36,182 unchanged
        // notes took 20-26 s (7.7-8 CPU-s) with an async open and reads per file, 5.5-5.9 s
        // (2.1 CPU-s) so.
        ctx.signal.throwIfAborted();
        const differs = a.kind !== e.kind || a.size !== e.size ||
          (e.kind === "symlink"
              ? sha256Bytes(e.target!)
              : sha256FileSync(target, buf ??= new Uint8Array(1 << 20))) !== a.sha256;
        if (differs) {
          plan.push({ target, action: action("replace", a.kind) });
        } else if (a.kind === "file" && (a.mode ?? 0o644) !== (e.executable ? 0o755 : 0o644)) {
          plan.push({ target, action: "change mode", detail: (a.mode ?? 0o644).toString(8) });
        }
      }
      return plan;
    },
  };
}
