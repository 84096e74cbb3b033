/**
 * What changed between two snapshots: artifacts, memory-dir files, database tables and row
 * counts, git commits between the two HEADs, and state keys.
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import type { JsonValue, Manifest } from "./bundle/types.ts";
import type { PayloadDecipher } from "./bundle/crypto_types.ts";
import { extractBundle } from "./bundle/extract_bundle.ts";
import { comparePaths } from "./bundle/_paths.ts";
import { type ArtifactRows, listRows, lowerBoundRow, rowsOf } from "./bundle/_artifact_table.ts";
import { RefusedError } from "./errors.ts";
import {
  type GitObject,
  type ObjectSource,
  readBundleHeader,
  splitHeaders,
} from "./capture/_git_objects.ts";
import {
  indexPack,
  inflateStart,
  packCommits,
  PackFile,
  packReader,
} from "./capture/_git_pack_reader.ts";
import { LOOSE_PATH } from "./capture/_git_objects_dir.ts";

/** Per-table change of a database. */
export interface TableDiff {
  /** Table name. */
  table: string;
  /** `"added"`, `"removed"` or `"changed"`. */
  change: "added" | "removed" | "changed";
  /** Row count in A (`null` when absent). */
  rows_a: number | null;
  /** Row count in B (`null` when absent). */
  rows_b: number | null;
}

/** The difference between two snapshots. */
export interface SnapshotDiff {
  /** Snapshot A (older, usually). */
  a: string;
  /** Snapshot B. */
  b: string;
  /** Artifacts by path. */
  artifacts: { added: string[]; removed: string[]; changed: string[] };
  /** Memory-dir files (relative to the memory dir). */
  memdir: { added: string[]; removed: string[]; changed: string[] };
  /** Per database that differs: tables with changes (row counts). */
  databases: { name: string; change: "added" | "removed" | "changed"; tables: TableDiff[] }[];
  /** Git: HEADs and the commits reachable from B's HEAD but not from A's (newest first). */
  git: {
    head_a: string | null;
    head_b: string | null;
    commits: { oid: string; subject: string }[];
    /** Commits reachable from A but no longer from B (history rewritten or reset). */
    removed_commits: { oid: string; subject: string }[];
  } | null;
  /** Per state file that differs: top-level keys added, removed, changed. */
  state: { name: string; added: string[]; removed: string[]; changed: string[] }[];
}

/** A bundle to compare: its manifest and an opener of its bytes. */
export interface DiffSide {
  /** The manifest (read from the first entry only). */
  manifest: Manifest;
  /** Opens the whole bundle (only called when contents must be compared). */
  open(): Promise<ReadableStream<Uint8Array>>;
}

/** Options of {@linkcode diffSnapshots}. */
export interface DiffOptions {
  /** Decrypts encrypted payloads. */
  decipher?: PayloadDecipher;
}

/**
 * A manifest's artifacts looked up by path without a map of every path (~50 bytes apiece,
 * beside two lists of 200,000 to 400,000): its rows in path order, as a bundle's manifest
 * lists them (a sorted copy for one that does not). Rows, not entries: a manifest read from a
 * bundle holds a compact table (see ArtifactTable), and no entry is made here.
 */
class ArtifactIndex {
  readonly rows: ArtifactRows;

  constructor(m: Manifest) {
    const rows = rowsOf(m);
    let ordered = true;
    for (let i = 1; i < rows.length && ordered; i++) {
      ordered = comparePaths(rows.path(i - 1), rows.path(i)) < 0;
    }
    this.rows = ordered
      ? rows
      : listRows([...m.artifacts].sort((x, y) => comparePaths(x.path, y.path)));
  }

  has(path: string): boolean {
    const at = lowerBoundRow(this.rows, path);
    return at < this.rows.length && this.rows.path(at) === path;
  }

  /** Whether some artifact's path starts with `prefix`. */
  hasPrefix(prefix: string): boolean {
    const at = lowerBoundRow(this.rows, prefix);
    return at < this.rows.length && this.rows.path(at).startsWith(prefix);
  }
}

function sorted(xs: Iterable<string>): string[] {
  return [...xs].sort();
}

/**
 * Compares two snapshots. Manifests alone give artifact and file changes; databases, git and
 * state are compared from the extracted (verified) payloads when they differ.
 *
 * @param a The older side.
 * @param b The newer side.
 * @param options Keys.
 * @returns The diff.
 * @throws {RefusedError} when a payload that must be read is encrypted and no identity is given.
 */
export async function diffSnapshots(
  a: DiffSide,
  b: DiffSide,
  options: DiffOptions = {},
): Promise<SnapshotDiff> {
  const ma = new ArtifactIndex(a.manifest), mb = new ArtifactIndex(b.manifest);
  // Both lists in path order: one merge finds what was added, removed and changed.
  const added: string[] = [], removed: string[] = [], changed: string[] = [];
  {
    const xs = ma.rows, ys = mb.rows;
    let i = 0, j = 0;
    while (i < xs.length || j < ys.length) {
      const c = i >= xs.length ? 1 : j >= ys.length ? -1 : comparePaths(xs.path(i), ys.path(j));
      if (c < 0) {
        removed.push(xs.path(i));
        i++;
      } else if (c > 0) {
        added.push(ys.path(j));
        j++;
      } else {
        if (!xs.sameSha256(i, ys, j) || xs.kind(i) !== ys.kind(j)) changed.push(ys.path(j));
        i++;
        j++;
      }
    }
    // (reported in the order of sorted(): UTF-16 code units)
    added.sort();
    removed.sort();
    changed.sort();
  }
  const mem = (xs: string[]): string[] =>
    xs.filter((p) => p.startsWith("memdir/")).map((p) => p.slice(7));
  const result: SnapshotDiff = {
    a: a.manifest.snapshot_id,
    b: b.manifest.snapshot_id,
    artifacts: { added, removed, changed },
    memdir: { added: mem(added), removed: mem(removed), changed: mem(changed) },
    databases: [],
    git: null,
    state: [],
  };
  const touched = [...added, ...removed, ...changed];
  const needContent = touched.some((p) =>
    p.startsWith("sqlite/") || p.startsWith("git/") || p.startsWith("state/")
  );
  const headOf = (m: Manifest): string | null => {
    const g = m.captures.git as { head?: { oid?: string } } | null | undefined;
    return g?.head?.oid ?? null;
  };
  if (!needContent) {
    if (headOf(a.manifest) || headOf(b.manifest)) {
      result.git = {
        head_a: headOf(a.manifest),
        head_b: headOf(b.manifest),
        commits: [],
        removed_commits: [],
      };
    }
    return result;
  }
  for (const side of [a, b]) {
    if (side.manifest.payload.encryption && !options.decipher) {
      throw new RefusedError(
        `Cannot diff ${side.manifest.snapshot_id}: its payload is encrypted and no identity was given`,
        { hint: "pass --identity FILE" },
      );
    }
  }
  const work = await Deno.makeTempDir({ prefix: "memsnap-diff-" });
  try {
    const da = join(work, "a"), db = join(work, "b");
    // Only what is compared is written (the memory dir's files are compared by hash, from the
    // manifests); every artifact is still verified.
    const opts = {
      ...(options.decipher ? { decipher: options.decipher } : {}),
      only: (p: string) =>
        p.startsWith("sqlite/") || p.startsWith("state/") || p.startsWith("git/"),
      // Of a captured object store, the history's log reads commits (and tags) alone: the
      // other loose objects, most of them at 200,000 notes, are verified and not written.
      keep: (p: string, bytes: Uint8Array) => !LOOSE_PATH.test(p) || mayBeCommit(bytes),
    };
    // Each bundle's manifest is compared with the one in hand, not parsed a second time.
    await extractBundle(await a.open(), da, { ...opts, manifest: a.manifest });
    await extractBundle(await b.open(), db, { ...opts, manifest: b.manifest });
    // Databases.
    const dbNames = new Set(
      touched.filter((p) => p.startsWith("sqlite/") && p.endsWith(".sqlite")).map((p) =>
        p.slice(7, -7)
      ),
    );
    for (const name of sorted(dbNames)) {
      const p = `sqlite/${name}.sqlite`;
      const ta = ma.has(p) ? tableCounts(join(da, p)) : new Map<string, number>();
      const tb = mb.has(p) ? tableCounts(join(db, p)) : new Map<string, number>();
      const tables: TableDiff[] = [];
      for (const t of sorted(new Set([...ta.keys(), ...tb.keys()]))) {
        const ra = ta.get(t) ?? null, rb = tb.get(t) ?? null;
        if (ra === null) tables.push({ table: t, change: "added", rows_a: null, rows_b: rb });
        else if (rb === null) {
          tables.push({ table: t, change: "removed", rows_a: ra, rows_b: null });
        } else if (ra !== rb || tableHash(join(da, p), t) !== tableHash(join(db, p), t)) {
          tables.push({ table: t, change: "changed", rows_a: ra, rows_b: rb });
        }
      }
      result.databases.push({
        name,
        change: !ma.has(p) ? "added" : !mb.has(p) ? "removed" : "changed",
        tables,
      });
    }
    // State.
    for (const p of touched.filter((x) => x.startsWith("state/") && x.endsWith(".json")).sort()) {
      const va = ma.has(p) ? JSON.parse(await Deno.readTextFile(join(da, p))) as JsonValue : {};
      const vb = mb.has(p) ? JSON.parse(await Deno.readTextFile(join(db, p))) as JsonValue : {};
      const oa = isObject(va) ? va : { "": va }, ob = isObject(vb) ? vb : { "": vb };
      result.state.push({
        name: p.slice(6, -5),
        added: sorted(Object.keys(ob).filter((k) => !(k in oa))),
        removed: sorted(Object.keys(oa).filter((k) => !(k in ob))),
        changed: sorted(
          Object.keys(ob).filter((k) => k in oa && JSON.stringify(oa[k]) !== JSON.stringify(ob[k])),
        ),
      });
    }
    // Git.
    const headA = headOf(a.manifest), headB = headOf(b.manifest);
    if (headA || headB) {
      const la = await historyOf(headA, join(work, "a.git"), da, ma);
      const lb = await historyOf(headB, join(work, "b.git"), db, mb);
      const inA = new Set(la.map((c) => c.oid)), inB = new Set(lb.map((c) => c.oid));
      result.git = {
        head_a: headA,
        head_b: headB,
        commits: lb.filter((c) => !inA.has(c.oid)),
        removed_commits: la.filter((c) => !inB.has(c.oid)),
      };
    }
    return result;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

function isObject(v: JsonValue): v is { [k: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function tableCounts(path: string): Map<string, number> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const names = db.prepare(
      "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
      .all() as { name: string }[];
    const out = new Map<string, number>();
    for (const { name } of names) {
      try {
        const row = db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`)
          .get() as { n: number };
        out.set(name, Number(row.n));
      } catch {
        // Virtual tables whose module is missing: skip.
      }
    }
    return out;
  } finally {
    db.close();
  }
}

function tableHash(path: string, table: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const h = createHash("sha256");
    const q = `SELECT * FROM "${table.replaceAll('"', '""')}"`;
    for (const row of db.prepare(q).iterate()) {
      h.update(
        JSON.stringify(
          row,
          (_k, v) => typeof v === "bigint" ? String(v) : v instanceof Uint8Array ? [...v] : v,
        ),
      );
      h.update("\n");
    }
    return h.digest("hex");
  } catch {
    return "";
  } finally {
    db.close();
  }
}

/**
 * Whether a loose object (zlib) may be a commit or a tag, from the start of its inflated
 * header. Anything that cannot be told is kept.
 */
function mayBeCommit(loose: Uint8Array): boolean {
  let head: Uint8Array;
  try {
    // (a dynamic Huffman block's tables come first: 128 bytes of input give its first bytes;
    // read into one buffer, compared as bytes: nothing made per object, 211,000 at 200,000
    // notes)
    head = inflateStart(loose.subarray(0, 256), START);
  } catch {
    return true;
  }
  if (head.length < 7) return true;
  return startsWith(head, COMMIT) || startsWith(head, TAG);
}

const START = new Uint8Array(64);
const COMMIT = new TextEncoder().encode("commit ");
const TAG = new TextEncoder().encode("tag ");

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** A commit of a history, as the diff lists it. */
interface LogEntry {
  oid: string;
  subject: string;
}

const BUNDLE_ARTIFACT = "git/memdir.bundle";
const utf8 = new TextDecoder();

/**
 * The commits reachable from `head`, newest first, read from one side's extracted history:
 * its object store as captured (the git plugin's `"objects"` layout, under `dir/git`) or the
 * pack of its git bundle (`"bundle"`): read in place for its commits alone (packCommits), or,
 * when it has deltas, copied out of the bundle file into `scratch` and indexed there. Both are
 * read by position, an object at a time: a history of 200,000 objects took
 * isomorphic-git 5 minutes and 860 MiB to index. Empty when there is no head, or when its
 * commit cannot be read.
 */
async function historyOf(
  head: string | null,
  scratch: string,
  dir: string,
  artifacts: ArtifactIndex,
): Promise<LogEntry[]> {
  if (!head) return [];
  let gitdir = join(dir, "git");
  if (artifacts.has(BUNDLE_ARTIFACT)) {
    const bundle = join(dir, BUNDLE_ARTIFACT);
    const { packStart } = await readBundleHeader(bundle);
    // The bundle's pack read in place, its commits found by one pass (no index of every
    // object); a pack with deltas is copied out and indexed whole.
    const inPlace = new PackFile(bundle, packStart);
    try {
      const commits = await packCommits(inPlace);
      if (commits !== undefined) return await commitLog(commits, head);
    } finally {
      inPlace.close();
    }
    const packDir = join(scratch, "objects", "pack");
    await Deno.mkdir(packDir, { recursive: true });
    const file = await Deno.open(bundle, { read: true });
    await file.seek(packStart, Deno.SeekMode.Start);
    await Deno.writeFile(join(packDir, "pack-bundle.pack"), file.readable); // closes `file`
    const pack = new PackFile(join(packDir, "pack-bundle.pack"));
    try {
      await Deno.writeFile(join(packDir, "pack-bundle.idx"), await indexPack(pack));
    } finally {
      pack.close();
    }
    gitdir = scratch;
  } else if (!artifacts.hasPrefix("git/objects/")) {
    return [];
  }
  const source = await packReader(gitdir);
  try {
    return await commitLog(source, head);
  } finally {
    source.close();
  }
}

/**
 * `git log`'s default walk from `head`: the newest commit (by committer time) of those reached
 * and not yet listed comes next, the first reached among equals. Parents that cannot be read
 * (a shallow or damaged history) end their line; `[]` if `head` itself cannot.
 */
async function commitLog(source: ObjectSource, head: string): Promise<LogEntry[]> {
  const load = async (
    oid: string,
  ): Promise<{ oid: string; time: number; parents: string[]; subject: string } | undefined> => {
    let o: GitObject;
    try {
      o = source.readSync?.(oid) ?? await source.read(oid);
    } catch {
      return undefined;
    }
    if (o.type !== "commit") return undefined;
    const { headers, message } = splitHeaders(o.body);
    const committer = headers.find((h) => h.startsWith("committer "));
    return {
      oid,
      time: Number(/ (\d+) [+-]\d{4}$/.exec(committer ?? "")?.[1] ?? 0),
      parents: headers.filter((h) => h.startsWith("parent ")).map((h) => h.slice(7)),
      subject: utf8.decode(message).split("\n")[0] ?? "",
    };
  };
  const first = await load(head);
  if (first === undefined) return [];
  const seen = new Set([head]);
  const queue = [first];
  const out: LogEntry[] = [];
  while (queue.length > 0) {
    let next = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i]!.time > queue[next]!.time) next = i;
    const c = queue.splice(next, 1)[0]!;
    out.push({ oid: c.oid, subject: c.subject });
    for (const p of c.parents) {
      if (seen.has(p)) continue;
      seen.add(p);
      const parent = await load(p);
      if (parent !== undefined) queue.push(parent);
    }
  }
  return out;
}
