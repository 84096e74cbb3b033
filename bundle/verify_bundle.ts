/**
 * Bundle verification.
 *
 * @module
 */
import type { VerificationFailure } from "../errors.ts";
import type { ProgressReporter } from "../progress.ts";
import type { Manifest } from "./types.ts";
import type { ManifestVerifier, PayloadDecipher } from "./crypto_types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { resolveLimits } from "./_io.ts";
import { readPass } from "./_reader.ts";

/** Options of {@linkcode verifyBundle}. */
export interface VerifyBundleOptions {
  /** Decrypts an encrypted payload so its artifacts can be checked. */
  decipher?: PayloadDecipher;
  /** Checks the manifest signature, if the bundle has one. */
  verifier?: ManifestVerifier;
  /** Count a missing signature as a failure (needs `verifier`). @default {false} */
  requireSignature?: boolean;
  /** Reader caps; unset fields keep the defaults of `bundleLimits`. */
  limits?: Partial<BundleLimits>;
  /** Receives `verify` progress (payload bytes read). */
  progress?: ProgressReporter;
  /** Aborts the verification. */
  signal?: AbortSignal;
}

/** The outcome of {@linkcode verifyBundle}. */
export interface VerifyReport {
  /** Whether every check passed. */
  ok: boolean;
  /** The bundle's manifest (valid and supported, whatever the outcome). */
  manifest: Manifest;
  /**
   * The signature check: `valid`, `invalid` (see failures), `absent` (no signature entry) or
   * `not_checked` (signed, but no verifier given).
   */
  signature: "valid" | "invalid" | "absent" | "not_checked";
  /**
   * Whether the artifacts were checked: `false` for an encrypted payload without a decipher
   * (not a failure: only the payload hash was checked).
   */
  artifacts_checked: boolean;
  /** Every failed check, each naming its artifact or entry. */
  failures: VerificationFailure[];
}

/**
 * Verifies a bundle in one streaming pass: the manifest is valid and supported, the payload's
 * size and SHA-256 match the manifest, the signature holds (if a verifier is given; a missing
 * one fails when `requireSignature`), and, when the payload is plaintext or a decipher is
 * given, every artifact's size and SHA-256 match, with none missing and none extra.
 *
 * @param source The bundle's bytes.
 * @param options Decipher, verifier, caps, progress.
 * @returns The report; turn `!ok` into an error with `assertVerified()`.
 * @throws {UnsafeBundleError} If the bundle breaks a reader safety rule (path escape, link,
 * caps...): the bundle is refused, not merely failed.
 * @throws {RefusedError} If the manifest's format or version is unsupported.
 * @throws {CorruptBundleError} If the manifest itself cannot be read.
 *
 * @example
 * ```ts
 * import { verifyBundle } from "./verify_bundle.ts";
 * import { assertVerified } from "./assert_verified.ts";
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
 * const report = await verifyBundle(await openBundleFile(`${dir}/snap.memsnap`));
 * assertVerified(report); // throws VerificationError unless report.ok
 * console.log(report.signature, report.artifacts_checked); // absent true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function verifyBundle(
  source: ReadableStream<Uint8Array>,
  options: VerifyBundleOptions = {},
): Promise<VerifyReport> {
  const r = await readPass(source, {
    decipher: options.decipher,
    verifier: options.verifier,
    requireSignature: options.requireSignature,
    limits: resolveLimits(options.limits),
    progress: options.progress,
    signal: options.signal,
    phase: "verify",
  });
  return { ok: r.failures.length === 0, ...r };
}
