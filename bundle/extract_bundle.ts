/**
 * Bundle extraction.
 *
 * @module
 */
import { join } from "node:path";
import { RefusedError, VerificationError } from "../errors.ts";
import type { ProgressReporter } from "../progress.ts";
import type { Manifest } from "./types.ts";
import type { ManifestVerifier, PayloadDecipher } from "./crypto_types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { resolveLimits, writeAll } from "./_io.ts";
import { readPass } from "./_reader.ts";
import { unsafe } from "./_errors.ts";

/** Options of {@linkcode extractBundle}. */
export interface ExtractBundleOptions {
  /** Decrypts an encrypted payload (required for an encrypted bundle). */
  decipher?: PayloadDecipher;
  /** Reader caps; unset fields keep the defaults of `bundleLimits`. */
  limits?: Partial<BundleLimits>;
  /** Checks the manifest signature, if the bundle has one. */
  verifier?: ManifestVerifier;
  /** Fail if the bundle is unsigned (needs `verifier`). @default {false} */
  requireSignature?: boolean;
  /** Aborts the extraction (destDir is cleaned up). */
  signal?: AbortSignal;
  /** Receives `extract` progress (payload bytes read). */
  progress?: ProgressReporter;
}

/**
 * Extracts every artifact of a bundle into `destDir` (artifact `p` at `join(destDir, p)`),
 * verifying as it goes: payload hash, every artifact hash, nothing missing or extra, and the
 * signature when a verifier is given. `destDir` must be absent or empty; it is created.
 * Files are created exclusively (never through an existing path or symlink), with mode 0644
 * or the artifact's mode. On any failure the function throws and `destDir` is left as it was
 * found (removed if it did not exist, else empty); nothing outside it is ever written.
 *
 * @param source The bundle's bytes.
 * @param destDir The directory to extract into.
 * @param options Decipher, verifier, caps, cancellation, progress.
 * @returns The manifest.
 * @throws {VerificationError} If a check fails (carries every failure).
 * @throws {UnsafeBundleError} If the bundle breaks a reader safety rule.
 * @throws {RefusedError} If the bundle is unsupported, encrypted without a decipher, or
 * `destDir` is not empty.
 *
 * @example
 * ```ts
 * import { extractBundle } from "./extract_bundle.ts";
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
 * await extractBundle(await openBundleFile(`${dir}/snap.memsnap`), `${dir}/out`);
 * console.log(await Deno.readTextFile(`${dir}/out/memdir/a.md`)); // hello
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function extractBundle(
  source: ReadableStream<Uint8Array>,
  destDir: string,
  options: ExtractBundleOptions = {},
): Promise<Manifest> {
  const limits = resolveLimits(options.limits);
  let created = false;
  try {
    const entries = [];
    for await (const e of Deno.readDir(destDir)) {
      entries.push(e.name);
      break;
    }
    if (entries.length > 0) {
      await source.cancel().catch(() => {});
      throw new RefusedError(`Cannot extract the bundle: ${destDir} is not empty`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      await source.cancel().catch(() => {});
      throw e;
    }
    await Deno.mkdir(destDir, { recursive: true });
    created = true;
  }
  const dirs = new Set<string>([""]);
  const written: string[] = [];
  try {
    const r = await readPass(source, {
      decipher: options.decipher,
      verifier: options.verifier,
      requireSignature: options.requireSignature,
      limits,
      progress: options.progress,
      signal: options.signal,
      phase: "extract",
      onManifest(m) {
        if (m.payload.encryption !== null && !options.decipher) {
          throw new RefusedError(
            "Cannot extract the bundle: its payload is encrypted and no identity was given",
            { hint: "Pass the age identity that the bundle was encrypted to." },
          );
        }
      },
      async sink(artifact, chunks) {
        const segs = artifact.path.split("/");
        for (let i = 1; i < segs.length; i++) {
          const rel = segs.slice(0, i).join("/");
          if (dirs.has(rel)) continue;
          try {
            await Deno.mkdir(join(destDir, rel));
          } catch (e) {
            if (e instanceof Deno.errors.AlreadyExists) {
              throw unsafe(
                "path_conflict",
                artifact.path,
                `has a parent ${rel} that already exists`,
              );
            }
            throw e;
          }
          dirs.add(rel);
        }
        const path = join(destDir, artifact.path);
        const mode = artifact.mode ?? 0o644;
        let file: Deno.FsFile;
        try {
          file = await Deno.open(path, { createNew: true, write: true, mode: 0o600 });
        } catch (e) {
          if (e instanceof Deno.errors.AlreadyExists) {
            throw unsafe("path_conflict", artifact.path, "already exists in the destination");
          }
          throw e;
        }
        written.push(path);
        try {
          for await (const c of chunks) await writeAll(file, c);
        } finally {
          file.close();
        }
        await Deno.chmod(path, mode);
      },
    });
    if (r.failures.length > 0) {
      const f = r.failures[0]!;
      throw new VerificationError(
        `Cannot extract the bundle: ${f.check}${
          f.path === undefined ? "" : ` (${f.path})`
        }: ${f.detail}${r.failures.length > 1 ? ` and ${r.failures.length - 1} more` : ""}`,
        r.failures,
      );
    }
    return r.manifest;
  } catch (e) {
    if (created) {
      await Deno.remove(destDir, { recursive: true }).catch(() => {});
    } else {
      for await (const entry of Deno.readDir(destDir)) {
        await Deno.remove(join(destDir, entry.name), { recursive: true }).catch(() => {});
      }
    }
    throw e;
  }
}
