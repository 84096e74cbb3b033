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
import { MANIFEST_NAME } from "./_manifest.ts";
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
 * `keepBytes` (for a signature check).
 */
export async function readManifestWithBytes(
  entries: AsyncGenerator<TarEntry>,
  limits: BundleLimits,
  keepBytes: boolean,
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
  const parser = new ManifestStreamParser(limits);
  const bytes = keepBytes ? new Uint8Array(e.size) : undefined;
  let off = 0;
  for await (const c of e.body()) {
    bytes?.set(c, off);
    off += c.length;
    parser.push(c);
  }
  return { manifest: parser.end(), bytes };
}
