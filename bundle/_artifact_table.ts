/**
 * A manifest's artifact list, held compactly (private).
 *
 * The bundle writer records each packed artifact here rather than as a manifest entry object,
 * and the manifest parser each entry it reads: kind, path, size and mode in parallel arrays,
 * the SHA-256 as 32 bytes. A manifest entry object with its hex digest string costs ~136 bytes
 * (a 56-byte object and an 80-byte string; this runtime's V8 has no pointer compression), a
 * row here ~51: at 411,000 artifacts (a memory of 200,000 notes with their loose git objects)
 * ~35 MB less, in every command that writes or reads such a bundle.
 *
 * A manifest made by {@linkcode lazyManifest} holds a table until its `artifacts` are read:
 * then they are made, once, as plain entries (an ordinary array from there on). The code that
 * reads a whole list (the manifest's serializer, the payload reader, `diff`, the restore's
 * gates) goes through {@linkcode rowsOf}, which reads the table when there is one and the
 * array otherwise, so those commands never make the entries.
 *
 * @module
 */
import type { Manifest, ManifestArtifact } from "./types.ts";
import { hex, smallInt } from "./_io.ts";
import { comparePaths } from "./_paths.ts";

/** Read access to a manifest's artifacts, by row (in the manifest's order). */
export interface ArtifactRows {
  readonly length: number;
  path(i: number): string;
  kind(i: number): string;
  size(i: number): number;
  /** Lowercase hex. */
  sha256(i: number): string;
  /** The row as a manifest entry (made on each call). */
  entry(i: number): ManifestArtifact;
  /** Whether row `i` has the same SHA-256 as row `j` of `other`. */
  sameSha256(i: number, other: ArtifactRows, j: number): boolean;
  /** Whether row `i`'s SHA-256 is `digest` (32 bytes). */
  hasSha256(i: number, digest: Uint8Array): boolean;
}

/** Rows per block of the typed arrays (they grow a block at a time, never copied). */
const BLOCK_SHIFT = 12;
const BLOCK = 1 << BLOCK_SHIFT;
const MASK = BLOCK - 1;

/** A manifest's artifacts: see the module doc. */
export class ArtifactTable implements ArtifactRows {
  readonly #kinds: string[][] = [];
  readonly #paths: string[][] = [];
  readonly #sizes: Float64Array[] = [];
  /** The mode plus one, or 0 for an entry without one. */
  readonly #modes: Uint16Array[] = [];
  /** 32 bytes per row. */
  readonly #digests: Uint8Array[] = [];
  #length = 0;
  #bytes = 0;

  /** Artifacts recorded so far. */
  get length(): number {
    return this.#length;
  }

  /** Their bytes in all. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Records the next artifact; returns its row. Its digest goes into
   * `digestBlock(row)` at `digestOffset(row)`.
   */
  push(kind: string, path: string, size: number, mode: number | undefined): number {
    const i = this.#length;
    const b = i >>> BLOCK_SHIFT;
    if (b === this.#sizes.length) {
      // Blocks, not arrays grown by push: no copy of the list's pointers is ever made (a list
      // grown by push leaves ~2x its final size of garbage copies behind).
      this.#kinds.push(new Array<string>(BLOCK));
      this.#paths.push(new Array<string>(BLOCK));
      this.#sizes.push(new Float64Array(BLOCK));
      this.#modes.push(new Uint16Array(BLOCK));
      this.#digests.push(new Uint8Array(BLOCK * 32));
    }
    this.#kinds[b]![i & MASK] = kind;
    this.#paths[b]![i & MASK] = path;
    this.#sizes[b]![i & MASK] = size;
    this.#modes[b]![i & MASK] = mode === undefined ? 0 : mode + 1;
    this.#bytes += size;
    this.#length = i + 1;
    return i;
  }

  /** The buffer holding row `i`'s digest, at {@linkcode digestOffset}. */
  digestBlock(i: number): Uint8Array {
    return this.#digests[i >>> BLOCK_SHIFT]!;
  }

  /** Where row `i`'s 32 digest bytes are in its {@linkcode digestBlock}. */
  digestOffset(i: number): number {
    return (i & MASK) * 32;
  }

  /** Sets row `i`'s digest from 64 hex digits; false (unchanged) if they are not lowercase hex. */
  setDigestHex(i: number, digits: string): boolean {
    if (digits.length !== 64) return false;
    for (let k = 0; k < 64; k++) if (HEX_VALUE[digits.charCodeAt(k)] === undefined) return false;
    const block = this.digestBlock(i);
    const at = this.digestOffset(i);
    for (let k = 0; k < 32; k++) {
      block[at + k] = (HEX_VALUE[digits.charCodeAt(2 * k)]! << 4) |
        HEX_VALUE[digits.charCodeAt(2 * k + 1)]!;
    }
    return true;
  }

  path(i: number): string {
    return this.#paths[i >>> BLOCK_SHIFT]![i & MASK]!;
  }

  kind(i: number): string {
    return this.#kinds[i >>> BLOCK_SHIFT]![i & MASK]!;
  }

  size(i: number): number {
    return smallInt(this.#sizes[i >>> BLOCK_SHIFT]![i & MASK]!);
  }

  sha256(i: number): string {
    const at = this.digestOffset(i);
    return hex(this.digestBlock(i).subarray(at, at + 32));
  }

  sameSha256(i: number, other: ArtifactRows, j: number): boolean {
    if (!(other instanceof ArtifactTable)) return this.sha256(i) === other.sha256(j);
    const a = this.digestBlock(i), x = this.digestOffset(i);
    const b = other.digestBlock(j), y = other.digestOffset(j);
    for (let k = 0; k < 32; k++) if (a[x + k] !== b[y + k]) return false;
    return true;
  }

  hasSha256(i: number, digest: Uint8Array): boolean {
    const a = this.digestBlock(i), x = this.digestOffset(i);
    for (let k = 0; k < 32; k++) if (a[x + k] !== digest[k]) return false;
    return digest.length === 32;
  }

  /** Row `i` as a manifest entry, keys in canonical order (as `writeBundle` makes them). */
  entry(i: number): ManifestArtifact {
    const kind = this.kind(i);
    const path = this.path(i);
    const sha256 = this.sha256(i);
    const size = this.size(i);
    const m = this.#modes[i >>> BLOCK_SHIFT]![i & MASK]!;
    return m !== 0 ? { kind, mode: m - 1, path, sha256, size } : { kind, path, sha256, size };
  }

  /** Rows `[from, to)` as manifest entries. */
  entries(from = 0, to = this.#length): ManifestArtifact[] {
    const out: ManifestArtifact[] = [];
    for (let i = from; i < Math.min(to, this.#length); i++) out.push(this.entry(i));
    return out;
  }
}

/** Hex digit values by char code (lowercase only; anything else is undefined). */
const HEX_VALUE: Record<number, number> = {};
for (let d = 0; d < 16; d++) HEX_VALUE["0123456789abcdef".charCodeAt(d)] = d;

/** An array of manifest entries as rows. */
class ArrayRows implements ArtifactRows {
  constructor(readonly list: readonly ManifestArtifact[]) {}
  get length(): number {
    return this.list.length;
  }
  path(i: number): string {
    return this.list[i]!.path;
  }
  kind(i: number): string {
    return this.list[i]!.kind;
  }
  size(i: number): number {
    return this.list[i]!.size;
  }
  sha256(i: number): string {
    return this.list[i]!.sha256;
  }
  entry(i: number): ManifestArtifact {
    return this.list[i]!;
  }
  sameSha256(i: number, other: ArtifactRows, j: number): boolean {
    return this.list[i]!.sha256 === other.sha256(j);
  }
  hasSha256(i: number, digest: Uint8Array): boolean {
    return this.list[i]!.sha256 === hex(digest);
  }
}

/** Manifests whose `artifacts` have not been made yet, with their table. */
const tables = new WeakMap<Manifest, ArtifactTable>();

/** The table behind a manifest whose `artifacts` have not been read yet, if it is one. */
export function artifactTableOf(m: Manifest): ArtifactTable | undefined {
  return tables.get(m);
}

/** A manifest's artifacts as rows: its table while it has one, else its array. */
export function rowsOf(m: Manifest): ArtifactRows {
  return tables.get(m) ?? new ArrayRows(m.artifacts);
}

/** A list of manifest entries as rows. */
export function listRows(list: readonly ManifestArtifact[]): ArtifactRows {
  return new ArrayRows(list);
}

/**
 * `m` (modified) with `artifacts` made from `table` when first read (or replaced when
 * assigned): an enumerable accessor until then, a plain data property after.
 */
export function lazyManifest<M extends Manifest>(m: M, table: ArtifactTable): M {
  let made: ManifestArtifact[] | undefined;
  const settle = (artifacts: ManifestArtifact[]): void => {
    tables.delete(m);
    made = artifacts;
    try {
      Object.defineProperty(m, "artifacts", {
        value: artifacts,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    } catch {
      // A frozen manifest keeps the accessor, which returns the entries made once.
    }
  };
  // Redefining the existing key keeps its place among the manifest's keys.
  Object.defineProperty(m, "artifacts", {
    enumerable: true,
    configurable: true,
    get(): ManifestArtifact[] {
      if (made !== undefined) return made;
      const artifacts = table.entries();
      settle(artifacts);
      return artifacts;
    },
    set(v: ManifestArtifact[]) {
      settle(v);
    },
  });
  tables.set(m, table);
  return m;
}

/** A manifest's artifact count and their bytes in all, without making a lazy one's entries. */
export function artifactTotals(m: Manifest): { count: number; bytes: number } {
  const table = tables.get(m);
  if (table) return { count: table.length, bytes: table.bytes };
  let bytes = 0;
  for (const a of m.artifacts) bytes += a.size;
  return { count: m.artifacts.length, bytes };
}

/** The first row whose path is not before `path` (rows sorted by path), or `rows.length`. */
export function lowerBoundRow(rows: ArtifactRows, path: string): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (comparePaths(rows.path(mid), path) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
