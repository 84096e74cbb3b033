/**
 * A written bundle's artifact list, held compactly (private).
 *
 * The bundle writer records each packed artifact here rather than as a manifest entry object:
 * kind, path, size and mode in parallel arrays, the SHA-256 as 32 bytes in one buffer. A
 * manifest entry object with its hex digest string costs ~136 bytes (a 56-byte object and an
 * 80-byte string; this runtime's V8 has no pointer compression), a row here ~57: at 411,000
 * artifacts (a memory of 200,000 notes with their loose git objects) ~32 MB less at the end of
 * the snapshot, its peak.
 *
 * The manifest {@linkcode lazyManifest} returns holds a table until its `artifacts` are read:
 * then they are made, once, as plain entries (an ordinary array from there on).
 * {@linkcode manifestChunks} and the byte comparisons built on it read the table directly, so
 * writing the manifest and comparing it with the previous snapshot's make no entry array.
 *
 * @module
 */
import type { Manifest, ManifestArtifact } from "./types.ts";
import { hex, smallInt } from "./_io.ts";

/** A bundle's artifacts in the bundle's order: see the module doc. */
export class ArtifactTable {
  readonly #kinds: string[] = [];
  readonly #paths: string[] = [];
  readonly #sizes: Float64Array;
  /** The mode plus one, or 0 for an entry without one (mode absent or 0644). */
  readonly #modes: Uint16Array;
  /** 32 bytes per artifact. */
  readonly digests: Uint8Array;
  #length = 0;
  #bytes = 0;

  /** @param capacity The number of artifacts, at most. */
  constructor(readonly capacity: number) {
    this.#sizes = new Float64Array(capacity);
    this.#modes = new Uint16Array(capacity);
    this.digests = new Uint8Array(capacity * 32);
  }

  /** Artifacts recorded so far. */
  get length(): number {
    return this.#length;
  }

  /** Their bytes in all. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Records the next artifact; its digest must be put at `digests[32 * i]` (`i`, returned, is
   * its row).
   */
  push(kind: string, path: string, size: number, mode: number | undefined): number {
    const i = this.#length;
    if (i >= this.capacity) throw new RangeError("artifact table is full");
    this.#kinds.push(kind);
    this.#paths.push(path);
    this.#sizes[i] = size;
    this.#modes[i] = mode !== undefined && mode !== 0o644 ? mode + 1 : 0;
    this.#bytes += size;
    this.#length = i + 1;
    return i;
  }

  /** Row `i` as a manifest entry, keys in canonical order (as `writeBundle` makes them). */
  entry(i: number): ManifestArtifact {
    const kind = this.#kinds[i]!;
    const path = this.#paths[i]!;
    const sha256 = hex(this.digests.subarray(32 * i, 32 * i + 32));
    const size = smallInt(this.#sizes[i]!);
    const m = this.#modes[i]!;
    return m !== 0 ? { kind, mode: m - 1, path, sha256, size } : { kind, path, sha256, size };
  }

  /** Rows `[from, to)` as manifest entries. */
  entries(from = 0, to = this.#length): ManifestArtifact[] {
    const out: ManifestArtifact[] = [];
    for (let i = from; i < Math.min(to, this.#length); i++) out.push(this.entry(i));
    return out;
  }
}

/** Manifests whose `artifacts` have not been made yet, with their table. */
const tables = new WeakMap<Manifest, ArtifactTable>();

/** The table behind a manifest whose `artifacts` have not been read yet, if it is one. */
export function artifactTableOf(m: Manifest): ArtifactTable | undefined {
  return tables.get(m);
}

/**
 * `m` (modified) with `artifacts` made from `table` when first read (or replaced when
 * assigned): an enumerable accessor until then, a plain data property after.
 */
export function lazyManifest(m: Manifest, table: ArtifactTable): Manifest {
  const settle = (artifacts: ManifestArtifact[]): void => {
    tables.delete(m);
    Object.defineProperty(m, "artifacts", {
      value: artifacts,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  };
  // Redefining the existing key keeps its place among the manifest's keys.
  Object.defineProperty(m, "artifacts", {
    enumerable: true,
    configurable: true,
    get(): ManifestArtifact[] {
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
