/**
 * Reading only the manifest of a bundle.
 *
 * @module
 */
import type { Manifest } from "./types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { ByteSource } from "./_byte_source.ts";
import { resolveLimits } from "./_io.ts";
import { outerEntries, readManifestWithBytes, SameBytes } from "./_outer.ts";
import { encodeManifest, MANIFEST_NAME, manifestChunks, parseManifest } from "./_manifest.ts";
import { artifactTableOf, lazyManifest } from "./_artifact_table.ts";

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
 * @returns The manifest. Its `artifacts` are kept compactly and made into entries when first
 * read (an accessor until then, a plain array after).
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
    const entries = outerEntries(src, limits);
    return (await readManifestWithBytes(entries, limits, false)).manifest;
  } finally {
    await src.cancel();
  }
}

/**
 * The bundle's manifest when it has the same `agent_id`, `artifacts` and `captures` as `m`, else
 * `undefined`. Compared as canonical text as it streams in, and neither manifest is parsed nor
 * held whole: the bundle's artifact list is taken to be `m`'s (the comparison showed it is), and
 * only the text after `captures` is parsed (at 400,000 artifacts, parsing the previous manifest
 * beside the new one took a `--skip-unchanged` snapshot from 329 to 501 MiB). Canonical keys are
 * sorted, so those three come first, and equal text up to the end of `captures` means equal
 * values. Does not verify the bundle; a manifest that is not canonical compares as different.
 *
 * @param source The bundle's bytes (only its first entry is read).
 * @param m The manifest to compare with.
 * @param options Caps.
 * @returns The bundle's manifest, or `undefined` when it differs.
 */
export async function unchangedManifest(
  source: ReadableStream<Uint8Array>,
  m: Pick<Manifest, "agent_id" | "artifacts" | "captures">,
  options: ReadManifestOptions = {},
): Promise<Manifest | undefined> {
  const limits = resolveLimits(options.limits);
  const src = new ByteSource(source);
  try {
    const entries = outerEntries(src, limits);
    const first = await entries.next();
    if (first.done || first.value.path !== MANIFEST_NAME) return undefined;
    if (first.value.size > limits.maxManifestSize) return undefined;
    // A manifest just written holds its artifacts as a table: compared and returned as one,
    // without making its entries (see ArtifactTable).
    const table = artifactTableOf(m as Manifest);
    const head = table
      ? lazyManifest({ agent_id: m.agent_id, artifacts: [], captures: m.captures } as never, table)
      : { agent_id: m.agent_id, artifacts: m.artifacts, captures: m.captures };
    // The canonical text of { agent_id, artifacts, captures } without its closing brace, then
    // the key that follows `captures` in every manifest.
    const want = (function* (): Generator<Uint8Array> {
      let held: Uint8Array | undefined;
      for (const c of manifestChunks(head as Manifest)) {
        if (held) yield held;
        held = c;
      }
      if (held && held.length > 1) yield held.subarray(0, held.length - 1);
      yield new TextEncoder().encode(',"created_at":');
    })();
    const same = new SameBytes(want);
    // The text after the match, decoded as it comes (chunks are reused by the next read).
    const dec = new TextDecoder("utf-8", { fatal: true });
    let rest = "";
    for await (const chunk of first.value.body()) {
      let i = 0;
      if (!same.done()) {
        i = same.match(chunk);
        if (i < chunk.length && !same.done()) return undefined; // they differ
      }
      if (i < chunk.length) {
        try {
          rest += dec.decode(chunk.subarray(i), { stream: true });
        } catch {
          return undefined;
        }
      }
    }
    if (!same.done()) return undefined; // the manifest ended first
    let tail: Record<string, unknown>;
    try {
      tail = JSON.parse(`{"created_at":${rest}${dec.decode()}`);
    } catch {
      return undefined;
    }
    if (typeof tail !== "object" || tail === null || Array.isArray(tail)) return undefined;
    const manifest = {
      agent_id: m.agent_id,
      artifacts: [],
      captures: m.captures,
      ...tail,
    } as unknown as Manifest;
    // Its header checked as readManifest() checks it (format, version, schema), the artifacts
    // aside: they are `m`'s.
    try {
      parseManifest(encodeManifest(manifest), limits);
    } catch {
      return undefined;
    }
    if (table) return lazyManifest(manifest, table);
    manifest.artifacts = m.artifacts;
    return manifest;
  } finally {
    await src.cancel();
  }
}
