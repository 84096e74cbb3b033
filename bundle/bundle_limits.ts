/**
 * Reader caps.
 *
 * @module
 */

/** Caps the bundle reader enforces; exceeding one refuses the bundle (UnsafeBundleError). */
export interface BundleLimits {
  /** Most entries in the payload's inner tar. @default {1_000_000} */
  maxEntries: number;
  /** Largest single artifact, in bytes. @default {68_719_476_736} (64 GiB) */
  maxEntrySize: number;
  /** Largest inflated payload (the inner tar, headers included), in bytes. @default {274_877_906_944} (256 GiB) */
  maxTotalSize: number;
  /** Longest entry path, in UTF-8 bytes. @default {4096} */
  maxPathLength: number;
  /** Most path segments of an entry. @default {64} */
  maxPathDepth: number;
  /** Largest pax extended header, in bytes. @default {65_536} */
  maxPaxSize: number;
  /** Largest zstd window accepted, as log2 of bytes (27 = 128 MiB, zstd's own default). @default {27} */
  maxZstdWindowLog: number;
  /** Largest `manifest.json`, in bytes. @default {134_217_728} (128 MiB) */
  maxManifestSize: number;
}

/**
 * The default reader caps. Pass a partial object to override some:
 * `{ limits: { maxEntries: 10 } }`.
 *
 * @example
 * ```ts
 * import { bundleLimits } from "./bundle_limits.ts";
 * console.log(bundleLimits.maxZstdWindowLog); // 27
 * ```
 */
export const bundleLimits: Readonly<BundleLimits> = Object.freeze({
  maxEntries: 1_000_000,
  maxEntrySize: 64 * 2 ** 30,
  maxTotalSize: 256 * 2 ** 30,
  maxPathLength: 4096,
  maxPathDepth: 64,
  maxPaxSize: 65_536,
  maxZstdWindowLog: 27,
  maxManifestSize: 128 * 2 ** 20,
});
