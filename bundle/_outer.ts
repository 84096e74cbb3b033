/**
 * The outer tar's entries (private).
 *
 * @module
 */
import type { Manifest } from "./types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { readTar, type TarEntry } from "./_tar_reader.ts";
import type { ByteSource } from "./_byte_source.ts";
import { corrupt, unsafe } from "./_errors.ts";
import { MANIFEST_NAME, manifestChunks } from "./_manifest.ts";
import { ManifestStreamParser } from "./_manifest_stream.ts";

/**
 * The entries of a bundle's outer tar: a handful (manifest, payload, signature), of any size
 * (the payload's caps are the inner tar's); paths and pax headers under `limits`.
 */
export function outerEntries(src: ByteSource, limits: BundleLimits): AsyncGenerator<TarEntry> {
  return readTar(src, { ...limits, maxEntries: 16, maxEntrySize: Number.MAX_SAFE_INTEGER });
}

/**
 * Reads the first entry of an outer tar as the manifest, returning its bytes too when
 * `keepBytes` (for a signature check). With `known` (the manifest already read from this
 * bundle), the entry is compared with `known`'s canonical text as it streams in, and `known`
 * itself is returned when they are the same bytes: nothing is parsed again (~200 bytes per
 * artifact). At the first difference (another manifest, or one that is not canonical) the
 * bytes read so far, which are `known`'s, are given to the parser with the rest, as without it.
 */
export async function readManifestWithBytes(
  entries: AsyncGenerator<TarEntry>,
  limits: BundleLimits,
  keepBytes: boolean,
  known?: Manifest,
): Promise<{ manifest: Manifest; bytes: Uint8Array | undefined }> {
  const first = await entries.next();
  if (first.done) throw corrupt("manifest_first", undefined, "the bundle is empty");
  const e = first.value;
  if (e.path !== MANIFEST_NAME) {
    throw corrupt("manifest_first", e.path, `comes first instead of ${MANIFEST_NAME}`);
  }
  if (e.size > limits.maxManifestSize) {
    throw unsafe(
      "max_manifest_size",
      e.path,
      `is larger than the cap of ${limits.maxManifestSize} bytes`,
    );
  }
  // Parsed as it streams in: neither its bytes (unless kept) nor its text is held whole.
  const bytes = keepBytes ? new Uint8Array(e.size) : undefined;
  const same = known === undefined ? undefined : new SameBytes(manifestChunks(known));
  /** A parser given what matched `known` so far (`known`'s bytes, regenerated). */
  const parserFromHere = (): ManifestStreamParser => {
    const p = new ManifestStreamParser(limits);
    if (same !== undefined) {
      for (const piece of same.matched(manifestChunks(known!))) p.push(piece);
    }
    return p;
  };
  let parser = same === undefined ? parserFromHere() : undefined;
  let off = 0;
  for await (const c of e.body()) {
    bytes?.set(c, off);
    off += c.length;
    if (parser !== undefined) {
      parser.push(c);
      continue;
    }
    const n = same!.match(c);
    if (n === c.length) continue;
    // They differ: the parser takes what matched and the rest.
    parser = parserFromHere();
    parser.push(c.subarray(n));
  }
  if (parser === undefined) {
    if (same!.done()) return { manifest: known!, bytes };
    parser = parserFromHere(); // the entry ended first: a prefix of known's text
  }
  return { manifest: parser.end(), bytes };
}

/** Compares bytes as they come with the concatenation of `pieces`. */
export class SameBytes {
  readonly #pieces: Iterator<Uint8Array>;
  #piece: Uint8Array = new Uint8Array(0);
  #at = 0;
  #ended = false;
  /** Bytes matched so far. */
  count = 0;

  constructor(pieces: Iterator<Uint8Array>) {
    this.#pieces = pieces;
  }

  /** How many of `c`'s first bytes continue the pieces' bytes (all of them while they agree). */
  match(c: Uint8Array): number {
    let i = 0;
    while (i < c.length) {
      if (this.#at === this.#piece.length && !this.#advance()) break;
      const piece = this.#piece;
      const n = Math.min(c.length - i, piece.length - this.#at);
      for (let k = 0; k < n; k++) {
        if (c[i + k] !== piece[this.#at + k]) {
          this.#at += k;
          this.count += k;
          return i + k;
        }
      }
      i += n;
      this.#at += n;
      this.count += n;
    }
    return i;
  }

  #advance(): boolean {
    if (this.#ended) return false;
    const r = this.#pieces.next();
    if (r.done) {
      this.#ended = true;
      return false;
    }
    this.#piece = r.value;
    this.#at = 0;
    return true;
  }

  /** Whether every byte of the pieces was matched. */
  done(): boolean {
    while (this.#at === this.#piece.length) if (!this.#advance()) return true;
    return false;
  }

  /** The first {@linkcode count} bytes of `pieces` (the same pieces, from their start). */
  *matched(pieces: Iterable<Uint8Array>): Generator<Uint8Array> {
    let left = this.count;
    for (const p of pieces) {
      if (left <= 0) return;
      yield p.length <= left ? p : p.subarray(0, left);
      left -= p.length;
    }
  }
}
