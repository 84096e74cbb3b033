/**
 * Bundle extraction.
 *
 * @module
 */
import { join } from "node:path";
import { RefusedError, VerificationError } from "../errors.ts";
import type { ProgressReporter } from "../progress.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import type { ManifestVerifier, PayloadDecipher } from "./crypto_types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { resolveLimits } from "./_io.ts";
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
  const dirs = new Set<string>();
  // Entry paths are checked by the reader before they reach the sink (relative, normalized: no
  // empty, "." or ".." segment), so joining them by hand gives what `join` would, without
  // normalizing each path again.
  const root = join(destDir, ".");
  const prefix = root.endsWith("/") ? root : `${root}/`;
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
        const path = artifact.path;
        for (let slash = path.indexOf("/"); slash !== -1; slash = path.indexOf("/", slash + 1)) {
          const rel = path.slice(0, slash);
          if (dirs.has(rel)) continue;
          try {
            Deno.mkdirSync(prefix + rel);
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
        await writeArtifact(prefix + path, artifact, chunks);
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

/** Artifacts up to this size are gathered and written with one `writeFileSync`. */
const SMALL_ARTIFACT = 1 << 20;

/** Creates `path` exclusively (never through an existing path or symlink), or refuses. */
function conflict(e: unknown, artifact: ManifestArtifact): unknown {
  return e instanceof Deno.errors.AlreadyExists
    ? unsafe("path_conflict", artifact.path, "already exists in the destination")
    : e;
}

/**
 * Writes one artifact's bytes to a new file with its mode, using synchronous calls: the
 * decoder runs off the main thread, and for small files one `writeFileSync` (create, write,
 * mode, close) costs a fraction of the async open/write/close/chmod sequence. A size that
 * disagrees with the manifest is reported by the reader (which hashes what the sink leaves);
 * the file's content then does not matter, since the extraction fails.
 */
async function writeArtifact(
  path: string,
  artifact: ManifestArtifact,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  const mode = artifact.mode ?? 0o644;
  const want = artifact.size;
  const it = chunks[Symbol.asyncIterator]();
  if (want <= SMALL_ARTIFACT) {
    // Chunks are views valid until the next read: one whole chunk is written as it is, else
    // each is copied on arrival.
    let r = await it.next();
    let data: Uint8Array = r.done ? new Uint8Array(0) : r.value;
    if (!r.done && data.length < want) {
      const buf = new Uint8Array(want);
      let got = 0;
      for (; !r.done; r = await it.next()) {
        if (got + r.value.length > want) break; // oversized: the size check fails
        buf.set(r.value, got);
        got += r.value.length;
        if (got === want) break;
      }
      data = buf.subarray(0, got);
    }
    try {
      // The mode given to writeFile is applied exactly (not through the umask).
      Deno.writeFileSync(path, data, { createNew: true, mode });
    } catch (e) {
      throw conflict(e, artifact);
    }
    return;
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { createNew: true, write: true, mode: 0o600 });
  } catch (e) {
    throw conflict(e, artifact);
  }
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const c = r.value;
      for (let off = 0; off < c.length;) off += file.writeSync(c.subarray(off));
    }
  } finally {
    file.close();
  }
  Deno.chmodSync(path, mode);
}
