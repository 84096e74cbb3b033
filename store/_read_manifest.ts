// Copyright memsnap authors. MIT license.
// Private: the one place store/ reads a manifest from a bundle's byte stream.
import type { Manifest } from "../bundle/types.ts";
import { readManifest } from "../bundle/read_manifest.ts";

/** Reads only the manifest (first tar entry, validated by bundle/) and cancels the stream. */
export function readManifestStream(source: ReadableStream<Uint8Array>): Promise<Manifest> {
  return readManifest(source);
}

/** Reads only the manifest of a local bundle file. */
export async function readManifestFile(path: string): Promise<Manifest> {
  const f = await Deno.open(path, { read: true });
  return await readManifestStream(f.readable);
}
