/**
 * The bundle writer.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { MemsnapError, RefusedError } from "../errors.ts";
import { noopProgress, type ProgressReporter } from "../progress.ts";
import type { ArtifactSource } from "../capture/types.ts";
import {
  type BundleHeader,
  FORMAT_ID,
  type Manifest,
  MANIFEST_VERSION,
  type ManifestArtifact,
} from "./types.ts";
import type { ManifestSigner, PayloadCipher, PayloadSealer } from "./crypto_types.ts";
import {
  BLOCK,
  encodeHeader,
  encodeHeaderInto,
  END_OF_ARCHIVE,
  headerLength,
  padding,
} from "./_tar_header.ts";
import { checkPath, comparePaths, SortedPaths } from "./_paths.ts";
import { type BundleLimits, bundleLimits } from "./bundle_limits.ts";
import { zstdCompressFrames } from "./_zstd_frames.ts";
import { hex, smallInt, throughTransform, writeAll } from "./_io.ts";
import { digestInto, type StreamDigest, streamSha256 } from "./_digest.ts";
import { ArtifactTable, lazyManifest } from "./_artifact_table.ts";
import {
  encodeManifest,
  jsonStringLength,
  MANIFEST_NAME,
  manifestChunks,
  parseManifest,
  PAYLOAD_AGE,
  PAYLOAD_PLAIN,
  SIGNATURE_NAME,
} from "./_manifest.ts";

/** Options of {@linkcode writeBundle}. */
export interface WriteBundleOptions {
  /** Encrypts the payload (age). Default: a plaintext payload. */
  cipher?: PayloadCipher;
  /** Signs the manifest (minisign). Default: no signature entry. */
  signer?: ManifestSigner;
  /** zstd level, 1-19. Changing it changes the bytes. @default {3} */
  zstdLevel?: number;
  /** Aborts the write; the temp files are removed. */
  signal?: AbortSignal;
  /** Receives `pack` progress (bytes of artifacts packed). */
  progress?: ProgressReporter;
  /** Directory of the temporary payload file. @default {dirname(destPath)} */
  tempDir?: string;
  /**
   * For a caller that makes the bundle durable (fsync) once written: the writer starts the
   * writeback of the bundle every this many bytes while it packs (`fdatasync`, not waited
   * for), so the final fsync has little left to write (it was 0.12 s of a 165 MiB snapshot
   * on this project's VMs). Off by default.
   */
  flushEvery?: number;
  /**
   * The reader caps the bundle must stay within (the defaults, with these overrides): a bundle
   * with more artifacts, a larger artifact, payload or manifest than a reader accepts is
   * refused before anything is written, rather than written and then unreadable. Pass the caps
   * your readers are given when they are not the defaults. @default {bundleLimits}
   */
  limits?: Partial<BundleLimits>;
}

const PAD = new Uint8Array(BLOCK);
/** Artifacts opened ahead of the one being packed: at most this many... */
const PREFETCH_COUNT = 32;
/** ...declaring at most this many bytes in all. */
const PREFETCH_BYTES = 4 << 20;
/** Byte streams (files) of at least this size are read with a BYOB reader into one buffer. */
const BYOB_MIN = 64 << 10;
/** Bytes per BYOB read. */
const SCRATCH_BYTES = 1 << 20;
/**
 * Artifacts read in more than one BYOB read, and the payload of a bundle of at least this many
 * bytes of artifacts, are hashed on native threads (see streamSha256) while this thread reads,
 * tars and writes: ~100 ms of the 100 MiB snapshot's ~0.6 s on the main thread.
 */
const OFF_THREAD_MIN = 8 << 20;
const CREATED_AT = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;

/** Artifacts up to this size with a `readInto` are read with it. */
const SYNC_MAX = 1 << 20;
/** Size of the buffers small artifacts are tarred into. */
const BATCH_BYTES = 1 << 20;

const ZERO_HASH = "0".repeat(64);

/**
 * The manifest entry of an artifact, its keys created in sorted order: canonical JSON then
 * serializes it as it is, without a sorted copy (75,000 of them for a 1 GiB memory).
 */
function manifestArtifact(s: ArtifactSource, sha256: string): ManifestArtifact {
  const size = smallInt(s.size);
  return s.mode !== undefined && s.mode !== 0o644
    ? { kind: s.kind, mode: s.mode, path: s.path, sha256, size }
    : { kind: s.kind, path: s.path, sha256, size };
}

/** The mode an artifact's manifest entry records: none for 0644, the default. */
function entryMode(s: ArtifactSource): number | undefined {
  return s.mode === 0o644 ? undefined : s.mode;
}

/**
 * The length of the manifest of `sources` with every hash zeroed and `payload.size` 0: the
 * header's, plus each entry's and a comma between two. An entry's length is counted from its
 * fields, without making the entry or its text (at 411,000 artifacts those were ~90 MB of
 * garbage right before the payload: the peak of such a snapshot). Its own function, not
 * inline in {@linkcode writeBundle}: a temporary there stays in the suspended function's
 * registers.
 */
function placeholderLength(probe: Manifest, sources: readonly ArtifactSource[]): number {
  let n = chunksLength({ ...probe, artifacts: [] });
  const kinds = new Map<string, number>();
  for (let i = 0; i < sources.length; i++) {
    const s = sources[i]!;
    if (typeof s.kind !== "string") {
      // Not an entry the native serializer writes canonically: the whole manifest, as ever.
      return chunksLength({
        ...probe,
        artifacts: sources.map((s) => manifestArtifact(s, ZERO_HASH)),
      });
    }
    let kind = kinds.get(s.kind);
    if (kind === undefined) kinds.set(s.kind, kind = jsonStringLength(s.kind));
    // {"kind":K[,"mode":M],"path":P,"sha256":"<64>","size":N}
    n += ENTRY_FIXED + kind + jsonStringLength(s.path) + String(s.size).length +
      (s.mode !== undefined && s.mode !== 0o644 ? MODE_FIXED + String(s.mode).length : 0) +
      (i > 0 ? 1 : 0);
  }
  return n;
}

/** The bytes of an entry's keys, punctuation and zeroed hash: `{"kind":,"path":,"sha256":"…","size":}`. */
const ENTRY_FIXED = '{"kind":,"path":,"sha256":"","size":}'.length + 64;
/** The bytes a mode adds to an entry: `,"mode":` and its digits. */
const MODE_FIXED = ',"mode":'.length;

/** Length of a manifest's canonical bytes, computed piece by piece. */
function chunksLength(m: Manifest): number {
  let n = 0;
  for (const c of manifestChunks(m)) n += c.length;
  return n;
}

/** A bundle a reader with `limits` would refuse, refused before it is written (exit 4). */
function overCap(what: string, cap: string, name: keyof BundleLimits): RefusedError {
  return new RefusedError(
    `Cannot write the bundle: ${what}, over the cap of ${cap} that a reader accepts (${name})`,
    {
      hint: "Snapshot less at once (fewer or smaller files), or raise the cap for the writer " +
        "and every reader alike (the `limits` options).",
    },
  );
}

function readsSync(s: ArtifactSource): boolean {
  return s.readInto !== undefined && s.size <= SYNC_MAX;
}

function sizeChanged(s: ArtifactSource, n: number): MemsnapError {
  return new MemsnapError(
    `Cannot pack artifact ${JSON.stringify(s.path)}: it yielded ${
      n > s.size ? `more than ${s.size}` : n
    } bytes but its declared size is ${s.size} (the file changed during capture)`,
    { hint: "Take the snapshot again." },
  );
}

function entryHeader(path: string, size: number, mode: number, mtime: number): Uint8Array {
  return encodeHeader({ path, size, mode, mtime });
}

/**
 * Writes a bundle: a tar of `manifest.json` (canonical JSON), `payload.tar.zst` (the artifacts
 * as an inner tar, zstd level 3) or `payload.tar.zst.age` when a cipher is given, and
 * `manifest.json.minisig` when a signer is given. The output is byte-for-byte determined by
 * the header, the artifacts and the options: entries sorted by path, uid/gid 0, no user or
 * group names, mode 0644 (or the artifact's mode), mtime = `created_at` in seconds.
 *
 * Streams in constant memory: each artifact is hashed while it is packed, the payload is
 * compressed (on other threads: nonblocking libzstd calls, or a worker), encrypted, and hashed
 * while it is written at its final offset in `destPath`, and the manifest (first entry, holding
 * the payload's hash) is written last in front of it. When the manifest's padded length cannot
 * be known in advance (its `payload.size` digits straddle a 512-byte boundary, ~3% of bundles)
 * the payload goes to a temporary file beside `destPath` (or in `tempDir`) and is copied in
 * after the manifest.
 *
 * @param destPath Where to write; usually a temporary path the caller renames into place. It
 * is created or truncated, and removed if the write fails.
 * @param header The manifest's descriptive fields (snapshot id, agent, created_at...).
 * @param artifacts The artifacts, in any order; each one's `open()` is called once.
 * @param options Cipher, signer, zstd level, cancellation, progress.
 * @returns The manifest written. Its `artifacts` are kept compactly and made into entries when
 * first read (an accessor until then, a plain array after): a large list is never made unless
 * it is read.
 * @throws {TypeError} If the header or an artifact is invalid (bad path, duplicate, size).
 * @throws {MemsnapError} If an artifact yields a different number of bytes than its `size`.
 * @throws {DOMException} `AbortError` when aborted through `signal`.
 *
 * @example Write and read back a bundle
 * ```ts
 * import { writeBundle } from "./write_bundle.ts";
 * import { readManifest } from "./read_manifest.ts";
 * import { openBundleFile } from "./open_bundle_file.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const bytes = new TextEncoder().encode("remember the milk\n");
 * const manifest = await writeBundle(`${dir}/b.tar`, {
 *   snapshot_id: "20261125T195222123Z-1a2b3c4d",
 *   agent_id: "agent-1",
 *   tenant: "default",
 *   label: null,
 *   created_at: "2026-11-25T19:52:22.123Z",
 *   created_by: "api",
 *   parent: null,
 *   captures: {},
 *   redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
 *   tools: { memsnap: "0.1.0" },
 * }, [{
 *   path: "memdir/notes.md",
 *   kind: "file",
 *   size: bytes.length,
 *   open: () => Promise.resolve(new Blob([bytes]).stream()),
 * }]);
 * const again = await readManifest(await openBundleFile(`${dir}/b.tar`));
 * console.log(again.payload.sha256 === manifest.payload.sha256); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeBundle(
  destPath: string,
  header: BundleHeader,
  artifacts: Iterable<ArtifactSource> | AsyncIterable<ArtifactSource>,
  options: WriteBundleOptions = {},
): Promise<Manifest> {
  const { cipher, signer, signal } = options;
  const level = options.zstdLevel ?? 3;
  const progress = options.progress ?? noopProgress;
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new RangeError(`Cannot write the bundle: zstd level ${level} is not in 1-19`);
  }
  signal?.throwIfAborted();

  const limits: BundleLimits = { ...bundleLimits, ...options.limits };
  // 1. Sources: validate, sort.
  const sources: ArtifactSource[] = [];
  for await (const s of artifacts) sources.push(s);
  // Only `sources` refers to the artifacts from here on, and it lets go of each once it is
  // packed (~60 bytes apiece, held until the end otherwise): a caller that passes an array
  // it does not keep frees them as the bundle is written.
  artifacts = [];
  sources.sort((a, b) => comparePaths(a.path, b.path));
  const seen = new SortedPaths();
  let total = 0;
  // The inner tar's length, as a reader counts it against maxTotalSize.
  let tarBytes = END_OF_ARCHIVE.length;
  for (const s of sources) {
    if (typeof s.path !== "string") {
      throw new TypeError("Cannot write the bundle: an artifact has no path");
    }
    const problem = checkPath(s.path, limits.maxPathLength, limits.maxPathDepth) ??
      seen.add(s.path);
    if (problem) {
      throw new TypeError(
        `Cannot write the bundle: artifact path ${
          JSON.stringify(s.path)
        } ${problem.state} (${problem.rule})`,
      );
    }
    if (!Number.isSafeInteger(s.size) || s.size < 0) {
      throw new TypeError(
        `Cannot write the bundle: artifact ${JSON.stringify(s.path)} has an invalid size ${s.size}`,
      );
    }
    if (s.mode !== undefined && (!Number.isInteger(s.mode) || s.mode < 0 || s.mode > 0o777)) {
      throw new TypeError(
        `Cannot write the bundle: artifact ${JSON.stringify(s.path)} has an invalid mode ${s.mode}`,
      );
    }
    if (s.size > limits.maxEntrySize) {
      throw overCap(
        `artifact ${JSON.stringify(s.path)} is ${s.size} bytes`,
        `${limits.maxEntrySize} bytes per artifact`,
        "maxEntrySize",
      );
    }
    total += s.size;
    tarBytes += headerLength(s.path, s.size) + s.size + padding(s.size);
  }
  if (sources.length > limits.maxEntries) {
    throw overCap(
      `it would hold ${sources.length} artifacts`,
      `${limits.maxEntries}`,
      "maxEntries",
    );
  }
  if (tarBytes > limits.maxTotalSize) {
    throw overCap(
      `its payload would inflate to ${tarBytes} bytes`,
      `${limits.maxTotalSize} bytes`,
      "maxTotalSize",
    );
  }
  if (typeof header.created_at !== "string" || !CREATED_AT.test(header.created_at)) {
    throw new TypeError(
      `Cannot write the bundle: created_at ${
        JSON.stringify(header.created_at)
      } is not an ISO 8601 UTC timestamp with milliseconds`,
    );
  }
  const mtime = Math.floor(Date.parse(header.created_at) / 1000);
  const payloadPath = cipher ? PAYLOAD_AGE : PAYLOAD_PLAIN;
  const encryption = cipher ? { scheme: cipher.scheme, recipients: [...cipher.recipients] } : null;
  // Check the header against the schema before doing any work.
  const probe: Manifest = {
    ...header,
    format: FORMAT_ID,
    manifest_version: MANIFEST_VERSION,
    artifacts: [],
    payload: {
      path: payloadPath,
      size: 0,
      sha256: "0".repeat(64),
      compression: "zstd",
      encryption,
    },
  };
  try {
    parseManifest(encodeManifest(probe), limits);
  } catch (e) {
    throw new TypeError(
      `Cannot write the bundle: the header is invalid: ${(e as Error).message}`,
      { cause: e },
    );
  }

  const tmp = join(
    options.tempDir ?? dirname(destPath),
    `.${basename(destPath).slice(0, 100)}.payload-${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
  let destCreated = false;
  let payloadHash: StreamDigest | undefined;
  try {
    // 2. Payload: inner tar -> zstd -> (cipher) -> hash -> temp file.
    // The manifest's entries, compactly (see ArtifactTable): digests as bytes, no entry objects.
    const table = new ArtifactTable();
    let packed = 0;
    // Small artifacts are opened a few ahead (in order, each once), so that their reads run
    // in the I/O threads while this thread hashes and tars the current one; bounded in count
    // and bytes. Those not reached (an error, an abort) are cancelled.
    // By index, only those opened and not reached yet (a few): not an array as long as the
    // artifact list.
    const opened = new Map<number, Promise<ReadableStream<Uint8Array>>>();
    let ahead = 0; // sources[0..ahead) have been opened
    let aheadBytes = 0; // declared bytes opened but not reached yet
    const openUpTo = (i: number): Promise<ReadableStream<Uint8Array>> => {
      if (opened.has(i)) aheadBytes -= sources[i]!.size;
      while (ahead <= i) {
        // Below `i`: packed already (let go of), or read when reached, not opened.
        const a = sources[ahead];
        if (ahead < i && (a === undefined || readsSync(a))) ahead++;
        else open(ahead);
      }
      while (
        ahead < sources.length && ahead - i <= PREFETCH_COUNT &&
        aheadBytes + sources[ahead]!.size <= PREFETCH_BYTES
      ) {
        if (readsSync(sources[ahead]!)) {
          ahead++; // read when reached
          continue;
        }
        aheadBytes += sources[ahead]!.size;
        open(ahead);
      }
      const p = opened.get(i)!;
      opened.delete(i);
      return p;
    };
    const open = (j: number): void => {
      let p: Promise<ReadableStream<Uint8Array>>;
      try {
        p = sources[j]!.open();
      } catch (e) {
        p = Promise.reject(e);
      }
      p.catch(() => {}); // reported when reached
      opened.set(j, p);
      ahead = j + 1;
    };
    /** Lets go of an artifact once it is packed (nothing reads `sources` before `i` again). */
    const done = (i: number): void => {
      (sources as (ArtifactSource | undefined)[])[i] = undefined;
    };
    const innerTar = async function* (): AsyncGenerator<Uint8Array> {
      // Two scratch buffers for byte streams (files), taken in turn: read 1 MiB at a time
      // straight into one while the other's bytes are hashed on a native thread. The compressor
      // copies each chunk before asking for the next (see zstdCompressFrames).
      const scratch: (ArrayBuffer | undefined)[] = [undefined, undefined];
      let turn = 0;
      try {
        yield* packAll();
      } finally {
        for (const p of opened.values()) p.then((st) => st.cancel()).catch(() => {});
      }
      async function* packAll(): AsyncGenerator<Uint8Array> {
        // Small artifacts read synchronously are tarred into one batch buffer, handed on when
        // full: no stream, promise or yield per artifact. The compressor copies each chunk
        // before asking for the next, so the buffer is reused at once (as the scratch is).
        let batch: Uint8Array | undefined;
        let fill = 0;
        const takeBatch = (): Uint8Array => {
          const b = batch!.subarray(0, fill);
          fill = 0;
          return b;
        };
        for (let i = 0; i < sources.length; i++) {
          const s = sources[i]!;
          signal?.throwIfAborted();
          const mode = s.mode ?? 0o644;
          if (readsSync(s)) {
            // (one byte more than declared is room to see a source that grew)
            const need = headerLength(s.path, s.size) + s.size + Math.max(padding(s.size), 1);
            if (fill > 0 && fill + need > BATCH_BYTES) yield takeBatch();
            if (batch === undefined || need > batch.length) {
              batch = new Uint8Array(Math.max(BATCH_BYTES, need));
            }
            // The header written in place (no allocation per small file).
            const at = fill +
              encodeHeaderInto(batch, fill, { path: s.path, size: s.size, mode, mtime });
            const n = s.readInto!(batch.subarray(at, at + s.size + 1));
            if (n !== s.size) throw sizeChanged(s, n);
            const bytes = batch.subarray(at, at + s.size);
            const end = at + s.size + padding(s.size);
            batch.fill(0, at + s.size, end);
            fill = end;
            packed += s.size;
            progress.progress({ phase: "pack", done: packed, total, item: s.path });
            const row = table.push(s.kind, s.path, s.size, entryMode(s));
            digestInto("sha256", table.digestBlock(row), table.digestOffset(row), bytes);
            done(i);
            continue;
          }
          if (fill > 0) yield takeBatch();
          yield entryHeader(s.path, s.size, mode, mtime);
          let n = 0;
          const stream = await openUpTo(i);
          let byob: ReadableStreamBYOBReader | undefined;
          if (s.size >= BYOB_MIN) {
            try {
              byob = stream.getReader({ mode: "byob" });
            } catch {
              // not a byte stream
            }
          }
          // One loop for both readers: a byte stream fills the reused scratch buffer (asking for
          // one byte more than declared at the end, to detect a longer source); any other
          // stream hands out its own chunks.
          let read: () => Promise<ReadableStreamReadResult<Uint8Array>>;
          let cancel: () => Promise<void>;
          if (byob) {
            const r = byob;
            read = async () => {
              const want = Math.min(SCRATCH_BYTES, s.size - n + 1);
              const t = turn;
              turn ^= 1;
              const buf = scratch[t] ?? new ArrayBuffer(SCRATCH_BYTES);
              scratch[t] = undefined; // transferred by the read
              const result = await r.read(new Uint8Array(buf, 0, want));
              if (result.value) scratch[t] = result.value.buffer as ArrayBuffer;
              return result;
            };
            cancel = () => r.cancel();
          } else {
            const r = stream.getReader();
            read = () => r.read();
            cancel = () => r.cancel();
          }
          // A byte stream of more than one read is hashed on a native thread, a chunk behind
          // the read: chunk k is hashed while chunk k + 1 is read into the other scratch
          // buffer, and awaited before chunk k + 2 is read into its buffer. Other streams'
          // chunks are hashed before the next is read (a stream may reuse its buffers).
          const hash = streamSha256(byob !== undefined && s.size > SCRATCH_BYTES);
          let hashing: Promise<void> | undefined;
          let finished = false;
          try {
            for (;;) {
              signal?.throwIfAborted();
              if (byob === undefined && hashing !== undefined) await hashing;
              const { done, value } = await read();
              if (done) {
                finished = true;
                break;
              }
              n += value.length;
              if (n > s.size) break;
              if (hashing !== undefined) await hashing;
              hashing = hash.update(value);
              packed += value.length;
              progress.progress({ phase: "pack", done: packed, total, item: s.path });
              yield value;
            }
            if (n !== s.size) throw sizeChanged(s, n);
            const pad = padding(s.size);
            if (pad > 0) yield PAD.subarray(0, pad);
            const row = table.push(s.kind, s.path, s.size, entryMode(s));
            table.digestBlock(row).set(await hash.digest(), table.digestOffset(row));
          } finally {
            await hash.dispose();
            if (!finished) await cancel().catch(() => {});
          }
          done(i);
        }
        if (fill > 0) yield takeBatch();
        yield END_OF_ARCHIVE;
      }
    };
    // Frames of 4 MiB of inner tar, compressed on other threads while this one reads and hashes.
    // Without a cipher each frame is written before the next is asked for, and a synchronous
    // sealer is done with a frame when it returns: no copy needed. A cipher that offers only a
    // transform stream gets fresh frames (the stream may hold them).
    const sealer = cipher?.sealer?.();
    let stage: AsyncIterable<Uint8Array> = zstdCompressFrames(innerTar(), level, {
      reuseOutput: !cipher || sealer !== undefined,
    });
    if (sealer) stage = sealFrames(stage, sealer);
    else if (cipher) stage = throughTransform(stage, cipher.encrypt());
    payloadHash = streamSha256(total >= OFF_THREAD_MIN);
    let payloadSize = 0;
    let manifest: Manifest;
    // Where the payload starts in the bundle, when it is known before packing: the manifest's
    // length depends only on the digits of `payload.size` (hashes have a fixed length; paths,
    // sizes and modes are known now), and the manifest entry is padded to 512 bytes. Unless
    // 1 to 16 digits straddle a 512-byte boundary (~3% of bundles), the payload is written
    // straight into the bundle, saving a temp file and one full copy of the payload.
    const placeholder = placeholderLength(probe, sources); // payload.size 0 here: one digit
    if (placeholder > limits.maxManifestSize) {
      throw overCap(
        `its manifest would be ${placeholder} bytes`,
        `${limits.maxManifestSize} bytes`,
        "maxManifestSize",
      );
    }
    const padded = (n: number): number => n + padding(n);
    const direct = padded(placeholder) === padded(placeholder + 15)
      ? BLOCK + padded(placeholder) + BLOCK
      : undefined;

    let out: Deno.FsFile | undefined;
    try {
      if (direct !== undefined) {
        out = await Deno.open(destPath, { create: true, truncate: true, write: true });
        destCreated = true;
        await out.seek(direct, Deno.SeekMode.Start);
      }
      {
        using file = direct === undefined
          ? await Deno.open(tmp, { createNew: true, write: true })
          : undefined;
        const sink = (out ?? file)!;
        const flushEvery = out !== undefined ? options.flushEvery ?? 0 : 0;
        let flushing: Promise<void> | undefined;
        let unflushed = 0;
        // A frame is hashed on a native thread while it is written. Plaintext frames are views
        // the compressor leaves alone until the frame after the next is asked for (see
        // `reuseOutput`): each is written while the next is compressed and asked for, so this
        // thread goes back to packing at once. A sealer's output is overwritten by its next
        // call: it is written before the next is asked for.
        let writing: Promise<void> | undefined;
        const put = async (chunk: Uint8Array): Promise<void> => {
          const hashing = payloadHash!.update(chunk);
          try {
            await writeAll(sink, chunk);
          } finally {
            if (hashing !== undefined) await hashing;
          }
        };
        try {
          for await (const chunk of stage) {
            payloadSize += chunk.length;
            if (cipher) await put(chunk);
            else {
              await writing;
              writing = put(chunk);
              writing.catch(() => {}); // awaited before the next write, or below
            }
            unflushed += chunk.length;
            if (flushEvery > 0 && unflushed >= flushEvery && flushing === undefined) {
              unflushed = 0;
              flushing = sink.syncData().catch(() => {}).finally(() => flushing = undefined);
            }
          }
          await writing;
        } finally {
          // Nothing is written or hashed after this (the file closes, the hash may be disposed).
          await writing?.catch(() => {});
          await flushing;
        }
      }
      signal?.throwIfAborted();

      // 3. Manifest and signature.
      manifest = lazyManifest({
        ...probe,
        payload: {
          path: payloadPath,
          size: payloadSize,
          sha256: hex(await payloadHash.digest()),
          compression: "zstd",
          encryption,
        },
      }, table);
      // Signed: the bytes at once, for the signer. Otherwise written in pieces: a manifest of
      // 75,000 artifacts is ~11 MB of text, which would otherwise exist as a string and as
      // bytes at the very end, while everything else is still alive (the run's peak memory).
      const manifestBytes = signer ? encodeManifest(manifest) : undefined;
      const manifestLength = manifestBytes?.length ?? placeholder + String(payloadSize).length - 1;
      if (manifestLength > limits.maxManifestSize) {
        throw overCap(
          `its manifest would be ${manifestLength} bytes`,
          `${limits.maxManifestSize} bytes`,
          "maxManifestSize",
        );
      }
      const signature = signer ? await signer.sign(manifestBytes!, manifest) : undefined;
      signal?.throwIfAborted();

      // 4. Outer tar.
      if (out === undefined) {
        out = await Deno.open(destPath, { create: true, truncate: true, write: true });
        destCreated = true;
      } else {
        if (BLOCK + padded(manifestLength) + BLOCK !== direct) {
          throw new MemsnapError(
            `Cannot write the bundle: the manifest is ${manifestLength} bytes, not the ${
              direct! - 2 * BLOCK
            } (padded) the payload was placed for (a bug)`,
          );
        }
        await out.seek(0, Deno.SeekMode.Start);
      }
      await writeAll(out, entryHeader(MANIFEST_NAME, manifestLength, 0o644, mtime));
      let written = 0;
      for (const chunk of manifestBytes ? [manifestBytes] : manifestChunks(manifest)) {
        written += chunk.length;
        if (written > manifestLength) break;
        await writeAll(out, chunk);
      }
      if (written !== manifestLength) {
        throw new MemsnapError(
          `Cannot write the bundle: the manifest is ${written} bytes, not the ${manifestLength} ` +
            "its length was computed as (a bug)",
        );
      }
      await writeAll(out, PAD.subarray(0, padding(manifestLength)));
      await writeAll(out, entryHeader(payloadPath, payloadSize, 0o644, mtime));
      if (direct !== undefined) {
        await out.seek(direct + payloadSize, Deno.SeekMode.Start);
      } else {
        using src = await Deno.open(tmp, { read: true });
        let copied = 0;
        const buf = new Uint8Array(1 << 20);
        for (;;) {
          const n = await src.read(buf);
          if (n === null) break;
          copied += n;
          await writeAll(out, buf.subarray(0, n));
        }
        if (copied !== payloadSize) {
          throw new MemsnapError(
            `Cannot write the bundle: the temporary payload file changed size (${copied} != ${payloadSize})`,
          );
        }
      }
      await writeAll(out, PAD.subarray(0, padding(payloadSize)));
      if (signature) {
        await writeAll(out, entryHeader(SIGNATURE_NAME, signature.length, 0o644, mtime));
        await writeAll(out, signature);
        await writeAll(out, PAD.subarray(0, padding(signature.length)));
      }
      await writeAll(out, END_OF_ARCHIVE);
    } finally {
      out?.close();
    }
    return manifest;
  } catch (e) {
    await payloadHash?.dispose();
    if (destCreated) await Deno.remove(destPath).catch(() => {});
    throw e;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Encrypts `input` with a synchronous sealer; each output is a view the sealer overwrites on
 * its next call, so the consumer must be done with it when it asks for the next one.
 */
async function* sealFrames(
  input: AsyncIterable<Uint8Array>,
  sealer: PayloadSealer,
): AsyncGenerator<Uint8Array> {
  let ended = false;
  try {
    for await (const frame of input) {
      const out = sealer.update(frame);
      if (out.length > 0) yield out;
    }
    const last = sealer.final();
    ended = true;
    yield last;
  } finally {
    if (!ended) sealer.dispose();
  }
}
