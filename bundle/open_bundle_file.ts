/**
 * Opening a bundle file.
 *
 * @module
 */

/**
 * Opens a bundle file as a byte stream (the file is closed when the stream ends or is
 * cancelled).
 *
 * @param path The bundle's path.
 * @returns The stream of its bytes.
 * @throws {Deno.errors.NotFound} If the file does not exist.
 *
 * @example
 * ```ts no-eval
 * import { openBundleFile } from "./open_bundle_file.ts";
 * import { readManifest } from "./read_manifest.ts";
 * const manifest = await readManifest(await openBundleFile("snap.memsnap"));
 * ```
 */
export async function openBundleFile(path: string): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  return file.readable;
}
