/**
 * The git plugin: the memory dir's full git history as a standard git bundle,
 * `git/memdir.bundle`, and its `.git/config`.
 *
 * @module
 */
import { posix } from "node:path";
import { Buffer } from "node:buffer";
import { MemsnapError, RefusedError, UnsafeBundleError, UsageError } from "../errors.ts";
import type { JsonValue, Manifest } from "../bundle/types.ts";
import type {
  ArtifactSource,
  CaptureContext,
  CapturePlugin,
  CaptureResult,
  RestoreContext,
  RestorePlanEntry,
} from "./types.ts";
import { bytesArtifact, fileArtifact, isNotFound } from "./_util.ts";
import { findGitdir, gitFs } from "./_git_repo.ts";
import {
  type BundleRef,
  type GitObject,
  type ObjectSource,
  overlaySource,
  reachable,
  readBundleHeader,
  splitHeaders,
  writeBundle,
} from "./_git_objects.ts";
import { writeIndexFromTree } from "./_git_index.ts";
import { BUNDLE_ARTIFACT, rewriteHistory, type SpilledObjects } from "./_git_rewrite.ts";
import { indexPack, PackFile, packReader } from "./_git_pack_reader.ts";
import {
  INDEX_PATH,
  indexFileProblem,
  listObjectStore,
  LOOSE_PATH,
  objectArtifact,
  OBJECTS_PREFIX,
  PACK_PATH,
  placeObjectStore,
} from "./_git_objects_dir.ts";

/** Options of {@linkcode gitPlugin}. */
export interface GitPluginOptions {
  /** The memory directory (the top of a git working tree). Made absolute. */
  dir: string;
  /**
   * Accepted for symmetry with `memdirPlugin`; git history never holds ignored files, so this
   * does not change what the git plugin captures.
   *
   * @default {false}
   */
  includeIgnored?: boolean;
  /**
   * How the history of an unredacted snapshot is captured:
   * - `"objects"`: the object store as git keeps it (loose objects, packs with their indexes)
   *   plus `git/HEAD` and one file per ref, so the payload's `git/` is a git directory. Fast
   *   to take and to restore: nothing is inflated or compressed again.
   * - `"bundle"`: one git bundle of every ref's history, `git/memdir.bundle`, that
   *   `git clone` reads; only reachable objects, compact, slower to take.
   *
   * A redacted snapshot always captures a bundle (its history is rewritten).
   *
   * @default {"objects"}
   */
  layout?: "objects" | "bundle";
}

/** HEAD as recorded in `manifest.captures.git.head`. */
export interface GitHeadMeta {
  /** Commit id HEAD points at in the bundle (rewritten when redacted), or `null` if unborn. */
  oid: string | null;
  /** The symbolic ref HEAD points at (e.g. `refs/heads/main`), or `null` when detached. */
  ref: string | null;
  /** First line of the commit message. */
  subject: string | null;
  /** `Name <email>` of the author. */
  author: string | null;
  /** Author time, ISO 8601. */
  time: string | null;
}

const BUNDLE = BUNDLE_ARTIFACT;
const CONFIG = "git/config";
const EXCLUDE = "git/info/exclude";
const DEFAULT_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n" +
  "\tbare = false\n\tlogallrefupdates = true\n";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Whether a ref name is safe to write as a file under `.git`. */
function safeRefName(name: string): boolean {
  if (!name.startsWith("refs/") || name.length > 1024) return false;
  const parts = name.split("/");
  return parts.every((p) =>
    p !== "" && !p.startsWith(".") && !p.endsWith(".lock") && !p.endsWith(".") &&
    // deno-lint-ignore no-control-regex
    !/[\x00-\x20\x7f~^:?*[\\]/.test(p) && !p.includes("..") && !p.includes("@{")
  );
}

/** Every file under `dir`, as paths relative to `dir` (`a/b`). */
function filesUnder(dir: string, prefix = "", out: string[] = []): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isDirectory) filesUnder(posix.join(dir, e.name), `${prefix}${e.name}/`, out);
    else out.push(`${prefix}${e.name}`);
  }
  return out;
}

/** `packed-refs` as ref name → oid (peeled `^` lines skipped), or empty. */
function packedRefs(gitdir: string): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = Deno.readTextFileSync(posix.join(gitdir, "packed-refs"));
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]{40}) (\S+)$/.exec(line.trim());
    if (m !== null && !out.has(m[2]!)) out.set(m[2]!, m[1]!);
  }
  return out;
}

/**
 * Reads the live refs: direct refs (name → oid) and symbolic refs (name → target). Loose refs
 * and `packed-refs` are read directly (a loose ref wins); a loose ref holding anything but an
 * oid or `ref: ` is resolved by isomorphic-git, loaded only then.
 */
async function readRefs(
  gitdir: string,
): Promise<{ refs: Map<string, string>; symrefs: Map<string, string> }> {
  const refs = new Map<string, string>();
  const symrefs = new Map<string, string>();
  const packed = packedRefs(gitdir);
  const names = [
    ...new Set([
      ...filesUnder(posix.join(gitdir, "refs")).map((n) => `refs/${n}`),
      ...[...packed.keys()].filter((n) => n.startsWith("refs/")),
    ]),
  ].sort();
  for (const name of names) {
    let loose: string | undefined;
    try {
      loose = Deno.readTextFileSync(posix.join(gitdir, name)).trim();
    } catch {
      loose = undefined;
    }
    if (loose?.startsWith("ref: ")) {
      symrefs.set(name, loose.slice(5).trim());
      continue;
    }
    if (loose !== undefined && /^[0-9a-f]{40}$/.test(loose)) refs.set(name, loose);
    else if (loose === undefined && packed.has(name)) refs.set(name, packed.get(name)!);
    else {
      const { default: git } = await import("isomorphic-git");
      refs.set(name, await git.resolveRef({ fs: await gitFs(), gitdir, ref: name }));
    }
  }
  return { refs, symrefs };
}

/**
 * {@linkcode rewriteHistory}, keeping of its id map only the new ids of `tips` (all that is
 * looked up afterwards): the whole map, ~160 bytes per object of the history, would otherwise
 * stay alive while the bundle is written.
 */
async function rewriteTips(
  ...args: Parameters<typeof rewriteHistory>
): Promise<{ objects: SpilledObjects; tips: Map<string, string>; changed: number }> {
  const { map, objects, changed } = await rewriteHistory(...args);
  const tips = new Map<string, string>();
  for (const t of args[1]) tips.set(t, map.get(t) ?? t);
  return { objects, tips, changed };
}

/**
 * Resolves a ref to an oid through loose refs (following `ref: `) and `packed-refs`; anything
 * else goes to isomorphic-git (loaded only then), which throws for an unborn ref.
 */
async function resolveRef(gitdir: string, ref: string): Promise<string> {
  let name = ref;
  for (let hop = 0; hop < 5; hop++) {
    let loose: string | undefined;
    try {
      loose = Deno.readTextFileSync(posix.join(gitdir, name)).trim();
    } catch {
      loose = undefined;
    }
    if (loose === undefined) {
      const packed = packedRefs(gitdir).get(name);
      if (packed !== undefined) return packed;
      break;
    }
    if (/^[0-9a-f]{40}$/.test(loose)) return loose;
    if (!loose.startsWith("ref: ")) break;
    name = loose.slice(5).trim();
  }
  const { default: git } = await import("isomorphic-git");
  return await git.resolveRef({ fs: await gitFs(), gitdir, ref });
}

/** Reads HEAD: symbolic target or detached oid. */
async function readHead(gitdir: string): Promise<{ ref: string | null; oid: string | null }> {
  const text = (await Deno.readTextFile(posix.join(gitdir, "HEAD"))).trim();
  if (text.startsWith("ref: ")) return { ref: text.slice(5).trim(), oid: null };
  if (/^[0-9a-f]{40}$/.test(text)) return { ref: null, oid: text };
  throw new UsageError(`Cannot capture git repository: HEAD holds "${text.slice(0, 80)}"`);
}

/** Describes a commit for the manifest. */
async function describeCommit(
  source: ObjectSource,
  oid: string,
): Promise<Pick<GitHeadMeta, "subject" | "author" | "time">> {
  const o = await source.read(oid);
  if (o.type !== "commit") return { subject: null, author: null, time: null };
  const { headers, message } = splitHeaders(o.body);
  const author = headers.find((h) => h.startsWith("author "));
  const m = author === undefined ? null : /^author (.*) (\d+) ([+-]\d{4})$/.exec(author);
  return {
    subject: decoder.decode(message).split("\n")[0] ?? "",
    author: m?.[1] ?? null,
    time: m ? new Date(Number(m[2]) * 1000).toISOString() : null,
  };
}

/** Copies `src` from byte `start` to its end into a new file `dest`, 1 MiB at a time. */
function copyFrom(src: string, start: number, dest: string, signal: AbortSignal): void {
  using input = Deno.openSync(src, { read: true });
  using output = Deno.openSync(dest, { write: true, create: true, truncate: true });
  input.seekSync(start, Deno.SeekMode.Start);
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    signal.throwIfAborted();
    const n = input.readSync(buf);
    if (n === null || n === 0) break;
    let off = 0;
    while (off < n) off += output.writeSync(buf.subarray(off, n));
  }
}

/** Reads `manifest.captures[name]` as an object. */
function metaOf(manifest: Manifest, name: string): Record<string, JsonValue> | undefined {
  const m = manifest.captures[name];
  return m !== null && typeof m === "object" && !Array.isArray(m) ? m : undefined;
}

const OID = /^[0-9a-f]{40}$/;

/**
 * Checks the artifacts of an object-store capture (`layout: "objects"`) before anything is
 * staged: only loose objects, complete packs, the config files and the ref files, and the ref
 * files (and `git/HEAD`) exactly those the manifest's refs describe. Returns the refs, with
 * `HEAD` first when it is detached.
 */
/** The paths of the plugin's artifacts, without making their entries when the engine gave them. */
function artifactPathsOf(ctx: RestoreContext): readonly string[] {
  return ctx.artifactPaths ?? ctx.artifacts.map((a) => a.path);
}

function objectStoreRefs(
  ctx: RestoreContext,
  meta: Record<string, JsonValue>,
  headMeta: Partial<GitHeadMeta>,
): BundleRef[] {
  const refs = Object.entries((meta.refs ?? {}) as Record<string, JsonValue>);
  const symrefs = Object.entries((meta.symrefs ?? {}) as Record<string, JsonValue>);
  const expected = new Map<string, string>();
  const out: BundleRef[] = [];
  for (const [n, oid] of refs) {
    if (typeof oid !== "string" || !OID.test(oid) || !safeRefName(n)) {
      throw new UnsafeBundleError(
        "git_ref",
        `git/${n}`,
        `Cannot restore git ref ${JSON.stringify(n)}: not a safe ref name with an object id`,
      );
    }
    expected.set(`git/${n}`, `${oid}\n`);
    out.push({ name: n, oid });
  }
  for (const [n, target] of symrefs) expected.set(`git/${n}`, `ref: ${target}\n`);
  const headRef = headMeta.ref ?? null;
  const headOid = headRef === null ? headMeta.oid ?? null : null;
  if (headOid !== null && !OID.test(headOid)) {
    throw new UnsafeBundleError(
      "git_head",
      "git/HEAD",
      `Cannot restore git repository: HEAD ${JSON.stringify(headOid)} is not an object id`,
    );
  }
  expected.set("git/HEAD", headRef === null ? `${headOid}\n` : `ref: ${headRef}\n`);
  const packs = new Set<string>();
  for (const p of artifactPathsOf(ctx)) {
    if (p === CONFIG || p === EXCLUDE || LOOSE_PATH.test(p)) continue;
    if (p === INDEX_PATH) {
      // Read through a window: the index is 19 MB at 200,000 files.
      const problem = indexFileProblem(posix.join(ctx.payloadDir, p));
      if (problem !== undefined) {
        throw new UnsafeBundleError("git_index", p, `Cannot restore ${p}: ${problem}`);
      }
      continue;
    }
    if (PACK_PATH.test(p)) {
      packs.add(p);
      continue;
    }
    const want = expected.get(p);
    if (want === undefined) {
      throw new UnsafeBundleError(
        "git_path",
        p,
        `Cannot restore ${JSON.stringify(p)}: not a file of a captured git object store`,
      );
    }
    if (decoder.decode(Deno.readFileSync(posix.join(ctx.payloadDir, p))) !== want) {
      throw new UnsafeBundleError(
        "git_ref",
        p,
        `Cannot restore ${JSON.stringify(p)}: it does not match the manifest's git refs`,
      );
    }
    expected.delete(p);
  }
  for (const p of expected.keys()) {
    throw new UnsafeBundleError(
      "git_ref",
      p,
      `Cannot restore git repository: ${JSON.stringify(p)} is missing from the payload`,
    );
  }
  for (const p of packs) {
    const other = p.endsWith(".pack") ? `${p.slice(0, -5)}.idx` : `${p.slice(0, -4)}.pack`;
    if (!packs.has(other)) {
      throw new UnsafeBundleError(
        "git_pack",
        p,
        `Cannot restore ${JSON.stringify(p)}: ${JSON.stringify(other)} is missing`,
      );
    }
  }
  if (headOid !== null) out.unshift({ name: "HEAD", oid: headOid });
  return out;
}

/**
 * Creates the git plugin. When `dir` is a git repository it captures every ref with its full
 * history, the repository's `.git/config` as `git/config` and `.git/info/exclude` as
 * `git/info/exclude`. An empty repository yields no history; its HEAD is kept in the
 * metadata. When `dir` is not a repository the plugin captures nothing.
 *
 * The history is captured in one of two layouts (`manifest.captures.git.layout`):
 * - `"objects"` (unredacted snapshots, the default): the object store as its files,
 *   `git/objects/xx/<38 hex>` (loose objects, as git compressed them) and
 *   `git/objects/pack/pack-<40 hex>.pack` / `.idx`, every loose object and complete pack there
 *   is (reachable or not, so staged blobs come along), plus `git/HEAD` and `git/<ref>` for every
 *   ref, and the index as `git/index` (the staging area; left out when it is split or sparse):
 *   the extracted `git/` is a git directory (`git --git-dir=out/git log --all`). The refs
 *   are read before the objects are listed, so every object they name is captured; a `git gc`
 *   that deletes a listed file before it is packed fails the snapshot ("take it again").
 * - `"bundle"` (redacted snapshots, or `layout: "bundle"`): `git/memdir.bundle`, a git
 *   bundle v2 of every ref's history
 *   (reachable objects only) that `git clone` and `git bundle verify` read; HEAD included.
 *
 * With a redactor the history is rewritten before packing: every reachable blob through
 * `redactBytes` (blobs of 4 MiB and more through `redactFile`; binary blobs are kept), commit
 * and tag messages and identities through `redactString`; trees, commits and tags are rewritten
 * bottom-up and the bundle's refs point at the rewritten commits. Rewritten objects go to a
 * temporary file in staging, compressed, not to memory; the live repository is never written.
 *
 * Restore recreates `.git` inside the staged memory dir (the same dir target the memdir plugin
 * fills): the object store (moved in one rename when it can be) or the bundle's pack and its
 * index, every ref, HEAD (symbolic or detached), the config, and the captured index (staged
 * changes stay staged; git compares content where its stat data differs) or, without one, an
 * index built from HEAD's tree (staged but uncommitted changes then show as unstaged), so
 * `git status` shows what it showed at capture. An object store is checked before anything
 * is staged: only object, pack, ref and index paths, every `.pack` with its `.idx`, ref files
 * equal to the manifest's refs, an index with a valid checksum, safe paths and no extension
 * git requires; HEAD's commit and tree must be readable. Stashes and reflogs are not kept.
 *
 * @param options The memory dir.
 * @returns The plugin, named `"git"`.
 * @throws {UsageError} On capture, for a linked worktree, a shallow clone, a repository with
 * alternates, a SHA-256 repository or an invalid HEAD.
 * @throws {UnsafeBundleError} On restore, for an unsafe ref name, a bundle with prerequisites,
 * or an object store that does not check.
 *
 * @example Capturing a repository's history
 * ```ts
 * import { gitPlugin } from "./git.ts";
 * import { noopProgress } from "../progress.ts";
 * const dir = await Deno.makeTempDir();
 * const staging = await Deno.makeTempDir();
 * const plugin = gitPlugin({ dir });
 * const result = await plugin.capture({
 *   staging, redactor: undefined, signal: new AbortController().signal, progress: noopProgress,
 * });
 * console.log(result.meta); // { repository: false }
 * await Deno.remove(dir, { recursive: true });
 * await Deno.remove(staging, { recursive: true });
 * ```
 */
export function gitPlugin(options: GitPluginOptions): CapturePlugin {
  const dir = posix.resolve(options.dir);
  const name = "git";

  return {
    name,
    version: "1",
    owns: (path: string): boolean => path.startsWith("git/"),
    restoresInto: dir,

    async capture(ctx: CaptureContext): Promise<CaptureResult> {
      const gitdir = await findGitdir(dir);
      if (gitdir === undefined) return { artifacts: [], meta: { repository: false } };
      for (
        const [file, why] of [
          ["commondir", "linked worktrees"],
          ["shallow", "shallow clones"],
          ["objects/info/alternates", "repositories borrowing objects (alternates)"],
        ]
      ) {
        if (await Deno.stat(posix.join(gitdir, file!)).then(() => true, () => false)) {
          throw new UsageError(`Cannot capture git repository ${dir}: ${why} are not supported`);
        }
      }
      const artifacts: ArtifactSource[] = [];
      for (const [path, file] of [[CONFIG, "config"], [EXCLUDE, "info/exclude"]] as const) {
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(posix.join(gitdir, file));
        } catch (e) {
          if (isNotFound(e)) continue;
          throw e;
        }
        if (file === "config" && /objectformat\s*=\s*sha256/i.test(decoder.decode(bytes))) {
          throw new UsageError(
            `Cannot capture git repository ${dir}: SHA-256 repositories are not supported`,
          );
        }
        if (ctx.redactor !== undefined) bytes = ctx.redactor.redactBytes(bytes, path) ?? bytes;
        artifacts.push(bytesArtifact(path, bytes, "git-file"));
      }

      const head = await readHead(gitdir);
      const { refs, symrefs } = await readRefs(gitdir);
      const headOid = head.ref === null ? head.oid : refs.get(head.ref) ?? null;
      // The plain object-store capture reads one commit from it (HEAD's description).
      const live = await packReader(gitdir, {
        streams: ctx.redactor !== undefined || options.layout === "bundle",
      });
      let spilled: SpilledObjects | undefined;
      try {
        return await captureHistory();
      } finally {
        live.close();
        await spilled?.dispose();
      }

      async function captureHistory(): Promise<CaptureResult> {
        const meta: Record<string, JsonValue> = {
          repository: true,
          empty: refs.size === 0 && headOid === null,
          symrefs: Object.fromEntries(symrefs),
        };
        if (refs.size === 0 && headOid === null) {
          meta.head = { oid: null, ref: head.ref, subject: null, author: null, time: null };
          meta.refs = {};
          return { artifacts, meta };
        }

        // Unredacted history needs no rewriting: the object store is packed as its files
        // (the refs were read first, so every object they name is in the listing).
        if (ctx.redactor === undefined && options.layout !== "bundle") {
          // The index (staged changes) before the objects, so its blobs are in the listing. One
          // that cannot be restored as it is (split or sparse) is left out: restore then
          // rebuilds one from HEAD's tree.
          // Copied to staging, then checked and packed from the copy: never held (19 MB at
          // 200,000 files), and what is checked is what is packed.
          const copy = posix.join(ctx.staging, "git-index");
          let copied = true;
          try {
            Deno.copyFileSync(posix.join(gitdir!, "index"), copy);
          } catch (e) {
            if (!isNotFound(e)) throw e;
            copied = false;
          }
          if (copied) {
            if (indexFileProblem(copy) === undefined) {
              artifacts.push(await fileArtifact(INDEX_PATH, copy, "git-file"));
            } else Deno.removeSync(copy);
          }
          const store = listObjectStore(gitdir!);
          for (const f of store.files) artifacts.push(objectArtifact(f));
          artifacts.push(
            bytesArtifact(
              "git/HEAD",
              encoder.encode(head.ref === null ? `${headOid}\n` : `ref: ${head.ref}\n`),
              "git-file",
            ),
          );
          for (const [n, oid] of refs) {
            artifacts.push(bytesArtifact(`git/${n}`, encoder.encode(`${oid}\n`), "git-file"));
          }
          for (const [n, target] of symrefs) {
            artifacts.push(
              bytesArtifact(`git/${n}`, encoder.encode(`ref: ${target}\n`), "git-file"),
            );
          }
          const described = headOid === null
            ? { subject: null, author: null, time: null }
            : await describeCommit(live, headOid);
          meta.layout = "objects";
          meta.head = { oid: headOid, ref: head.ref, ...described };
          meta.refs = Object.fromEntries(refs);
          meta.objects = store.objects;
          return { artifacts: artifacts.sort((a, b) => (a.path < b.path ? -1 : 1)), meta };
        }

        const tips = [...new Set([...refs.values(), ...(headOid === null ? [] : [headOid])])];
        let source: ObjectSource = live;
        let map = (oid: string): string => oid;
        if (ctx.redactor !== undefined) {
          const rewrite = await rewriteTips(
            live,
            tips,
            ctx.redactor,
            posix.join(ctx.staging, "rewritten.tmp"),
            ctx.signal,
          );
          spilled = rewrite.objects;
          source = overlaySource(rewrite.objects, live);
          map = (oid) => rewrite.tips.get(oid) ?? oid;
          meta.redacted = true;
          meta.rewritten_objects = rewrite.changed;
          if (headOid !== null) {
            meta.original_head = headOid;
            meta.rewritten_head = map(headOid);
          }
        }
        const bundleRefs: BundleRef[] = [...refs].map(([n, oid]) => ({ oid: map(oid), name: n }));
        if (headOid !== null) bundleRefs.unshift({ oid: map(headOid), name: "HEAD" });
        const bodies = new Map<string, GitObject>();
        const oids = await reachable(source, bundleRefs.map((r) => r.oid), ctx.signal, bodies);
        const bundlePath = posix.join(ctx.staging, "memdir.bundle");
        ctx.progress.progress({ phase: "capture", done: 0, total: oids.length, item: BUNDLE });
        await writeBundle(bundlePath, bundleRefs, source, oids, ctx.signal, bodies);
        bodies.clear();
        ctx.progress.progress({
          phase: "capture",
          done: oids.length,
          total: oids.length,
          item: BUNDLE,
        });
        artifacts.push(await fileArtifact(BUNDLE, bundlePath, "git-bundle"));

        const described = headOid === null
          ? { subject: null, author: null, time: null }
          : await describeCommit(source, map(headOid));
        meta.head = { oid: headOid === null ? null : map(headOid), ref: head.ref, ...described };
        meta.refs = Object.fromEntries(
          bundleRefs.filter((r) => r.name !== "HEAD").map((r) => [
            r.name,
            r.oid,
          ]),
        );
        meta.layout = "bundle";
        meta.objects = oids.length;
        return { artifacts: artifacts.sort((a, b) => (a.path < b.path ? -1 : 1)), meta };
      }
    },

    async restore(ctx: RestoreContext): Promise<void> {
      const meta = metaOf(ctx.manifest, name);
      if (meta === undefined || meta.repository !== true) return;
      const headMeta = (meta.head ?? {}) as Partial<GitHeadMeta>;
      const paths = artifactPathsOf(ctx);
      const has = (p: string): boolean => paths.includes(p);
      const payload = (p: string): string => posix.join(ctx.payloadDir, p);
      // A layout this version does not know (a newer writer's) is refused: restoring only what
      // it understands would leave a .git without its history.
      if (meta.layout !== undefined && meta.layout !== "objects" && meta.layout !== "bundle") {
        throw new RefusedError(
          `Cannot restore git repository: history layout ${
            JSON.stringify(meta.layout)
          } is not supported by this memsnap`,
          { hint: "Restore it with the memsnap version that took the snapshot, or a newer one." },
        );
      }
      const objectsLayout = meta.layout === "objects";

      // Validate everything before staging anything. The bundle's pack is read in place, by
      // position (never whole), to index it; an object store is checked file by file.
      let bundle: { refs: BundleRef[]; packStart: number } | undefined;
      let idx: Uint8Array | undefined;
      if (objectsLayout) {
        bundle = { refs: objectStoreRefs(ctx, meta, headMeta), packStart: 0 };
      } else if (has(BUNDLE)) {
        let pack: PackFile | undefined;
        try {
          bundle = await readBundleHeader(payload(BUNDLE));
          pack = new PackFile(payload(BUNDLE), bundle.packStart);
          idx = await indexPack(pack);
        } catch (e) {
          throw new UnsafeBundleError(
            "git_bundle",
            BUNDLE,
            `Cannot restore ${BUNDLE}: ${e instanceof Error ? e.message : e}`,
          );
        } finally {
          pack?.close();
        }
      }
      const symrefs = Object.entries((meta.symrefs ?? {}) as Record<string, string>);
      const headRef = headMeta.ref ?? null;
      for (
        const r of [
          ...(bundle?.refs ?? []).filter((r) => r.name !== "HEAD").map((r) => r.name),
          ...symrefs.flat(),
          ...(headRef === null ? [] : [headRef]),
        ]
      ) {
        if (!safeRefName(r)) {
          throw new UnsafeBundleError(
            "git_ref",
            objectsLayout ? "git/HEAD" : BUNDLE,
            `Cannot restore git ref "${r}": the name is not a safe ref name`,
          );
        }
      }
      const headOid = bundle?.refs.find((r) => r.name === "HEAD")?.oid ?? null;
      if (headRef === null && headOid === null) {
        throw new UnsafeBundleError(
          "git_head",
          objectsLayout ? "git/HEAD" : BUNDLE,
          `Cannot restore git repository: a detached HEAD without a commit`,
        );
      }

      const staged = await ctx.stage({ path: dir, type: "dir" });
      const gitdir = posix.join(staged, ".git");
      if (objectsLayout) {
        await Deno.mkdir(gitdir, { recursive: true });
        placeObjectStore(
          ctx.payloadDir,
          paths,
          posix.join(gitdir, "objects"),
          ctx.payloadMovable === true,
          ctx.signal,
        );
      }
      for (const d of ["objects/pack", "objects/info", "refs/heads", "refs/tags", "info"]) {
        await Deno.mkdir(posix.join(gitdir, d), { recursive: true });
      }
      await Deno.writeFile(
        posix.join(gitdir, "config"),
        has(CONFIG) ? await Deno.readFile(payload(CONFIG)) : encoder.encode(DEFAULT_CONFIG),
      );
      if (has(EXCLUDE)) await Deno.copyFile(payload(EXCLUDE), posix.join(gitdir, "info/exclude"));
      await Deno.writeTextFile(
        posix.join(gitdir, "HEAD"),
        headRef === null ? `${headOid}\n` : `ref: ${headRef}\n`,
      );
      for (const [n, target] of symrefs) {
        await Deno.mkdir(posix.dirname(posix.join(gitdir, n)), { recursive: true });
        await Deno.writeTextFile(posix.join(gitdir, n), `ref: ${target}\n`);
      }
      if (bundle === undefined) return;

      if (!objectsLayout) {
        // The pack's checksum (its last 20 bytes) names it, as the trailer of the .idx does.
        const trailer = Buffer.from(idx!.subarray(idx!.byteLength - 40, idx!.byteLength - 20))
          .toString("hex");
        const packRel = `.git/objects/pack/pack-${trailer}.pack`;
        copyFrom(payload(BUNDLE), bundle.packStart, posix.join(staged, packRel), ctx.signal);
        ctx.signal.throwIfAborted();
        await Deno.writeFile(posix.join(staged, packRel.replace(/\.pack$/, ".idx")), idx!);
        // The reader below loads it again: not held twice (~28 bytes per object).
        idx = undefined;
      }
      for (const r of bundle.refs) {
        if (r.name === "HEAD") continue;
        await Deno.mkdir(posix.dirname(posix.join(gitdir, r.name)), { recursive: true });
        await Deno.writeTextFile(posix.join(gitdir, r.name), `${r.oid}\n`);
      }
      // With the captured index, two objects are read (HEAD's commit and tree): the reader's
      // streams and bulk engine are not needed. Without it, the index is built from every tree.
      const source = await packReader(gitdir, { streams: !(objectsLayout && has(INDEX_PATH)) });
      try {
        const commitOid = headRef === null
          ? headOid
          : bundle.refs.find((r) => r.name === headRef)?.oid ?? null;
        if (commitOid !== null) {
          try {
            let target = await source.read(commitOid);
            let oid = commitOid;
            while (target.type === "tag") {
              oid = /^object ([0-9a-f]{40})$/m.exec(decoder.decode(target.body))?.[1] ?? "";
              target = await source.read(oid);
            }
            if (objectsLayout && has(INDEX_PATH)) {
              // The captured index, staged changes and all (checked above). Its stat data is the
              // capture's: git compares content where it differs, on the next status.
              Deno.copyFileSync(payload(INDEX_PATH), posix.join(gitdir, "index"));
              if (target.type === "commit") {
                const tree = splitHeaders(target.body).headers.find((h) => h.startsWith("tree "));
                if (tree !== undefined) await source.read(tree.slice(5));
              }
            } else if (target.type === "commit") {
              await writeIndexFromTree(staged, gitdir, source, oid);
            }
          } catch (e) {
            if (!objectsLayout || e instanceof MemsnapError) throw e;
            // The object store is not checked object by object: a missing or unreadable object
            // of HEAD's tree is found here.
            throw new UnsafeBundleError(
              "git_objects",
              OBJECTS_PREFIX,
              `Cannot restore git repository: HEAD's commit or tree cannot be read from ` +
                `the captured objects (${e instanceof Error ? e.message : e})`,
            );
          }
        }
      } finally {
        source.close();
      }
      ctx.progress.progress({
        phase: "restore",
        done: 1,
        total: 1,
        item: objectsLayout ? OBJECTS_PREFIX : BUNDLE,
      });
    },

    async plan(ctx): Promise<RestorePlanEntry[]> {
      const meta = metaOf(ctx.manifest, name);
      if (meta === undefined || meta.repository !== true) return [];
      const want = (meta.head ?? {}) as Partial<GitHeadMeta>;
      let from = "none";
      const gitdir = await findGitdir(dir);
      if (gitdir !== undefined) {
        try {
          const head = await readHead(gitdir);
          from = head.oid ?? await resolveRef(gitdir, head.ref!).catch(() => "unborn");
          from = `${head.ref ?? "detached"} ${from.slice(0, 12)}`;
        } catch {
          from = "unreadable";
        }
      }
      const to = `${want.ref ?? "detached"} ${(want.oid ?? "unborn").slice(0, 12)}`;
      return [{
        target: posix.join(dir, ".git"),
        action: "replace git repository",
        detail: `HEAD ${from} → ${to}`,
      }];
    },
  };
}
