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
 * ```ts
 * import { openBundleFile } from "./open_bundle_file.ts";
 * import { readManifest } from "./read_manifest.ts";
 * import { writeBundle } from "./write_bundle.ts";
 * const header = {
 *   snapshot_id: "20261125T195222123Z-1a2b3c4d", agent_id: "a", tenant: "default",
 *   label: null, created_at: "2026-11-25T19:52:22.123Z", created_by: "api", parent: null,
 *   captures: {}, tools: {},
 *   redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
 * };
 * const bytes = new TextEncoder().encode("hello");
 * const dir = await Deno.makeTempDir();
 * await writeBundle(`${dir}/snap.memsnap`, header, [{
 *   path: "memdir/a.md", kind: "file", size: bytes.length,
 *   open: () => Promise.resolve(new Blob([bytes]).stream()),
 * }]);
 * const manifest = await readManifest(await openBundleFile(`${dir}/snap.memsnap`));
 * console.log(manifest.artifacts.length); // 1
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openBundleFile(path: string): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  return file.readable;
}
