/**
 * Reading only the manifest of a bundle.
 *
 * @module
 */
import type { Manifest } from "./types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { ByteSource } from "./_byte_source.ts";
import { readTar } from "./_tar_reader.ts";
import { resolveLimits } from "./_io.ts";
import { readManifestWithBytes } from "./_outer.ts";

/** Options of {@linkcode readManifest}. */
export interface ReadManifestOptions {
  /** Caps (only `maxManifestSize`, `maxPaxSize` and the path caps apply here). */
  limits?: Partial<BundleLimits>;
}

/**
 * Reads and validates the manifest, the first entry of a bundle, then cancels the stream.
 * Works on a truncated stream (e.g. a ranged GET) that holds at least the first entry:
 * 512 bytes of header plus the manifest's size rounded up to 512. A stream cut shorter fails
 * with rule `truncated`; fetch more and retry.
 *
 * Nothing is verified beyond the manifest itself (see `verifyBundle()`).
 *
 * @param source The bundle's bytes (or a prefix of them).
 * @param options Caps.
 * @returns The manifest.
 * @throws {CorruptBundleError} If the first entry is not a valid manifest (rule
 * `manifest_first`, `manifest_json`, `manifest_schema` naming the field, `truncated`...).
 * @throws {RefusedError} If the manifest's format or version is unsupported.
 * @throws {UnsafeBundleError} If the first entry breaks a safety rule.
 *
 * @example
 * ```ts
 * import { readManifest } from "./read_manifest.ts";
 * import { openBundleFile } from "./open_bundle_file.ts";
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
 * const m = await readManifest(await openBundleFile(`${dir}/snap.memsnap`));
 * console.log(m.snapshot_id, m.artifacts[0]?.sha256);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readManifest(
  source: ReadableStream<Uint8Array>,
  options: ReadManifestOptions = {},
): Promise<Manifest> {
  const limits = resolveLimits(options.limits);
  const src = new ByteSource(source);
  try {
    const entries = readTar(src, {
      ...limits,
      maxEntries: 16,
      maxEntrySize: Number.MAX_SAFE_INTEGER,
    });
    return (await readManifestWithBytes(entries, limits, false)).manifest;
  } finally {
    await src.cancel();
  }
}
