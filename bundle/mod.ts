/**
 * The memsnap bundle format v1: write, read, verify and extract deterministic, hashed,
 * optionally encrypted and signed snapshot bundles that standard tools (`tar`, `zstd`,
 * `sha256sum`, `age`, `minisign`) can open. See `docs/FORMAT.md` for the specification.
 *
 * @example Write a bundle, then verify it
 * ```ts
 * import { verifyBundle, writeBundle, openBundleFile } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const data = new TextEncoder().encode("{}");
 * await writeBundle(`${dir}/b.tar`, {
 *   snapshot_id: "20261125T195222123Z-1a2b3c4d", agent_id: "a", tenant: "default",
 *   label: null, created_at: "2026-11-25T19:52:22.123Z", created_by: "api", parent: null,
 *   captures: {}, tools: {},
 *   redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
 * }, [{ path: "state/s.json", kind: "state", size: data.length,
 *       open: () => Promise.resolve(new Blob([data]).stream()) }]);
 * const report = await verifyBundle(await openBundleFile(`${dir}/b.tar`));
 * console.log(report.ok); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./crypto_types.ts";
export * from "./bundle_limits.ts";
export * from "./canonical_json.ts";
export * from "./new_snapshot_id.ts";
export * from "./parse_snapshot_id.ts";
export * from "./write_bundle.ts";
export * from "./read_manifest.ts";
export * from "./open_bundle_file.ts";
export * from "./verify_bundle.ts";
export * from "./assert_verified.ts";
export * from "./extract_bundle.ts";
export * from "./age_cipher.ts";
export * from "./age_decipher.ts";
export * from "./age_keys.ts";
export * from "./minisign_keys.ts";
export * from "./minisign_signer.ts";
export * from "./minisign_verifier.ts";
export * from "./keys.ts";
